//! The OneLogin API as orgsync talks to it: the v2 client-credentials token (HTTP Basic, a
//! JSON body), its three error body shapes, its rate-limit headers, and the JSON of users,
//! roles and groups.

use serde::Deserialize;

use crate::directory::{DirectoryError, Failure};
use crate::http::{
    Answer, Api, Budget, Http, Token, TokenBody, TokenError, TokenRequest, Verdict, http_error,
    request_token_with, reset_in_seconds, retry_after,
};
use crate::secrets::Secret;

/// OneLogin's API for [`crate::http::ApiClient`].
pub struct OneLogin {
    pub base: String,
    pub client_id: String,
    pub client_secret: Secret,
}

impl Api for OneLogin {
    async fn login(&self, http: &Http) -> Result<Token, DirectoryError> {
        let url = format!("{}/auth/oauth2/v2/token", self.base);
        let request = TokenRequest {
            url: &url,
            body: TokenBody::Json(serde_json::json!({"grant_type": "client_credentials"})),
            basic: Some((&self.client_id, &self.client_secret)),
            headers: Vec::new(),
        };
        match request_token_with(http, &request).await {
            Ok(issued) => Ok(issued.token),
            Err(TokenError::Http(e)) => Err(http_error("signing in to OneLogin", e)),
            Err(TokenError::Refused { status, body, .. }) => {
                let said = ErrorBody::parse(&body).said(status);
                let (failure, hint) = match status {
                    400 | 401 => (
                        Failure::Credentials,
                        "check onelogin.client_id and the secret onelogin.client_secret (Administration → Developers → API Credentials), and onelogin.region or onelogin.subdomain".to_string(),
                    ),
                    404 => (
                        Failure::Config,
                        format!("no OneLogin API answers at {}; check onelogin.region, onelogin.subdomain or onelogin.api_url", self.base),
                    ),
                    _ => (Failure::Credentials, "check the API credential".to_string()),
                };
                Err(DirectoryError::new(
                    failure,
                    format!("OneLogin refused the sign-in: HTTP {status}: {said}"),
                )
                .hint(hint))
            }
        }
    }

    fn error(&self, what: &str, answer: &Answer) -> DirectoryError {
        let status = answer.status.as_u16();
        let body = ErrorBody::parse(&answer.body);
        let (failure, hint) = match status {
            401 | 403 => (
                match status {
                    401 => Failure::Credentials,
                    _ => Failure::Permission,
                },
                Some(
                    "the API credential must be allowed to read users (\"Read users\", \"Read All\" or \"Manage\"; an \"Authentication Only\" credential cannot)",
                ),
            ),
            400 | 422 => (
                Failure::Config,
                Some(
                    "check the query parameters after `|` in onelogin.user_filter and onelogin.group_filter",
                ),
            ),
            404 => (
                Failure::Read,
                Some("a role was deleted while it was read; the next sync reads it again"),
            ),
            _ => (Failure::Read, None),
        };
        let error = DirectoryError::new(
            failure,
            format!(
                "{what} failed: OneLogin answered HTTP {status}: {}",
                body.said(status)
            ),
        );
        match hint {
            Some(hint) => error.hint(hint),
            None => error,
        }
    }

    fn verdict(&self, answer: &Answer) -> Verdict {
        match answer.status.as_u16() {
            429 => Verdict::Retry(
                retry_after(&answer.headers)
                    .or_else(|| reset_in_seconds(&answer.headers, "x-ratelimit-reset")),
            ),
            500 | 502 | 503 | 504 => Verdict::Retry(retry_after(&answer.headers)),
            _ => Verdict::Done,
        }
    }

    /// v1 calls take OneLogin's v1 header, v2 calls a bearer token.
    fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        token: &Secret,
        url: &str,
    ) -> reqwest::RequestBuilder {
        match url.contains("/api/1/") {
            true => request.header("Authorization", format!("bearer:{}", token.expose())),
            false => request.bearer_auth(token.expose()),
        }
    }

    /// One budget for the account, whatever the endpoint.
    fn bucket(&self, _url: &str) -> Option<String> {
        Some("account".into())
    }

    fn budget(&self, answer: &Answer) -> Option<Budget> {
        let number = |name: &str| -> Option<u64> {
            answer.headers.get(name)?.to_str().ok()?.trim().parse().ok()
        };
        Some(Budget {
            limit: number("x-ratelimit-limit")?,
            remaining: number("x-ratelimit-remaining")?,
            reset_in: reset_in_seconds(&answer.headers, "x-ratelimit-reset")?,
        })
    }
}

/// Any of OneLogin's three error shapes: `{"status": {"code", "type", "message"}}` (v1 and
/// the token endpoint), `{"statusCode", "name", "message"}` (v2), `{"error", "code", "type",
/// "message"}`.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    status: Option<Envelope>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct Envelope {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

impl ErrorBody {
    fn parse(body: &[u8]) -> ErrorBody {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// `type: message` as far as the body tells.
    fn said(&self, status: u16) -> String {
        let text = |value: &Option<serde_json::Value>| match value {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        let (kind, message) = match &self.status {
            Some(envelope) => (envelope.kind.clone(), text(&envelope.message)),
            None => (
                self.name.clone().or_else(|| self.kind.clone()),
                text(&self.message),
            ),
        };
        match (kind, message) {
            (Some(kind), Some(message)) => format!("{kind}: {message}"),
            (None, Some(message)) => message,
            (Some(kind), None) => kind,
            (None, None) => format!("HTTP {status}"),
        }
    }
}

/// A v2 user (only what orgsync reads); ids are numbers.
#[derive(Deserialize, Debug)]
pub struct User {
    pub id: u64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub status: Option<i64>,
    #[serde(default)]
    pub group_id: Option<u64>,
}

/// A role, or a v1 group.
#[derive(Deserialize, Debug)]
pub struct Named {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
}

/// A member of a role (`/api/2/roles/{id}/users`).
#[derive(Deserialize, Debug)]
pub struct Member {
    pub id: u64,
}

/// The v1 envelope (`/api/1/groups`).
#[derive(Deserialize, Debug)]
pub struct V1Page<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[derive(Deserialize, Debug)]
pub struct Pagination {
    #[serde(default)]
    pub next_link: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_of_the_three_error_shapes_is_read() {
        let said = |body: &str| ErrorBody::parse(body.as_bytes()).said(401);
        assert_eq!(
            said(
                r#"{"status":{"error":true,"code":401,"type":"Unauthorized","message":"Authentication Failure"}}"#
            ),
            "Unauthorized: Authentication Failure"
        );
        assert_eq!(
            said(r#"{"statusCode":404,"name":"NotFoundError","message":"Role not found"}"#),
            "NotFoundError: Role not found"
        );
        assert_eq!(
            said(r#"{"error":true,"code":400,"type":"bad request","message":"Invalid parameter"}"#),
            "bad request: Invalid parameter"
        );
        assert_eq!(said("<html>"), "HTTP 401");
    }
}
