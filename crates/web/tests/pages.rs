//! The pages' frame and vocabulary in headless Chromium, with no chain and no indexer: the
//! navigation marks the page shown (also after client-side navigation and Back), and the
//! transaction page's DataPolicy events carry a plain label for every field, their ABI names
//! kept beside them. Screenshots go to target/screenshots/.

use std::time::Duration;

use licen_web::testing::{Browser, unavailable, web_with_storage_node};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// Opens `url` in a laptop-sized headless Chromium and waits until its page has rendered.
async fn open(url: &str) -> Browser {
    let browser = Browser::launch(1280, 900)
        .await
        .expect("launching headless Chromium");
    browser.script_timeout(60_000).await.unwrap();
    browser.goto(url).await.unwrap();
    browser
        .wait_for("document.body.dataset.ready", WAIT)
        .await
        .unwrap();
    browser
}

/// The navigation's links as `[text, aria-current or null, font weight]`, and the path shown.
async fn navigation(browser: &Browser) -> Value {
    browser
        .execute(
            "return [location.pathname, [...document.querySelectorAll('header nav a')].map((a) => [a.textContent, a.getAttribute('aria-current'), getComputedStyle(a).fontWeight, getComputedStyle(a).borderBottomColor])];",
            json!([]),
        )
        .await
        .unwrap()
}

/// Asserts the navigation marks `page` (aria-current="page") and `section` ("true"), nothing
/// else, and shows the marked links differently from the others.
fn marks(nav: &Value, page: Option<&str>, section: Option<&str>) {
    let links = nav[1].as_array().unwrap();
    assert_eq!(links.len(), 4, "{nav}");
    let plain = links
        .iter()
        .find(|l| l[1].is_null())
        .expect("an unmarked link");
    for link in links {
        let text = link[0].as_str().unwrap();
        let expected = if Some(text) == page {
            json!("page")
        } else if Some(text) == section {
            json!("true")
        } else {
            Value::Null
        };
        assert_eq!(link[1], expected, "{text}: {nav}");
        if !link[1].is_null() {
            assert_ne!(link[2], plain[2], "{text} is shown bolder: {nav}");
            assert_ne!(link[3], plain[3], "{text} is underlined: {nav}");
        }
    }
}

/// Follows the link to `path` as a person clicking it does (the app routes it in the page).
async fn click_to(browser: &Browser, path: &str) {
    browser
        .execute(
            "let a = document.querySelector(`header nav a[href='${arguments[0]}']`);
             if (!a) { a = Object.assign(document.createElement('a'), { href: arguments[0], textContent: 'link' }); document.getElementById('main').append(a); }
             a.click();",
            json!([path]),
        )
        .await
        .unwrap();
    browser
        .wait_for(
            &format!("document.body.dataset.ready === '{path}' && location.pathname === '{path}'"),
            WAIT,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_navigation_marks_the_current_page() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (web, _storage) = web_with_storage_node(dir.path(), None).await;
    let browser = open(&format!("{}/jobs", web.url())).await;
    marks(&navigation(&browser).await, Some("My jobs"), None);
    browser
        .execute("window.licenNotReloaded = true;", json!([]))
        .await
        .unwrap();

    // Client-side navigation moves the mark; a page under a section marks the section.
    click_to(&browser, "/publish").await;
    marks(&navigation(&browser).await, Some("Publish"), None);
    // This browser has no wallet: the form says so first, and the header links to wallet help.
    let no_wallet = browser
        .execute(
            "return [document.querySelector('form > :first-child')?.textContent, document.getElementById('get-wallet')?.href];",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(
        no_wallet,
        json!([
            "You need a browser wallet (e.g. MetaMask) to publish. Install one, then reload this page.",
            "https://metamask.io/download/"
        ])
    );
    browser.screenshot("nav-current-publish").await.unwrap();
    click_to(&browser, "/jobs/7").await;
    marks(&navigation(&browser).await, None, Some("My jobs"));
    let dataset = format!("/datasets/0x{}", "ab".repeat(32));
    click_to(&browser, &dataset).await;
    marks(&navigation(&browser).await, None, Some("Marketplace"));
    // Pages outside the navigation's sections mark nothing.
    click_to(&browser, "/audit/jobs/7").await;
    marks(&navigation(&browser).await, None, None);

    // Back (the browser's popstate) moves it back.
    for expected in ["/datasets/", "/jobs/7", "/publish"] {
        browser.execute("history.back();", json!([])).await.unwrap();
        browser
            .wait_for(
                &format!(
                    "location.pathname.startsWith('{expected}') && document.body.dataset.ready === location.pathname"
                ),
                WAIT,
            )
            .await
            .unwrap();
    }
    let nav = navigation(&browser).await;
    assert_eq!(nav[0], "/publish");
    marks(&nav, Some("Publish"), None);
    let reloaded = browser
        .execute("return window.licenNotReloaded === true;", json!([]))
        .await
        .unwrap();
    assert_eq!(reloaded, true, "all of it client-side, no reload");

    browser.resize(390, 844).await.unwrap();
    click_to(&browser, "/dashboard").await;
    marks(&navigation(&browser).await, Some("Dashboard"), None);
    browser.screenshot("nav-current-phone").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_field_has_a_plain_label() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (web, _storage) = web_with_storage_node(dir.path(), None).await;
    let browser = open(&format!("{}/jobs", web.url())).await;
    let events = browser
        .run(
            "const A = await import('/assets/abi.js'); return A.eventLabels();",
            json!({}),
        )
        .await
        .unwrap();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 17, "every DataPolicy event: {events:?}");
    for event in events {
        let (name, title) = (event["name"].as_str().unwrap(), event["title"].as_str());
        assert!(
            title.is_some_and(|t| !t.is_empty() && t != name),
            "{name} is said in words: {event}"
        );
        for field in event["fields"].as_array().unwrap() {
            let (raw, label) = (field["name"].as_str().unwrap(), field["label"].as_str());
            assert!(
                label.is_some_and(|l| l != raw && l.starts_with(char::is_uppercase)),
                "{name}.{raw} has a plain label: {event}"
            );
        }
    }

    // A settlement's log decoded with its labels: each field as [ABI name, shown as, value, label].
    let decoded = browser
        .run(
            "const C = await import('/assets/crypto.js'); await C.loadWasm();
             const A = await import('/assets/abi.js');
             const word = (n) => BigInt(n).toString(16).padStart(64, '0');
             const topic = C.hex(C.keccak256(new TextEncoder().encode('JobCompleted(uint256,uint16,bytes32,bytes32,uint256,uint256,uint256)')));
             const e = A.decodeLog({ topics: [topic, '0x' + word(7)], data: '0x' + [2, 0x11, 0x22, 20n * 10n ** 15n, 5n * 10n ** 14n, 0].map(word).join('') });
             return { name: e.name, title: e.title, args: e.args.map(([n, kind, v, label]) => [n, kind, String(v), label]) };",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(decoded["name"], "JobCompleted");
    assert_eq!(decoded["title"], "Training settled");
    let args = decoded["args"].as_array().unwrap();
    assert_eq!(args[0], json!(["jobId", "uint256", "7", "Job"]));
    assert_eq!(
        args[1],
        json!(["actualEpochs", "uint16", "2", "Epochs trained"])
    );
    assert_eq!(
        args[4],
        json!([
            "royalty",
            "wei",
            "20000000000000000",
            "Royalty (price × epochs trained)"
        ])
    );
    assert_eq!(args[6][3], "Refunded to the researcher");
}
