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

/// What the API server said, in a line a person reads: its message and reason, not the
/// client library's debug dump of the whole response.
fn api_summary(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(response) => {
            format!("{} (API reason: {})", response.message, response.reason)
        }
        other => other.to_string(),
    }
}

impl Error {
    /// The error for Events and the `Degraded` condition: names the object and what the
    /// API server said, without nested debug output.
    pub fn summary(&self) -> String {
        match self {
            Error::Apply { kind, name, source } => {
                format!("applying {kind} {name} failed: {}", api_summary(source))
            }
            Error::Delete { kind, name, source } => {
                format!("deleting {kind} {name} failed: {}", api_summary(source))
            }
            Error::PatchStatus { name, source } => format!(
                "patching status of RocketMQCluster {name} failed: {}",
                api_summary(source)
            ),
            Error::Lease { lease, source } => format!(
                "leader election on Lease {lease} failed: {}",
                api_summary(source)
            ),
            other => other.to_string(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_the_object_and_the_api_reason_only() {
        let mut response = kube::core::Status::failure(
            "StatefulSet.apps \"demo-broker-0\" is invalid: spec.replicas: Invalid value: -1",
            "Invalid",
        );
        response.code = 422;
        let error = Error::Apply {
            kind: "StatefulSet".into(),
            name: "demo-broker-0".into(),
            source: kube::Error::Api(response.boxed()),
        };
        let summary = error.summary();
        assert_eq!(
            summary,
            "applying StatefulSet demo-broker-0 failed: StatefulSet.apps \"demo-broker-0\" is \
             invalid: spec.replicas: Invalid value: -1 (API reason: Invalid)"
        );
        assert!(!summary.contains("ErrorResponse"));
    }
}
