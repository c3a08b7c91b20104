//! Access tokens: a cache that renews a token before it expires (and when a data call says it
//! no longer counts), and the OAuth 2.0 token request every vendor's endpoint takes (a form
//! POST answered by `access_token` and `expires_in`).

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Http, HttpError, standard_verdict};
use crate::secrets::Secret;

/// A token as the endpoint issued it.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: Secret,
    pub lifetime: Duration,
}

struct Cached {
    value: Secret,
    renew_at: Instant,
}

/// The current token of one client. Callers that find it due wait for one renewal together.
#[derive(Default)]
pub struct TokenCache {
    current: tokio::sync::Mutex<Option<Cached>>,
}

impl TokenCache {
    /// The current token, or a new one from `fetch` when there is none or it is due: a fifth
    /// of its lifetime (at most 5 minutes) before it expires.
    ///
    /// # Errors
    /// Whatever `fetch` fails with.
    pub async fn get<E, Fut>(&self, fetch: impl FnOnce() -> Fut) -> Result<Secret, E>
    where
        Fut: Future<Output = Result<Token, E>>,
    {
        let mut current = self.current.lock().await;
        if let Some(cached) = current.as_ref()
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.value.clone());
        }
        let token = fetch().await?;
        let margin = (token.lifetime / 5).min(Duration::from_secs(300));
        *current = Some(Cached {
            value: token.value.clone(),
            renew_at: Instant::now() + token.lifetime.saturating_sub(margin),
        });
        Ok(token.value)
    }

    /// Forgets `rejected`, which a data call refused, unless another caller replaced it.
    pub async fn forget(&self, rejected: &Secret) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.value == *rejected) {
            *current = None;
        }
    }
}

/// Why a token request failed.
#[derive(Debug)]
pub enum TokenError {
    Http(HttpError),
    /// The endpoint refused: its status and body, for the vendor's classification. The body
    /// is never logged as it is (token endpoints may echo what was sent).
    Refused {
        status: u16,
        body: Vec<u8>,
    },
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<Seconds>,
}

/// `expires_in` as a number (the RFC) or a string (some endpoints).
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(f64),
    Text(String),
}

impl Seconds {
    fn duration(&self) -> Option<Duration> {
        let seconds = match self {
            Seconds::Number(n) => *n,
            Seconds::Text(t) => t.trim().parse().ok()?,
        };
        (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
    }
}

/// POSTs `form` to the token endpoint `url` (with HTTP Basic client authentication when
/// `basic` is given) and reads the token. Temporary failures are retried like any request;
/// a refusal is not.
///
/// # Errors
/// [`TokenError::Refused`] with the endpoint's answer, or the transport's error.
pub async fn request_token(
    http: &Http,
    url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &Secret)>,
) -> Result<Token, TokenError> {
    let answer = http
        .send(
            |client| {
                let request = client
                    .post(url)
                    .header("Accept", "application/json")
                    .form(form);
                match basic {
                    Some((id, secret)) => request.basic_auth(id, Some(secret.expose())),
                    None => request,
                }
            },
            standard_verdict,
        )
        .await
        .map_err(TokenError::Http)?;
    if !answer.status.is_success() {
        return Err(TokenError::Refused {
            status: answer.status.as_u16(),
            body: answer.body,
        });
    }
    let token: TokenResponse = serde_json::from_slice(&answer.body).map_err(|_| {
        TokenError::Http(HttpError::Unexpected {
            url: answer.url.clone(),
            message: "the token endpoint's answer has no access_token".into(),
        })
    })?;
    Ok(Token {
        value: Secret::new(token.access_token),
        // An endpoint that does not say is taken at an hour, the usual lifetime.
        lifetime: token
            .expires_in
            .and_then(|s| s.duration())
            .unwrap_or(Duration::from_secs(3600)),
    })
}
