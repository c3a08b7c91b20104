//! HTTP for every cloud directory and the organization client: one reqwest client per endpoint
//! with the admin's CA file, timeouts and proxy, and [`Http::send`], which retries what the
//! vendor says is temporary (429, 5xx, vendor quota codes) with jittered backoff, honouring
//! `Retry-After` (seconds or an HTTP date) and vendor reset headers, within a total wait budget.
//! Every answer is read whole before it is returned: a connection dropped mid-body is retried,
//! never handed on as a short page.

mod api;
pub mod jwt;
mod link;
mod pace;
mod token;

pub use api::{Api, ApiClient, http_error};
pub use link::link_target;
pub use pace::{Budget, Pacer};
pub use token::{
    Issued, Token, TokenBody, TokenCache, TokenError, TokenRequest, request_token,
    request_token_with,
};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

/// Where a client connects and how long it waits.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Extra CA certificate (PEM) to trust, e.g. a corporate proxy's or a private server's.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// For one request, the whole body included.
    pub timeout: Duration,
    /// An explicit proxy for every request; without one, `HTTPS_PROXY` / `NO_PROXY` apply.
    pub proxy: Option<String>,
    /// Hosts the explicit proxy is not used for (comma-separated, like `NO_PROXY`).
    pub no_proxy: Option<String>,
    pub retry: RetryPolicy,
}

/// How long to keep trying.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: usize,
    /// The first backoff when the server names no wait; it doubles (with jitter) from there.
    pub first_backoff: Duration,
    /// All waits of one request together; a server asking for more makes the request fail.
    pub total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            first_backoff: Duration::from_millis(500),
            total_wait: Duration::from_secs(300),
        }
    }
}

/// A complete answer: status, headers and the whole body.
#[derive(Clone, Debug)]
pub struct Answer {
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text, for messages (lossy, shortened).
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(2000) {
            Some((end, _)) => format!("{}…", &text[..end]),
            None => text.to_string(),
        }
    }

    /// The body as JSON of type `T`.
    ///
    /// # Errors
    /// When the body is not that JSON: the message names the URL and what serde found.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Unexpected {
            url: self.url.clone(),
            message: format!("the answer is not the JSON expected ({e})"),
        })
    }
}

/// Whether an answer is worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand the answer to the caller (success or a lasting error).
    Done,
    /// Temporary: try again, after the wait the server named if it named one.
    Retry(Option<Duration>),
}

/// The usual rule: 429, 500, 502, 503 and 504 are temporary, waiting for `Retry-After`.
pub fn standard_verdict(answer: &Answer) -> Verdict {
    match answer.status.as_u16() {
        429 | 500 | 502 | 503 | 504 => Verdict::Retry(retry_after(&answer.headers)),
        _ => Verdict::Done,
    }
}

/// Why a request failed after its retries.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url} did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    /// The server kept answering with a temporary error; `body` is its last answer.
    #[error(
        "{url} answered HTTP {status} {attempts} times in a row (waited {waited} s in all); the last answer: {body}"
    )]
    GaveUp {
        url: String,
        status: u16,
        attempts: usize,
        waited: u64,
        body: String,
    },
    #[error("unexpected answer from {url}: {message}")]
    Unexpected { url: String, message: String },
    #[error("{0}")]
    Setup(String),
}

/// A client for one service, with its settings.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    settings: HttpSettings,
}

impl Http {
    /// # Errors
    /// When the CA file cannot be read or holds no certificate, or the proxy URL is not one.
    pub fn new(settings: HttpSettings) -> Result<Http, HttpError> {
        let version = env!("CARGO_PKG_VERSION");
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(format!("orgsync/{version}"));
        if let Some(path) = &settings.ca_file {
            for cert in load_ca(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(url) = &settings.proxy {
            let proxy = reqwest::Proxy::all(url.as_str())
                .map_err(|e| HttpError::Setup(format!("proxy {url:?} is not usable: {e}")))?
                .no_proxy(
                    settings
                        .no_proxy
                        .as_deref()
                        .and_then(reqwest::NoProxy::from_string),
                );
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Setup(format!("cannot set up HTTPS: {}", chain(&e))))?;
        Ok(Http { client, settings })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The longest a request may wait for the server, all waits together.
    pub fn max_wait(&self) -> Duration {
        self.settings.retry.total_wait
    }

    /// Sends the request `build` makes (it is built again for every attempt) until `verdict`
    /// says the answer is done, a connection or body failure persists, or the retry budget is
    /// spent. Returns the final answer, whatever its status, for the caller to interpret.
    ///
    /// # Errors
    /// When no final answer came: unreachable, timed out, or still temporary at the end.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
        verdict: impl Fn(&Answer) -> Verdict,
    ) -> Result<Answer, HttpError> {
        let policy = self.settings.retry;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(policy.first_backoff)
            .with_max_delay(Duration::from_secs(60))
            .with_jitter()
            .without_max_times()
            .build();
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (failure, asked) = match self.attempt(&build).await {
                Ok(answer) => match verdict(&answer) {
                    Verdict::Done => return Ok(answer),
                    Verdict::Retry(asked) => (Failure::Answer(answer), asked),
                },
                Err(error) => (Failure::Transport(error), None),
            };
            let wait = asked.unwrap_or_else(|| backoff.next().unwrap_or(policy.first_backoff));
            if attempt >= policy.attempts || waited + wait > policy.total_wait {
                return Err(failure.into_error(attempt, waited.max(started.elapsed())));
            }
            tracing::warn!(
                "{}; retrying in {:.1} s (attempt {attempt} of {})",
                failure.describe(),
                wait.as_secs_f32(),
                policy.attempts
            );
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    /// One attempt, the body read whole.
    async fn attempt(
        &self,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, HttpError> {
        let request = build(&self.client)
            .build()
            .map_err(|e| HttpError::Setup(format!("cannot build the request: {e}")))?;
        let url = redacted_url(request.url());
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.transport_error(&url, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&url, &e))?
            .to_vec();
        Ok(Answer {
            url,
            status,
            headers,
            body,
        })
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> HttpError {
        if e.is_timeout() {
            HttpError::Timeout {
                url: url.to_string(),
                seconds: self.settings.timeout.as_secs(),
            }
        } else {
            HttpError::Unreachable {
                url: url.to_string(),
                message: chain(e),
            }
        }
    }
}

/// What an attempt that is to be retried ended with.
enum Failure {
    Answer(Answer),
    Transport(HttpError),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Answer(answer) => format!("{} answered HTTP {}", answer.url, answer.status),
            Failure::Transport(error) => error.to_string(),
        }
    }

    fn into_error(self, attempts: usize, waited: Duration) -> HttpError {
        match self {
            Failure::Answer(answer) => HttpError::GaveUp {
                body: answer.text(),
                url: answer.url,
                status: answer.status.as_u16(),
                attempts,
                waited: waited.as_secs(),
            },
            Failure::Transport(error) => error,
        }
    }
}

/// The URL without its query, which may carry paging tokens nobody needs in a log.
fn redacted_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

/// Percent-encodes a query parameter's value (everything but RFC 3986's unreserved characters).
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char);
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `Retry-After` as a wait: seconds, or an HTTP date (a date in the past is no wait).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// A reset header holding the Unix time (seconds) a rate-limit window ends (Okta's
/// `X-Rate-Limit-Reset`), as a wait from now. "Now" is the answer's `Date` when it has one, so a
/// clock that is off here does not shorten or stretch the wait.
pub fn reset_at_epoch(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let epoch: i64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
    let now = headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map_or_else(|| chrono::Utc::now().timestamp(), |d| d.timestamp());
    Some(Duration::from_secs((epoch - now).max(0).unsigned_abs()))
}

/// A reset header holding the seconds until a rate-limit window ends (OneLogin's
/// `X-RateLimit-Reset`).
pub fn reset_in_seconds(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let seconds: u64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

fn load_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let fail = |message: String| {
        HttpError::Setup(format!(
            "cannot use the CA file {}: {message}",
            path.display()
        ))
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("it holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// An error with its causes, which is where reqwest says what went wrong.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
