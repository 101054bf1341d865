//! The storage relay: the page's zgs JSON-RPC read calls, forwarded to the storage node.
//!
//! Only the methods that read public file information or download ciphertext pass (uploads go
//! through [`crate::staging`], which checks the root first); everything else is refused with a
//! sentence. Bodies are forwarded as they are, never logged or stored.
//!
//! Must never: accept a method outside [`ALLOWED_METHODS`], log a request body, or keep one
//! after the call.

use serde::Deserialize;

/// The zgs methods the page may call through the relay.
pub const ALLOWED_METHODS: &[&str] = &[
    "zgs_getFileInfo",
    "zgs_downloadSegment",
    "zgs_downloadSegmentWithProof",
];

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow)]
    method: std::borrow::Cow<'a, str>,
}

/// Why a relay request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JSON-RPC call object (batches are not relayed).
    NotACall,
    /// A method that is not relayed.
    Method(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotACall => f.write_str(
                "the storage relay expects one JSON-RPC call object {\"jsonrpc\":\"2.0\",\"id\":…,\"method\":…,\"params\":[…]}",
            ),
            Refusal::Method(m) => write!(
                f,
                "the storage relay does not forward {m:?}; allowed: {}",
                ALLOWED_METHODS.join(", ")
            ),
        }
    }
}

/// Checks that `body` is one call of an allowed method.
pub fn check(body: &[u8]) -> Result<(), Refusal> {
    let call: Call<'_> = serde_json::from_slice(body).map_err(|_| Refusal::NotACall)?;
    if ALLOWED_METHODS.contains(&call.method.as_ref()) {
        Ok(())
    } else {
        Err(Refusal::Method(call.method.into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_info_and_download_methods_pass() {
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":1,"method":"zgs_getFileInfo","params":["0x00",true]}"#),
            Ok(())
        );
        // Uploads go through the staging endpoints, which check the root first.
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":1,"method":"zgs_uploadSegments","params":[[]]}"#),
            Err(Refusal::Method("zgs_uploadSegments".into()))
        );
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":1,"method":"admin_shutdown","params":[]}"#),
            Err(Refusal::Method("admin_shutdown".into()))
        );
        assert_eq!(check(b"[1,2]"), Err(Refusal::NotACall));
        assert!(Refusal::NotACall.to_string().contains("JSON-RPC"));
    }
}
