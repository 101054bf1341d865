//! Compute providers: where the orchestrator gets a node for a job, and which attestation keys
//! it trusts. `LocalProvider` is one configured node (the dev stack's); 0G providers and TDX
//! nodes plug in behind the same trait.

use licen_compute::client::ComputeNodeClient;
use licen_types::JobId;

/// A source of compute nodes.
pub trait ComputeProvider: Send + Sync + 'static {
    /// A node to run `job` on.
    fn node_for(&self, job: JobId) -> ComputeNodeClient;
    /// Attestation keys whose evidence is trusted (development keys are insecure).
    fn trusted_attestation_keys(&self) -> Vec<[u8; 32]>;
}

/// One known compute node with its (insecure, development) attestation key.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    url: String,
    attestation_key: [u8; 32],
}

impl LocalProvider {
    /// A provider for the node at `url` whose evidence is signed by `attestation_key`.
    pub fn new(url: impl Into<String>, attestation_key: [u8; 32]) -> Self {
        Self {
            url: url.into(),
            attestation_key,
        }
    }
}

impl ComputeProvider for LocalProvider {
    fn node_for(&self, _job: JobId) -> ComputeNodeClient {
        ComputeNodeClient::new(self.url.clone())
    }

    fn trusted_attestation_keys(&self) -> Vec<[u8; 32]> {
        vec![self.attestation_key]
    }
}
