//! A typed client of the daemon's control API, used by the CLI and the tray.
//!
//! [`Client::discover`] finds a running daemon of an installation through the files it writes in
//! its data directory ([`DAEMON_FILE`], [`TOKEN_FILE`]), and checks that the process named there
//! runs and that what answers on its port is that daemon ([`Hello`]) before it sends the token.
//! Every call has a deadline: a stopped or wedged daemon is an error, never a hang.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::*;
use crate::report::InstallationStatus;

/// How long a client waits for the daemon to answer a quick call; runs get longer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long discovery waits for the daemon's hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A test or a waited-for sync reads the whole directory: bounded, but generously.
const RUN_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The daemon did not answer (not running, or gone).
    Unreachable(String),
    /// The daemon's process runs but does not answer (stopped, wedged, or out of connections).
    NotAnswering(String),
    /// Something other than this installation's daemon answers on its port; it was sent nothing.
    Impostor(String),
    /// The daemon answered with an error body.
    Api { status: u16, body: ErrorBody },
    /// The answer was not what this client understands (version mismatch?).
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable(message) => {
                write!(f, "the orgsync daemon did not answer: {message}")
            }
            ClientError::NotAnswering(message) | ClientError::Impostor(message) => {
                f.write_str(message)
            }
            ClientError::Api { body, .. } => f.write_str(&body.message),
            ClientError::Protocol(message) => {
                write!(f, "unexpected answer from the orgsync daemon: {message}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// The API error code, if the daemon answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.code),
            _ => None,
        }
    }
}

/// A connection to one daemon.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl Client {
    pub fn new(base_url: &str, token: &str) -> Client {
        // Without TLS there is nothing for the builder to fail on; were it to, the default
        // client differs only in proxies, which loopback addresses bypass anyway.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_TIMEOUT)
            // The daemon closes a connection idle for 10 s; reusing one it is closing would fail.
            .pool_idle_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .unwrap_or_default();
        Client {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The daemon of the installation whose data directory is `data_dir`, if one is running and
    /// answers. `Ok(None)` when none runs (no `daemon.json`, or one left by a daemon that died);
    /// an error when its process runs but does not answer, when something else answers on its
    /// port (nothing is sent to it, the token included), or when it refuses us.
    pub async fn discover(data_dir: &Path) -> Result<Option<Client>, ClientError> {
        let Some(info) = read_daemon_info(data_dir) else {
            return Ok(None);
        };
        let Ok(token) = std::fs::read_to_string(data_dir.join(TOKEN_FILE)) else {
            return Ok(None);
        };
        if !is_daemon_process(info.pid) {
            return Ok(None); // a file left by a daemon that died
        }
        let client = Client::new(&info.url, &token);
        let nonce = nonce();
        let hello_url = format!("{}?nonce={nonce}", client.url(paths::HELLO));
        let not_answering = |why: String| {
            ClientError::NotAnswering(format!(
                "orgsyncd (pid {}) is running but does not answer on {} ({why}); it may be stopped (SIGSTOP) or overloaded. Check it with `systemctl --user status orgsyncd` (or the system unit), or stop it",
                info.pid, info.url
            ))
        };
        let impostor = |what: String| {
            ClientError::Impostor(format!(
                "something other than orgsyncd (pid {}) answers on {} ({what}); nothing was sent to it, the API token included. Find what listens there (`ss -ltnp`) and stop it, or restart orgsyncd",
                info.pid, info.url
            ))
        };
        // A daemon at its connection cap closes new connections until idle ones time out: keep
        // asking for a few seconds before saying it does not answer.
        let deadline = std::time::Instant::now() + HELLO_TIMEOUT;
        let response = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match client.http.get(&hello_url).timeout(left).send().await {
                Ok(response) => break response,
                Err(e) if e.is_timeout() || left.is_zero() => {
                    return Err(not_answering(format!("no hello within {HELLO_TIMEOUT:?}")));
                }
                Err(e) if std::time::Instant::now() + Duration::from_millis(200) >= deadline => {
                    return Err(not_answering(e.to_string()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let answer: Option<Hello> = match response.status().is_success() {
            true => response.json().await.ok(),
            false => None,
        };
        let expected = daemon_proof(&token, info.port, &nonce);
        match answer {
            Some(hello) if hello.proof == expected && hello.pid == info.pid => Ok(Some(client)),
            Some(hello) if hello.proof == expected => Err(impostor(format!(
                "a daemon of this installation, but pid {}",
                hello.pid
            ))),
            Some(_) => Err(impostor("it cannot prove it holds the API token".into())),
            None => Err(impostor("it does not speak orgsyncd's API".into())),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
        } else {
            let body = serde_json::from_slice(&bytes).map_err(|_| {
                ClientError::Protocol(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ))
            })?;
            Err(ClientError::Api {
                status: status.as_u16(),
                body,
            })
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(self.http.get(self.url(path))).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn status(&self) -> Result<DaemonStatus, ClientError> {
        self.get(paths::STATUS).await
    }

    /// Runs a dry run and returns its report.
    pub async fn test(&self) -> Result<TestDone, ClientError> {
        let request = self
            .http
            .post(self.url(paths::TEST))
            .json(&serde_json::json!({}))
            .timeout(RUN_TIMEOUT);
        self.call(request).await
    }

    /// Starts a sync and returns at once.
    pub async fn start_sync(&self, allow_removals: bool) -> Result<RunStarted, ClientError> {
        self.post(
            paths::SYNC,
            &SyncRequest {
                allow_removals,
                wait: false,
            },
        )
        .await
    }

    /// Runs a sync and returns its report when it is done.
    pub async fn sync(&self, allow_removals: bool) -> Result<SyncDone, ClientError> {
        let request = self
            .http
            .post(self.url(paths::SYNC))
            .json(&SyncRequest {
                allow_removals,
                wait: true,
            })
            .timeout(RUN_TIMEOUT);
        self.call(request).await
    }

    pub async fn start_polling(&self) -> Result<PollingState, ClientError> {
        self.post(paths::POLLING_START, &serde_json::json!({}))
            .await
    }

    pub async fn stop_polling(&self) -> Result<PollingState, ClientError> {
        self.post(paths::POLLING_STOP, &serde_json::json!({})).await
    }

    pub async fn clear_cache(&self) -> Result<InstallationStatus, ClientError> {
        self.post(paths::CLEAR_CACHE, &serde_json::json!({})).await
    }

    pub async fn history(&self, limit: usize) -> Result<History, ClientError> {
        self.get(&format!("{}?limit={limit}", paths::HISTORY)).await
    }

    pub async fn config(&self) -> Result<ConfigView, ClientError> {
        self.get(paths::CONFIG).await
    }

    pub async fn update_config(&self, update: &ConfigUpdate) -> Result<ConfigView, ClientError> {
        self.call(self.http.put(self.url(paths::CONFIG)).json(update))
            .await
    }

    pub async fn login(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<LoginDone, ClientError> {
        self.post(
            paths::LOGIN,
            &LoginRequest {
                client_id: client_id.to_string(),
                client_secret: client_secret.to_string(),
            },
        )
        .await
    }

    pub async fn logout(&self) -> Result<InstallationStatus, ClientError> {
        self.post(paths::LOGOUT, &serde_json::json!({})).await
    }

    /// Follows the event stream, calling `on_event` for each event until the stream ends or
    /// `on_event` returns false.
    pub async fn follow_events(
        &self,
        mut on_event: impl FnMut(Event) -> bool,
    ) -> Result<(), ClientError> {
        // A stream has no end to wait for: only connecting is bounded (keep-alives show it lives).
        let response = self
            .http
            .get(self.url(paths::EVENTS))
            .bearer_auth(&self.token)
            .timeout(RUN_TIMEOUT)
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            return Err(match serde_json::from_str(&text) {
                Ok(body) => ClientError::Api { status, body },
                Err(_) => ClientError::Protocol(format!("HTTP {status}: {text}")),
            });
        }
        let mut stream = response.bytes_stream();
        let mut events = SseBuffer::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ClientError::Unreachable(e.to_string()))?;
            for data in events.push(&chunk) {
                let event: Event = serde_json::from_str(&data)
                    .map_err(|e| ClientError::Protocol(format!("bad event {data:?}: {e}")))?;
                if !on_event(event) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Server-Sent Events as they arrive in chunks: bytes are kept until an event is complete
/// (ended by a blank line) and only then decoded, so a character split across two chunks
/// arrives whole. Yields each event's `data` (its `data:` lines joined); comments (keep-alives)
/// and other fields are dropped, as this API uses none.
#[derive(Default)]
struct SseBuffer {
    pending: Vec<u8>,
}

impl SseBuffer {
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = find_blank_line(&self.pending) {
            let block: Vec<u8> = self.pending.drain(..end).collect();
            let text = String::from_utf8_lossy(&block);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|value| value.strip_prefix(' ').unwrap_or(value))
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

/// The end (past the blank line) of the first complete event in `bytes`: `\n\n`, or `\r\n\r\n`.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `pid` is a running orgsyncd (Linux: its `/proc` entry names it).
fn is_daemon_process(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|name| name.trim() == "orgsyncd")
}

/// 128 random bits as hex, for the hello; the time, if the OS has no randomness to give.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes = now.as_nanos().to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The daemon file of an installation, if present and readable.
pub fn read_daemon_info(data_dir: &Path) -> Option<DaemonInfo> {
    let text = std::fs::read_to_string(data_dir.join(DAEMON_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_split_inside_a_character_arrives_whole() {
        let event = "event: runStarted\ndata: {\"name\":\"Zoë\"}\n\n".as_bytes();
        let split = event.iter().position(|&b| b == 0xc3).unwrap() + 1; // inside 'ë'
        let mut buffer = SseBuffer::default();
        assert!(buffer.push(&event[..split]).is_empty());
        assert_eq!(buffer.push(&event[split..]), vec!["{\"name\":\"Zoë\"}"]);
    }

    #[test]
    fn comments_are_skipped_and_events_split_at_blank_lines() {
        let mut buffer = SseBuffer::default();
        let out = buffer.push(b": keep-alive\n\ndata: 1\n\ndata: a\ndata: b\r\n\r\ndata: tail");
        assert_eq!(out, vec!["1", "a\nb"]);
        assert_eq!(buffer.push(b"\n\n"), vec!["tail"]);
    }
}
