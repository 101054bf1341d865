//! The staging area's WebSocket (`/api/uploads/{id}/socket`) over a real server: each binary
//! message is staged in order and acknowledged with the bytes received; a piece past the size
//! the upload was opened for, or an unknown upload, is answered with an error sentence before the
//! server closes. (The page's use of it runs in `tests/browser.rs`.)

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

async fn server() -> licen_web::Running {
    // Never reached: nothing here is committed.
    licen_web::start(licen_web::testing::config_without_chain(
        "http://127.0.0.1:9".into(),
        "http://127.0.0.1:9".into(),
    ))
    .await
    .unwrap()
}

async fn next_answer<S>(socket: &mut S) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next());
        match next
            .await
            .expect("an answer within 10 s")
            .expect("an answer")
            .unwrap()
        {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(_) => panic!("closed without an answer"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn pieces_are_staged_in_order_and_refusals_are_sentences() {
    let web = server().await;
    let ws_url = web.url().replace("http://", "ws://");

    let id = licen_web::testing::begin_upload(&web.url(), 30).await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}/api/uploads/{id}/socket"))
            .await
            .unwrap();
    socket.send(Message::binary(vec![1u8; 10])).await.unwrap();
    socket.send(Message::binary(vec![2u8; 10])).await.unwrap();
    assert_eq!(next_answer(&mut socket).await["received"], 10);
    assert_eq!(next_answer(&mut socket).await["received"], 20);
    // 15 more bytes would end past the 30 the upload was opened for.
    socket.send(Message::binary(vec![3u8; 15])).await.unwrap();
    let refused = next_answer(&mut socket).await;
    let message = refused["error"].as_str().expect("an error sentence");
    assert!(message.contains("opened for 30 bytes"), "{message}");

    // A new socket for the same upload goes on from where it stands.
    let (mut again, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}/api/uploads/{id}/socket"))
            .await
            .unwrap();
    again.send(Message::binary(vec![4u8; 10])).await.unwrap();
    assert_eq!(next_answer(&mut again).await["received"], 30);
    let report: Value = reqwest::get(format!("{}/api/uploads/{id}", web.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["received"], 30);

    let (mut unknown, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}/api/uploads/nope/socket"))
            .await
            .unwrap();
    let message = next_answer(&mut unknown).await;
    assert!(
        message["error"]
            .as_str()
            .unwrap()
            .contains("no upload \"nope\""),
        "{message}"
    );
    web.stop().await;
}
