//! Dataset manifests for text search: the chain events carry only a dataset's manifest root,
//! so a background task fetches each manifest from storage and keeps its name and description
//! in the `manifests` table, which the datasets query searches and joins.
//!
//! Owns: finding manifest roots of indexed datasets not fetched yet (or due for a retry),
//! downloading each (verified against its root by the storage client, at most
//! [`MAX_MANIFEST_BYTES`], with a timeout), parsing its `name` and `description`, and retrying
//! what is not in storage yet with exponential backoff, for as long as the indexer runs.
//!
//! Must never block, slow or fail event ingestion: it runs on its own task, reads the datasets
//! the follower wrote and writes only the `manifests` table (a cache keyed by a content root,
//! so rewinds never need to touch it). A storage outage only delays search results. Manifests
//! are public; nothing here is secret.

use crate::db::{Db, to_i64};
use crate::error::Result;
use licen_storage::Storage;
use licen_storage::client::DownloadOptions;
use std::time::Duration;
use tokio::sync::watch;

/// Largest manifest fetched. A manifest is a short public description; anything larger is
/// marked invalid without being downloaded.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// Longest name / description kept (characters); longer ones are cut.
const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 4000;

/// How the fetcher paces itself.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// Pause between scans for new or due manifests.
    pub poll_interval: Duration,
    /// First retry delay; doubled per failed attempt up to [`max_retry`](Self::max_retry).
    pub retry_base: Duration,
    /// Longest delay between retries.
    pub max_retry: Duration,
    /// Timeout of one manifest's lookup and download.
    pub timeout: Duration,
    /// Manifests fetched per scan.
    pub batch: i64,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            retry_base: Duration::from_secs(2),
            max_retry: Duration::from_secs(600),
            timeout: Duration::from_secs(15),
            batch: 32,
        }
    }
}

/// What one fetch attempt concluded.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Fetched {
        name: String,
        description: String,
    },
    /// Not there (yet) or not reachable: retry later.
    Retry(String),
    /// Never a usable manifest (the root names its content, so it cannot change): give up.
    Invalid(String),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Reads `name` and `description` from manifest bytes.
fn parse(bytes: &[u8]) -> Outcome {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(bytes) else {
        return Outcome::Invalid("not a JSON object".into());
    };
    let Some(name) = fields.get("name").and_then(|v| v.as_str()) else {
        return Outcome::Invalid("no `name` string".into());
    };
    let description = fields
        .get("description")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    Outcome::Fetched {
        name: cut(name, MAX_NAME_CHARS),
        description: cut(description, MAX_DESCRIPTION_CHARS),
    }
}

/// Fetches manifests of indexed datasets from storage until stopped.
#[derive(Clone)]
pub struct ManifestFetcher {
    db: Db,
    storage: Storage,
    config: FetcherConfig,
}

impl std::fmt::Debug for ManifestFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestFetcher")
            .field("storage", &self.storage.url())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ManifestFetcher {
    /// A fetcher reading datasets from `db` and manifests from `storage`.
    pub fn new(db: Db, storage: Storage, config: FetcherConfig) -> Self {
        Self {
            db,
            storage,
            config,
        }
    }

    /// Manifest roots never tried, then those due for a retry.
    async fn due(&self) -> Result<Vec<String>> {
        let mut roots: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT d.manifest_root FROM datasets d \
             LEFT JOIN manifests m ON m.manifest_root = d.manifest_root \
             WHERE m.manifest_root IS NULL LIMIT $1",
        )
        .bind(self.config.batch)
        .fetch_all(self.db.pool())
        .await?;
        let retries: Vec<String> = sqlx::query_scalar(
            "SELECT manifest_root FROM manifests WHERE state = 'pending' AND next_attempt_ms <= $1 \
             ORDER BY next_attempt_ms LIMIT $2",
        )
        .bind(now_ms())
        .bind(self.config.batch)
        .fetch_all(self.db.pool())
        .await?;
        roots.extend(retries);
        Ok(roots)
    }

    async fn attempt(&self, root: &str) -> Outcome {
        let Ok(hash) = root.parse::<licen_storage::Hash>() else {
            return Outcome::Invalid(format!("`{root}` is not a 32-byte root"));
        };
        let lookup = async {
            let info = match self.storage.file_info(hash).await {
                Ok(Some(info)) => info,
                Ok(None) => return Outcome::Retry("not in storage yet".into()),
                Err(e) => return Outcome::Retry(format!("storage lookup: {e}")),
            };
            if info.tx.size > MAX_MANIFEST_BYTES {
                return Outcome::Invalid(format!(
                    "{} bytes, over the {MAX_MANIFEST_BYTES}-byte manifest cap",
                    info.tx.size
                ));
            }
            if !info.finalized {
                return Outcome::Retry("upload not finished".into());
            }
            let options = DownloadOptions {
                expected_size: Some(info.tx.size),
            };
            match self.storage.download_to_vec(hash, options).await {
                Ok(bytes) => parse(&bytes),
                Err(e) => Outcome::Retry(format!("download: {e}")),
            }
        };
        tokio::time::timeout(self.config.timeout, lookup)
            .await
            .unwrap_or_else(|_| {
                Outcome::Retry(format!("timed out after {:?}", self.config.timeout))
            })
    }

    async fn record(&self, root: &str, outcome: &Outcome) -> Result<()> {
        let attempts: i64 =
            sqlx::query_scalar("SELECT attempts FROM manifests WHERE manifest_root = $1")
                .bind(root)
                .fetch_optional(self.db.pool())
                .await?
                .unwrap_or(0)
                + 1;
        let (state, name, description, error) = match outcome {
            Outcome::Fetched { name, description } => {
                ("fetched", Some(name), Some(description), None)
            }
            Outcome::Retry(why) => ("pending", None, None, Some(why)),
            Outcome::Invalid(why) => ("invalid", None, None, Some(why)),
        };
        let search_text = name
            .zip(description)
            .map(|(n, d)| format!("{n}\n{d}").to_lowercase());
        let exponent = u32::try_from(attempts - 1).unwrap_or(u32::MAX).min(20);
        let delay = self
            .config
            .retry_base
            .saturating_mul(1 << exponent)
            .min(self.config.max_retry);
        let next =
            now_ms().saturating_add(to_i64(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)));
        sqlx::query(
            "INSERT INTO manifests (manifest_root, state, name, description, search_text, attempts, \
             next_attempt_ms, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (manifest_root) DO UPDATE SET state = excluded.state, name = excluded.name, \
             description = excluded.description, search_text = excluded.search_text, \
             attempts = excluded.attempts, next_attempt_ms = excluded.next_attempt_ms, \
             error = excluded.error",
        )
        .bind(root)
        .bind(state)
        .bind(name.map(String::as_str))
        .bind(description.map(String::as_str))
        .bind(search_text)
        .bind(attempts)
        .bind(next)
        .bind(error.map(String::as_str))
        .execute(self.db.pool())
        .await?;
        match outcome {
            Outcome::Fetched { .. } => tracing::debug!(root, "manifest indexed for search"),
            Outcome::Retry(why) => {
                tracing::debug!(root, attempts, %why, retry_in = ?delay, "manifest not fetched yet");
            }
            Outcome::Invalid(why) => {
                tracing::warn!(root, %why, "dataset manifest unusable; its dataset is not searchable");
            }
        }
        Ok(())
    }

    /// One scan: fetches every new or due manifest. Returns how many were tried.
    pub async fn scan(&self) -> Result<usize> {
        let roots = self.due().await?;
        for root in &roots {
            let outcome = self.attempt(root).await;
            self.record(root, &outcome).await?;
        }
        Ok(roots.len())
    }

    /// Scans until `stop` turns true. Database errors are logged and retried on the next
    /// scan; they never end the task.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(storage = self.storage.url(), "manifest fetcher started");
        loop {
            if *stop.borrow() {
                return;
            }
            let tried = match self.scan().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "manifest scan failed; retrying");
                    0
                }
            };
            if tried == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_gives_its_name_and_description() {
        assert_eq!(
            parse(br#"{"name":"Med QA","description":"Clinical questions","row_count":3}"#),
            Outcome::Fetched {
                name: "Med QA".into(),
                description: "Clinical questions".into()
            }
        );
        assert_eq!(
            parse(br#"{"name":"no description"}"#),
            Outcome::Fetched {
                name: "no description".into(),
                description: String::new()
            }
        );
        let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(500));
        assert!(
            matches!(parse(long.as_bytes()), Outcome::Fetched { name, .. } if name.len() == MAX_NAME_CHARS)
        );
    }

    #[test]
    fn anything_else_is_invalid() {
        for bytes in [
            &b"not json"[..],
            b"[1,2]",
            br#"{"name":7}"#,
            br#"{"title":"x"}"#,
        ] {
            assert!(matches!(parse(bytes), Outcome::Invalid(_)), "{bytes:?}");
        }
    }
}
