//! Why a request to a name server, broker or controller did not give what was asked.

use rocketmq_common::admin::AdminBodyError;
use rocketmq_common::message::RecordError;
use rocketmq_common::remoting::RemotingError;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No name server address is configured.
    #[error(
        "no name server address: pass -n host:port (several separated by ';') or set NAMESRV_ADDR"
    )]
    NoNameServer,
    /// A server could not be reached, timed out, or answered with an error code.
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
    /// A server's body or header did not decode.
    #[error("{addr} sent a malformed {what}: {detail}")]
    BadBody {
        /// Who sent it.
        addr: String,
        /// What was expected.
        what: &'static str,
        /// Why it did not decode.
        detail: String,
    },
}

impl ClientError {
    /// A malformed-body error from `addr`.
    pub fn bad_body(addr: &str, what: &'static str, detail: impl ToString) -> Self {
        ClientError::BadBody {
            addr: addr.to_string(),
            what,
            detail: detail.to_string(),
        }
    }

    /// The response code, when a server answered with an error.
    pub fn response_code(&self) -> Option<i32> {
        match self {
            ClientError::Remoting(e) => e.response_code(),
            _ => None,
        }
    }
}

impl From<(&str, AdminBodyError)> for ClientError {
    fn from((addr, e): (&str, AdminBodyError)) -> Self {
        ClientError::bad_body(addr, "admin body", e)
    }
}

impl From<(&str, RecordError)> for ClientError {
    fn from((addr, e): (&str, RecordError)) -> Self {
        ClientError::bad_body(addr, "message record", e)
    }
}

/// Passes a SUCCESS response through; turns any other code into
/// [`RemotingError::Response`] (the one place responses are checked).
pub fn check_success(
    addr: &str,
    response: rocketmq_common::protocol::RemotingCommand,
) -> Result<rocketmq_common::protocol::RemotingCommand, ClientError> {
    if response.code == rocketmq_common::protocol::ResponseCode::Success.as_i32() {
        Ok(response)
    } else {
        Err(RemotingError::Response {
            addr: addr.to_string(),
            code: response.code,
            remark: response.remark.unwrap_or_default(),
        }
        .into())
    }
}
