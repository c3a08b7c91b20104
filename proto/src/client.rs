//! A typed client of the daemon's control API, used by the CLI and the tray.
//!
//! [`Client::discover`] finds a running daemon of an installation through the files it writes in
//! its data directory ([`DAEMON_FILE`], [`TOKEN_FILE`]) and checks that it answers.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::*;
use crate::report::InstallationStatus;

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The daemon did not answer (not running, or gone).
    Unreachable(String),
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
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .expect("an HTTP client without TLS always builds");
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
    /// answers. `Ok(None)` when none runs; an error when one runs but refuses us.
    pub async fn discover(data_dir: &Path) -> Result<Option<Client>, ClientError> {
        let Some(info) = read_daemon_info(data_dir) else {
            return Ok(None);
        };
        let Ok(token) = std::fs::read_to_string(data_dir.join(TOKEN_FILE)) else {
            return Ok(None);
        };
        let client = Client::new(&info.url, &token);
        match client.status().await {
            Ok(_) => Ok(Some(client)),
            Err(ClientError::Unreachable(_)) => Ok(None), // a stale file from a daemon that died
            Err(other) => Err(other),
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
        self.post(paths::TEST, &serde_json::json!({})).await
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
            .timeout(Duration::from_secs(24 * 3600));
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
        let response = self
            .http
            .get(self.url(paths::EVENTS))
            .bearer_auth(&self.token)
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
        let mut buffer = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ClientError::Unreachable(e.to_string()))?;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            // SSE events end with a blank line; only `data:` lines matter here.
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let event: Event = serde_json::from_str(&data.join("\n"))
                    .map_err(|e| ClientError::Protocol(format!("bad event {block:?}: {e}")))?;
                if !on_event(event) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The daemon file of an installation, if present and readable.
pub fn read_daemon_info(data_dir: &Path) -> Option<DaemonInfo> {
    let text = std::fs::read_to_string(data_dir.join(DAEMON_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}
