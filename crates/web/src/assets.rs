//! The page's static assets, embedded in the binary at compile time: the HTML shell, the
//! stylesheet, the ES modules and the `licen-wasm` module (built by `build.rs`).
//!
//! Must never: read from disk at run time (a deployment is one binary) or embed anything
//! secret.

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The name under `/assets/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

macro_rules! text_asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

/// Every asset served under `/assets/`.
pub const ASSETS: &[Asset] = &[
    text_asset!("style.css", "text/css; charset=utf-8"),
    text_asset!("app.js", "text/javascript; charset=utf-8"),
    text_asset!("pages.js", "text/javascript; charset=utf-8"),
    text_asset!("crypto.js", "text/javascript; charset=utf-8"),
    text_asset!("hasher.js", "text/javascript; charset=utf-8"),
    text_asset!("wallet.js", "text/javascript; charset=utf-8"),
    text_asset!("abi.js", "text/javascript; charset=utf-8"),
    Asset {
        name: "licen_wasm.wasm",
        content_type: "application/wasm",
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/licen_wasm.wasm")),
    },
];

/// The HTML shell every page route answers with (the modules render the page).
pub const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The asset called `name`, if any.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}
