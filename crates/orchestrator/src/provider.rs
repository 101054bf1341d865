//! Compute providers: where the orchestrator gets a node for a job, and which attestation keys
//! it trusts. `LocalProvider` is a configured list of nodes (the dev stack's one, or several
//! for failover); 0G providers and TDX nodes plug in behind the same trait.

use licen_compute::client::ComputeNodeClient;
use licen_types::JobId;

/// A source of compute nodes.
pub trait ComputeProvider: Send + Sync + 'static {
    /// A node to run `job` on, other than the `excluded` ones (URLs of nodes the job already
    /// gave up on); `None` when no node is left.
    fn node_for(&self, job: JobId, excluded: &[String]) -> Option<ComputeNodeClient>;
    /// Attestation keys whose evidence is trusted (development keys are insecure).
    fn trusted_attestation_keys(&self) -> Vec<[u8; 32]>;
}

/// Known compute nodes, each with its (insecure, development) attestation key. Jobs are spread
/// over the nodes by job id; a job whose node stops answering moves to the next one.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    nodes: Vec<(String, [u8; 32])>,
}

impl LocalProvider {
    /// A provider for the node at `url` whose evidence is signed by `attestation_key`.
    pub fn new(url: impl Into<String>, attestation_key: [u8; 32]) -> Self {
        Self::with_nodes(vec![(url.into(), attestation_key)])
    }

    /// A provider for several nodes: `(url, attestation key)` each.
    pub fn with_nodes(nodes: Vec<(String, [u8; 32])>) -> Self {
        let nodes = nodes
            .into_iter()
            .map(|(url, key)| (url.trim_end_matches('/').to_owned(), key))
            .collect();
        Self { nodes }
    }
}

impl ComputeProvider for LocalProvider {
    fn node_for(&self, job: JobId, excluded: &[String]) -> Option<ComputeNodeClient> {
        let n = self.nodes.len();
        if n == 0 {
            return None;
        }
        // Job 1 starts at the first node, job 2 at the second, …; then the rest in order.
        let first = usize::try_from(job.0.saturating_sub(1) % n as u64).unwrap_or(0);
        (0..n)
            .map(|i| &self.nodes[(first + i) % n].0)
            .find(|url| !excluded.contains(url))
            .map(|url| ComputeNodeClient::new(url.clone()))
    }

    fn trusted_attestation_keys(&self) -> Vec<[u8; 32]> {
        self.nodes.iter().map(|(_, key)| *key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_spread_over_the_nodes_and_move_past_excluded_ones() {
        let provider = LocalProvider::with_nodes(vec![
            ("http://a/".into(), [1; 32]),
            ("http://b".into(), [2; 32]),
            ("http://c".into(), [3; 32]),
        ]);
        let pick = |job: u64, excluded: &[&str]| {
            let excluded: Vec<String> = excluded.iter().map(|s| (*s).to_owned()).collect();
            provider
                .node_for(JobId(job), &excluded)
                .map(|n| n.url().to_owned())
        };
        assert_eq!(pick(1, &[]).as_deref(), Some("http://a"));
        assert_eq!(pick(2, &[]).as_deref(), Some("http://b"));
        assert_eq!(pick(4, &[]).as_deref(), Some("http://a"));
        assert_eq!(pick(2, &["http://b"]).as_deref(), Some("http://c"));
        assert_eq!(pick(3, &["http://c"]).as_deref(), Some("http://a"));
        assert_eq!(pick(1, &["http://a", "http://b", "http://c"]), None);
        assert_eq!(
            provider.trusted_attestation_keys(),
            [[1; 32], [2; 32], [3; 32]]
        );
    }
}
