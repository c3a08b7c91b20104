//! The Okta Management API as orgsync talks to it: signing in (an API token, or an API service
//! app's `private_key_jwt` client credentials with DPoP where the org requires it), Okta's error
//! bodies, its rate-limit headers and 429s, and the JSON of users and groups.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};

use crate::directory::{DirectoryError, Failure};
use crate::http::jwt::{self, Algorithm, Identify, ProofKey, SigningKey};
use crate::http::{
    Answer, Api, Budget, Http, Token, TokenBody, TokenError, TokenRequest, Verdict, http_error,
    request_token_with, reset_at_epoch, retry_after,
};
use crate::secrets::Secret;

/// The read-only scopes a service app must be granted (its "Okta API Scopes" tab).
pub const SCOPES: &str = "okta.users.read okta.groups.read";

/// How orgsync signs in.
pub enum SignIn {
    /// `Authorization: SSWS <token>`.
    ApiToken(Secret),
    /// Client credentials with a client assertion signed by the app's key.
    ServiceApp {
        client_id: String,
        key: SigningKey,
        algorithm: Algorithm,
        key_id: Option<String>,
    },
}

/// DPoP as far as this process has learnt it: whether the org asks for it, the key the tokens
/// are bound to (made on first need), and the token endpoint's latest nonce.
#[derive(Default)]
struct Dpop {
    required: AtomicBool,
    key: OnceLock<ProofKey>,
    nonce: Mutex<Option<String>>,
    /// The current token is DPoP-bound.
    bound: AtomicBool,
}

/// Okta's API for [`crate::http::ApiClient`].
pub struct Okta {
    /// `scheme://host[:port]`.
    pub org: String,
    pub sign_in: SignIn,
    dpop: Dpop,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

impl Okta {
    pub fn new(org: String, sign_in: SignIn) -> Okta {
        Okta {
            org,
            sign_in,
            dpop: Dpop::default(),
        }
    }

    fn token_url(&self) -> String {
        format!("{}/oauth2/v1/token", self.org)
    }

    fn proof_key(&self) -> Result<&ProofKey, DirectoryError> {
        if let Some(key) = self.dpop.key.get() {
            return Ok(key);
        }
        let key = ProofKey::generate().map_err(|e| DirectoryError::new(Failure::Config, e))?;
        Ok(self.dpop.key.get_or_init(|| key))
    }

    /// One token request of the service app, with a DPoP proof when the org asks for one.
    async fn request(
        &self,
        http: &Http,
        client_id: &str,
        key: &SigningKey,
        algorithm: Algorithm,
        key_id: Option<&str>,
    ) -> Result<crate::http::Issued, TokenError> {
        let token_url = self.token_url();
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: client_id,
            sub: client_id,
            aud: &token_url,
            iat: now,
            exp: now + 300,
            jti: jwt::unique_id(),
        };
        let identify = Identify {
            key_id: key_id.map(str::to_string),
            thumbprint_s256: None,
        };
        let setup = |e: String| TokenError::Http(crate::http::HttpError::Setup(e));
        let assertion = jwt::sign(key, algorithm, identify, &claims).map_err(setup)?;
        let mut headers = Vec::new();
        if self.dpop.required.load(Ordering::Relaxed) {
            let nonce = self
                .dpop
                .nonce
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let proof_key = self.proof_key().map_err(|e| setup(e.to_string()))?;
            let proof = proof_key
                .proof("POST", &token_url, nonce.as_deref(), None)
                .map_err(setup)?;
            headers.push(("DPoP", proof));
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", SCOPES),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ];
        let request = TokenRequest {
            url: &token_url,
            body: TokenBody::Form(&form),
            basic: None,
            headers,
        };
        request_token_with(http, &request).await
    }

    /// A refused sign-in of the service app, by its OAuth error.
    fn token_error(&self, client_id: &str, status: u16, body: &[u8]) -> DirectoryError {
        let refusal: OAuthError = serde_json::from_slice(body).unwrap_or_default();
        let (failure, hint) = match (status, refusal.error.as_str()) {
            (_, "invalid_client") => (
                Failure::Credentials,
                format!(
                    "check okta.client_id ({client_id}), that the app's client authentication is \"Public key / Private key\", and that its public keys include this private key (okta.key_id must be that key's KID)"
                ),
            ),
            (_, "invalid_scope") => (
                Failure::Permission,
                format!(
                    "grant the app the scopes {SCOPES} (Admin Console → Applications → the app → Okta API Scopes)"
                ),
            ),
            (_, "unauthorized_client") => (
                Failure::Config,
                "the app must be an API Services app that allows the Client Credentials grant".to_string(),
            ),
            (_, "invalid_dpop_proof" | "use_dpop_nonce") => (
                Failure::Config,
                "Okta did not accept orgsync's DPoP proof; as a workaround, turn off \"Require Demonstrating Proof of Possession (DPoP) header in token requests\" in the app's settings".to_string(),
            ),
            (404, _) => (
                Failure::Config,
                format!("no Okta org answers at okta.org_url {}", self.org),
            ),
            _ => (
                Failure::Credentials,
                "check okta.client_id, the private key and the app's settings".to_string(),
            ),
        };
        let said = match (refusal.error.is_empty(), refusal.error_description.trim()) {
            (true, _) => format!("HTTP {status}"),
            (false, "") => refusal.error.clone(),
            (false, description) => format!("{}: {description}", refusal.error),
        };
        DirectoryError::new(failure, format!("Okta refused the sign-in: {said}")).hint(hint)
    }
}

impl Api for Okta {
    async fn login(&self, http: &Http) -> Result<Token, DirectoryError> {
        let (client_id, key, algorithm, key_id) = match &self.sign_in {
            // The token is the credential: nothing to fetch, and a 401 means it is refused.
            SignIn::ApiToken(token) => {
                return Ok(Token {
                    value: token.clone(),
                    lifetime: Duration::from_secs(30 * 24 * 3600),
                    portable: false,
                });
            }
            SignIn::ServiceApp {
                client_id,
                key,
                algorithm,
                key_id,
            } => (client_id, key, *algorithm, key_id.as_deref()),
        };
        // At most: without DPoP, with a proof, with the proof and the server's nonce.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let refused = match self.request(http, client_id, key, algorithm, key_id).await {
                Ok(mut issued) => {
                    let bound = issued.token_type.eq_ignore_ascii_case("DPoP");
                    self.dpop.bound.store(bound, Ordering::Relaxed);
                    issued.token.portable = !bound;
                    return Ok(issued.token);
                }
                Err(TokenError::Http(e)) => return Err(http_error("signing in to Okta", e)),
                Err(TokenError::Refused {
                    status,
                    headers,
                    body,
                }) => (status, headers, body),
            };
            let (status, headers, body) = refused;
            let error: OAuthError = serde_json::from_slice(&body).unwrap_or_default();
            match error.error.as_str() {
                "invalid_dpop_proof"
                    if attempts < 3 && !self.dpop.required.load(Ordering::Relaxed) =>
                {
                    tracing::debug!("Okta requires DPoP for this app: signing in with a proof");
                    self.dpop.required.store(true, Ordering::Relaxed);
                }
                "use_dpop_nonce" if attempts < 3 => {
                    let nonce = headers
                        .get("dpop-nonce")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    if nonce.is_none() {
                        return Err(self.token_error(client_id, status, &body));
                    }
                    self.dpop.required.store(true, Ordering::Relaxed);
                    *self
                        .dpop
                        .nonce
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = nonce;
                }
                _ => return Err(self.token_error(client_id, status, &body)),
            }
        }
    }

    fn error(&self, what: &str, answer: &Answer) -> DirectoryError {
        let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
        let status = answer.status.as_u16();
        let api_token = matches!(self.sign_in, SignIn::ApiToken(_));
        let (failure, hint) = match (status, body.error_code.as_str()) {
            (401, _) if api_token => (
                Failure::Credentials,
                Some("the API token is wrong, revoked (Okta revokes tokens unused for 30 days) or its administrator was deactivated: create one (Admin Console → Security → API → Tokens) and run `orgsync config set-secret okta.token`".to_string()),
            ),
            (401, _) => (
                Failure::Credentials,
                Some("Okta refused the service app's access token; check the app's settings".to_string()),
            ),
            (403, _) if api_token => (
                Failure::Permission,
                Some("the administrator who created the API token needs a role that can read users and groups (e.g. Read-only Administrator)".to_string()),
            ),
            (403, _) => (
                Failure::Permission,
                Some(format!(
                    "the service app needs the scopes {SCOPES} (Okta API Scopes tab) and an admin role such as Read-only Administrator (Admin roles tab)"
                )),
            ),
            (400, _) => (
                Failure::Config,
                Some("check the Okta filter after `|` in okta.user_filter and okta.group_filter (the API's filter syntax, e.g. profile.lastName eq \"Smith\")".to_string()),
            ),
            (404, "E0000007") => (
                Failure::Read,
                Some("a group was deleted while it was read; the next sync reads it again".to_string()),
            ),
            (404, _) => (
                Failure::Config,
                Some(format!("no Okta org answers at okta.org_url {}", self.org)),
            ),
            _ => (Failure::Read, None),
        };
        let code = match body.error_code.as_str() {
            "" => String::new(),
            code => format!(" ({code})"),
        };
        let said = match body.error_summary.is_empty() {
            true => answer.text(),
            false => {
                let causes: Vec<&str> = body
                    .error_causes
                    .iter()
                    .map(|c| c.error_summary.as_str())
                    .filter(|s| !s.is_empty())
                    .collect();
                match causes.is_empty() {
                    true => body.error_summary.clone(),
                    false => format!("{} ({})", body.error_summary, causes.join("; ")),
                }
            }
        };
        let error = DirectoryError::new(
            failure,
            format!("{what} failed: Okta answered HTTP {status}{code}: {said}"),
        );
        match hint {
            Some(hint) => error.hint(hint),
            None => error,
        }
    }

    /// A 429 waits until the window resets (Okta gives the time, seldom `Retry-After`).
    fn verdict(&self, answer: &Answer) -> Verdict {
        match answer.status.as_u16() {
            429 => Verdict::Retry(
                reset_at_epoch(&answer.headers, "x-rate-limit-reset")
                    .or_else(|| retry_after(&answer.headers)),
            ),
            500 | 502 | 503 | 504 => Verdict::Retry(retry_after(&answer.headers)),
            _ => Verdict::Done,
        }
    }

    fn authorize(&self, request: RequestBuilder, token: &Secret, url: &str) -> RequestBuilder {
        match &self.sign_in {
            SignIn::ApiToken(_) => {
                request.header("Authorization", format!("SSWS {}", token.expose()))
            }
            SignIn::ServiceApp { .. } if self.dpop.bound.load(Ordering::Relaxed) => {
                let proof = self
                    .dpop
                    .key
                    .get()
                    .map(|key| key.proof("GET", url, None, Some(token.expose())));
                let request = request.header("Authorization", format!("DPoP {}", token.expose()));
                match proof {
                    Some(Ok(proof)) => request.header("DPoP", proof),
                    // Okta then answers 401, which says the rest.
                    _ => request,
                }
            }
            SignIn::ServiceApp { .. } => request.bearer_auth(token.expose()),
        }
    }

    /// Okta counts requests per endpoint: the path with its ids left out.
    fn bucket(&self, url: &str) -> Option<String> {
        let path = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let family: Vec<&str> = path
            .split('/')
            .enumerate()
            .map(|(i, segment)| if i == 4 { "{id}" } else { segment })
            .collect();
        Some(family.join("/"))
    }

    fn budget(&self, answer: &Answer) -> Option<Budget> {
        let number = |name: &str| -> Option<u64> {
            answer.headers.get(name)?.to_str().ok()?.trim().parse().ok()
        };
        Some(Budget {
            limit: number("x-rate-limit-limit")?,
            remaining: number("x-rate-limit-remaining")?,
            reset_in: reset_at_epoch(&answer.headers, "x-rate-limit-reset")?,
        })
    }
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// `{"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses": [{"errorSummary"}]}`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    error_summary: String,
    #[serde(default)]
    error_causes: Vec<ErrorCause>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorCause {
    #[serde(default)]
    error_summary: String,
}

/// A user as listed (only what orgsync reads).
#[derive(Deserialize, Debug)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub profile: UserProfile,
}

#[derive(Deserialize, Debug, Default)]
pub struct UserProfile {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub login: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub last_membership_updated: Option<String>,
    #[serde(default)]
    pub profile: GroupProfile,
}

#[derive(Deserialize, Debug, Default)]
pub struct GroupProfile {
    #[serde(default)]
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_against_their_endpoint_without_ids() {
        let okta = Okta::new(
            "https://o.example".into(),
            SignIn::ApiToken(Secret::new("t")),
        );
        let bucket = |url: &str| okta.bucket(url).unwrap();
        assert_eq!(
            bucket("https://o.example/api/v1/users?limit=200"),
            "/api/v1/users"
        );
        assert_eq!(
            bucket("https://o.example:8443/api/v1/groups/00g1/users?after=x"),
            "/api/v1/groups/{id}/users"
        );
        assert_eq!(
            bucket("https://o.example/api/v1/groups/00g2/users"),
            bucket("https://o.example/api/v1/groups/00g3/users")
        );
        assert_eq!(
            bucket("https://o.example/api/v1/groups?limit=200"),
            "/api/v1/groups"
        );
    }
}
