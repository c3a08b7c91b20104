//! The organization client: API-key login at the identity server and the public import endpoint,
//! on the exact wire format Bitwarden and Vaultwarden accept (Directory Connector's).
//!
//! Only this module talks to the organization server. Transient failures (429, 5xx, connection
//! errors) are retried with backoff, honouring `Retry-After`; everything else is returned as an
//! [`OrgError`] that says what to do.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ResolvedServer, ServerUrls};
use crate::secrets::Secret;

/// Linux, in Bitwarden's device type numbering.
const DEVICE_TYPE: &str = "8";
const DEVICE_NAME: &str = "linux";
/// Attempts per request before giving up on transient failures.
const MAX_ATTEMPTS: u32 = 5;
/// Never wait longer than this for one `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Renew the access token when it has less than this left.
pub const TOKEN_RENEW_MARGIN_SECONDS: i64 = 300;

/// `POST /public/organization/import` body. Field order matters: it is hashed (see
/// [`crate::plan::request_hash`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRequest {
    pub groups: Vec<ImportGroup>,
    pub members: Vec<ImportMember>,
    pub overwrite_existing: bool,
    pub large_import: bool,
    pub invite_users_after_provisioning: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportGroup {
    pub name: String,
    pub external_id: String,
    pub member_external_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportMember {
    pub email: String,
    pub external_id: String,
    pub deleted: bool,
}

/// An organization API key.
#[derive(Clone, Debug)]
pub struct ApiKey {
    /// `organization.<uuid>`.
    pub client_id: String,
    pub client_secret: Secret,
}

impl ApiKey {
    /// The organization id inside the client id.
    pub fn organization_id(&self) -> &str {
        self.client_id
            .strip_prefix("organization.")
            .unwrap_or(&self.client_id)
    }
}

/// Checks the shape of an organization API key's client id: `organization.<uuid>`.
pub fn validate_client_id(client_id: &str) -> Result<(), String> {
    let Some(org) = client_id.strip_prefix("organization.") else {
        return Err(format!(
            "client id {client_id:?} is not an organization API key; it looks like organization.<uuid> (Admin Console → Settings → Organization info → View API key)"
        ));
    };
    if uuid::Uuid::parse_str(org).is_err() {
        return Err(format!(
            "client id {client_id:?} does not end in an organization id (a UUID); copy it again from the Admin Console"
        ));
    }
    Ok(())
}

/// A bearer token and when it expires (Unix seconds).
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: i64,
}

impl AccessToken {
    pub fn is_fresh(&self, now_unix: i64) -> bool {
        self.expires_at - now_unix > TOKEN_RENEW_MARGIN_SECONDS
    }

    /// The form kept in the secret store: `<expiry>:<token>`.
    pub fn to_stored(&self) -> Secret {
        Secret::new(format!("{}:{}", self.expires_at, self.token.expose()))
    }

    pub fn from_stored(stored: &Secret) -> Option<AccessToken> {
        let (expires_at, token) = stored.expose().split_once(':')?;
        Some(AccessToken {
            token: Secret::new(token),
            expires_at: expires_at.parse().ok()?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("cannot reach the organization server at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error(
        "the organization server refused the API key: {message}; check the client id and secret and run `orgsync login` again"
    )]
    LoginRejected { message: String },
    #[error(
        "the organization server no longer accepts orgsync's login (HTTP {status}); run `orgsync login` again"
    )]
    Unauthorized { status: u16 },
    #[error("the organization server rejected the import (HTTP {status}): {body}")]
    Rejected { status: u16, body: String },
    #[error(
        "the organization server answered HTTP {status} {attempts} times in a row, the last time: {message}; if that names a limit (seats, plan), fix it first, else try again later"
    )]
    GaveUp {
        status: u16,
        attempts: u32,
        /// What the server said the last time, so a lasting refusal is not mistaken for a blip.
        message: String,
    },
    #[error("unexpected answer from {url}: {message}")]
    Protocol { url: String, message: String },
    #[error("cannot use server.ca_file {path}: {message}")]
    CaFile { path: String, message: String },
}

/// HTTP client for one organization server.
pub struct OrgClient {
    http: reqwest::Client,
    urls: ServerUrls,
    device_id: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
}

impl OrgClient {
    /// `device_id` identifies this installation to the server (Vaultwarden requires one).
    pub fn new(server: &ResolvedServer, device_id: &str) -> Result<OrgClient, OrgError> {
        let version = env!("CARGO_PKG_VERSION");
        let mut builder = reqwest::Client::builder()
            .timeout(server.timeout)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(format!("orgsync/{version} (LINUX)"));
        if let Some(path) = &server.ca_file {
            let ca_error = |message: String| OrgError::CaFile {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            for cert in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| OrgError::Protocol {
            url: server.urls.api.clone(),
            message: e.to_string(),
        })?;
        Ok(OrgClient {
            http,
            urls: server.urls.clone(),
            device_id: device_id.to_string(),
        })
    }

    pub fn urls(&self) -> &ServerUrls {
        &self.urls
    }

    /// Client-credentials login with an organization API key.
    pub async fn login(&self, key: &ApiKey, now_unix: i64) -> Result<AccessToken, OrgError> {
        let url = format!("{}/connect/token", self.urls.identity);
        let form = [
            ("scope", "api.organization"),
            ("client_id", key.client_id.as_str()),
            ("deviceType", DEVICE_TYPE),
            ("deviceIdentifier", self.device_id.as_str()),
            ("deviceName", DEVICE_NAME),
            ("grant_type", "client_credentials"),
            ("client_secret", key.client_secret.expose()),
        ];
        let response = self
            .send(&url, || {
                self.with_client_headers(self.http.post(&url))
                    .header("Accept", "application/json")
                    .form(&form)
            })
            .await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(OrgError::LoginRejected {
                message: error_message(status.as_u16(), &body),
            });
        }
        let token: TokenResponse = serde_json::from_str(&body).map_err(|e| OrgError::Protocol {
            url: url.clone(),
            message: format!("the token response is not what Bitwarden sends ({e})"),
        })?;
        Ok(AccessToken {
            token: Secret::new(token.access_token),
            expires_at: now_unix + token.expires_in,
        })
    }

    /// Sends one import request. Success is any 2xx.
    pub async fn import(
        &self,
        token: &AccessToken,
        request: &ImportRequest,
    ) -> Result<(), OrgError> {
        let url = format!("{}/public/organization/import", self.urls.api);
        let body = serde_json::to_vec(request).expect("import requests always serialise");
        let response = self
            .send(&url, || {
                self.with_client_headers(self.http.post(&url))
                    .bearer_auth(token.token.expose())
                    .header("Content-Type", "application/json; charset=utf-8")
                    .body(body.clone())
            })
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(OrgError::Unauthorized {
                status: status.as_u16(),
            });
        }
        let body = response.text().await.unwrap_or_default();
        Err(OrgError::Rejected {
            status: status.as_u16(),
            body: error_message(status.as_u16(), &body),
        })
    }

    fn with_client_headers(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        // The server treats orgsync as Directory Connector, whose wire format it speaks.
        request
            .header("Device-Type", DEVICE_TYPE)
            .header("Bitwarden-Client-Name", "connector")
            .header("Bitwarden-Client-Version", env!("CARGO_PKG_VERSION"))
    }

    /// Sends a request, retrying 429 / 5xx / connection failures with backoff. Returns the final
    /// response (any non-retryable status) for the caller to interpret.
    async fn send(
        &self,
        url: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OrgError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let backoff = Duration::from_secs(1 << (attempt - 1).min(5));
            match build().send().await {
                Ok(response) => {
                    let status = response.status();
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    if !retryable {
                        return Ok(response);
                    }
                    if attempt >= MAX_ATTEMPTS {
                        let body = response.text().await.unwrap_or_default();
                        return Err(OrgError::GaveUp {
                            status: status.as_u16(),
                            attempts: attempt,
                            message: error_message(status.as_u16(), &body),
                        });
                    }
                    let wait = retry_after(&response)
                        .unwrap_or(backoff)
                        .min(MAX_RETRY_AFTER);
                    tracing::warn!(
                        "{url} answered HTTP {}; retrying in {} s (attempt {attempt} of {MAX_ATTEMPTS})",
                        status.as_u16(),
                        wait.as_secs_f32()
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    if attempt >= MAX_ATTEMPTS {
                        return Err(OrgError::Unreachable {
                            url: url.to_string(),
                            message: describe_reqwest_error(&e),
                        });
                    }
                    tracing::warn!(
                        "{url}: {}; retrying in {} s (attempt {attempt} of {MAX_ATTEMPTS})",
                        describe_reqwest_error(&e),
                        backoff.as_secs()
                    );
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
}

/// `Retry-After` in seconds (the form Bitwarden and proxies send). HTTP dates are ignored in
/// favour of the normal backoff.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The human part of an error body: Bitwarden's `message` / `Message` / `ErrorModel.Message`,
/// OAuth's `error_description`, plus validation errors; the raw text when it is not JSON.
fn error_message(status: u16, body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        let text = body.trim();
        return if text.is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            truncate(text, 2000)
        };
    };
    let find = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| json.get(*k).and_then(|v| v.as_str()).map(str::to_string))
    };
    let mut message = json
        .get("ErrorModel")
        .and_then(|m| m.get("Message"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .or_else(|| find(&["message", "Message", "error_description", "error"]))
        .unwrap_or_else(|| truncate(body.trim(), 2000));
    // Bitwarden's public API lists field errors under `errors`; other endpoints and
    // Vaultwarden use `validationErrors`.
    if let Some(details) = ["errors", "validationErrors", "ValidationErrors"]
        .iter()
        .find_map(|k| json.get(*k))
        .filter(|v| v.is_object())
    {
        message.push_str(&format!(" (validation errors: {details})"));
    }
    message
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_serialises_in_directory_connector_order() {
        let request = ImportRequest {
            groups: vec![ImportGroup {
                name: "Blue".into(),
                external_id: "g1".into(),
                member_external_ids: vec!["u1".into()],
            }],
            members: vec![ImportMember {
                email: "a@x.com".into(),
                external_id: "u1".into(),
                deleted: false,
            }],
            overwrite_existing: false,
            large_import: false,
            invite_users_after_provisioning: false,
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"groups":[{"name":"Blue","externalId":"g1","memberExternalIds":["u1"]}],"members":[{"email":"a@x.com","externalId":"u1","deleted":false}],"overwriteExisting":false,"largeImport":false,"inviteUsersAfterProvisioning":false}"#
        );
    }

    #[test]
    fn client_ids_are_checked() {
        assert!(validate_client_id("organization.0b9c2a9e-1f7d-4d3f-9a77-2f3e4c5d6e7f").is_ok());
        assert!(validate_client_id("user.0b9c2a9e-1f7d-4d3f-9a77-2f3e4c5d6e7f").is_err());
        assert!(validate_client_id("organization.nope").is_err());
    }

    #[test]
    fn error_bodies_are_reduced_to_their_message() {
        assert_eq!(
            error_message(
                400,
                r#"{"message":"You cannot import this much data at once.","object":"error"}"#
            ),
            "You cannot import this much data at once."
        );
        assert_eq!(
            error_message(
                400,
                r#"{"error":"invalid_client","ErrorModel":{"Message":"bad key"}}"#
            ),
            "bad key"
        );
        assert_eq!(error_message(502, ""), "HTTP 502 with an empty body");
        let model_state = r#"{"object":"error","message":"The request's model state is invalid.","errors":{"Members[0].Email":["Email is required for enabled members."]}}"#;
        let message = error_message(400, model_state);
        assert!(message.starts_with("The request's model state is invalid. (validation errors: "));
        assert!(message.contains("Members[0].Email"), "{message}");
    }

    #[test]
    fn stored_token_round_trips() {
        let token = AccessToken {
            token: Secret::new("abc:def"),
            expires_at: 1_700_000_000,
        };
        let back = AccessToken::from_stored(&token.to_stored()).unwrap();
        assert_eq!(back.token, token.token);
        assert_eq!(back.expires_at, token.expires_at);
        assert!(back.is_fresh(1_700_000_000 - 600));
        assert!(!back.is_fresh(1_700_000_000 - 100));
    }
}
