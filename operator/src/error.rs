//! Errors of the operator crate. Reconcile errors name the object that failed, so the
//! Event and the Degraded condition tell a user where to look.

/// Everything that can go wrong while reconciling, electing a leader or serving telemetry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource lacks a field the API server always sets (uid, namespace); seen only with
    /// hand-built objects.
    #[error("RocketMQCluster has no {0}")]
    MissingObjectKey(&'static str),

    /// The spec breaks rules the CRD schema should have enforced.
    #[error("invalid spec: {}", .0.join("; "))]
    InvalidSpec(Vec<String>),

    /// Server-side apply of a child object failed.
    #[error("applying {kind} {name} failed: {source}")]
    Apply {
        /// Kind of the child object.
        kind: String,
        /// Name of the child object.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },

    /// Deleting a child object that the spec no longer asks for failed.
    #[error("deleting {kind} {name} failed: {source}")]
    Delete {
        /// Kind of the child object.
        kind: String,
        /// Name of the child object.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },

    /// Writing the status subresource failed.
    #[error("patching status of RocketMQCluster {name} failed: {source}")]
    PatchStatus {
        /// Name of the cluster.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },

    /// A Lease operation of the leader elector failed.
    #[error("leader election on Lease {lease} failed: {source}")]
    Lease {
        /// Name of the Lease.
        lease: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },

    /// Serving `/healthz`, `/readyz` or `/metrics` failed.
    #[error("telemetry server: {0}")]
    Telemetry(#[source] std::io::Error),

    /// Connecting to the Kubernetes API failed at startup.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

impl Error {
    /// Short PascalCase reason for Events and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::MissingObjectKey(_) => "MissingMetadata",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::Apply { .. } => "ApplyFailed",
            Error::Delete { .. } => "DeleteFailed",
            Error::PatchStatus { .. } => "StatusPatchFailed",
            Error::Lease { .. } => "LeaseFailed",
            Error::Telemetry(_) => "TelemetryFailed",
            Error::Client(_) => "ClientFailed",
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
