//! The Admin SDK Directory API as orgsync talks to it: the service account key, the JWT bearer
//! grant (acting as the administrator) with Google's token errors classified, the Directory
//! API's error bodies and quota answers, and the JSON of users, groups and members.

use serde::{Deserialize, Serialize};

use crate::directory::{DirectoryError, Failure};
use crate::http::jwt::{self, Algorithm, Identify, SigningKey};
use crate::http::{
    Answer, Api, Http, Token, TokenError, Verdict, http_error, request_token, retry_after,
};

/// The read-only scopes orgsync asks for; the admin grants exactly these to the service
/// account's client ID under domain-wide delegation.
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// A service account's JSON key, as the Google Cloud console downloads it.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    #[serde(default)]
    client_id: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

/// What signing in takes, from the key file.
pub struct ServiceAccount {
    pub client_email: String,
    /// The numeric client ID the admin authorises in the Admin console.
    pub client_id: String,
    key: SigningKey,
    key_id: Option<String>,
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads a key file's text; `source` names where it came from, for messages (which never
    /// quote the key).
    ///
    /// # Errors
    /// When it is not a service account key.
    pub fn parse(text: &str, source: &str) -> Result<ServiceAccount, DirectoryError> {
        let fail = |what: String| {
            DirectoryError::new(Failure::Config, format!("{source} {what}")).hint(
                "download a JSON key of the service account (Google Cloud console → IAM & Admin → Service accounts → Keys → Add key → JSON)",
            )
        };
        let key: KeyFile = serde_json::from_str(text).map_err(|e| {
            fail(format!(
                "is not a service account's JSON key (line {}: {})",
                e.line(),
                match e.classify() {
                    serde_json::error::Category::Data => "a field is missing or of the wrong type",
                    _ => "not JSON",
                }
            ))
        })?;
        // Copies of the key often carry `\n` as two characters, as inside the JSON string.
        let pem = key.private_key.replace("\\n", "\n");
        let signing = SigningKey::from_pem(pem.trim().as_bytes())
            .map_err(|e| fail(format!("has a private_key that {e}")))?;
        Ok(ServiceAccount {
            client_email: key.client_email,
            client_id: key.client_id,
            key: signing,
            key_id: key.private_key_id,
            token_uri: key.token_uri,
        })
    }
}

/// The Directory API and Google's token endpoint, for [`crate::http::ApiClient`].
pub struct Admin {
    pub account: ServiceAccount,
    pub admin_user: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: String,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

impl Api for Admin {
    async fn login(&self, http: &Http) -> Result<Token, DirectoryError> {
        let account = &self.account;
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &account.client_email,
            sub: &self.admin_user,
            scope: SCOPES.join(" "),
            aud: &account.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let identify = Identify {
            key_id: account.key_id.clone(),
            thumbprint_s256: None,
        };
        let assertion = jwt::sign(&account.key, Algorithm::RS256, identify, &claims)
            .map_err(|e| DirectoryError::new(Failure::Config, e))?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        request_token(http, &account.token_uri, &form, None)
            .await
            .map_err(|e| match e {
                TokenError::Http(e) => http_error("signing in to Google", e),
                TokenError::Refused { status, body, .. } => self.token_error(status, &body),
            })
    }

    fn error(&self, what: &str, answer: &Answer) -> DirectoryError {
        let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
        let status = answer.status.as_u16();
        let reason = body.reason();
        let said = match body.error.message.is_empty() {
            true => answer.text(),
            false => body.error.message.clone(),
        };
        let (failure, hint) = match (status, reason) {
            (403, "forbidden") | (403, "") => (
                Failure::Permission,
                Some(format!(
                    "google.admin_user {} must be an administrator whose role can read users and groups, and google.customer or google.domain must be this account's",
                    self.admin_user
                )),
            ),
            (401, _) => (
                Failure::Credentials,
                Some("Google refused the access token; check the key and domain-wide delegation".into()),
            ),
            (400, _) => (
                Failure::Config,
                Some("check google.customer or google.domain and the native queries after `|` in google.user_filter and google.group_filter".into()),
            ),
            (404, _) => (Failure::Read, Some("a group was deleted while it was read; the next sync reads it again".into())),
            _ => (Failure::Read, None),
        };
        let reason = match reason {
            "" => String::new(),
            reason => format!(" ({reason})"),
        };
        let error = DirectoryError::new(
            failure,
            format!("{what} failed: Google answered HTTP {status}{reason}: {said}"),
        );
        match hint {
            Some(hint) => error.hint(hint),
            None => error,
        }
    }

    /// Google sends quota errors as 403 with a reason, mostly without `Retry-After`.
    fn verdict(&self, answer: &Answer) -> Verdict {
        let status = answer.status.as_u16();
        let quota = status == 403 && {
            let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
            matches!(
                body.reason(),
                "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded"
            )
        };
        match status {
            429 | 500 | 502 | 503 | 504 => Verdict::Retry(retry_after(&answer.headers)),
            _ if quota => Verdict::Retry(retry_after(&answer.headers)),
            _ => Verdict::Done,
        }
    }
}

#[derive(Deserialize, Default)]
struct TokenRefusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl Admin {
    /// A refused sign-in, by Google's error, with what to fix in the Admin console.
    fn token_error(&self, status: u16, body: &[u8]) -> DirectoryError {
        let refusal: TokenRefusal = serde_json::from_slice(body).unwrap_or_default();
        let description = refusal.error_description.trim();
        let account = &self.account;
        let (failure, hint) = match (refusal.error.as_str(), description) {
            ("unauthorized_client", _) => (
                Failure::Permission,
                format!(
                    "domain-wide delegation is not set up for this service account: in the Google Admin console → Security → Access and data control → API controls → Manage domain wide delegation, add client ID {} with the scopes {} (it can take a while to apply)",
                    account.client_id,
                    SCOPES.join(",")
                ),
            ),
            ("invalid_grant", d) if d.contains("Invalid JWT Signature") => (
                Failure::Credentials,
                format!(
                    "the key is not (or no longer) a key of {}: create a new JSON key for the service account in the Google Cloud console and configure it",
                    account.client_email
                ),
            ),
            ("invalid_grant", d) if d.contains("Invalid email or User ID") => (
                Failure::Config,
                format!(
                    "google.admin_user {} is not a user of this Google Workspace account; give an administrator's primary email",
                    self.admin_user
                ),
            ),
            ("invalid_grant", d) if d.contains("short-lived") || d.contains("timeframe") => (
                Failure::Config,
                "this machine's clock is off: Google accepts an assertion only close to its own time; synchronise the clock (timedatectl, chrony)".to_string(),
            ),
            ("disabled_client" | "deleted_client" | "invalid_client", _) => (
                Failure::Credentials,
                format!(
                    "the service account {} is disabled or deleted: enable it or create a new one in the Google Cloud console",
                    account.client_email
                ),
            ),
            _ => (
                Failure::Credentials,
                "check the service account key, google.admin_user and domain-wide delegation".to_string(),
            ),
        };
        let said = match (refusal.error.is_empty(), description.is_empty()) {
            (true, _) => format!("HTTP {status}"),
            (false, true) => refusal.error.clone(),
            (false, false) => format!("{}: {description}", refusal.error),
        };
        DirectoryError::new(failure, format!("Google refused the sign-in: {said}")).hint(hint)
    }
}

/// `{"error": {"code", "message", "errors": [{"reason", …}], "status"}}`.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize, Default)]
struct ErrorItem {
    #[serde(default)]
    reason: String,
}

impl ErrorBody {
    fn reason(&self) -> &str {
        self.error
            .errors
            .first()
            .map(|e| e.reason.as_str())
            .unwrap_or_default()
    }
}

/// One page of users, groups or members (an empty result omits the array).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(
        default = "Vec::new",
        alias = "users",
        alias = "groups",
        alias = "members"
    )]
    pub items: Vec<T>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub primary_email: Option<String>,
    #[serde(default)]
    pub suspended: bool,
    #[serde(default)]
    pub archived: bool,
}

#[derive(Deserialize, Debug)]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct Member {
    #[serde(default)]
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub status: Option<String>,
}
