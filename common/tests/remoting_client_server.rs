//! The Remoting server and client against each other over loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rocketmq_common::protocol::{RemotingCommand, ResponseCode, SerializeType};
use rocketmq_common::remoting::{
    ClientConfig, ConnectionHandle, ConnectionListener, Dispatcher, ProcessError, RemotingClient,
    RemotingError, RemotingServer, Reply, RequestContext, RequestProcessor, ServerConfig,
    ServerHandle,
};
use tokio::io::AsyncReadExt;

const ECHO: i32 = 1;
const SLOW: i32 = 2;
const FAIL: i32 = 3;
const COUNT_ONEWAY: i32 = 4;

/// Echoes the body; SLOW waits `remark` milliseconds first; FAIL answers an error.
struct TestProcessor {
    oneway_seen: Arc<AtomicUsize>,
}

impl RequestProcessor for TestProcessor {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        match request.code {
            ECHO => Reply::Now(Ok(Some(RemotingCommand::success().with_body(request.body)))),
            SLOW => {
                let millis: u64 = request
                    .ext_field("millis")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(0);
                Reply::Later(Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    Ok(Some(RemotingCommand::success().with_body(request.body)))
                }))
            }
            FAIL => Reply::Now(Err(ProcessError::new(ResponseCode::SystemBusy, "too busy"))),
            COUNT_ONEWAY => {
                self.oneway_seen.fetch_add(1, Ordering::SeqCst);
                Reply::Now(Ok(Some(RemotingCommand::success())))
            }
            _ => unreachable!("dispatcher only routes registered codes"),
        }
    }
}

#[derive(Default)]
struct CloseCounter(AtomicUsize);

impl ConnectionListener for CloseCounter {
    fn on_close(&self, _connection: &ConnectionHandle) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct TestServer {
    handle: ServerHandle,
    oneway_seen: Arc<AtomicUsize>,
    closed: Arc<CloseCounter>,
}

async fn start_server(config: ServerConfig) -> TestServer {
    let oneway_seen = Arc::new(AtomicUsize::new(0));
    let processor = Arc::new(TestProcessor {
        oneway_seen: oneway_seen.clone(),
    });
    let mut dispatcher = Dispatcher::new();
    dispatcher.register_all(&[ECHO, SLOW, FAIL, COUNT_ONEWAY], processor);
    let closed = Arc::new(CloseCounter::default());
    let handle = RemotingServer::new(config, dispatcher)
        .with_connection_listener(closed.clone())
        .start()
        .await
        .unwrap();
    TestServer {
        handle,
        oneway_seen,
        closed,
    }
}

fn loopback_config() -> ServerConfig {
    ServerConfig {
        listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ServerConfig::default()
    }
}

fn slow(millis: u64, body: &'static [u8]) -> RemotingCommand {
    let mut cmd = RemotingCommand::bare_request(SLOW).with_body(body);
    cmd.ext_fields = Some(
        [("millis".to_string(), millis.to_string())]
            .into_iter()
            .collect(),
    );
    cmd
}

#[tokio::test]
async fn pipelined_requests_on_one_connection_match_their_responses() {
    let server = start_server(loopback_config()).await;
    let addr = server.handle.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let client = client.clone();
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            // Mix fast and slow requests so responses come back out of order.
            let request = if i % 3 == 0 {
                let mut r = slow((i % 7) as u64, b"");
                r.body = i.to_be_bytes().to_vec().into();
                r
            } else {
                RemotingCommand::bare_request(ECHO).with_body(i.to_be_bytes().to_vec())
            };
            let response = client
                .invoke_ok(&addr, request, Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(response.body.as_ref(), i.to_be_bytes());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.handle.shutdown();
    server.handle.wait().await;
}

#[tokio::test]
async fn timeouts_are_reported_and_late_responses_dropped() {
    let server = start_server(loopback_config()).await;
    let addr = server.handle.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let err = client
        .invoke(&addr, slow(500, b"late"), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, RemotingError::Timeout { .. }), "{err}");
    // The connection stays usable; the late response is discarded, not misdelivered.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ok = client
        .invoke_ok(
            &addr,
            RemotingCommand::bare_request(ECHO).with_body(&b"next"[..]),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(ok.body.as_ref(), b"next");
}

#[tokio::test]
async fn error_responses_and_oneway() {
    let server = start_server(loopback_config()).await;
    let addr = server.handle.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let err = client
        .invoke_ok(
            &addr,
            RemotingCommand::bare_request(FAIL),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    assert_eq!(err.response_code(), Some(ResponseCode::SystemBusy.as_i32()));
    assert!(err.to_string().contains("too busy"));

    for _ in 0..5 {
        client
            .invoke_oneway(
                &addr,
                RemotingCommand::bare_request(COUNT_ONEWAY),
                Duration::from_secs(2),
            )
            .await
            .unwrap();
    }
    // A request after the oneways is answered, so they were all processed before it.
    client
        .invoke_ok(
            &addr,
            RemotingCommand::bare_request(ECHO),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(server.oneway_seen.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn client_reconnects_after_the_server_restarts() {
    let server = start_server(loopback_config()).await;
    let addr = server.handle.local_addr();
    let client = RemotingClient::new(ClientConfig::default());
    client
        .invoke_ok(
            &addr.to_string(),
            RemotingCommand::bare_request(ECHO),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    server.handle.shutdown();
    server.handle.wait().await;

    let refused = client
        .invoke(
            &addr.to_string(),
            RemotingCommand::bare_request(ECHO),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            RemotingError::ConnectionClosed { .. } | RemotingError::Connect { .. }
        ),
        "{refused}"
    );

    let _again = start_server(ServerConfig {
        listen_addr: addr,
        ..ServerConfig::default()
    })
    .await;
    let mut last = None;
    for _ in 0..50 {
        match client
            .invoke_ok(
                &addr.to_string(),
                RemotingCommand::bare_request(ECHO),
                Duration::from_secs(2),
            )
            .await
        {
            Ok(_) => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("client never reconnected: {last:?}");
}

#[tokio::test]
async fn connect_errors_are_typed() {
    let client = RemotingClient::new(ClientConfig::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = client
        .invoke(
            &format!("127.0.0.1:{port}"),
            RemotingCommand::bare_request(ECHO),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RemotingError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let server = start_server(ServerConfig {
        idle_timeout: Duration::from_millis(200),
        ..loopback_config()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(server.handle.local_addr())
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("server must close the idle connection")
        .unwrap();
    assert_eq!(n, 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.closed.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn frame_limit_is_configurable() {
    let server = start_server(ServerConfig {
        max_frame_size: 1024,
        ..loopback_config()
    })
    .await;
    let addr = server.handle.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    client
        .invoke_ok(
            &addr,
            RemotingCommand::bare_request(ECHO).with_body(vec![7u8; 512]),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    let err = client
        .invoke(
            &addr,
            RemotingCommand::bare_request(ECHO).with_body(vec![7u8; 4096]),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemotingError::ConnectionClosed { .. }),
        "{err}"
    );
    // A fresh connection is served again.
    client
        .invoke_ok(
            &addr,
            RemotingCommand::bare_request(ECHO),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let server = start_server(loopback_config()).await;
    let addr = server.handle.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig {
        serialize_type: SerializeType::RocketMq,
        ..ClientConfig::default()
    });
    let pending = {
        let client = client.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            client
                .invoke_ok(&addr, slow(300, b"done"), Duration::from_secs(5))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.handle.shutdown();
    let response = pending
        .await
        .unwrap()
        .expect("in-flight request completes during shutdown");
    assert_eq!(response.body.as_ref(), b"done");
    tokio::time::timeout(Duration::from_secs(5), server.handle.wait())
        .await
        .expect("server stops");
    // New connections are refused once stopped.
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
}

#[tokio::test]
async fn a_panicking_processor_closes_only_its_connection() {
    struct Panics;
    impl RequestProcessor for Panics {
        fn process(&self, _ctx: &RequestContext, _request: RemotingCommand) -> Reply {
            panic!("processor bug (expected in this test)");
        }
    }
    let mut dispatcher = Dispatcher::new();
    dispatcher.register(99, Arc::new(Panics));
    dispatcher.register(
        ECHO,
        Arc::new(TestProcessor {
            oneway_seen: Arc::default(),
        }),
    );
    let handle = RemotingServer::new(loopback_config(), dispatcher)
        .start()
        .await
        .unwrap();
    let addr = handle.local_addr().to_string();
    let victim = RemotingClient::new(ClientConfig::default());
    let err = victim
        .invoke(
            &addr,
            RemotingCommand::bare_request(99),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemotingError::ConnectionClosed { .. }),
        "{err}"
    );
    let bystander = RemotingClient::new(ClientConfig::default());
    bystander
        .invoke_ok(
            &addr,
            RemotingCommand::bare_request(ECHO),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
}

/// Resident memory of this process in bytes (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Thirty clients each announce a 16 MiB frame and trickle 15 MiB of it: the server holds
/// at most its budget for them (the rest are closed), memory stays bounded, and an ordinary
/// client is served throughout; once they are gone a legitimate large frame goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_frames_are_bounded_by_a_server_wide_budget() {
    use tokio::io::AsyncWriteExt;
    const BUDGET: usize = 40 * 1024 * 1024;
    let server = start_server(ServerConfig {
        max_buffered_frame_bytes: BUDGET,
        ..loopback_config()
    })
    .await;
    let addr = server.handle.local_addr();
    let before = rss_bytes();
    let mut hostile = Vec::new();
    for _ in 0..30 {
        hostile.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut head = Vec::new();
            head.extend_from_slice(&(16i32 * 1024 * 1024).to_be_bytes());
            head.extend_from_slice(&0i32.to_be_bytes());
            if s.write_all(&head).await.is_err() {
                return false;
            }
            let chunk = vec![0x5Au8; 1024 * 1024];
            for _ in 0..15 {
                if s.write_all(&chunk).await.is_err() {
                    return false; // closed by the server
                }
            }
            // Still open: hold the connection (and the server's buffer) for a while.
            tokio::time::sleep(Duration::from_secs(3)).await;
            true
        }));
    }
    let client = RemotingClient::new(ClientConfig::default());
    let echo = client
        .invoke(
            &addr.to_string(),
            RemotingCommand::bare_request(ECHO).with_body("hi"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(
        &echo.body[..],
        b"hi",
        "ordinary clients are served meanwhile"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let grown = rss_bytes().saturating_sub(before);
    let mut kept = 0;
    for h in hostile {
        kept += usize::from(h.await.unwrap());
    }
    assert!(
        kept <= BUDGET / (16 * 1024 * 1024) + 1,
        "{kept} hostile connections kept"
    );
    assert!(kept < 30, "the budget must have refused some");
    assert!(
        grown < (BUDGET + 48 * 1024 * 1024) as u64,
        "RSS grew by {} MiB with a {} MiB budget",
        grown >> 20,
        BUDGET >> 20
    );
    // A legitimate 5 MiB frame fits once the hostile ones are gone.
    let big = vec![7u8; 5 * 1024 * 1024];
    let echo = client
        .invoke(
            &addr.to_string(),
            RemotingCommand::bare_request(ECHO).with_body(big.clone()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(echo.body.len(), big.len());
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once() {
    let server = start_server(ServerConfig {
        max_connections: 3,
        ..loopback_config()
    })
    .await;
    let addr = server.handle.local_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0, "the fourth connection is closed");
    drop(held);
    // Room again once the others are gone.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = RemotingClient::new(ClientConfig::default());
    client
        .invoke(
            &addr.to_string(),
            RemotingCommand::bare_request(ECHO),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
}

/// Pushes a oneway command back to the requesting connection, as a broker's transaction
/// check does.
struct PushBack;

const PUSH_BACK: i32 = 5;

impl RequestProcessor for PushBack {
    fn process(&self, ctx: &RequestContext, request: RemotingCommand) -> Reply {
        if request.body.is_empty() {
            panic!("a processor bug");
        }
        let pushed = ctx
            .connection
            .send_oneway(RemotingCommand::bare_request(PUSH_BACK).with_body(request.body))
            .is_ok();
        // Answers whether the push was queued and whom the server saw.
        let answer = format!("{pushed} {}", ctx.connection.peer());
        Reply::Now(Ok(Some(RemotingCommand::success().with_body(answer))))
    }
}

/// Records what a server sends the client on its own.
struct Pushed(tokio::sync::mpsc::UnboundedSender<(String, RemotingCommand)>);

impl rocketmq_common::remoting::ClientRequestHandler for Pushed {
    fn handle(&self, addr: &str, request: RemotingCommand) -> Option<RemotingCommand> {
        let _ = self.0.send((addr.to_string(), request));
        None
    }
}

#[tokio::test]
async fn in_process_requests_are_served_like_socket_ones() {
    let oneway_seen = Arc::new(AtomicUsize::new(0));
    let mut dispatcher = Dispatcher::new();
    dispatcher.register_all(
        &[ECHO, SLOW, FAIL, COUNT_ONEWAY],
        Arc::new(TestProcessor {
            oneway_seen: oneway_seen.clone(),
        }),
    );
    dispatcher.register(PUSH_BACK, Arc::new(PushBack));
    let closed = Arc::new(CloseCounter::default());
    let server =
        RemotingServer::new(loopback_config(), dispatcher).with_connection_listener(closed.clone());
    let endpoint = server.in_process();
    let handle = server.start().await.unwrap();
    let (pushed_tx, mut pushed) = tokio::sync::mpsc::unbounded_channel();
    let client = RemotingClient::with_handler(ClientConfig::default(), Arc::new(Pushed(pushed_tx)));
    // Not the server's socket address: requests to it can only go in process.
    let addr = "10.255.255.1:10911";
    let peer: SocketAddr = "127.0.0.1:8081".parse().unwrap();
    client.attach_in_process(addr, &endpoint, peer);
    let t = Duration::from_secs(5);

    // Concurrent requests, answered now and later, each get their own response.
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut request = if i % 3 == 0 {
                slow((i % 7) as u64, b"")
            } else {
                RemotingCommand::bare_request(ECHO)
            };
            request.body = i.to_be_bytes().to_vec().into();
            let response = client.invoke_ok(addr, request, t).await.unwrap();
            assert!(response.is_response());
            assert_eq!(response.body.as_ref(), i.to_be_bytes());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    // Errors, unknown codes and timeouts as over a socket.
    let err = client
        .invoke_ok(addr, RemotingCommand::bare_request(FAIL), t)
        .await
        .unwrap_err();
    assert_eq!(err.response_code(), Some(ResponseCode::SystemBusy.as_i32()));
    let err = client
        .invoke_ok(addr, RemotingCommand::bare_request(99), t)
        .await
        .unwrap_err();
    assert_eq!(
        err.response_code(),
        Some(ResponseCode::RequestCodeNotSupported.as_i32())
    );
    let err = client
        .invoke(addr, slow(500, b"late"), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, RemotingError::Timeout { .. }), "{err}");

    // Oneway requests are processed; nobody waits for them.
    for _ in 0..3 {
        client
            .invoke_oneway(addr, RemotingCommand::bare_request(COUNT_ONEWAY), t)
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + t;
    while oneway_seen.load(Ordering::SeqCst) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "oneways not processed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // What the server sends on its own reaches the client's handler, named by the address.
    let response = client
        .invoke_ok(
            addr,
            RemotingCommand::bare_request(PUSH_BACK).with_body(&b"check"[..]),
            t,
        )
        .await
        .unwrap();
    assert_eq!(response.body.as_ref(), b"true 127.0.0.1:8081");
    let (from, command) = tokio::time::timeout(t, pushed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, addr);
    assert!(command.is_oneway());
    assert_eq!(command.body.as_ref(), b"check");

    // Other addresses still go over sockets.
    let err = client
        .invoke(
            "127.0.0.1:1",
            RemotingCommand::bare_request(ECHO),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RemotingError::Connect { .. } | RemotingError::ConnectTimeout { .. }
        ),
        "{err}"
    );

    // A panicking processor fails its request only.
    let err = client
        .invoke_ok(addr, RemotingCommand::bare_request(PUSH_BACK), t)
        .await
        .unwrap_err();
    assert_eq!(
        err.response_code(),
        Some(ResponseCode::SystemError.as_i32())
    );
    client
        .invoke_ok(addr, RemotingCommand::bare_request(ECHO), t)
        .await
        .unwrap();

    // Detaching, like dropping the client, closes the connection as a socket's close would.
    assert_eq!(closed.0.load(Ordering::SeqCst), 0);
    let other = RemotingClient::new(ClientConfig::default());
    other.attach_in_process(addr, &endpoint, peer);
    other.detach_in_process(addr);
    assert_eq!(closed.0.load(Ordering::SeqCst), 1);

    // A slow request in flight when the server shuts down is waited for; afterwards calls
    // fail as on a closed socket.
    let slow_call = {
        let client = client.clone();
        tokio::spawn(async move { client.invoke_ok(addr, slow(300, b"last"), t).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    handle.shutdown();
    handle.wait().await;
    assert_eq!(slow_call.await.unwrap().unwrap().body.as_ref(), b"last");
    let err = client
        .invoke(addr, RemotingCommand::bare_request(ECHO), t)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemotingError::ConnectionClosed { .. }),
        "{err}"
    );
    drop(client);
    assert_eq!(closed.0.load(Ordering::SeqCst), 2);
}
