//! The whole marketplace flow through the web app in headless Chromium against a real
//! `licen dev` stack (anvil, storage node, compute node, orchestrator, indexer, web app), with
//! the INSECURE development wallet: publish (sealed in the page) → request → the orchestrator
//! trains and settles → the researcher downloads and opens the result in the page → the owner
//! withdraws. Plus the plain messages for insufficient funds and a policy violation. Screenshots
//! of every page go to target/screenshots/.

use std::time::Duration;

use licen_web::testing::{Browser, unavailable};
use serde_json::json;

mod common;
use common::{Dev, free_port};

const LONG: Duration = Duration::from_secs(120);

async fn as_account(browser: &Browser, url: &str, address: &str) {
    browser.goto(url).await.unwrap();
    browser
        .execute(
            "localStorage.setItem('licen.devAccount', arguments[0]);",
            json!([address]),
        )
        .await
        .unwrap();
    browser.goto(url).await.unwrap();
    browser
        .wait_for("document.body.dataset.ready", LONG)
        .await
        .unwrap();
}

async fn publish(
    browser: &Browser,
    web: &str,
    owner: &str,
    name: &str,
    price: &str,
    runs: u32,
) -> String {
    as_account(browser, &format!("{web}/publish"), owner).await;
    browser
        .run(
            "const set = (id, v) => { document.getElementById(id).value = v; };
             const lines = []; for (let i = 0; i < 300; i++) lines.push(JSON.stringify({prompt: `q${i}`, completion: `a${i}`}));
             const dt = new DataTransfer(); dt.items.add(new File([lines.join('\\n') + '\\n'], 'data.jsonl'));
             document.getElementById('file').files = dt.files;
             set('name', args.name); set('description', 'Browser-published test data'); set('license', 'CC-BY-4.0');
             set('price', args.price); set('max-epochs', '3'); set('max-runs', String(args.runs));
             document.getElementById('publish').click();",
            json!({"name": name, "price": price, "runs": runs}),
        )
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('published-root') || document.querySelector('#publish-result .error')", LONG)
        .await
        .unwrap();
    let root = browser
        .execute("const r = document.getElementById('published-root'); return r ? r.textContent : document.body.innerText;", json!([]))
        .await
        .unwrap();
    let root = root.as_str().unwrap().to_owned();
    assert!(
        root.starts_with("0x") && root.len() == 66,
        "publish failed: {root}"
    );
    root
}

/// Requests 2 epochs on the dataset page and returns the message shown.
async fn request(browser: &Browser, web: &str, researcher: &str, root: &str) -> String {
    as_account(browser, &format!("{web}/datasets/{root}"), researcher).await;
    browser
        .execute("document.getElementById('epochs').value = '2'; document.getElementById('epochs').dispatchEvent(new Event('input')); document.getElementById('request').click();", json!([]))
        .await
        .unwrap();
    browser
        .wait_for(
            "document.querySelector('form .msg.ok, form .msg.error')",
            LONG,
        )
        .await
        .unwrap();
    browser
        .execute(
            "return document.querySelector('form .msg.ok, form .msg.error').textContent;",
            json!([]),
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_request_settle_download_through_the_web_app() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(
        dir.path(),
        [free_port(), free_port(), free_port(), free_port()],
    );
    let web = dev.summary["web_url"].as_str().unwrap().to_owned();
    let owner = dev.summary["accounts"][3]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let researcher = dev.summary["accounts"][4]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = Browser::launch(1280, 900).await.unwrap();
    browser
        .script_timeout(LONG.as_millis() as u64)
        .await
        .unwrap();

    browser.goto(&web).await.unwrap();
    browser
        .wait_for("document.body.dataset.ready", LONG)
        .await
        .unwrap();
    let banner = browser
        .execute("return document.getElementById('dev-banner').hidden ? '' : document.getElementById('dev-banner').textContent;", json!([]))
        .await
        .unwrap();
    assert!(
        banner
            .as_str()
            .unwrap()
            .contains("INSECURE DEVELOPMENT WALLET")
    );

    // Owner publishes (one run per researcher, so a second request violates the policy).
    let root = publish(&browser, &web, &owner, "Browser dialogues", "0.01", 1).await;
    browser.screenshot("publish-done").await.unwrap();

    // Marketplace lists it (live, from the indexer).
    as_account(&browser, &format!("{web}/"), &researcher).await;
    browser
        .wait_for(&format!("document.querySelector('[data-root=\"{root}\"]') && document.body.innerText.includes('Browser dialogues')"), LONG)
        .await
        .unwrap();
    browser.screenshot("marketplace").await.unwrap();
    browser.resize(390, 844).await.unwrap();
    browser.screenshot("marketplace-phone").await.unwrap();
    browser.resize(1280, 900).await.unwrap();

    // Researcher requests through the wallet.
    let granted = request(&browser, &web, &researcher, &root).await;
    assert!(
        granted.contains("Access granted: job"),
        "request failed: {granted}"
    );
    browser.screenshot("dataset-requested").await.unwrap();
    let job_id: String = granted
        .split("job ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();

    // The job page follows the orchestrator and compute node live until settlement.
    browser.goto(&format!("{web}/jobs/{job_id}")).await.unwrap();
    browser
        .wait_for("document.querySelector('h1') && document.querySelector('h1').textContent.includes('Completed')", Duration::from_secs(240))
        .await
        .unwrap();
    browser.screenshot("job-completed").await.unwrap();

    // Download and open the result in the page with the wallet-derived key.
    browser
        .execute("document.getElementById('download').click();", json!([]))
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('result-file') || document.querySelector('#download-result .error')", LONG)
        .await
        .unwrap();
    let preview = browser
        .execute("const p = document.getElementById('result-preview'); return p ? p.textContent : document.getElementById('download-result').innerText;", json!([]))
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(preview.as_str().unwrap())
        .unwrap_or_else(|_| panic!("the opened result is the JSON training report: {preview}"));
    assert!(report.is_object());
    browser.screenshot("job-result-opened").await.unwrap();

    // A second request violates the policy (one run per researcher): a sentence, no transaction.
    let refused = request(&browser, &web, &researcher, &root).await;
    assert!(
        refused.contains("used all 1 runs"),
        "expected the run limit message: {refused}"
    );
    browser.screenshot("error-run-limit").await.unwrap();

    // Insufficient funds: a dataset priced above every dev account's balance.
    let pricey = publish(&browser, &web, &owner, "Expensive data", "100000", 5).await;
    let poor = request(&browser, &web, &researcher, &pricey).await;
    assert!(
        poor.contains("Insufficient funds"),
        "expected the funds message: {poor}"
    );
    browser
        .screenshot("error-insufficient-funds")
        .await
        .unwrap();

    // Audit pages and my jobs.
    for (name, path) in [
        ("audit-dataset", format!("/audit/datasets/{root}")),
        ("audit-job", format!("/audit/jobs/{job_id}")),
        ("my-jobs", "/jobs".to_owned()),
    ] {
        browser.goto(&format!("{web}{path}")).await.unwrap();
        browser
            .wait_for("document.body.dataset.ready", LONG)
            .await
            .unwrap();
        browser
            .wait_for("!document.querySelector('main .msg.error')", LONG)
            .await
            .unwrap();
        browser.screenshot(name).await.unwrap();
    }

    // Owner dashboard: earnings, withdraw.
    as_account(&browser, &format!("{web}/dashboard"), &owner).await;
    browser
        .wait_for(
            "document.getElementById('withdraw') && !document.getElementById('withdraw').disabled",
            LONG,
        )
        .await
        .unwrap();
    browser.screenshot("dashboard").await.unwrap();
    browser
        .execute("document.getElementById('withdraw').click();", json!([]))
        .await
        .unwrap();
    browser
        .wait_for(
            "document.body.innerText.includes('Withdrawing: done')",
            LONG,
        )
        .await
        .unwrap();
    browser.screenshot("dashboard-withdrawn").await.unwrap();
    drop(browser);
    dev.stop();
}
