//! The Remoting client: one pooled connection per address, responses matched by opaque.
//!
//! Invariants: every request either gets its response, a timeout, or a
//! `ConnectionClosed` error — never hangs past its timeout; a broken connection is
//! replaced on the next request; nothing here panics on bad input from the peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, warn};

use crate::protocol::codec::{DEFAULT_MAX_FRAME_SIZE, RemotingCodec};
use crate::protocol::{RemotingCommand, ResponseCode, SerializeType};

use super::server::{InProcessConnection, InProcessEndpoint};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long to wait for a TCP connection (`connectTimeoutMillis`, 3 s).
    pub connect_timeout: Duration,
    /// Largest accepted response frame.
    pub max_frame_size: usize,
    /// Header encoding of our requests.
    pub serialize_type: SerializeType,
    /// Requests queued per connection before callers wait.
    pub write_queue_capacity: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            serialize_type: SerializeType::Json,
            write_queue_capacity: 1024,
        }
    }
}

/// Why a request did not get a response.
#[derive(Debug, thiserror::Error)]
pub enum RemotingError {
    /// TCP connect failed.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// Target address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// TCP connect took longer than the connect timeout.
    #[error("connect to {addr} timed out")]
    ConnectTimeout {
        /// Target address.
        addr: String,
    },
    /// No response within the request timeout.
    #[error("request to {addr} timed out after {timeout:?}")]
    Timeout {
        /// Target address.
        addr: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection closed before the response arrived.
    #[error("connection to {addr} closed before the response arrived")]
    ConnectionClosed {
        /// Target address.
        addr: String,
    },
    /// The peer answered with an error code.
    #[error("{addr} answered code {code}: {remark}")]
    Response {
        /// Target address.
        addr: String,
        /// Response code.
        code: i32,
        /// Remark, empty if none.
        remark: String,
    },
}

impl RemotingError {
    /// The response code for [`RemotingError::Response`].
    pub fn response_code(&self) -> Option<i32> {
        match self {
            RemotingError::Response { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Handles requests a server sends to the client (e.g. NOTIFY_CONSUMER_IDS_CHANGED).
pub trait ClientRequestHandler: Send + Sync + 'static {
    /// Returns the response, or `None` for oneway requests.
    fn handle(&self, addr: &str, request: RemotingCommand) -> Option<RemotingCommand>;
}

/// One address's connection, created on first use; the async mutex makes concurrent first
/// requests share one connect instead of racing.
type ConnectionSlot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

type PendingMap = Arc<Mutex<HashMap<i32, oneshot::Sender<RemotingCommand>>>>;

struct Connection {
    tx: mpsc::Sender<RemotingCommand>,
    pending: PendingMap,
    closed: Arc<AtomicBool>,
    tasks: [tokio::task::AbortHandle; 2],
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Request opaques are process-wide, like Java's `RemotingCommand.requestId`.
static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(1);

/// A pooled Remoting client.
#[derive(Clone)]
pub struct RemotingClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    slots: Mutex<HashMap<String, ConnectionSlot>>,
    handler: Option<Arc<dyn ClientRequestHandler>>,
    /// Servers of this process, reached without a socket (see [`RemotingClient::attach_in_process`]).
    in_process: Mutex<HashMap<String, Arc<InProcessLink>>>,
}

/// An in-process connection and the task passing the server's own commands to the handler.
struct InProcessLink {
    connection: InProcessConnection,
    forwarder: tokio::task::AbortHandle,
}

impl Drop for InProcessLink {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

impl RemotingClient {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Self {
        Self::build(config, None)
    }

    /// A client that answers server-initiated requests with `handler`.
    pub fn with_handler(config: ClientConfig, handler: Arc<dyn ClientRequestHandler>) -> Self {
        Self::build(config, Some(handler))
    }

    fn build(config: ClientConfig, handler: Option<Arc<dyn ClientRequestHandler>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                slots: Mutex::new(HashMap::new()),
                handler,
                in_process: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Reaches the server announced as `addr` through `endpoint`, in this process, from now
    /// on: what a proxy in local mode does with the broker beside it. Requests skip the
    /// encoding and the socket; the server handles them as it handles a connection's, and
    /// its own commands (transaction checks) reach this client's handler. Must be called
    /// inside a Tokio runtime.
    /// `peer` is the address the server sees this client at (a message's born host).
    pub fn attach_in_process(&self, addr: &str, endpoint: &InProcessEndpoint, peer: SocketAddr) {
        let (connection, mut commands) =
            endpoint.connect(peer, self.inner.config.write_queue_capacity);
        let handler = self.inner.handler.clone();
        let server = addr.to_string();
        let forwarder = tokio::spawn(async move {
            while let Some(command) = commands.recv().await {
                // The server ignores answers to its requests (it sends only oneway ones).
                if let Some(h) = &handler {
                    let _ = h.handle(&server, command);
                }
            }
        });
        let link = Arc::new(InProcessLink {
            connection,
            forwarder: forwarder.abort_handle(),
        });
        lock(&self.inner.in_process).insert(addr.to_string(), link);
    }

    /// Stops reaching `addr` in process (a later request dials it); the server sees the
    /// connection close once requests still running on it end.
    pub fn detach_in_process(&self, addr: &str) {
        lock(&self.inner.in_process).remove(addr);
    }

    fn in_process_link(&self, addr: &str) -> Option<Arc<InProcessLink>> {
        let links = lock(&self.inner.in_process);
        if links.is_empty() {
            return None;
        }
        links.get(addr).cloned()
    }

    async fn invoke_in_process(
        link: &InProcessLink,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        request.opaque = NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed);
        request.flag &= !(crate::protocol::FLAG_RESPONSE | crate::protocol::FLAG_ONEWAY);
        match tokio::time::timeout(timeout, link.connection.call(request)).await {
            Ok(Ok(Some(response))) => Ok(response),
            Ok(Err(_)) => Err(RemotingError::ConnectionClosed {
                addr: addr.to_string(),
            }),
            // A request the server leaves unanswered would time out on a socket, too.
            Ok(Ok(None)) | Err(_) => Err(RemotingError::Timeout {
                addr: addr.to_string(),
                timeout,
            }),
        }
    }

    /// Sends `request` to `addr` and waits up to `timeout` for its response.
    pub async fn invoke(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        if let Some(link) = self.in_process_link(addr) {
            return Self::invoke_in_process(&link, addr, request, timeout).await;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let conn = tokio::time::timeout_at(deadline, self.connection(addr))
            .await
            .map_err(|_| RemotingError::Timeout {
                addr: addr.to_string(),
                timeout,
            })??;
        let opaque = NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed);
        request.opaque = opaque;
        request.flag &= !(crate::protocol::FLAG_RESPONSE | crate::protocol::FLAG_ONEWAY);
        let (tx, rx) = oneshot::channel();
        lock(&conn.pending).insert(opaque, tx);
        let sent = tokio::time::timeout_at(deadline, conn.tx.send(request)).await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                lock(&conn.pending).remove(&opaque);
                conn.closed.store(true, Ordering::Release);
                return Err(RemotingError::ConnectionClosed {
                    addr: addr.to_string(),
                });
            }
            Err(_) => {
                lock(&conn.pending).remove(&opaque);
                return Err(RemotingError::Timeout {
                    addr: addr.to_string(),
                    timeout,
                });
            }
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(RemotingError::ConnectionClosed {
                addr: addr.to_string(),
            }),
            Err(_) => {
                lock(&conn.pending).remove(&opaque);
                Err(RemotingError::Timeout {
                    addr: addr.to_string(),
                    timeout,
                })
            }
        }
    }

    /// Like [`invoke`](Self::invoke), but turns a non-`SUCCESS` response into
    /// [`RemotingError::Response`].
    pub async fn invoke_ok(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        let response = self.invoke(addr, request, timeout).await?;
        if response.code == ResponseCode::Success.as_i32() {
            Ok(response)
        } else {
            Err(RemotingError::Response {
                addr: addr.to_string(),
                code: response.code,
                remark: response.remark.unwrap_or_default(),
            })
        }
    }

    /// Sends `request` oneway: no response is expected or awaited.
    pub async fn invoke_oneway(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), RemotingError> {
        if let Some(link) = self.in_process_link(addr) {
            request.opaque = NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed);
            let request = request.into_oneway();
            if link.connection.is_shut_down() {
                return Err(RemotingError::ConnectionClosed {
                    addr: addr.to_string(),
                });
            }
            // Oneway: nobody waits for the processor, as nobody would on a socket.
            tokio::spawn(async move { link.connection.call(request).await });
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let conn = tokio::time::timeout_at(deadline, self.connection(addr))
            .await
            .map_err(|_| RemotingError::Timeout {
                addr: addr.to_string(),
                timeout,
            })??;
        request.opaque = NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed);
        request = request.into_oneway();
        match tokio::time::timeout_at(deadline, conn.tx.send(request)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                conn.closed.store(true, Ordering::Release);
                Err(RemotingError::ConnectionClosed {
                    addr: addr.to_string(),
                })
            }
            Err(_) => Err(RemotingError::Timeout {
                addr: addr.to_string(),
                timeout,
            }),
        }
    }

    /// Drops the pooled connection to `addr`, failing its in-flight requests.
    pub fn close(&self, addr: &str) {
        lock(&self.inner.slots).remove(addr);
    }

    async fn connection(&self, addr: &str) -> Result<Arc<Connection>, RemotingError> {
        let slot = lock(&self.inner.slots)
            .entry(addr.to_string())
            .or_default()
            .clone();
        let mut guard = slot.lock().await;
        if let Some(conn) = guard.as_ref()
            && !conn.closed.load(Ordering::Acquire)
        {
            return Ok(conn.clone());
        }
        let conn = Arc::new(self.connect(addr).await?);
        *guard = Some(conn.clone());
        Ok(conn)
    }

    async fn connect(&self, addr: &str) -> Result<Connection, RemotingError> {
        let config = &self.inner.config;
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RemotingError::ConnectTimeout {
                addr: addr.to_string(),
            })?
            .map_err(|source| RemotingError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        debug!(addr, "connected");
        let (read_half, write_half) = stream.into_split();
        let codec = RemotingCodec::new(config.max_frame_size, config.serialize_type);
        let mut reader = FramedRead::new(read_half, codec.clone());
        let mut writer = FramedWrite::new(write_half, codec);
        let (tx, mut rx) = mpsc::channel::<RemotingCommand>(config.write_queue_capacity);
        let pending: PendingMap = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));

        let writer_closed = closed.clone();
        let writer_task = tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                if writer.feed(cmd).await.is_err() {
                    break;
                }
                while let Ok(cmd) = rx.try_recv() {
                    if writer.feed(cmd).await.is_err() {
                        break;
                    }
                }
                if writer.flush().await.is_err() {
                    break;
                }
            }
            writer_closed.store(true, Ordering::Release);
        });

        let reader_pending = pending.clone();
        let reader_closed = closed.clone();
        let reply_tx = tx.clone();
        let handler = self.inner.handler.clone();
        let peer = addr.to_string();
        let reader_task = tokio::spawn(async move {
            while let Some(frame) = reader.next().await {
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => {
                        warn!(addr = %peer, error = %e, "closing connection: bad frame from server");
                        break;
                    }
                };
                if frame.is_response() {
                    match lock(&reader_pending).remove(&frame.opaque) {
                        Some(waiter) => {
                            let _ = waiter.send(frame);
                        }
                        None => {
                            debug!(addr = %peer, opaque = frame.opaque, "response for unknown or expired request")
                        }
                    }
                    continue;
                }
                let oneway = frame.is_oneway();
                let opaque = frame.opaque;
                let code = frame.code;
                let answer = match &handler {
                    Some(h) => h.handle(&peer, frame),
                    None => Some(RemotingCommand::error(
                        ResponseCode::RequestCodeNotSupported,
                        format!(" request type {code} not supported"),
                    )),
                };
                if let (false, Some(mut answer)) = (oneway, answer) {
                    answer.opaque = opaque;
                    answer.flag |= crate::protocol::FLAG_RESPONSE;
                    if reply_tx.try_send(answer).is_err() {
                        debug!(addr = %peer, "dropping reply to server request: queue full");
                    }
                }
            }
            reader_closed.store(true, Ordering::Release);
            // Dropping the senders fails every waiter with ConnectionClosed.
            lock(&reader_pending).clear();
        });

        Ok(Connection {
            tx,
            pending,
            closed,
            tasks: [writer_task.abort_handle(), reader_task.abort_handle()],
        })
    }
}

/// Locks a std mutex, recovering from poisoning: the maps it guards stay consistent
/// because no code path panics while holding them.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
