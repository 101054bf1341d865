//! Headless Chromium for browser tests, driven over WebDriver (`chromedriver`, Debian's
//! `chromium-driver`) with plain HTTP calls: no browser-automation dependency.
//!
//! Also owns the server setups tests share when they never reach the chain
//! ([`config_without_chain`], [`web_with_storage_node`], [`web_with_storage_indexer`] over
//! sharded in-process nodes) and opening a staged upload ([`begin_upload`]).
//!
//! Owns: starting chromedriver and one Chromium session with the flags a closed network needs
//! (`--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
//! --disable-background-networking --disable-component-update --disable-sync`, a fresh
//! profile), navigation, script execution (also before a page's own scripts), waiting, and
//! screenshots under `target/screenshots/` (or `LICEN_SCREENSHOTS`).
//!
//! Must never: be used outside tests and benchmarks, or reach the network beyond 127.0.0.1.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// Where Debian puts the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// anvil's default chain id, which the test chains keep.
const ANVIL_CHAIN_ID: u64 = 31337;

/// A web server configuration on a free loopback port for tests and benchmarks that never reach
/// the chain: its RPC URL is a closed port and the contract address is zero, so a page that
/// tried would fail visibly. No dev wallet, no request tap.
pub fn config_without_chain(indexer_url: String, storage_url: String) -> crate::WebConfig {
    crate::WebConfig {
        listen: "127.0.0.1:0".parse().expect("a socket address"),
        indexer_url,
        storage: storage_url.into(),
        chain: crate::PublicChain {
            chain_id: ANVIL_CHAIN_ID,
            rpc_url: "http://127.0.0.1:9".into(),
            name: "LICEN test chain".into(),
            data_policy: alloy_primitives::Address::ZERO,
            default_orchestrator: None,
            explorer_tx_url: None,
        },
        flow: None,
        dev_wallet: false,
        notices: Vec::new(),
        request_tap: None,
    }
}

/// A storage node in this process (its data under `dir`) and a web server relaying uploads to
/// it, with no chain and no indexer; `request_tap` sees every request body the server receives.
pub async fn web_with_storage_node(
    dir: &std::path::Path,
    request_tap: Option<crate::RequestTap>,
) -> (crate::Running, licen_storage::node::RunningNode) {
    web_and_node(dir, request_tap, None).await
}

/// The same with the node in Flow mode (it takes only files registered with
/// [`licen_storage::node::RunningNode::register_submission`], as a node following a 0G Flow
/// does) and the server configured for the Flow at `flow` (current ABI).
pub async fn web_with_flow_storage_node(
    dir: &std::path::Path,
    flow: alloy_primitives::Address,
) -> (crate::Running, licen_storage::node::RunningNode) {
    let flow = crate::PublicFlow {
        address: flow,
        abi: Some(licen_storage::zerog::FlowAbi::Current),
    };
    web_and_node(dir, None, Some(flow)).await
}

async fn web_and_node(
    dir: &std::path::Path,
    request_tap: Option<crate::RequestTap>,
    flow: Option<crate::PublicFlow>,
) -> (crate::Running, licen_storage::node::RunningNode) {
    let mut node_config = licen_storage::node::NodeConfig::new(dir.join("storage"));
    node_config.listen = "127.0.0.1:0".parse().expect("a socket address");
    node_config.flow = flow.as_ref().map(|f| licen_storage::node::FollowedFlow {
        chain_id: ANVIL_CHAIN_ID,
        address: f.address,
    });
    let storage = licen_storage::node::start(node_config)
        .await
        .expect("starting a storage node");
    let web = crate::start(crate::WebConfig {
        request_tap,
        flow,
        ..config_without_chain("http://127.0.0.1:9".into(), storage.url())
    })
    .await
    .expect("starting the web server");
    (web, storage)
}

/// A web server storing through a local 0G storage indexer over in-process storage nodes, one
/// per shard position in `shards` (e.g. `["0/2", "1/2"]`; data under `dir/storage-<i>`), with
/// no chain and no marketplace indexer. Returns the server, the storage indexer and the nodes
/// in `shards` order.
pub async fn web_with_storage_indexer(
    dir: &std::path::Path,
    shards: &[&str],
) -> (
    crate::Running,
    licen_storage::indexer::service::RunningIndexer,
    Vec<licen_storage::node::RunningNode>,
) {
    web_and_indexer(dir, shards, None).await
}

/// The same with the nodes in Flow mode (each takes only files registered with it through
/// [`licen_storage::node::RunningNode::register_submission`]) and the server configured for
/// the Flow at `flow` (current ABI).
pub async fn web_with_flow_storage_indexer(
    dir: &std::path::Path,
    shards: &[&str],
    flow: alloy_primitives::Address,
) -> (
    crate::Running,
    licen_storage::indexer::service::RunningIndexer,
    Vec<licen_storage::node::RunningNode>,
) {
    let flow = crate::PublicFlow {
        address: flow,
        abi: Some(licen_storage::zerog::FlowAbi::Current),
    };
    web_and_indexer(dir, shards, Some(flow)).await
}

async fn web_and_indexer(
    dir: &std::path::Path,
    shards: &[&str],
    flow: Option<crate::PublicFlow>,
) -> (
    crate::Running,
    licen_storage::indexer::service::RunningIndexer,
    Vec<licen_storage::node::RunningNode>,
) {
    let mut nodes = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let mut node_config =
            licen_storage::node::NodeConfig::new(dir.join(format!("storage-{i}")));
        node_config.listen = "127.0.0.1:0".parse().expect("a socket address");
        node_config.flow = flow.as_ref().map(|f| licen_storage::node::FollowedFlow {
            chain_id: ANVIL_CHAIN_ID,
            address: f.address,
        });
        node_config.shard = shard
            .parse()
            .unwrap_or_else(|e| panic!("shard position {shard:?}: {e}"));
        nodes.push(
            licen_storage::node::start(node_config)
                .await
                .expect("starting a storage node"),
        );
    }
    let indexer =
        licen_storage::indexer::service::start(licen_storage::indexer::service::IndexerConfig {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            nodes: nodes.iter().map(|n| n.url()).collect(),
        })
        .await
        .expect("starting a storage indexer");
    let web = crate::start(crate::WebConfig {
        flow,
        storage: licen_storage::StorageEndpoint::Indexer(indexer.url()),
        ..config_without_chain("http://127.0.0.1:9".into(), String::new())
    })
    .await
    .expect("starting the web server");
    (web, indexer, nodes)
}

/// Opens a staged upload of `size` bytes (`POST /api/uploads`) on the server at `web_url`;
/// returns its id.
pub async fn begin_upload(web_url: &str, size: u64) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{web_url}/api/uploads"))
        .json(&json!({ "size": size }))
        .send()
        .await
        .expect("POST /api/uploads")
        .json()
        .await
        .expect("a JSON answer");
    answer["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no upload id in {answer}"))
        .to_owned()
}

/// Why a browser test could not run or failed.
pub type BrowserResult<T> = std::result::Result<T, String>;

/// One Chromium session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session_url: String,
    profile: PathBuf,
}

/// How long a navigation may take before [`Browser::goto`] fails.
const PAGE_LOAD_LIMIT_MS: u64 = 20_000;

/// Why the machine cannot run browser tests (the test prints it and skips), or `None`.
pub fn unavailable() -> Option<String> {
    for path in [CHROMIUM, CHROMEDRIVER] {
        if !std::path::Path::new(path).exists() {
            return Some(format!(
                "{path} is missing: install Debian's `chromium` and `chromium-driver` (cargo xtask test does: apt-get install -y chromium chromium-driver)"
            ));
        }
    }
    None
}

/// A loopback port that is free now, for a child process told to listen on it.
///
/// Drawn at random from 20000–32767, below the kernel's ephemeral range (32768–60999 on
/// Linux): a port bound and released *inside* that range can be handed to any outgoing
/// connection of a test running alongside before the child binds it, and the child then fails
/// to start.
pub fn free_port() -> u16 {
    use std::hash::BuildHasher as _;
    let random = std::collections::hash_map::RandomState::new();
    for attempt in 0u32..1000 {
        let port = 20_000 + (random.hash_one(attempt) % 12_768) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 20000–32767 after 1000 tries")
}

/// Folder the screenshots go to.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("LICEN_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
        PathBuf::from,
    )
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a `width`×`height` window.
    pub async fn launch(width: u32, height: u32) -> BrowserResult<Browser> {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {CHROMEDRIVER}: {e}"))?;
        let profile =
            std::env::temp_dir().join(format!("licen-chromium-{}-{port}", std::process::id()));
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            http,
            session_url: String::new(),
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = browser.http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not answer within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--enable-precise-memory-info".into(),
            // `gc()` for benchmarks that measure the heap a step grows by, not earlier garbage.
            "--js-flags=--expose-gc".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", browser.profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let answer = browser.post_to(&format!("{base}/session"), &caps).await?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("chromedriver gave no session: {answer}"))?;
        browser.session_url = format!("{base}/session/{id}");
        // A local page that takes this long to load is a failure, not something to wait out
        // (WebDriver's default is 5 minutes).
        browser
            .post("/timeouts", &json!({"pageLoad": PAGE_LOAD_LIMIT_MS}))
            .await?;
        Ok(browser)
    }

    async fn post_to(&self, url: &str, body: &Value) -> BrowserResult<Value> {
        let r = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("WebDriver call {url}: {e}"))?;
        let v: Value = r
            .json()
            .await
            .map_err(|e| format!("WebDriver answer of {url}: {e}"))?;
        if let Some(err) = v["value"]["error"].as_str() {
            return Err(format!(
                "WebDriver {err}: {}",
                v["value"]["message"].as_str().unwrap_or("")
            ));
        }
        Ok(v["value"].clone())
    }

    async fn post(&self, path: &str, body: &Value) -> BrowserResult<Value> {
        self.post_to(&format!("{}{path}", self.session_url), body)
            .await
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> BrowserResult<()> {
        self.post("/url", &json!({"url": url}))
            .await
            .map(|_| ())
            .map_err(|e| format!("opening {url} (allowed {PAGE_LOAD_LIMIT_MS} ms): {e}"))
    }

    /// Goes back one page, as the browser's Back button does.
    pub async fn back(&self) -> BrowserResult<()> {
        self.post("/back", &json!({})).await.map(|_| ())
    }

    /// Runs `source` in every document this session opens from now on, before the page's own
    /// scripts (Chrome DevTools `Page.addScriptToEvaluateOnNewDocument`, through chromedriver).
    /// Tests use it to give the page a scripted EIP-1193 wallet.
    pub async fn add_init_script(&self, source: &str) -> BrowserResult<()> {
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": source}),
        )
        .await
        .map(|_| ())
    }

    /// Runs a synchronous script (`return …`).
    pub async fn execute(&self, script: &str, args: Value) -> BrowserResult<Value> {
        self.post("/execute/sync", &json!({"script": script, "args": args}))
            .await
    }

    /// Runs an async function body: `arguments[0..n]` are `args`, the last argument is the
    /// callback. Use [`Browser::run`] for promises.
    pub async fn execute_async(&self, script: &str, args: Value) -> BrowserResult<Value> {
        self.post("/execute/async", &json!({"script": script, "args": args}))
            .await
    }

    /// Awaits `body` (the body of an async function with `args` as `args`) in the page and
    /// returns its value; a thrown error comes back as `Err` with its message.
    pub async fn run(&self, body: &str, args: Value) -> BrowserResult<Value> {
        let script = format!(
            "const done = arguments[arguments.length - 1]; const args = arguments[0];\
             (async () => {{ {body} }})().then((v) => done({{ok: v === undefined ? null : v}}), (e) => done({{err: String(e && e.stack || e)}}));"
        );
        let v = self.execute_async(&script, json!([args])).await?;
        match v.get("err").and_then(Value::as_str) {
            Some(e) => Err(format!("in the page: {e}")),
            None => Ok(v["ok"].clone()),
        }
    }

    /// Sets the script timeout (async scripts), in milliseconds.
    pub async fn script_timeout(&self, ms: u64) -> BrowserResult<()> {
        self.post("/timeouts", &json!({"script": ms}))
            .await
            .map(|_| ())
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) -> BrowserResult<()> {
        self.post("/window/rect", &json!({"width": width, "height": height}))
            .await
            .map(|_| ())
    }

    /// Polls `condition` (a JS expression) until true or `timeout`.
    pub async fn wait_for(&self, condition: &str, timeout: Duration) -> BrowserResult<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self
                .execute(&format!("return !!({condition});"), json!([]))
                .await?;
            if v.as_bool() == Some(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let text = self
                    .execute("return document.body.innerText.slice(0, 2000);", json!([]))
                    .await
                    .unwrap_or_default();
                return Err(format!(
                    "timed out after {timeout:?} waiting for `{condition}`; the page says: {text}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the whole page (not only the part in the window, so a person looking at
    /// it sees results below the fold) as `<screenshot_dir>/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> BrowserResult<PathBuf> {
        // The page's own size: the DevTools layout metrics leave out the scrollbar's width.
        let size = self
            .execute(
                "const d = document.documentElement; return [Math.max(d.scrollWidth, window.innerWidth), d.scrollHeight];",
                json!([]),
            )
            .await?;
        let (Some(width), Some(height)) = (size[0].as_f64(), size[1].as_f64()) else {
            return Err(format!("the page gave no size: {size}"));
        };
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                }),
            )
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// One Chrome DevTools command, through chromedriver.
    async fn cdp(&self, cmd: &str, params: Value) -> BrowserResult<Value> {
        self.post("/goog/cdp/execute", &json!({"cmd": cmd, "params": params}))
            .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then the driver goes.
        if !self.session_url.is_empty() {
            let url = self.session_url.clone();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    let _ = rt.block_on(reqwest::Client::new().delete(url).send());
                }
            })
            .join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
