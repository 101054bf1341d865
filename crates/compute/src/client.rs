//! A typed HTTP client of the compute node API (what the orchestrator and `licen` use).
//!
//! Owns nothing but the mapping of [`crate::node`]'s endpoints to methods; verification stays
//! with the caller ([`crate::attestation::verify_evidence`],
//! [`crate::manifest::verify_result_manifest`]).
//!
//! Must never: log or put envelope bytes in errors.

use licen_types::JobId;
use serde::de::DeserializeOwned;

use crate::attestation::InsecureDevEvidence;
use crate::node::{
    CreateJobRequest, CreateJobResponse, ErrorBody, JobStatus, NodeInfo, SubmitKeyRequest,
};

/// Errors of [`ComputeNodeClient`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached (connection refused, timeout, …).
    #[error("compute node {url} is unreachable: {source}")]
    Unreachable {
        /// The node URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The node answered with an error status.
    #[error("compute node {url} answered HTTP {status}: {message}")]
    Api {
        /// The node URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The node's `error` text.
        message: String,
    },
    /// The answer was not the expected JSON.
    #[error("compute node {url} sent an unexpected answer: {reason}")]
    Protocol {
        /// The node URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl ClientError {
    /// HTTP status of an [`ClientError::Api`] error.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Client of one compute node.
#[derive(Clone, Debug)]
pub struct ComputeNodeClient {
    url: String,
    http: reqwest::Client,
}

impl ComputeNodeClient {
    /// A client of the node at `url` (`http://host:port`).
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        ComputeNodeClient {
            url: url.into().trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// The node URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn read<T: DeserializeOwned>(
        &self,
        res: Result<reqwest::Response, reqwest::Error>,
        ok: &[u16],
    ) -> Result<T, ClientError> {
        let res = res.map_err(|source| ClientError::Unreachable {
            url: self.url.clone(),
            source: source.without_url(),
        })?;
        let status = res.status().as_u16();
        let body = res
            .bytes()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.url.clone(),
                source: source.without_url(),
            })?;
        if ok.contains(&status) {
            return serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
                url: self.url.clone(),
                reason: e.to_string(),
            });
        }
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(500).collect());
        Err(ClientError::Api {
            url: self.url.clone(),
            status,
            message,
        })
    }

    /// `GET /v1/node`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn node_info(&self) -> Result<NodeInfo, ClientError> {
        let res = self.http.get(format!("{}/v1/node", self.url)).send().await;
        self.read(res, &[200]).await
    }

    /// `POST /v1/jobs`: creates the task (or returns the same evidence for a repeated request).
    ///
    /// # Errors
    /// [`ClientError`]; HTTP 409 if the job exists with other parameters.
    pub async fn create_job(
        &self,
        req: &CreateJobRequest,
    ) -> Result<InsecureDevEvidence, ClientError> {
        let res = self
            .http
            .post(format!("{}/v1/jobs", self.url))
            .json(req)
            .send()
            .await;
        let body: CreateJobResponse = self.read(res, &[200, 201]).await?;
        Ok(body.evidence)
    }

    /// `POST /v1/jobs/{id}/key`. An envelope the node cannot open is answered with the task's
    /// status in state Failed (HTTP 422), returned here as `Ok`: check `state`.
    ///
    /// # Errors
    /// [`ClientError`]; HTTP 404 unknown job, 409 key already given or task not in Init.
    pub async fn submit_key(&self, job: JobId, envelope: &[u8]) -> Result<JobStatus, ClientError> {
        let body = SubmitKeyRequest {
            envelope: hex::encode(envelope),
        };
        let res = self
            .http
            .post(format!("{}/v1/jobs/{job}/key", self.url))
            .json(&body)
            .send()
            .await;
        self.read(res, &[202, 422]).await
    }

    /// `GET /v1/jobs/{id}`.
    ///
    /// # Errors
    /// [`ClientError`]; HTTP 404 if the node has no such task (e.g. it restarted).
    pub async fn status(&self, job: JobId) -> Result<JobStatus, ClientError> {
        let res = self
            .http
            .get(format!("{}/v1/jobs/{job}", self.url))
            .send()
            .await;
        self.read(res, &[200]).await
    }

    /// `POST /v1/jobs/{id}/ack`: Delivered → Finished.
    ///
    /// # Errors
    /// [`ClientError`]; HTTP 409 if the task is not Delivered.
    pub async fn ack(&self, job: JobId) -> Result<JobStatus, ClientError> {
        let res = self
            .http
            .post(format!("{}/v1/jobs/{job}/ack", self.url))
            .send()
            .await;
        self.read(res, &[200]).await
    }
}
