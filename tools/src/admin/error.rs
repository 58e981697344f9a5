//! What can go wrong in an admin command, worded for the person at the terminal.

use rocketmq_common::admin::AdminBodyError;
use rocketmq_common::message::RecordError;
use rocketmq_common::remoting::RemotingError;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Neither `-n` nor `NAMESRV_ADDR` named a name server.
    #[error(
        "no name server address: pass -n host:port (several separated by ';') or set NAMESRV_ADDR"
    )]
    NoNameServer,
    /// A name server or broker could not be reached, timed out, or answered with an error.
    #[error(transparent)]
    Remoting(#[from] RemotingError),
    /// The name servers know no route for the topic.
    #[error("topic {topic} has no route on the name server (does it exist?)")]
    TopicNotFound {
        /// The topic.
        topic: String,
    },
    /// The name servers know no cluster of that name.
    #[error("cluster {cluster} is not known to the name server")]
    ClusterNotFound {
        /// The cluster.
        cluster: String,
    },
    /// The cluster exists but none of its broker groups has a registered master.
    #[error("cluster {cluster} has no master broker registered")]
    NoMasterInCluster {
        /// The cluster.
        cluster: String,
    },
    /// A peer's body did not decode.
    #[error("{addr} sent a malformed {what}: {detail}")]
    BadBody {
        /// Who sent it.
        addr: String,
        /// What was expected.
        what: &'static str,
        /// Why it did not decode.
        detail: String,
    },
    /// A user-supplied value is invalid (topic name, attributes, JSON, ...).
    #[error("invalid {what}: {detail}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// No message matched the id or key.
    #[error("message {id} not found in topic {topic}{note}")]
    MessageNotFound {
        /// The id asked for.
        id: String,
        /// The topic searched.
        topic: String,
        /// Why the lookup as an offset id failed, as ` (...)`, or empty.
        note: String,
    },
    /// Writing the output failed (e.g. a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl AdminError {
    /// A malformed-body error from `addr`.
    pub(crate) fn bad_body(addr: &str, what: &'static str, detail: impl ToString) -> Self {
        AdminError::BadBody {
            addr: addr.to_string(),
            what,
            detail: detail.to_string(),
        }
    }

    /// An invalid-argument error.
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        AdminError::InvalidArgument {
            what,
            detail: detail.into(),
        }
    }
}

impl From<rocketmq_client::ClientError> for AdminError {
    fn from(e: rocketmq_client::ClientError) -> Self {
        use rocketmq_client::ClientError as C;
        match e {
            C::NoNameServer => AdminError::NoNameServer,
            C::Remoting(e) => AdminError::Remoting(e),
            C::TopicNotFound { topic } => AdminError::TopicNotFound { topic },
            C::ClusterNotFound { cluster } => AdminError::ClusterNotFound { cluster },
            C::NoMasterInCluster { cluster } => AdminError::NoMasterInCluster { cluster },
            C::BadBody { addr, what, detail } => AdminError::BadBody { addr, what, detail },
        }
    }
}

impl From<(&str, AdminBodyError)> for AdminError {
    fn from((addr, e): (&str, AdminBodyError)) -> Self {
        AdminError::bad_body(addr, "admin body", e)
    }
}

impl From<(&str, RecordError)> for AdminError {
    fn from((addr, e): (&str, RecordError)) -> Self {
        AdminError::bad_body(addr, "message record", e)
    }
}
