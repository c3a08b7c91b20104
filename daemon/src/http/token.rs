//! Access tokens: a cache that renews a token before it expires (and when a data call says it
//! no longer counts), and the OAuth 2.0 token request every vendor's endpoint takes (a form
//! POST answered by `access_token` and `expires_in`).

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::{Http, HttpError, standard_verdict};
use crate::secrets::{Secret, SecretKey, Secrets};

/// A token as the endpoint issued it.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: Secret,
    pub lifetime: Duration,
    /// Whether another process may use it (a DPoP-bound token is bound to this process's key).
    pub portable: bool,
}

struct Cached {
    value: Secret,
    renew_at: Instant,
}

/// The current token of one client. Callers that find it due wait for one renewal together.
/// With a store, the token outlives the process (the next `orgsync` run or daemon poll uses it
/// instead of signing in again), kept as a secret and bound to what it was issued for.
#[derive(Default)]
pub struct TokenCache {
    current: tokio::sync::Mutex<Option<Cached>>,
    store: Option<Store>,
}

/// Where a token is kept between runs: the secret, and what the token was issued for (the
/// token endpoint, client and scope), so a changed configuration never uses a stale one.
struct Store {
    secrets: Secrets,
    key: SecretKey,
    issued_for: String,
}

impl Store {
    /// The stored token, if it is for this client and not yet due: `<renew at>:<for>:<token>`.
    fn load(&self) -> Option<Cached> {
        let stored = self.secrets.get(self.key).ok()??;
        let (renew_at, rest) = stored.expose().split_once(':')?;
        let token = rest.strip_prefix(&format!("{}:", self.issued_for))?;
        let renew_at: u64 = renew_at.parse().ok()?;
        let left = renew_at.checked_sub(unix_now())?;
        Some(Cached {
            value: Secret::new(token),
            renew_at: Instant::now() + Duration::from_secs(left),
        })
    }

    fn save(&self, value: &Secret, renew_in: Duration) {
        let renew_at = unix_now() + renew_in.as_secs();
        let stored = Secret::new(format!("{renew_at}:{}:{}", self.issued_for, value.expose()));
        if let Err(e) = self.secrets.set(self.key, &stored) {
            tracing::debug!("the access token is not kept for the next run: {e}");
        }
    }

    fn forget(&self) {
        let _ = self.secrets.delete(self.key);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenCache {
    /// A cache that keeps its token in `secrets` under `key` between runs; `issued_for` names
    /// the endpoint, client and scope (no secret: it is stored beside the token).
    pub fn stored(secrets: Secrets, key: SecretKey, issued_for: String) -> TokenCache {
        TokenCache {
            current: tokio::sync::Mutex::default(),
            store: Some(Store {
                secrets,
                key,
                issued_for: issued_for.replace(':', "|"),
            }),
        }
    }

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
        if current.is_none() {
            *current = self.store.as_ref().and_then(Store::load);
        }
        if let Some(cached) = current.as_ref()
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.value.clone());
        }
        let token = fetch().await?;
        let margin = (token.lifetime / 5).min(Duration::from_secs(300));
        let renew_in = token.lifetime.saturating_sub(margin);
        if let Some(store) = self.store.as_ref().filter(|_| token.portable) {
            store.save(&token.value, renew_in);
        }
        *current = Some(Cached {
            value: token.value.clone(),
            renew_at: Instant::now() + renew_in,
        });
        Ok(token.value)
    }

    /// Forgets the token, kept or not, so the next use signs in.
    pub async fn clear(&self) {
        *self.current.lock().await = None;
        if let Some(store) = &self.store {
            store.forget();
        }
    }

    /// Forgets `rejected`, which a data call refused, unless another caller replaced it.
    pub async fn forget(&self, rejected: &Secret) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.value == *rejected) {
            *current = None;
            if let Some(store) = &self.store {
                store.forget();
            }
        }
    }
}

/// Why a token request failed.
#[derive(Debug)]
pub enum TokenError {
    Http(HttpError),
    /// The endpoint refused: its status, headers and body, for the vendor's classification.
    /// The body is never logged as it is (token endpoints may echo what was sent).
    Refused {
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    },
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<Seconds>,
    #[serde(default)]
    token_type: Option<String>,
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

/// What a token request sends: a form (the RFC) or JSON (OneLogin).
pub enum TokenBody<'a> {
    Form(&'a [(&'a str, &'a str)]),
    Json(serde_json::Value),
}

/// A token request: the endpoint, the body, HTTP Basic client authentication when given, and
/// extra headers (a DPoP proof).
pub struct TokenRequest<'a> {
    pub url: &'a str,
    pub body: TokenBody<'a>,
    pub basic: Option<(&'a str, &'a Secret)>,
    pub headers: Vec<(&'static str, String)>,
}

/// A token and the type the endpoint gave it (`Bearer`, `DPoP`).
pub struct Issued {
    pub token: Token,
    pub token_type: String,
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
    let request = TokenRequest {
        url,
        body: TokenBody::Form(form),
        basic,
        headers: Vec::new(),
    };
    Ok(request_token_with(http, &request).await?.token)
}

/// [`request_token`] with any body and headers, returning the token's type too.
///
/// # Errors
/// As [`request_token`].
pub async fn request_token_with(
    http: &Http,
    request: &TokenRequest<'_>,
) -> Result<Issued, TokenError> {
    let answer = http
        .send(
            |client| {
                let mut builder = client
                    .post(request.url)
                    .header("Accept", "application/json");
                builder = match &request.body {
                    TokenBody::Form(form) => builder.form(form),
                    TokenBody::Json(json) => builder.json(json),
                };
                for (name, value) in &request.headers {
                    builder = builder.header(*name, value);
                }
                match request.basic {
                    Some((id, secret)) => builder.basic_auth(id, Some(secret.expose())),
                    None => builder,
                }
            },
            standard_verdict,
        )
        .await
        .map_err(TokenError::Http)?;
    if !answer.status.is_success() {
        return Err(TokenError::Refused {
            status: answer.status.as_u16(),
            headers: answer.headers,
            body: answer.body,
        });
    }
    let token: TokenResponse = serde_json::from_slice(&answer.body).map_err(|_| {
        TokenError::Http(HttpError::Unexpected {
            url: answer.url.clone(),
            message: "the token endpoint's answer has no access_token".into(),
        })
    })?;
    Ok(Issued {
        token: Token {
            value: Secret::new(token.access_token),
            // An endpoint that does not say is taken at an hour, the usual lifetime.
            lifetime: token
                .expires_in
                .and_then(|s| s.duration())
                .unwrap_or(Duration::from_secs(3600)),
            portable: true,
        },
        token_type: token.token_type.unwrap_or_else(|| "Bearer".into()),
    })
}
