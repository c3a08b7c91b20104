//! A forward HTTP proxy on 127.0.0.1 that records where each request went, for tests of the
//! proxy settings (`http.proxy`, `HTTP_PROXY` / `NO_PROXY`). It takes absolute-form requests
//! (`GET http://host:port/path HTTP/1.1`), opens the target, and relays both ways; `CONNECT`
//! tunnels (HTTPS) are relayed too.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy; dropping it stops accepting.
pub struct Proxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test proxy on 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = relay(client, log).await;
                });
            }
        });
        Proxy { url, seen, task }
    }

    /// `http://127.0.0.1:PORT`, for `http.proxy` or `HTTP_PROXY`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The request targets so far (`http://host:port/path` or `CONNECT host:port`).
    pub fn seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays one client connection (one request per connection is enough for the tests: the
/// proxy answers `Connection: close`).
async fn relay(client: TcpStream, log: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut line = String::new();
    client.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut head = Vec::new();
    loop {
        let mut header = String::new();
        if client.read_line(&mut header).await? == 0 || header == "\r\n" {
            break;
        }
        let name = header
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "proxy-connection" | "connection" | "proxy-authorization"
        ) {
            head.push(header);
        }
    }
    if method == "CONNECT" {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!("CONNECT {target}"));
        let mut upstream = TcpStream::connect(&target).await?;
        client
            .get_mut()
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        tokio::io::copy_bidirectional(client.get_mut(), &mut upstream).await?;
        return Ok(());
    }
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(target.clone());
    let rest = target.strip_prefix("http://").unwrap_or(&target);
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let mut upstream = TcpStream::connect(authority).await?;
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for header in head {
        request.push_str(&header);
    }
    request.push_str("Connection: close\r\n\r\n");
    upstream.write_all(request.as_bytes()).await?;
    // The body (if any) and the answer flow through as they come.
    let buffered = client.buffer().to_vec();
    upstream.write_all(&buffered).await?;
    let mut client = client.into_inner();
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    // Only the answer's end ends the relay (a client may half-close after its request).
    let to_upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        std::future::pending::<()>().await
    };
    let to_client = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = upstream_read.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            client_write.write_all(&buffer[..n]).await?;
        }
        client_write.shutdown().await
    };
    tokio::select! {
        result = to_client => result,
        () = to_upstream => Ok(()),
    }
}
