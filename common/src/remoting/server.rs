//! The Remoting server: accept loop, one task per connection, dispatch by request code.
//!
//! Invariants:
//! - a malformed frame closes only the connection that sent it, logged once;
//! - an unknown code gets `REQUEST_CODE_NOT_SUPPORTED` (oneway requests get nothing);
//! - a request that a processor answers synchronously ([`Reply::Now`]) is answered in
//!   order on the connection task, without a spawn; asynchronous ones ([`Reply::Later`],
//!   e.g. long polling) run on their own task, bounded per connection so one client cannot
//!   queue unbounded work;
//! - the reader waits when the writer's queue is full, so a slow reader back-pressures its
//!   own connection and nobody else's.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, warn};

use crate::protocol::codec::{DEFAULT_MAX_FRAME_SIZE, FrameBudget, RemotingCodec};
use crate::protocol::{HeaderError, RemotingCommand, ResponseCode, SerializeType};

use super::metrics::{CodeLabels, RemotingMetrics, RequestLabels};

/// Server settings; defaults follow RocketMQ's `NettyServerConfig`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen_addr: SocketAddr,
    /// Largest accepted frame (`com.rocketmq.remoting.frameMaxLength`, 16 MiB).
    pub max_frame_size: usize,
    /// Close a connection that sends nothing for this long (`serverChannelMaxIdleTimeSeconds`).
    pub idle_timeout: Duration,
    /// Header encoding of frames we write.
    pub serialize_type: SerializeType,
    /// Asynchronous requests in flight per connection before the server stops reading it.
    pub max_in_flight_per_connection: usize,
    /// Responses queued per connection before the reader waits for the writer.
    pub write_queue_capacity: usize,
    /// How long shutdown waits for in-flight requests to finish.
    pub shutdown_grace: Duration,
    /// Bytes all connections together may buffer for frames still arriving (see
    /// [`FrameBudget`]); a large frame past it closes its connection.
    pub max_buffered_frame_bytes: usize,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 9876)),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            idle_timeout: Duration::from_secs(120),
            serialize_type: SerializeType::Json,
            max_in_flight_per_connection: 1024,
            write_queue_capacity: 1024,
            shutdown_grace: Duration::from_secs(10),
            // Sixteen 4 MiB messages arriving at the same moment, plus headroom.
            max_buffered_frame_bytes: 96 * 1024 * 1024,
            max_connections: 10_000,
        }
    }
}

/// A processor's failure, answered as an error response with `code` and `remark`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {remark}")]
pub struct ProcessError {
    /// Response code.
    pub code: ResponseCode,
    /// Remark for the client.
    pub remark: String,
}

impl ProcessError {
    /// An error with a code and remark.
    pub fn new(code: ResponseCode, remark: impl Into<String>) -> Self {
        Self {
            code,
            remark: remark.into(),
        }
    }
}

impl From<HeaderError> for ProcessError {
    fn from(e: HeaderError) -> Self {
        // Java answers a header that fails to decode with SYSTEM_ERROR and the exception text.
        Self::new(ResponseCode::SystemError, e.to_string())
    }
}

/// What a processor produced: a response, nothing (oneway), or an error response.
pub type ProcessResult = Result<Option<RemotingCommand>, ProcessError>;

/// A processor's pending answer.
pub type ProcessFuture = Pin<Box<dyn Future<Output = ProcessResult> + Send + 'static>>;

/// How a processor answers.
pub enum Reply {
    /// The answer is ready; sent in order on the connection task.
    Now(ProcessResult),
    /// The answer comes later (long polling, disk waits); runs on its own task.
    Later(ProcessFuture),
}

impl From<ProcessResult> for Reply {
    fn from(r: ProcessResult) -> Self {
        Reply::Now(r)
    }
}

/// Handles the requests of one or more codes.
pub trait RequestProcessor: Send + Sync + 'static {
    /// Handles one request. The server fills in the response's opaque and flag.
    fn process(&self, ctx: &RequestContext, request: RemotingCommand) -> Reply;
}

/// Told when connections close, e.g. so the name server can drop brokers that vanished.
pub trait ConnectionListener: Send + Sync + 'static {
    /// Called once after the connection is closed, whatever the reason.
    fn on_close(&self, connection: &ConnectionHandle);
}

/// A live connection, for processors that must remember who asked or talk back later.
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    id: u64,
    peer: SocketAddr,
    tx: mpsc::Sender<RemotingCommand>,
}

impl ConnectionHandle {
    /// A handle whose frames go to the returned receiver instead of a socket: for tests of
    /// processors and for in-process transports. `id` must not clash with server
    /// connection ids (they count up from 1; use large numbers).
    pub fn detached(
        id: u64,
        peer: SocketAddr,
        capacity: usize,
    ) -> (Self, mpsc::Receiver<RemotingCommand>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self { id, peer, tx }, rx)
    }

    /// Process-unique connection id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The peer's socket address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Sends a oneway command to the peer (e.g. NOTIFY_CONSUMER_IDS_CHANGED); fails if the
    /// connection is gone or its queue is full, never waits.
    pub fn send_oneway(&self, command: RemotingCommand) -> Result<(), RemotingCommand> {
        self.tx
            .try_send(command.into_oneway())
            .map_err(|e| e.into_inner())
    }
}

/// What a processor knows about the request besides the command.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The connection the request came on.
    pub connection: ConnectionHandle,
    /// When the frame was decoded.
    pub received_at: Instant,
}

/// The dispatch table: request code → processor.
#[derive(Clone, Default)]
pub struct Dispatcher {
    table: HashMap<i32, Arc<dyn RequestProcessor>>,
}

impl Dispatcher {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `code` to `processor`; a later registration of the same code replaces it.
    pub fn register(
        &mut self,
        code: impl Into<i32>,
        processor: Arc<dyn RequestProcessor>,
    ) -> &mut Self {
        self.table.insert(code.into(), processor);
        self
    }

    /// Routes every code in `codes` to `processor`.
    pub fn register_all<C: Into<i32> + Copy>(
        &mut self,
        codes: &[C],
        processor: Arc<dyn RequestProcessor>,
    ) -> &mut Self {
        for code in codes {
            self.register(*code, processor.clone());
        }
        self
    }

    /// The processor of `code`.
    pub fn get(&self, code: i32) -> Option<&Arc<dyn RequestProcessor>> {
        self.table.get(&code)
    }

    /// Hands `request` to its code's processor; a code nobody handles gets
    /// `REQUEST_CODE_NOT_SUPPORTED`.
    pub fn dispatch(&self, ctx: &RequestContext, request: RemotingCommand) -> Reply {
        let code = request.code;
        match self.get(code) {
            Some(processor) => processor.process(ctx, request),
            None => {
                debug!(code, "request code not supported");
                Reply::Now(Err(ProcessError::new(
                    ResponseCode::RequestCodeNotSupported,
                    format!(" request type {code} not supported"),
                )))
            }
        }
    }

    /// Registered codes, sorted (for docs and tests).
    pub fn codes(&self) -> Vec<i32> {
        let mut codes: Vec<i32> = self.table.keys().copied().collect();
        codes.sort_unstable();
        codes
    }
}

/// A Remoting server ready to bind.
pub struct RemotingServer {
    config: ServerConfig,
    dispatcher: Arc<Dispatcher>,
    listener: Option<Arc<dyn ConnectionListener>>,
    metrics: RemotingMetrics,
    frame_budget: Arc<FrameBudget>,
    open_connections: Arc<std::sync::atomic::AtomicUsize>,
    /// Made before `start` so in-process connections share the server's shutdown.
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// Controls a running server.
#[derive(Clone)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl ServerHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, closes
    /// every connection.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Resolves once the accept loop and every connection task have ended.
    pub async fn wait(&self) {
        self.tracker.wait().await;
    }
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

impl RemotingServer {
    /// A server that dispatches through `dispatcher`.
    pub fn new(config: ServerConfig, dispatcher: Dispatcher) -> Self {
        Self {
            frame_budget: Arc::new(FrameBudget::new(config.max_buffered_frame_bytes)),
            config,
            dispatcher: Arc::new(dispatcher),
            listener: None,
            metrics: RemotingMetrics::default(),
            open_connections: Arc::default(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// Sets the connection listener.
    pub fn with_connection_listener(mut self, listener: Arc<dyn ConnectionListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Uses metrics registered by the caller.
    pub fn with_metrics(mut self, metrics: RemotingMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// This server's dispatch without a socket, for clients in the same process (a proxy in
    /// local mode reaching the broker beside it). Requests on it are handled exactly as
    /// those of a socket connection, minus the encoding and the two trips through the
    /// kernel.
    pub fn in_process(&self) -> InProcessEndpoint {
        InProcessEndpoint {
            dispatcher: self.dispatcher.clone(),
            listener: self.listener.clone(),
            metrics: self.metrics.clone(),
            shutdown: self.shutdown.clone(),
            tracker: self.tracker.clone(),
            max_in_flight: self.config.max_in_flight_per_connection,
            shutdown_grace: self.config.shutdown_grace,
        }
    }

    /// Binds and starts serving in the background.
    pub async fn start(self) -> std::io::Result<ServerHandle> {
        let listener = TcpListener::bind(self.config.listen_addr).await?;
        let local_addr = listener.local_addr()?;
        let shutdown = self.shutdown.clone();
        let tracker = self.tracker.clone();
        let handle = ServerHandle {
            local_addr,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        };
        info!(%local_addr, "remoting server listening");
        let shared = Arc::new(self);
        let accept_tracker = tracker.clone();
        tracker.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        let open = shared.open_connections.fetch_add(1, Ordering::AcqRel);
                        if open >= shared.config.max_connections {
                            shared.open_connections.fetch_sub(1, Ordering::AcqRel);
                            shared.metrics.connections_refused.inc();
                            warn!(%peer, open, max = shared.config.max_connections, "connection refused: too many open connections");
                            drop(stream);
                            continue;
                        }
                        let server = shared.clone();
                        let token = shutdown.child_token();
                        accept_tracker.spawn(async move {
                            server.serve_connection(stream, peer, token).await
                        });
                    }
                    Err(e) => {
                        // Usually EMFILE; back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            info!(%local_addr, "remoting server stopped accepting");
        });
        tracker.close();
        Ok(handle)
    }

    async fn serve_connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) {
        let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("connection", id, %peer);
        async move {
            let _ = stream.set_nodelay(true);
            let (read_half, write_half) = stream.into_split();
            let codec = RemotingCodec::new(self.config.max_frame_size, self.config.serialize_type);
            let mut reader = FramedRead::new(
                read_half,
                codec.clone().with_budget(self.frame_budget.clone()),
            );
            let mut writer = FramedWrite::new(write_half, codec);
            let (tx, mut rx) = mpsc::channel::<RemotingCommand>(self.config.write_queue_capacity);
            let connection = ConnectionHandle { id, peer, tx };
            self.metrics.connections_total.inc();
            self.metrics.connections_open.inc();
            let _guard = CloseGuard {
                listener: self.listener.clone(),
                connection: connection.clone(),
                metrics: self.metrics.clone(),
                open_connections: self.open_connections.clone(),
            };
            debug!("connection opened");

            // The writer batches: it feeds every queued response, then flushes once.
            let writer_task = tokio::spawn(
                async move {
                    while let Some(cmd) = rx.recv().await {
                        if writer.feed(cmd).await.is_err() {
                            return;
                        }
                        while let Ok(cmd) = rx.try_recv() {
                            if writer.feed(cmd).await.is_err() {
                                return;
                            }
                        }
                        if writer.flush().await.is_err() {
                            return;
                        }
                    }
                }
                .in_current_span(),
            );

            let in_flight = Arc::new(Semaphore::new(self.config.max_in_flight_per_connection));
            let pending = TaskTracker::new();
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = tokio::time::timeout(self.config.idle_timeout, reader.next()) => next,
                };
                let frame = match next {
                    Err(_) => {
                        debug!(idle = ?self.config.idle_timeout, "closing idle connection");
                        break;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        if let crate::protocol::codec::CodecError::Io(io) = &e {
                            debug!(error = %io, "connection read failed");
                        } else if matches!(
                            e,
                            crate::protocol::codec::CodecError::BufferBudgetExhausted { .. }
                        ) {
                            self.metrics.frame_budget_refusals.inc();
                            warn!(error = %e, "closing connection: buffer budget exhausted");
                        } else {
                            self.metrics.malformed_frames.inc();
                            warn!(error = %e, "closing connection: malformed frame");
                        }
                        break;
                    }
                    Ok(Some(Ok(frame))) => frame,
                };
                if frame.is_response() {
                    // We never send requests that expect answers on server connections yet.
                    debug!(opaque = frame.opaque, "ignoring unexpected response frame");
                    continue;
                }
                let ctx = RequestContext {
                    connection: connection.clone(),
                    received_at: Instant::now(),
                };
                let code = frame.code;
                let opaque = frame.opaque;
                let oneway = frame.is_oneway();
                let reply = self.dispatcher.dispatch(&ctx, frame);
                match reply {
                    Reply::Now(result) => {
                        let response = finish(&self.metrics, &ctx, code, opaque, oneway, result);
                        if let Some(response) = response
                            && connection.tx.send(response).await.is_err()
                        {
                            break;
                        }
                    }
                    Reply::Later(future) => {
                        let Ok(permit) = in_flight.clone().acquire_owned().await else {
                            break;
                        };
                        let metrics = self.metrics.clone();
                        let tx = connection.tx.clone();
                        pending.spawn(
                            async move {
                                let result = future.await;
                                if let Some(response) =
                                    finish(&metrics, &ctx, code, opaque, oneway, result)
                                {
                                    let _ = tx.send(response).await;
                                }
                                drop(permit);
                            }
                            .in_current_span(),
                        );
                    }
                }
            }
            // On server shutdown, asynchronous requests may still answer (bounded by the
            // grace period). When the peer went away nobody would read their answers: they
            // finish on their own and their sends fail, so the connection does not wait.
            pending.close();
            if shutdown.is_cancelled()
                && tokio::time::timeout(self.config.shutdown_grace, pending.wait())
                    .await
                    .is_err()
            {
                warn!("in-flight requests did not finish within the shutdown grace period");
            }
            drop(connection);
            drop(_guard);
            drop(reader);
            // The writer ends once every sender is gone. A long-polling task of a vanished
            // peer may still hold one, so outside shutdown only queued frames get a moment.
            let writer_grace = if shutdown.is_cancelled() {
                self.config.shutdown_grace
            } else {
                Duration::from_secs(1)
            };
            let writer_abort = writer_task.abort_handle();
            if tokio::time::timeout(writer_grace, writer_task)
                .await
                .is_err()
            {
                writer_abort.abort();
            }
            debug!("connection closed");
        }
        .instrument(span)
        .await
    }
}

/// Turns a processor result into the response frame (or nothing for oneway requests).
fn finish(
    metrics: &RemotingMetrics,
    ctx: &RequestContext,
    code: i32,
    opaque: i32,
    oneway: bool,
    result: ProcessResult,
) -> Option<RemotingCommand> {
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            debug!(code, error = %e, "request failed");
            Some(RemotingCommand::error(e.code, e.remark))
        }
    };
    metrics
        .request_seconds
        .get_or_create(&CodeLabels { request_code: code })
        .observe(ctx.received_at.elapsed().as_secs_f64());
    let response_code = if oneway {
        -1
    } else {
        response.as_ref().map_or(-1, |r| r.code)
    };
    metrics
        .requests
        .get_or_create(&RequestLabels {
            request_code: code,
            response_code,
        })
        .inc();
    if oneway {
        return None;
    }
    response.map(|mut r| {
        r.opaque = opaque;
        r.flag |= crate::protocol::FLAG_RESPONSE;
        r
    })
}

/// Runs the close bookkeeping even if the connection task panics.
struct CloseGuard {
    listener: Option<Arc<dyn ConnectionListener>>,
    connection: ConnectionHandle,
    metrics: RemotingMetrics,
    open_connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        self.open_connections.fetch_sub(1, Ordering::AcqRel);
        self.metrics.connections_open.dec();
        if let Some(listener) = &self.listener {
            listener.on_close(&self.connection);
        }
    }
}

/// A server's dispatch for clients in the same process; see [`RemotingServer::in_process`].
#[derive(Clone)]
pub struct InProcessEndpoint {
    dispatcher: Arc<Dispatcher>,
    listener: Option<Arc<dyn ConnectionListener>>,
    metrics: RemotingMetrics,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    max_in_flight: usize,
    shutdown_grace: Duration,
}

/// The server behind an in-process connection has shut down (a socket would be closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server has shut down")]
pub struct ServerShutDown;

impl std::fmt::Debug for InProcessEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessEndpoint")
            .field("codes", &self.dispatcher.table.len())
            .finish()
    }
}

impl InProcessEndpoint {
    /// Opens a connection from `peer`. Commands the server sends its peer on its own
    /// (e.g. CHECK_TRANSACTION_STATE) arrive on the returned receiver; up to `capacity`
    /// wait there before the server's sends fail, as with a full socket queue.
    pub fn connect(
        &self,
        peer: SocketAddr,
        capacity: usize,
    ) -> (InProcessConnection, mpsc::Receiver<RemotingCommand>) {
        let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(capacity);
        self.metrics.connections_total.inc();
        self.metrics.connections_open.inc();
        let connection = InProcessConnection {
            endpoint: self.clone(),
            connection: ConnectionHandle { id, peer, tx },
            in_flight: Arc::new(Semaphore::new(self.max_in_flight)),
        };
        (connection, rx)
    }
}

/// One in-process connection; closing it (dropping it) tells the server's connection
/// listener, as a socket's close would.
pub struct InProcessConnection {
    endpoint: InProcessEndpoint,
    connection: ConnectionHandle,
    /// Bounds the asynchronous requests in flight, as on a socket connection.
    in_flight: Arc<Semaphore>,
}

impl InProcessConnection {
    /// Handles `request` as the server handles a frame: its response (opaque and flag set),
    /// or `None` for a oneway request or a processor that answers nothing. A processor
    /// that answers later runs on its own task, tracked by the server's shutdown like a
    /// socket connection's, so dropping this future (a caller's timeout) leaves the request
    /// to finish as it would for a vanished socket peer. Once the server shuts down, calls
    /// fail as a closed socket would.
    pub async fn call(
        &self,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ServerShutDown> {
        let endpoint = &self.endpoint;
        if endpoint.shutdown.is_cancelled() {
            return Err(ServerShutDown);
        }
        let ctx = RequestContext {
            connection: self.connection.clone(),
            received_at: Instant::now(),
        };
        let (code, opaque, oneway) = (request.code, request.opaque, request.is_oneway());
        // A panicking processor fails this request, not the caller's task (on a socket it
        // would close only that connection).
        let dispatched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            endpoint.dispatcher.dispatch(&ctx, request)
        }));
        let reply = dispatched.unwrap_or_else(|_| {
            warn!(code, "request processor panicked");
            Reply::Now(Err(ProcessError::new(
                ResponseCode::SystemError,
                "request processor panicked",
            )))
        });
        let result = match reply {
            Reply::Now(result) => result,
            Reply::Later(future) => {
                let permit = self
                    .in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| ServerShutDown)?;
                let shutdown = endpoint.shutdown.clone();
                let grace = endpoint.shutdown_grace;
                let task = endpoint.tracker.spawn(async move {
                    let _permit = permit;
                    tokio::select! {
                        result = future => result,
                        _ = async {
                            shutdown.cancelled().await;
                            tokio::time::sleep(grace).await;
                        } => Err(ProcessError::new(
                            ResponseCode::SystemError,
                            "the server shut down before answering",
                        )),
                    }
                });
                task.await.unwrap_or_else(|e| {
                    Err(ProcessError::new(
                        ResponseCode::SystemError,
                        format!("request task failed: {e}"),
                    ))
                })
            }
        };
        Ok(finish(
            &endpoint.metrics,
            &ctx,
            code,
            opaque,
            oneway,
            result,
        ))
    }

    /// Whether the server behind this connection has shut down.
    pub fn is_shut_down(&self) -> bool {
        self.endpoint.shutdown.is_cancelled()
    }

    /// The server-side handle of this connection.
    pub fn handle(&self) -> &ConnectionHandle {
        &self.connection
    }
}

impl Drop for InProcessConnection {
    fn drop(&mut self) {
        self.endpoint.metrics.connections_open.dec();
        if let Some(listener) = &self.endpoint.listener {
            listener.on_close(&self.connection);
        }
    }
}
