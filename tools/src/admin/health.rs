//! `healthCheck`: one HTTP/1.1 GET of a server's `/healthz`, for the container image's
//! HEALTHCHECK. The images carry no shell and no curl, so the probe lives in a binary that
//! is there anyway; plain HTTP over a TCP socket needs no HTTP client dependency.

use std::io::Write;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::AdminError;

/// Most response bytes read: the status line and headers of a health answer.
const MAX_RESPONSE: usize = 8 * 1024;

/// `host:port` and path of an `http://` URL.
fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// URLs are probed".to_string())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() || !authority.contains(':') {
        return Err("the URL needs host:port".into());
    }
    Ok((authority, path))
}

/// Probes `url`; prints `ok` and succeeds only on a 200 answer within `timeout`.
pub async fn health_check(
    url: &str,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let unhealthy = |detail: String| AdminError::Unhealthy {
        url: url.to_string(),
        detail,
    };
    let (authority, path) = split_url(url).map_err(unhealthy)?;
    let status = tokio::time::timeout(timeout, fetch_status(authority, path))
        .await
        .map_err(|_| unhealthy(format!("no answer within {timeout:?}")))?
        .map_err(unhealthy)?;
    if status != 200 {
        return Err(unhealthy(format!("answered HTTP {status}")));
    }
    writeln!(out, "ok")?;
    Ok(())
}

async fn fetch_status(authority: &str, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 1024];
    while !response.windows(2).any(|w| w == b"\r\n") && response.len() < MAX_RESPONSE {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&response)
}

/// The status code of `HTTP/1.x NNN ...`.
fn parse_status_line(response: &[u8]) -> Result<u16, String> {
    let line = response
        .split(|b| *b == b'\r')
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code
            .parse()
            .map_err(|_| format!("malformed status line {line:?}")),
        _ => Err(format!("not an HTTP answer: {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_status_lines() {
        assert_eq!(
            split_url("http://127.0.0.1:5557/healthz"),
            Ok(("127.0.0.1:5557", "/healthz"))
        );
        assert_eq!(split_url("http://h:1"), Ok(("h:1", "/")));
        assert!(split_url("https://h:1/x").is_err());
        assert!(split_url("http://host/x").is_err());
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Ok(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 Unavailable\r\n"), Ok(503));
        assert!(parse_status_line(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status_line(b"").is_err());
    }

    /// Answers each connection's first request with 200 for `/healthz`, 404 otherwise.
    async fn tiny_server() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                let answer: &[u8] = if buf[..n].starts_with(b"GET /healthz ") {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n"
                } else {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
                };
                s.write_all(answer).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn probes_a_live_server_and_reports_a_dead_one() {
        let addr = tiny_server().await;
        let mut out = Vec::new();
        let t = Duration::from_secs(5);
        health_check(&format!("http://{addr}/healthz"), t, &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"ok\n");
        let missing = health_check(&format!("http://{addr}/nothing-here"), t, &mut out)
            .await
            .unwrap_err();
        assert!(missing.to_string().contains("HTTP 404"), "{missing}");
        let dead = health_check("http://127.0.0.1:1/healthz", t, &mut out)
            .await
            .unwrap_err();
        assert!(dead.to_string().contains("cannot connect"), "{dead}");
    }
}
