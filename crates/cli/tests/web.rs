//! The whole marketplace flow through the web app in headless Chromium against a real
//! `licen dev` stack (anvil, storage node, compute node, orchestrator, indexer, web app), with
//! the INSECURE development wallet: publish (sealed in the page) → request → the orchestrator
//! trains and settles → the researcher downloads and opens the result in the page → the owner
//! withdraws and updates the policy from the dashboard. Plus the plain messages shown instead of a
//! failed transaction: insufficient funds, a wallet that used all its runs (before anything is
//! signed) and, with a scripted EIP-1193 wallet in front of the same anvil, a wrong network (with
//! its "Switch network" button: switched, added then switched, or declined), a rejected
//! signature, a rejected transaction and a policy violation only the contract's simulation
//! catches. Screenshots of every page go to target/screenshots/. And on storage paid the way 0G
//! is (`licen dev --flow`): the page pays 0G's Flow contract from the wallet for the files it
//! publishes, in one transaction, before the storage node takes them.

use std::time::Duration;

use licen_web::testing::{Browser, unavailable};
use serde_json::json;

mod common;
use common::{
    Dev, ONE_RESEARCH_RUN, dev_address, free_port, publish as publish_with_cli,
    request as request_with_cli, rpc_async, wait_for_state,
};

const LONG: Duration = Duration::from_secs(120);

/// A headless Chromium with a laptop's window, whose scripts may run for [`LONG`].
async fn laptop_browser() -> Browser {
    let browser = Browser::launch(1280, 900).await.unwrap();
    browser
        .script_timeout(LONG.as_millis() as u64)
        .await
        .unwrap();
    browser
}

/// Opens `url` and waits until its page has rendered.
async fn open(browser: &Browser, url: &str) {
    browser.goto(url).await.unwrap();
    browser
        .wait_for("document.body.dataset.ready", LONG)
        .await
        .unwrap();
}

/// Asserts that nothing on the page is wider than the window, so it needs no sideways
/// scrolling (long roots and hashes wrap; only tables may scroll, inside their own box). The
/// message names the innermost elements that stick out, or whose content spills out of them.
async fn fits_the_window(browser: &Browser, what: &str) {
    let widths = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth, \
             [...document.querySelectorAll('body *')].filter((e) => !e.closest('.table-wrap') && (e.getBoundingClientRect().right > window.innerWidth + 1 || (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible'))).reverse().slice(0, 3).map((e) => e.tagName + '.' + e.className + ': ' + e.textContent.slice(0, 40))];",
            json!([]),
        )
        .await
        .unwrap();
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "{what} is wider than the window (page width, window width, widest elements): {widths}"
    );
}

/// The text of the element with id `id` (its `textContent`, shown or hidden): empty when the
/// page has no such element.
async fn text_of(browser: &Browser, id: &str) -> String {
    let text = browser
        .execute(
            "const e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
            json!([id]),
        )
        .await
        .unwrap();
    text.as_str().unwrap_or_default().to_owned()
}

/// Asserts how the page shows addresses and hashes: every shortened one in the one style
/// (`0x15d3…6a65`: 4 hex digits, an ellipsis, 4), and no long one wrapped with a line of fewer
/// than 4 characters (a lone character on the next line reads as a typo).
async fn hashes_read_well(browser: &Browser, what: &str) {
    let found = browser
        .execute(
            "const texts = [document.body.innerText, ...[...document.querySelectorAll('option')].map((o) => o.textContent)];
             const odd = texts.join('\\n').match(/0x[0-9a-fA-F]*…[0-9a-fA-F]*/g)?.filter((t) => !/^0x[0-9a-fA-F]{4}…[0-9a-fA-F]{4}$/.test(t)) ?? [];
             const ragged = [...document.querySelectorAll('.mono, .hash')].filter((e) => e.textContent.length >= 40 && !e.closest('pre')).flatMap((e) => {
               const lines = new Map();
               const walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
               for (let n; (n = walk.nextNode());) for (let i = 0; i < n.length; i++) {
                 const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
                 const box = r.getClientRects()[0];
                 if (box && n.data[i].trim()) { const top = Math.round(box.top); lines.set(top, (lines.get(top) ?? '') + n.data[i]); }
               }
               const l = [...lines.values()];
               return l.length > 1 && l.some((x) => x.length < 4) ? [l.join(' / ')] : [];
             });
             return [odd, ragged];",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(
        found,
        json!([[], []]),
        "{what}: shortened in another style, and wrapped with a lone character"
    );
}

async fn as_account(browser: &Browser, url: &str, address: &str) {
    browser.goto(url).await.unwrap();
    set_local(browser, "licen.devAccount", address).await;
    open(browser, url).await;
}

/// Sets `key` in the current page's `localStorage` (the pages' test and wallet settings).
async fn set_local(browser: &Browser, key: &str, value: &str) {
    browser
        .execute(
            "localStorage.setItem(arguments[0], arguments[1]);",
            json!([key, value]),
        )
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
    publish_here(browser, name, price, runs).await
}

/// Chooses a file named `name` holding `text` in the publish page's file input, as a person
/// picking it does (the page starts checking and uploading it at once).
async fn choose_file(browser: &Browser, name: &str, text: &str) {
    browser
        .run(
            "const dt = new DataTransfer(); dt.items.add(new File([args.text], args.name));
             const file = document.getElementById('file');
             file.files = dt.files;
             file.dispatchEvent(new Event('change'));",
            json!({"name": name, "text": text}),
        )
        .await
        .unwrap();
}

/// Picks a JSONL file of `rows` prompt/completion rows on the publish page; it is checked,
/// sealed and uploaded at once, and this waits until it is.
async fn pick_file(browser: &Browser, rows: u32) {
    let lines: String = (0..rows)
        .map(|i| {
            format!(
                "{}\n",
                json!({"prompt": format!("q{i}"), "completion": format!("a{i}")})
            )
        })
        .collect();
    choose_file(browser, "data.jsonl", &lines).await;
    browser
        .wait_for(
            "document.querySelector('form').innerText.includes('you press “Seal, upload and publish”')",
            LONG,
        )
        .await
        .unwrap();
}

/// On the publish page: picks a 300-row file (uploaded while the form is filled in), fills the
/// form and publishes; returns the dataset root.
async fn publish_here(browser: &Browser, name: &str, price: &str, runs: u32) -> String {
    pick_file(browser, 300).await;
    browser
        .run(
            "const set = (id, v) => { document.getElementById(id).value = v; };
             set('name', args.name); set('description', 'Browser-published test data'); set('license', 'CC-BY-4.0');
             set('price', args.price); set('max-epochs', '3'); set('max-runs', String(args.runs));",
            json!({"name": name, "price": price, "runs": runs}),
        )
        .await
        .unwrap();
    let shown = publish_attempt(browser).await;
    published_root(browser, &shown).await
}

/// After a publication the page shows its result in place of the form (hidden), and in view.
async fn result_in_place_of_the_form(browser: &Browser) {
    let shown = browser
        .execute(
            "const done = document.getElementById('publish-done'); const r = done?.getBoundingClientRect();
             return [!!done && done.contains(document.getElementById('published-root')), !!document.getElementById('publish')?.offsetParent,
                     r ? r.top >= 0 && r.top < window.innerHeight : false];",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(
        shown,
        json!([true, false, true]),
        "the result card, the form hidden, the card in view"
    );
}

/// The root the publish page shows as published (`shown`, the result box's text, says why when
/// there is none).
async fn published_root(browser: &Browser, shown: &str) -> String {
    let root = text_of(browser, "published-root").await;
    assert!(
        root.starts_with("0x") && root.len() == 66,
        "publish failed: {shown}"
    );
    root
}

/// Requests 2 epochs on the dataset page and returns the message shown.
async fn request(browser: &Browser, web: &str, researcher: &str, root: &str) -> String {
    as_account(browser, &format!("{web}/datasets/{root}"), researcher).await;
    submit_request(browser).await
}

/// Submits the request form of the open dataset page (2 epochs); returns the message shown.
async fn submit_request(browser: &Browser) -> String {
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
            "const m = document.querySelector('form .msg.ok, form .msg.error'); m.scrollIntoView({block: 'center'}); return m.textContent;",
            json!([]),
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Opens a dataset page that must say `why` it takes no requests, and offer no request form.
async fn takes_no_requests(browser: &Browser, url: &str, why: &str) {
    open(browser, url).await;
    let page = browser
        .execute(
            "return [document.querySelector('main').innerText, !!document.getElementById('request')];",
            json!([]),
        )
        .await
        .unwrap();
    assert!(page[0].as_str().unwrap().contains(why), "{page}");
    assert_eq!(page[1], false, "{url} offers no request form");
}

/// On a stored file's page: presses the check and returns the page's text once it answered.
async fn verify_stored(browser: &Browser) -> String {
    browser
        .wait_for("document.getElementById('verify')", LONG)
        .await
        .unwrap();
    browser
        .execute("document.getElementById('verify').click();", json!([]))
        .await
        .unwrap();
    browser
        .wait_for(
            "document.querySelector('#verify-result .msg.ok, #verify-result .msg.error')",
            LONG,
        )
        .await
        .unwrap();
    let text = browser
        .execute(
            "return document.querySelector('main').innerText;",
            json!([]),
        )
        .await
        .unwrap();
    text.as_str().unwrap().to_owned()
}

/// Opens the marketplace at `url` (filters in its query) and returns the roots of the cards
/// shown once the list has loaded.
async fn marketplace_shows(browser: &Browser, url: &str) -> Vec<String> {
    browser.goto(url).await.unwrap();
    browser
        .wait_for("window.licenMarks && window.licenMarks.allListed", LONG)
        .await
        .unwrap();
    visible_cards(browser).await
}

/// The roots of the marketplace cards not hidden by a filter, sorted.
async fn visible_cards(browser: &Browser) -> Vec<String> {
    let roots = browser
        .execute(
            "return [...document.querySelectorAll('#datasets .card:not([hidden])')].map((c) => c.dataset.root);",
            json!([]),
        )
        .await
        .unwrap();
    let mut roots: Vec<String> = serde_json::from_value(roots).unwrap();
    roots.sort();
    roots
}

/// An EIP-1193 wallet standing in for a person at a browser wallet: it forwards every call to
/// the real anvil node, except what its settings (`localStorage['licen.testWallet']`) make the
/// person do: be on another network (`chainId`, until the page's `wallet_switchEthereumChain`,
/// which it declines with `rejectSwitch` and answers with 4902, unknown chain, under
/// `unknownChain` until the page's `wallet_addEthereumChain`), reject the signature
/// (`rejectSign`) or the transaction (`rejectSend`; `rejectSendTo`: only one sent to that
/// address) with EIP-1193 error 4001, or answer a
/// contract call starting with the selector `staleCall` with zero (a stale node). Records the
/// methods the page called, and the parameters of each method's last call.
const SCRIPTED_WALLET: &str = r#"(() => {
  const settings = () => JSON.parse(localStorage.getItem('licen.testWallet') || 'null');
  const save = (s) => localStorage.setItem('licen.testWallet', JSON.stringify(s));
  if (!settings()) return;
  const rpc = async (method, params) => {
    const r = await fetch(settings().rpc, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    const b = await r.json();
    if (b.error) { const e = new Error(b.error.message); e.code = b.error.code; e.data = b.error.data; throw e; }
    return b.result;
  };
  const rejected = () => Object.assign(new Error('User rejected the request.'), { code: 4001 });
  const listeners = {};
  window.licenWalletCalls = [];
  window.licenWalletParams = {};
  window.ethereum = {
    async request({ method, params }) {
      const s = settings();
      window.licenWalletCalls.push(method);
      window.licenWalletParams[method] = params;
      if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [s.account];
      if (method === 'eth_chainId' && s.chainId) return s.chainId;
      if (method === 'wallet_switchEthereumChain') {
        if (s.rejectSwitch) throw rejected();
        if (s.unknownChain && !s.added) throw Object.assign(new Error('Unrecognized chain ID'), { code: 4902 });
        const moved = !!s.chainId;
        delete s.chainId;
        save(s);
        if (moved) (listeners.chainChanged || []).forEach((f) => f(params[0].chainId));
        return null;
      }
      if (method === 'wallet_addEthereumChain') { s.added = true; save(s); return null; }
      if (method === 'personal_sign' && s.rejectSign) throw rejected();
      if (method === 'eth_sendTransaction' && s.rejectSend) throw rejected();
      if (method === 'eth_sendTransaction' && s.rejectSendTo && params[0].to.toLowerCase() === s.rejectSendTo.toLowerCase()) throw rejected();
      if (method === 'eth_call' && s.staleCall && params[0].data.startsWith(s.staleCall)) return '0x' + '0'.repeat(64);
      return rpc(method, params);
    },
    on(event, f) { (listeners[event] ||= []).push(f); },
  };
})();"#;

/// Opens `path` with the scripted wallet set to `settings`; submits the request form there and
/// returns the message shown and the wallet methods the page called.
async fn request_with_wallet(
    browser: &Browser,
    web: &str,
    path: &str,
    settings: serde_json::Value,
) -> (String, Vec<String>) {
    browser.goto(&format!("{web}/")).await.unwrap();
    set_local(browser, "licen.testWallet", &settings.to_string()).await;
    open(browser, &format!("{web}{path}")).await;
    let shown = submit_request(browser).await;
    let calls = browser
        .execute("return window.licenWalletCalls;", json!([]))
        .await
        .unwrap();
    let calls = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (shown, calls)
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
    let browser = laptop_browser().await;

    open(&browser, &web).await;
    let banner_shown = browser
        .execute(
            "return !document.getElementById('dev-banner').hidden;",
            json!([]),
        )
        .await
        .unwrap();
    let banner = text_of(&browser, "dev-banner").await;
    assert!(
        banner_shown == true && banner.contains("INSECURE DEVELOPMENT WALLET"),
        "{banner}"
    );

    // A file that is not JSONL is refused as soon as it is picked, naming the line.
    as_account(&browser, &format!("{web}/publish"), &owner).await;
    choose_file(&browser, "broken.jsonl", "{\"text\": \"ok\"}\nnot json\n").await;
    browser
        .wait_for(
            "document.querySelector('#file-status .error')?.textContent.includes('Line 2 is not valid JSON') && document.querySelector('#file-status .error').textContent.endsWith('Fix line 2 and choose the file again.')",
            LONG,
        )
        .await
        .unwrap();
    browser.screenshot("error-not-jsonl").await.unwrap();

    // Owner publishes (one run per researcher, so a second request violates the policy), after
    // first picking another file that finished uploading: the dataset trained below is the
    // second file, under its own key (the first one's was wiped, never published).
    pick_file(&browser, 10).await;
    let root = publish_here(&browser, "Browser dialogues", "0.01", 1).await;
    result_in_place_of_the_form(&browser).await;
    browser.screenshot("publish-done").await.unwrap();

    // Marketplace lists it (live, from the indexer).
    as_account(&browser, &format!("{web}/"), &researcher).await;
    browser
        .wait_for(&format!("document.querySelector('[data-root=\"{root}\"]') && document.body.innerText.includes('Browser dialogues') && document.body.innerText.includes('300 rows')"), LONG)
        .await
        .unwrap();
    browser.screenshot("marketplace").await.unwrap();
    // A card whose manifest storage has not returned yet says its details are loading; one
    // storage failed to return says they are unavailable (storage stalled or refused here by
    // the page's own fetch, under `localStorage['licen.testStorage']`).
    let stalled = laptop_browser().await;
    stalled
        .add_init_script(
            "(() => { const mode = localStorage.getItem('licen.testStorage'); if (!mode) return; const real = window.fetch;
              window.fetch = (url, ...rest) => String(url).startsWith('/api/storage') ? (mode === 'fail' ? Promise.reject(new TypeError('storage refused (test)')) : new Promise(() => {})) : real(url, ...rest); })();",
        )
        .await
        .unwrap();
    for (mode, shown, screenshot) in [
        ("stall", "Loading details…", "marketplace-details-loading"),
        (
            "fail",
            "Details unavailable",
            "marketplace-details-unavailable",
        ),
    ] {
        stalled.goto(&format!("{web}/")).await.unwrap();
        set_local(&stalled, "licen.testStorage", mode).await;
        open(&stalled, &format!("{web}/")).await;
        stalled
            .wait_for(
                &format!("document.querySelector('[data-root=\"{root}\"] .details')?.textContent.startsWith('{shown}')"),
                LONG,
            )
            .await
            .unwrap();
        stalled.screenshot(screenshot).await.unwrap();
    }
    drop(stalled);
    browser.resize(390, 844).await.unwrap();
    browser.screenshot("marketplace-phone").await.unwrap();
    browser.resize(1280, 900).await.unwrap();

    // Researcher requests through the wallet.
    let granted = request(&browser, &web, &researcher, &root).await;
    assert!(
        granted.contains("Access granted: job"),
        "request failed: {granted}"
    );
    // Above the button, what the (development) wallet does, with the calculator's amount.
    let asks = text_of(&browser, "wallet-asks").await;
    assert_eq!(
        asks,
        "The INSECURE development wallet does both steps without asking: it signs a free message that creates your private result key, then pays 0.02 ETH (plus gas)."
    );
    // The manifest's token count says it is an estimate, and how it was made.
    let main_text = browser
        .execute(
            "return document.querySelector('main').innerText;",
            json!([]),
        )
        .await
        .unwrap();
    let main_text = main_text.as_str().unwrap().replace('\t', "\n");
    let estimate = main_text
        .split_once("Tokens\n≈")
        .and_then(|(_, rest)| rest.split_once(" tokens (estimate: about 4 bytes per token)"))
        .map(|(number, _)| number)
        .unwrap_or_else(|| panic!("the dataset page gives its token estimate: {main_text}"));
    assert!(
        estimate.contains(',') && estimate.chars().all(|c| c.is_ascii_digit() || c == ','),
        "the estimate's thousands are grouped: {estimate}"
    );
    // The page keeps the request's message and updates its stats from the live stream.
    browser
        .wait_for(
            "document.getElementById('dataset-stats').innerText.replace(/\\t/g, '\\n').includes('Requests\\n1') && document.querySelector('form .msg.ok')",
            LONG,
        )
        .await
        .unwrap();
    browser.screenshot("dataset-requested").await.unwrap();
    // Enter in a field submits the form even with its button hidden: it must not pay again.
    let requests_before = browser
        .execute(
            "return document.getElementById('dataset-stats').innerText;",
            json!([]),
        )
        .await
        .unwrap();
    browser
        .execute(
            "document.querySelector('form').requestSubmit(); return new Promise((r) => setTimeout(() => r(true), 1500));",
            json!([]),
        )
        .await
        .unwrap();
    let requests_after = browser
        .execute(
            "return [document.getElementById('dataset-stats').innerText, [...document.querySelectorAll('form .msg')].map((m) => m.textContent)];",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(
        requests_after[0], requests_before,
        "a second request was sent"
    );
    assert_eq!(
        requests_after[1],
        json!([granted]),
        "the form still shows only its granted message (no second attempt)"
    );
    let job_id: String = granted
        .split("job #")
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
    // 2 epochs × 0.01 ETH, less the 2.5 % development protocol fee, to the owner.
    let settled = browser
        .execute(
            "return document.querySelector('main').innerText;",
            json!([]),
        )
        .await
        .unwrap();
    let settled = settled.as_str().unwrap();
    assert!(
        settled.contains("Paid to the owner\t0.0195 ETH")
            || settled.contains("Paid to the owner\n0.0195 ETH"),
        "the job page shows the owner's share after the fee: {settled}"
    );
    // The timeline names each transaction, shortened, linked to it.
    let timeline = browser
        .execute(
            "return [...document.querySelectorAll('#timeline a')].map((a) => [a.textContent, a.getAttribute('href'), a.title]);",
            json!([]),
        )
        .await
        .unwrap();
    let timeline = timeline.as_array().unwrap();
    assert_eq!(timeline.len(), 3, "{timeline:?}");
    for entry in timeline {
        let (text, href, hash) = (
            entry[0].as_str().unwrap(),
            entry[1].as_str().unwrap(),
            entry[2].as_str().unwrap(),
        );
        assert_eq!(
            text,
            format!("transaction {}…{}", &hash[..6], &hash[62..]),
            "{entry}"
        );
        assert_eq!(href, format!("/tx/{hash}"), "{entry}");
    }
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
    let preview = text_of(&browser, "result-preview").await;
    let report: serde_json::Value = match serde_json::from_str(&preview) {
        Ok(report) => report,
        Err(_) => panic!(
            "the opened result is the JSON training report: {}",
            text_of(&browser, "download-result").await
        ),
    };
    assert_eq!(report["simulated"], true);
    let note = browser
        .execute(
            "return document.querySelector('#download-result .msg.info')?.textContent ?? '';",
            json!([]),
        )
        .await
        .unwrap();
    assert!(
        note.as_str().unwrap().contains("SIMULATED trainer"),
        "the page says the result holds no weights: {note}"
    );
    // Every page of the simulated-trainer stack says so before anyone pays.
    let notice = browser
        .execute(
            "return document.querySelector('.notice')?.textContent ?? '';",
            json!([]),
        )
        .await
        .unwrap();
    assert!(
        notice
            .as_str()
            .unwrap()
            .contains("Training here is SIMULATED"),
        "the simulated trainer is announced: {notice}"
    );
    // Visitors are told what it means for them, not the operator's command to change it.
    assert!(
        !notice.as_str().unwrap().contains("licen dev"),
        "the notice shows visitors an operator command: {notice}"
    );
    // A summary of the report above it: what was read, the epochs, and no loss (no model).
    let summary = browser
        .execute(
            "return document.querySelector('#download-result #training-summary')?.innerText ?? '';",
            json!([]),
        )
        .await
        .unwrap();
    let summary = summary.as_str().unwrap().replace('\t', "\n");
    for line in [
        "Records seen\n300 per epoch",
        "Epochs\n2 of 2 requested",
        "Words read per epoch\n",
        "(words in the text fields, split on whitespace; not model tokens)",
        "Loss\nnone: no model was trained",
    ] {
        assert!(
            summary.contains(line),
            "the simulated report's summary names {line:?}: {summary}"
        );
    }
    browser.screenshot("job-result-opened").await.unwrap();
    // The opened report's long lines wrap inside the page.
    fits_the_window(&browser, "the job page with its result opened").await;

    // The researcher has used the one run the policy allows: the dataset page says so in place
    // of the request form, before anything is signed or simulated.
    as_account(&browser, &format!("{web}/"), &researcher).await;
    takes_no_requests(
        &browser,
        &format!("{web}/datasets/{root}"),
        "You have used 1 of 1 runs this dataset allows per researcher, so it takes no more requests from this wallet",
    )
    .await;
    browser.screenshot("dataset-run-limit").await.unwrap();
    browser.resize(390, 844).await.unwrap();
    browser.screenshot("dataset-run-limit-phone").await.unwrap();
    fits_the_window(&browser, "the run limit at a phone's width").await;
    browser.resize(1280, 900).await.unwrap();

    // Insufficient funds: a dataset priced above every dev account's balance. A marketplace
    // left open in another browser shows it when it is published, without being reloaded, also
    // after the person went to another page and came back.
    let watcher = laptop_browser().await;
    watcher.goto(&format!("{web}/")).await.unwrap();
    watcher
        .wait_for("window.licenMarks && window.licenMarks.allListed", LONG)
        .await
        .unwrap();
    watcher
        .execute("window.licenNotReloaded = true;", json!([]))
        .await
        .unwrap();
    // Left for another page and come back to with Back: the browser restores it from its
    // back/forward cache (the same page, not reloaded), and its live updates resume.
    watcher.goto("about:blank").await.unwrap();
    watcher.back().await.unwrap();
    watcher
        .wait_for("window.licenNotReloaded === true", LONG)
        .await
        .unwrap();
    let pricey = publish(&browser, &web, &owner, "Expensive data", "100000", 5).await;
    watcher
        .wait_for(
            &format!(
                "window.licenNotReloaded && document.querySelector('[data-root=\"{pricey}\"]')"
            ),
            LONG,
        )
        .await
        .unwrap();
    watcher.screenshot("marketplace-live").await.unwrap();
    drop(watcher);
    let poor = request(&browser, &web, &researcher, &pricey).await;
    assert!(
        poor.starts_with("Insufficient funds: this needs 200,000 ETH plus gas")
            && poor.contains(", and the account 0x")
            && poor.contains(" holds 9,99")
            && poor.contains("Choose fewer epochs, or add funds"),
        "expected the funds message, with the amounts: {poor}"
    );
    browser
        .screenshot("error-insufficient-funds")
        .await
        .unwrap();

    // Marketplace filters, as a shareable URL and as typing: price and purpose through the
    // indexer, names through its text search, owners and roots matched in the page.
    let cheap_and_pricey = [root.clone(), pricey.clone()];
    for (query, expected, screenshot) in [
        (
            "max_price_eth=1",
            vec![root.clone()],
            "marketplace-filter-price",
        ),
        (
            "q=expensive",
            vec![pricey.clone()],
            "marketplace-filter-text",
        ),
        (
            "purpose=research&q=dialogues",
            vec![root.clone()],
            "marketplace-filter-purpose-text",
        ),
        ("purpose=education", vec![], "marketplace-filter-none"),
        (
            &*format!("q={owner}"),
            cheap_and_pricey.to_vec(),
            "marketplace-filter-owner",
        ),
    ] {
        let shown = marketplace_shows(&browser, &format!("{web}/?{query}")).await;
        let mut expected = expected;
        expected.sort();
        assert_eq!(shown, expected, "{query}: the marketplace showed {shown:?}");
        browser.screenshot(screenshot).await.unwrap();
    }
    // Typing narrows the loaded cards at once, with no new query.
    browser
        .execute(
            "const t = document.getElementById('f-text'); t.value = arguments[0]; t.dispatchEvent(new Event('input'));",
            json!([&pricey[..10]]),
        )
        .await
        .unwrap();
    assert_eq!(visible_cards(&browser).await, vec![pricey.clone()]);

    // Audit pages and my jobs.
    for (name, path) in [
        ("audit-dataset", format!("/audit/datasets/{root}")),
        ("audit-job", format!("/audit/jobs/{job_id}")),
        ("my-jobs", "/jobs".to_owned()),
    ] {
        open(&browser, &format!("{web}{path}")).await;
        browser
            .wait_for("!document.querySelector('main .msg.error')", LONG)
            .await
            .unwrap();
        browser.screenshot(name).await.unwrap();
    }

    // The job's audit page: every transaction it lists is a successful one on the chain, from
    // the grant to the settlement, and the evidence root is named.
    browser
        .goto(&format!("{web}/audit/jobs/{job_id}"))
        .await
        .unwrap();
    browser
        .wait_for("document.querySelector('main table tr td')", LONG)
        .await
        .unwrap();
    let audit = browser
        .execute(
            "const rows = [...document.querySelectorAll('main table tr')].slice(1).map((tr) => [tr.cells[0].textContent, tr.cells[3].textContent]);
             const dt = [...document.querySelectorAll('dt')].find((d) => d.textContent.startsWith('Attestation reference'));
             return {rows, evidence: dt.nextElementSibling.textContent};",
            json!([]),
        )
        .await
        .unwrap();
    let rows = audit["rows"].as_array().unwrap();
    let states: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert!(
        states.len() >= 3 && states.last() == Some(&"Completed"),
        "the job's transactions, from grant to settlement: {audit}"
    );
    for row in rows {
        let tx = row[1].as_str().unwrap();
        let receipt = rpc_async(&dev, "eth_getTransactionReceipt", json!([tx])).await;
        assert_eq!(
            receipt["status"], "0x1",
            "the audit page's {} transaction {tx} is a successful one on the chain: {receipt}",
            row[0]
        );
    }
    let evidence = audit["evidence"].as_str().unwrap();
    assert!(
        evidence.len() == 66
            && evidence.starts_with("0x")
            && evidence != format!("0x{}", "0".repeat(64)),
        "the evidence root is named: {audit}"
    );
    // Each of those transactions links to the app's transaction page, which reads it from the
    // chain (not the indexer): it succeeded, called the function and emitted the event of its
    // step, naming this job.
    for row in rows {
        let (state, tx) = (row[0].as_str().unwrap(), row[1].as_str().unwrap());
        let (function, event) = match state {
            "Granted" => ("requestAccess", "AccessGranted"),
            "Running" => ("startJob", "JobStarted"),
            "Completed" => ("confirmTrainingComplete", "JobCompleted"),
            other => panic!("unexpected step {other} in the job's audit: {audit}"),
        };
        open(&browser, &format!("{web}/audit/jobs/{job_id}")).await;
        browser
            .execute(
                "document.querySelector(`a.tx[href='/tx/${arguments[0]}']`).click();",
                json!([tx]),
            )
            .await
            .unwrap();
        browser
            .wait_for("document.getElementById('tx-status')", LONG)
            .await
            .unwrap();
        let shown = browser
            .execute(
                "return [location.pathname, document.getElementById('tx-status').textContent, document.querySelector('main').innerText,
                         [...document.querySelectorAll('.event')].map((e) => e.dataset.event)];",
                json!([]),
            )
            .await
            .unwrap();
        assert_eq!(shown[0], format!("/tx/{tx}"), "{state}: {shown}");
        assert_eq!(shown[1], "Succeeded", "{state}: {shown}");
        let text = shown[2].as_str().unwrap();
        assert!(
            text.contains(function) && text.contains(&format!("job #{job_id}")),
            "{state}: the page names {function} and job #{job_id}: {text}"
        );
        assert_eq!(shown[3], json!([event]), "{state}: {shown}");
        if state == "Completed" {
            // The settlement as the contract emitted it: 2 epochs, 0.02 ETH royalty, the
            // evidence root the audit page names; each field under its plain label with its
            // name in the contract's ABI under it.
            for part in [
                "Training settled JobCompleted",
                "Epochs trained\nactualEpochs\n2",
                "Royalty (price × epochs trained)\nroyalty\n0.02 ETH",
                "Protocol fee (out of the royalty)\nfee\n0.0005 ETH",
                "Refunded to the researcher\nrefund\n0 ETH",
                "Attestation reference (evidence root)\nattestationRef\n",
                evidence,
            ] {
                assert!(
                    text.replace('\t', "\n").contains(part),
                    "the settlement shows {part:?}: {text}"
                );
            }
            browser.screenshot("transaction-settlement").await.unwrap();
        }
    }
    let settlement = rows.last().unwrap()[1].as_str().unwrap().to_owned();

    // The dataset's stored files, linked from its audit page: each is checked in the page
    // against its root (downloaded and hashed there); the manifest is shown, it is public.
    for (kind, title) in [
        ("dataset", "Sealed dataset"),
        ("envelope", "Key envelope"),
        ("manifest", "Dataset manifest"),
    ] {
        open(&browser, &format!("{web}/audit/datasets/{root}")).await;
        browser
            .execute(
                "document.querySelector(`a.root[href$='kind=${arguments[0]}']`).click();",
                json!([kind]),
            )
            .await
            .unwrap();
        let shown = verify_stored(&browser).await;
        assert!(
            shown.starts_with(title) && shown.contains("Verified in your browser"),
            "{kind}: {shown}"
        );
        if kind == "manifest" {
            assert!(shown.contains("\"name\": \"Browser dialogues\""), "{shown}");
            browser.screenshot("stored-manifest").await.unwrap();
        }
    }
    // A stored file changed on the storage node's disk no longer hashes to its root, and the
    // page says so (the never-trained expensive dataset, so nothing later depends on it).
    let stored = dir
        .path()
        .join("state/dev/storage/files")
        .join(pricey.trim_start_matches("0x"))
        .join("data");
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&stored, bytes).unwrap();
    open(&browser, &format!("{web}/roots/{pricey}?kind=dataset")).await;
    let tampered = verify_stored(&browser).await;
    assert!(
        tampered.contains("it does not hold what this root names"),
        "a changed byte is caught: {tampered}"
    );
    browser.screenshot("stored-tampered").await.unwrap();
    // A hash the chain does not know is said so, not shown as an empty transaction.
    open(&browser, &format!("{web}/tx/0x{}", "ab".repeat(32))).await;
    let unknown = browser
        .execute(
            "return document.querySelector('main').innerText;",
            json!([]),
        )
        .await
        .unwrap();
    assert!(
        unknown
            .as_str()
            .unwrap()
            .contains("The chain knows no transaction"),
        "{unknown}"
    );

    // Owner dashboard: earnings, withdraw.
    as_account(&browser, &format!("{web}/dashboard"), &owner).await;
    browser
        .wait_for(
            "document.getElementById('withdraw') && !document.getElementById('withdraw').disabled",
            LONG,
        )
        .await
        .unwrap();
    // The run on the owner's dataset, with the owner's share after the fee.
    let run = browser
        .execute(
            "return document.querySelector('#owner-runs tr[data-job]')?.innerText ?? '';",
            json!([]),
        )
        .await
        .unwrap();
    let run = run.as_str().unwrap();
    for part in [
        format!("#{job_id}"),
        "Completed".into(),
        "2 of 2".into(),
        "0.0195 ETH".into(),
    ] {
        assert!(
            run.contains(&part),
            "the dashboard's run row names {part:?}: {run:?}"
        );
    }
    browser.screenshot("dashboard").await.unwrap();
    browser
        .execute("document.getElementById('withdraw').click();", json!([]))
        .await
        .unwrap();
    // Done once the figures are redrawn from the indexer at the withdrawal's block.
    browser
        .wait_for(
            "document.getElementById('dashboard-result')?.innerText.startsWith('Withdrew 0.0195 ETH to 0x')",
            LONG,
        )
        .await
        .unwrap();
    let figures = browser
        .execute(
            "return document.querySelector('main .card').innerText;",
            json!([]),
        )
        .await
        .unwrap();
    let figures = figures.as_str().unwrap().replace('\t', "\n");
    assert!(
        figures.contains("Withdrawn\n0.0195 ETH") && figures.contains("Withdrawable now\n0 ETH"),
        "the dashboard shows the withdrawal: {figures}"
    );
    browser.screenshot("dashboard-withdrawn").await.unwrap();

    // The owner raises the price from the dashboard's policy editor; the indexer and the
    // dashboard follow the PolicyUpdated event.
    let row = format!("tr[data-root=\"{root}\"]");
    browser
        .wait_for(
            &format!("document.querySelector('{row} .edit-policy')"),
            LONG,
        )
        .await
        .unwrap();
    browser
        .execute(
            &format!("document.querySelector('{row} .edit-policy').click(); document.getElementById('edit-price').value = '0.02';"),
            json!([]),
        )
        .await
        .unwrap();
    browser.screenshot("dashboard-policy-editor").await.unwrap();
    browser
        .execute("document.getElementById('save-policy').click();", json!([]))
        .await
        .unwrap();
    browser
        .wait_for(
            "document.getElementById('dashboard-result')?.innerText.startsWith('Policy updated for ')",
            LONG,
        )
        .await
        .unwrap();
    browser
        .wait_for(
            &format!("document.querySelector('{row} .price') && document.querySelector('{row} .price').textContent === '0.02 ETH'"),
            LONG,
        )
        .await
        .unwrap();
    browser
        .screenshot("dashboard-policy-updated")
        .await
        .unwrap();

    // Pause from the dashboard: the dataset page takes no requests and says why; resuming
    // (before the wallet checks below, which request this dataset) reopens it.
    for (button, state) in [("Pause", "paused"), ("Resume", "open")] {
        let find = format!(
            "[...document.querySelectorAll('{row} button')].find((b) => b.textContent === '{button}')"
        );
        browser.wait_for(&find, LONG).await.unwrap();
        browser
            .execute(&format!("{find}.click();"), json!([]))
            .await
            .unwrap();
        browser
            .wait_for(
                &format!(
                    "document.querySelector('{row} td:nth-child(4)')?.textContent === '{state}'"
                ),
                LONG,
            )
            .await
            .unwrap();
        if state == "paused" {
            takes_no_requests(
                &browser,
                &format!("{web}/datasets/{root}"),
                "You paused this dataset. Resume it from your dashboard.",
            )
            .await;
            let to_dashboard = browser
                .execute(
                    "return document.querySelector('#paused-by-you a')?.getAttribute('href');",
                    json!([]),
                )
                .await
                .unwrap();
            assert_eq!(to_dashboard, "/dashboard");
            browser.screenshot("dataset-paused").await.unwrap();
            // A researcher is told the owner paused it.
            as_account(&browser, &format!("{web}/datasets/{root}"), &researcher).await;
            takes_no_requests(
                &browser,
                &format!("{web}/datasets/{root}"),
                "The owner has paused this dataset",
            )
            .await;
            as_account(&browser, &format!("{web}/dashboard"), &owner).await;
        }
    }
    browser.screenshot("dashboard-resumed").await.unwrap();

    // Every page at a phone's width (as the owner, so the dashboard has rows): nothing wider
    // than the screen, so no page needs sideways scrolling (long roots and hashes wrap).
    browser.resize(390, 844).await.unwrap();
    for (name, path) in [
        ("phone-marketplace", "/".to_owned()),
        ("phone-dataset", format!("/datasets/{root}")),
        ("phone-publish", "/publish".to_owned()),
        ("phone-job", format!("/jobs/{job_id}")),
        ("phone-my-jobs", "/jobs".to_owned()),
        ("phone-dashboard", "/dashboard".to_owned()),
        ("phone-audit-dataset", format!("/audit/datasets/{root}")),
        ("phone-audit-job", format!("/audit/jobs/{job_id}")),
        ("phone-transaction", format!("/tx/{settlement}")),
        (
            "phone-stored-dataset",
            format!("/roots/{root}?kind=dataset"),
        ),
    ] {
        open(&browser, &format!("{web}{path}")).await;
        browser
            .wait_for("!document.querySelector('main .msg.error')", LONG)
            .await
            .unwrap();
        browser.screenshot(name).await.unwrap();
        fits_the_window(&browser, &format!("{path} at a phone's width")).await;
        hashes_read_well(&browser, &format!("{path} at a phone's width")).await;
        if name == "phone-job" {
            // The owner is not the job's researcher: told so, not offered the result.
            let result = browser
                .execute(
                    "return [document.getElementById('not-researcher')?.textContent.toLowerCase() ?? '', !!document.getElementById('download')];",
                    json!([]),
                )
                .await
                .unwrap();
            let short = format!("{}…{}", &researcher[..6], &researcher[38..]).to_lowercase();
            assert_eq!(
                result,
                json!([
                    format!(
                        "only the researcher ({short}) can open this result. if that is you, switch to that account in your wallet."
                    ),
                    false
                ]),
                "{result}"
            );
        }
    }
    browser.resize(1280, 900).await.unwrap();
    drop(browser);

    // A browser wallet (scripted, in front of the same anvil) that the person uses wrongly: each
    // mistake is a sentence on the page, and no transaction is sent.
    let wallet_browser = laptop_browser().await;
    wallet_browser
        .add_init_script(SCRIPTED_WALLET)
        .await
        .unwrap();
    let rpc = dev.summary["rpc_url"].as_str().unwrap().to_owned();
    let fresh = dev.summary["accounts"][5]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let dataset_page = format!("/datasets/{root}");
    // (wallet behaviour, the sentence shown, the wallet calls that must (not) happen, screenshot)
    type CallsCheck = fn(&[String]) -> bool;
    // The run limit as only the contract's simulation sees it: a wallet whose node answers the
    // page's `runsUsed` with a stale zero, for the researcher who used the one run allowed.
    let runs_used = &format!(
        "{:#x}",
        alloy::primitives::keccak256("runsUsed(bytes32,address)")
    )[..10];
    let mistakes: [(serde_json::Value, &str, CallsCheck, &str); 4] = [
        (
            json!({"chainId": "0x1"}),
            "Your wallet is on Ethereum Mainnet, but this marketplace runs on LICEN dev chain (anvil). Press “Switch network”, then try again.",
            |calls| {
                !calls
                    .iter()
                    .any(|c| c == "personal_sign" || c == "eth_sendTransaction")
            },
            "error-wrong-network",
        ),
        (
            json!({"rejectSign": true}),
            "You declined the signature. LICEN needs it to create the private key that opens your training result. Nothing was paid. Press “Request training” and approve the signature.",
            |calls| {
                calls.iter().any(|c| c == "personal_sign")
                    && !calls.iter().any(|c| c == "eth_sendTransaction")
            },
            "error-rejected-signature",
        ),
        (
            json!({"rejectSend": true}),
            "You rejected the transaction in your wallet: nothing was sent",
            |calls| calls.iter().any(|c| c == "eth_sendTransaction"),
            "error-rejected-transaction",
        ),
        (
            json!({"account": researcher, "staleCall": runs_used}),
            "You can't request this dataset again: this wallet has used the 1 run the owner allows per researcher.",
            |calls| !calls.iter().any(|c| c == "eth_sendTransaction"),
            "error-run-limit",
        ),
    ];
    for (behaviour, expected, calls_ok, screenshot) in mistakes {
        let mut wallet = json!({"rpc": rpc, "account": fresh});
        for (key, value) in behaviour.as_object().unwrap() {
            wallet[key] = value.clone();
        }
        let (shown, calls) =
            request_with_wallet(&wallet_browser, &web, &dataset_page, wallet).await;
        // Above the button, the two things a browser wallet will ask, with the amount for the
        // 2 epochs chosen (at the raised price).
        let asks = text_of(&wallet_browser, "wallet-asks").await;
        assert_eq!(
            asks,
            "Your wallet will ask you twice: first to sign a free message that creates your private result key, then to approve the payment of 0.04 ETH (plus gas).",
            "{screenshot}"
        );
        assert!(
            shown.contains(expected),
            "{screenshot}: expected {expected:?}, the page showed: {shown}"
        );
        assert!(calls_ok(&calls), "{screenshot}: wallet calls {calls:?}");
        wallet_browser.screenshot(screenshot).await.unwrap();
    }

    // The wrong network's "Switch network" button: declined, it is a sentence naming the network
    // the wallet stayed on (the button stays);
    // a wallet that knows the chain switches to it; one that does not (4902) is asked to add it,
    // with this app's RPC URL and name, and then to switch. The page checks the network again,
    // says it is right, and the request then goes through.
    for (behaviour, expected, wallet_calls, screenshot) in [
        (
            json!({"rejectSwitch": true}),
            "You declined to switch networks in your wallet, so it is still on Ethereum Mainnet and nothing was sent. Press “Switch network” and approve the switch to LICEN dev chain (anvil), then try again.",
            // The chain it stayed on is read back, to name it.
            &["wallet_switchEthereumChain", "eth_chainId"][..],
            "error-switch-declined",
        ),
        (
            json!({}),
            "Your wallet is now on this marketplace's network (LICEN dev chain (anvil), chain 31337)",
            &["wallet_switchEthereumChain", "eth_chainId"][..],
            "wrong-network-switched",
        ),
        (
            json!({"unknownChain": true}),
            "Your wallet is now on this marketplace's network",
            &[
                "wallet_switchEthereumChain",
                "wallet_addEthereumChain",
                "wallet_switchEthereumChain",
                "eth_chainId",
            ][..],
            "wrong-network-added",
        ),
    ] {
        let mut wallet = json!({"rpc": rpc, "account": fresh, "chainId": "0x1"});
        for (key, value) in behaviour.as_object().unwrap() {
            wallet[key] = value.clone();
        }
        let (shown, _) = request_with_wallet(&wallet_browser, &web, &dataset_page, wallet).await;
        assert!(
            shown.contains("Your wallet is on Ethereum Mainnet")
                && shown.ends_with("Switch network"),
            "{screenshot}: the wrong network, with its button: {shown}"
        );
        let after = wallet_browser
            .run(
                "window.licenWalletCalls = [];
                 document.querySelector('form .msg').dataset.before = '1';
                 document.getElementById('switch-network').click();
                 while (!document.querySelector('form .msg:not([data-before])')) await new Promise((r) => setTimeout(r, 50));
                 const m = document.querySelector('form .msg');
                 return [m.className, m.textContent, window.licenWalletCalls.filter((c) => c.startsWith('wallet_') || c === 'eth_chainId'), window.licenWalletParams.wallet_addEthereumChain ?? null];",
                json!({}),
            )
            .await
            .unwrap();
        let text = after[1].as_str().unwrap();
        assert!(text.contains(expected), "{screenshot}: {after}");
        assert_eq!(after[2], json!(wallet_calls), "{screenshot}: {after}");
        wallet_browser.screenshot(screenshot).await.unwrap();
        if screenshot == "error-switch-declined" {
            assert!(
                after[0] == "msg error" && text.ends_with("Switch network"),
                "still on the wrong network, the button stays: {after}"
            );
            continue;
        }
        assert_eq!(after[0], "msg ok", "{screenshot}: {after}");
        if screenshot == "wrong-network-added" {
            let added = &after[3][0];
            assert_eq!(added["chainId"], "0x7a69", "{after}");
            assert_eq!(added["chainName"], "LICEN dev chain (anvil)", "{after}");
            assert_eq!(added["rpcUrls"], json!([rpc]), "{after}");
            let granted = submit_request(&wallet_browser).await;
            assert!(
                granted.contains("Access granted: job"),
                "on the right network now, the request goes through: {granted}"
            );
        }
    }
    drop(wallet_browser);
    dev.stop();
}

/// The production trainer's result in the page: a job requested with the CLI and trained with
/// real LoRA on the tiny fixture model is opened in the browser by the same researcher (the
/// result key derived from the same wallet signature as the CLI's), and offered as the PEFT
/// adapter's own files, each byte for byte what the compute node packed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lora_adapter_opens_in_the_page_as_its_files() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("tiny-llama");
    licen_lora::fixture::write_model(&model, &licen_lora::fixture::tiny_config(), 11).unwrap();
    let lines: String = (0..48)
        .map(|i| {
            format!(
                "{}\n",
                json!({"prompt": format!("add {i} and 1:"), "completion": format!(" {}", i + 1)})
            )
        })
        .collect();
    std::fs::write(d.join("data.jsonl"), &lines).unwrap();
    let dev = Dev::start_with(
        d,
        [free_port(), free_port(), free_port(), free_port()],
        &[
            "--trainer",
            "lora",
            "--model",
            model.to_str().unwrap(),
            "--batch-size",
            "8",
        ],
    );
    let (job_id, researcher) = tokio::task::block_in_place(|| {
        let root = publish_with_cli(d, &dev, "data.jsonl", ONE_RESEARCH_RUN);
        let (id, _) = request_with_cli(d, &dev, &root, "2");
        let terminal = ["completed", "failed", "expired", "reclaimed"];
        let state = wait_for_state(d, &dev, id, &terminal, 120);
        assert_eq!(state, "completed", "job {id} ended {state}");
        (id, dev_address(&dev, 4))
    });

    let browser = laptop_browser().await;
    let web = dev.summary["web_url"].as_str().unwrap();
    as_account(&browser, &format!("{web}/jobs/{job_id}"), &researcher).await;
    let notices = browser
        .execute(
            "return document.querySelectorAll('.notice').length;",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(notices, 0, "a LoRA stack announces no simulated training");
    browser
        .execute("document.getElementById('download').click();", json!([]))
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('result-files') || document.querySelector('#download-result .error')", LONG)
        .await
        .unwrap();
    // Every file as the page saves it: name → bytes (hex), read back from its link.
    let saved = browser
        .run(
            "const files = {};
             for (const a of document.querySelectorAll('#result-files a, #result-archive')) {
               const bytes = new Uint8Array(await (await fetch(a.href)).arrayBuffer());
               files[a.download] = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
             }
             return files;",
            json!({}),
        )
        .await
        .unwrap();
    let file = |name: &str| {
        hex::decode(
            saved[name]
                .as_str()
                .unwrap_or_else(|| panic!("the page offers no {name}: {saved}")),
        )
        .unwrap()
    };
    // The page's files are exactly the archive's, as the CLI unpacks them.
    let archive = file(&format!("result-job-{job_id}.tar"));
    let mut entries = tar::Archive::new(&archive[..]);
    let mut names = Vec::new();
    for entry in entries.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        assert_eq!(file(&name), bytes, "{name} as the page saves it");
        names.push(name);
    }
    assert_eq!(
        names,
        [
            "adapter_config.json",
            "adapter_model.safetensors",
            "training_report.json"
        ]
    );
    assert_eq!(
        saved.as_object().unwrap().len(),
        4,
        "three files and the archive: {saved:?}"
    );
    let config: serde_json::Value = serde_json::from_slice(&file("adapter_config.json")).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["base_model_name_or_path"], "tiny-llama");
    let preview = text_of(&browser, "result-preview").await;
    let report: serde_json::Value = serde_json::from_str(&preview).unwrap();
    assert_eq!(
        report["report"]["epochs_completed"], 2,
        "the training report is shown: {report}"
    );
    let summary = browser
        .execute(
            "return document.getElementById('training-summary').innerText;",
            json!([]),
        )
        .await
        .unwrap();
    let summary = summary.as_str().unwrap();
    for line in [
        "tiny-llama",
        "Epochs trained\n2",
        "Tokens trained on\n",
        "(counted by the model's tokenizer, all epochs together)",
        "Epoch 2",
        "held-out loss",
    ] {
        assert!(
            summary.contains(line),
            "the report's summary names {line:?}: {summary}"
        );
    }
    browser.screenshot("job-lora-adapter").await.unwrap();
    fits_the_window(&browser, "the job page with a LoRA adapter opened").await;
    drop(browser);
    dev.stop();
}

/// A stalled job's escrow comes back from its page: with no orchestrator running, a grant is
/// never started; its page says until when it may be, the refund button waits for the chain's
/// clock, and once the grant expired, the researcher's click refunds the escrow in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_jobs_escrow_comes_back_from_its_page() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("rows.jsonl"),
        "{\"text\": \"one\"}\n{\"text\": \"two\"}\n",
    )
    .unwrap();
    let dev = Dev::start_with(
        d,
        [free_port(), free_port(), free_port(), free_port()],
        &["--no-orchestrator"],
    );
    let (job_id, escrow, ending) = tokio::task::block_in_place(|| {
        let root = publish_with_cli(d, &dev, "rows.jsonl", ONE_RESEARCH_RUN);
        let (job, escrow) = request_with_cli(d, &dev, &root, "2");
        // A second dataset whose policy ends in an hour.
        std::fs::write(d.join("ending.jsonl"), "{\"text\": \"three\"}\n").unwrap();
        let ending = publish_with_cli(
            d,
            &dev,
            "ending.jsonl",
            &[ONE_RESEARCH_RUN, &["--expiry", "1h"]].concat(),
        );
        (job, escrow, ending)
    });
    let researcher = dev_address(&dev, 4);
    let browser = laptop_browser().await;
    let web = dev.summary["web_url"].as_str().unwrap();
    let page = format!("{web}/jobs/{job_id}");
    as_account(&browser, &page, &researcher).await;
    let before = browser
        .execute(
            "return [document.getElementById('take-back').disabled, document.getElementById('take-back-card').innerText];",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(before[0], true, "too early to refund: {before}");
    assert!(
        before[1]
            .as_str()
            .unwrap()
            .contains("If the orchestrator does not start this job by"),
        "{before}"
    );

    // The grant's hour passes on the chain: the refund is open to anyone, here the researcher.
    rpc_async(&dev, "evm_increaseTime", json!([3601])).await;
    rpc_async(&dev, "evm_mine", json!([])).await;
    open(&browser, &page).await;
    browser
        .execute("document.getElementById('take-back').click();", json!([]))
        .await
        .unwrap();
    browser
        .wait_for(
            "document.querySelector('h1').textContent.includes('Expired')",
            LONG,
        )
        .await
        .unwrap();
    let refunded = tokio::task::block_in_place(|| {
        common::refund_paid_by_transition(&dev, job_id, "expired", &researcher)
    });
    assert_eq!(refunded, escrow, "the whole escrow came back");
    let shown = browser
        .execute(
            "return document.querySelector('main').innerText;",
            json!([]),
        )
        .await
        .unwrap();
    assert!(
        shown.as_str().unwrap().contains("Refund\n0.02 ETH"),
        "{shown}"
    );
    // Why, and where the money went.
    let why = text_of(&browser, "refund-why").await.to_lowercase();
    let short = format!("{}…{}", &researcher[..6], &researcher[38..]).to_lowercase();
    assert!(
        why.starts_with("training did not start before the grant's deadline (")
            && why.ends_with(&format!("), so the full escrow (0.02 eth) went back to the researcher ({short}). a refunded run does not count toward the dataset's run limit.")),
        "{why}"
    );
    browser.screenshot("job-refunded").await.unwrap();

    // The hour also ended the second dataset's policy: its page says so and offers no request.
    takes_no_requests(
        &browser,
        &format!("{web}/datasets/{ending}"),
        "it takes no new requests",
    )
    .await;
    browser.screenshot("dataset-closed").await.unwrap();
    drop(browser);
    dev.stop();
}

/// Presses "Seal, upload and publish" on the open publish page and waits for its outcome: the
/// text of the result box (the published root, or an error and what the next press does).
async fn publish_attempt(browser: &Browser) -> String {
    browser
        .execute("document.getElementById('publish').click();", json!([]))
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('published-root') || document.querySelector('#publish-result .error')", LONG)
        .await
        .unwrap();
    let shown = browser
        .execute(
            "return document.getElementById('publish-result').innerText;",
            json!([]),
        )
        .await
        .unwrap();
    shown.as_str().unwrap().to_owned()
}

/// The `Submit` events of the Flow at `flow`: (transaction, sender) of each, in chain order.
async fn flow_submissions(dev: &Dev, flow: &str) -> Vec<(String, String)> {
    // keccak256("Submit(address,bytes32,uint256,uint256,uint256,(uint256,bytes,(bytes32,uint256)[]))")
    let logs = rpc_async(
        dev,
        "eth_getLogs",
        json!([{ "address": flow, "fromBlock": "0x0", "toBlock": "latest" }]),
    )
    .await;
    let submit = "0x167ce04d2aa1981994d3a31695da0d785373335b1078cec239a1a3a2c7675555";
    logs.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["topics"][0] == submit)
        .map(|l| {
            let sender = l["topics"][1].as_str().unwrap();
            (
                l["transactionHash"].as_str().unwrap().to_owned(),
                format!("0x{}", &sender[26..]),
            )
        })
        .collect()
}

/// On storage paid the way 0G's is (`licen dev --flow`: 0G's own Flow contract, a node taking
/// only paid files), publishing in the page pays the Flow from the person's wallet for the
/// sealed data, its key envelope and its manifest, in one transaction, before the node takes
/// them; the file is staged meanwhile, and nothing is paid before the person publishes. A
/// payment the person rejects in the wallet is a sentence and costs nothing; publishing again
/// works. The job then runs on the same storage, the compute node paying for its result and
/// evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_on_0g_storage_pays_the_flow_from_the_wallet() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dev = Dev::start_with(
        d,
        [free_port(), free_port(), free_port(), free_port()],
        &["--flow"],
    );
    let flow = dev.summary["flow"].as_str().unwrap().to_owned();
    let web = dev.summary["web_url"].as_str().unwrap().to_owned();
    let owner = dev_address(&dev, 3);
    let rpc = dev.summary["rpc_url"].as_str().unwrap().to_owned();
    // The owner's browser wallet (scripted, in front of the dev chain), first rejecting what it
    // is asked to send.
    let browser = laptop_browser().await;
    browser.add_init_script(SCRIPTED_WALLET).await.unwrap();
    let wallet = |settings: serde_json::Value| {
        let browser = &browser;
        async move { set_local(browser, "licen.testWallet", &settings.to_string()).await }
    };
    browser.goto(&format!("{web}/")).await.unwrap();
    wallet(json!({"rpc": rpc, "account": owner, "rejectSend": true})).await;
    open(&browser, &format!("{web}/publish")).await;
    pick_file(&browser, 300).await;
    // Staged and waiting: nothing paid, nothing sent from the owner's wallet yet; the page says
    // what storing it will cost (11.2 kB sealed: 44 sectors at 1 gwei).
    browser
        .wait_for(
            "document.querySelector('form').innerText.includes('Storage on 0G: ')",
            LONG,
        )
        .await
        .unwrap();
    // The staging is done, and its bar full; a tiny estimate reads as "less than".
    let note = browser
        .execute(
            "return [document.querySelector('form').innerText, document.querySelector('form progress').value];",
            json!([]),
        )
        .await
        .unwrap();
    let text = note[0].as_str().unwrap();
    assert!(
        text.contains("0G stores it once its storage is paid for")
            && text.contains("Storage on 0G: less than 0.000001 ETH for the sealed data")
            && note[1] == 1,
        "{note}"
    );
    assert!(flow_submissions(&dev, &flow).await.is_empty());
    browser.screenshot("publish-0g-staged").await.unwrap();
    browser
        .run(
            "const set = (id, v) => { document.getElementById(id).value = v; };
             set('name', 'Paid on 0G'); set('price', '0.01'); set('max-epochs', '3'); set('max-runs', '2');",
            json!({}),
        )
        .await
        .unwrap();
    let shown = publish_attempt(&browser).await;
    assert!(
        shown.contains("You rejected the transaction in your wallet: nothing was sent")
            && shown.contains("Nothing was published or paid: the sealed file stays staged"),
        "{shown}"
    );
    browser
        .screenshot("error-0g-payment-rejected")
        .await
        .unwrap();
    assert!(flow_submissions(&dev, &flow).await.is_empty());
    assert_eq!(common::nonce_async(&dev, &owner).await, 0);

    // The person pays for storage, then rejects the publication itself: storage stays paid,
    // and the page says so.
    let contract = dev.summary["contract"].as_str().unwrap().to_owned();
    wallet(json!({"rpc": rpc, "account": owner, "rejectSendTo": contract})).await;
    let shown = publish_attempt(&browser).await;
    let paid = flow_submissions(&dev, &flow).await;
    assert_eq!(paid.len(), 3, "{paid:?}");
    assert!(
        shown.contains(&format!(
            "0G storage was paid for ({}): pressing “Seal, upload and publish” again goes on from there without paying for these files again",
            paid[0].0
        )),
        "{shown}"
    );
    assert_eq!(common::nonce_async(&dev, &owner).await, 1);

    // The person accepts this time: the publication goes on with the same sealed, paid files.
    wallet(json!({"rpc": rpc, "account": owner})).await;
    let shown = publish_attempt(&browser).await;
    result_in_place_of_the_form(&browser).await;
    browser.screenshot("publish-0g-done").await.unwrap();
    // The result, storage payment included, reads at a phone's width too.
    browser.resize(390, 844).await.unwrap();
    fits_the_window(&browser, "the 0G publication's result at a phone's width").await;
    browser.screenshot("publish-0g-done-phone").await.unwrap();
    browser.resize(1280, 900).await.unwrap();
    let root = published_root(&browser, &shown).await;

    // Three files paid for in one transaction from the owner's wallet, then the publication:
    // two transactions in all.
    let paid = flow_submissions(&dev, &flow).await;
    assert_eq!(paid.len(), 3, "{paid:?}");
    assert!(
        paid.iter()
            .all(|(tx, sender)| tx == &paid[0].0 && sender.eq_ignore_ascii_case(&owner)),
        "{paid:?}"
    );
    assert_eq!(common::nonce_async(&dev, &owner).await, 2);
    assert!(
        shown.contains("0G storage paid")
            && shown.contains(&paid[0].0[..20])
            && shown.contains("for 3 files"),
        "the page names the storage payment: {shown}"
    );
    // The node holds the dataset, under the root the page published.
    let storage =
        licen_storage::StorageClient::new(dev.summary["storage_url"].as_str().unwrap()).unwrap();
    let info = storage
        .file_info(root.parse().unwrap())
        .await
        .unwrap()
        .expect("the node knows the published dataset");
    assert!(info.finalized, "{info:?}");

    // `licen publish` to this stack's node pays its Flow too, without being told to.
    let before = flow_submissions(&dev, &flow).await.len();
    std::fs::write(
        d.join("cli.jsonl"),
        "{\"text\": \"published from the CLI\"}\n",
    )
    .unwrap();
    tokio::task::block_in_place(|| publish_with_cli(d, &dev, "cli.jsonl", ONE_RESEARCH_RUN));
    assert_eq!(flow_submissions(&dev, &flow).await.len(), before + 3);

    // A job on it: the compute node pays for its result and evidence from its own account.
    let (job, _) = tokio::task::block_in_place(|| {
        let job = request_with_cli(d, &dev, &root, "2");
        let state = wait_for_state(d, &dev, job.0, &["completed", "failed", "expired"], 120);
        assert_eq!(state, "completed", "job {} ended {state}", job.0);
        job
    });
    let paid = flow_submissions(&dev, &flow).await;
    let operator = dev_address(&dev, 9);
    assert_eq!(dev.summary["accounts"][9]["role"], "compute operator");
    let by_operator = paid
        .iter()
        .filter(|(_, s)| s.eq_ignore_ascii_case(&operator))
        .count();
    assert_eq!(
        by_operator, 2,
        "job {job}: result and evidence paid by the compute node: {paid:?}"
    );
    dev.stop();
}
