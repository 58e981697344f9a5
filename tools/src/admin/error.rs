//! What can go wrong in an admin command, worded for the person at the terminal.

use rocketmq_client::ClientError;
use rocketmq_common::admin::AdminBodyError;
use rocketmq_common::message::RecordError;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A name server or broker could not be reached, timed out, answered with an error,
    /// knows no such topic or cluster, or sent something malformed.
    #[error(transparent)]
    Client(#[from] ClientError),
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
    /// `healthCheck`: the server did not answer 200, or could not be reached.
    #[error("{url}: {detail}")]
    Unhealthy {
        /// The probed URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// Writing the output failed (e.g. a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl AdminError {
    /// A malformed-body error from `addr`.
    pub(crate) fn bad_body(addr: &str, what: &'static str, detail: impl ToString) -> Self {
        ClientError::bad_body(addr, what, detail).into()
    }

    /// The name servers know no cluster of that name.
    pub(crate) fn cluster_not_found(cluster: impl Into<String>) -> Self {
        ClientError::ClusterNotFound {
            cluster: cluster.into(),
        }
        .into()
    }

    /// The name servers know no route for the topic.
    pub(crate) fn topic_not_found(topic: impl Into<String>) -> Self {
        ClientError::TopicNotFound {
            topic: topic.into(),
        }
        .into()
    }

    /// No name server address was given.
    pub(crate) fn no_name_server() -> Self {
        ClientError::NoNameServer.into()
    }

    /// An invalid-argument error.
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        AdminError::InvalidArgument {
            what,
            detail: detail.into(),
        }
    }
}

impl From<rocketmq_common::remoting::RemotingError> for AdminError {
    fn from(e: rocketmq_common::remoting::RemotingError) -> Self {
        ClientError::Remoting(e).into()
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
