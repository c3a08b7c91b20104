//! The organization client: API-key login at the identity server and the public import endpoint,
//! on the exact wire format Bitwarden and Vaultwarden accept (Directory Connector's).
//!
//! Only this module talks to the organization server, through the shared HTTP layer
//! ([`crate::http`]): transient failures (429, 5xx, connection errors) are retried with
//! backoff, honouring `Retry-After`; everything else is returned as an [`OrgError`] that says
//! what to do, quoting what the server said.

use serde::{Deserialize, Serialize};

use crate::config::{ResolvedServer, ServerUrls};
use crate::http::{Answer, Http, HttpError, standard_verdict};
use crate::secrets::Secret;

/// Linux, in Bitwarden's device type numbering.
const DEVICE_TYPE: &str = "8";
const DEVICE_NAME: &str = "linux";
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

/// The directory-managed part of an organization, as its public API lists it.
pub type Roster = crate::plan::SyncedState;

/// The organization's directory-managed members and groups, by externalId.
#[derive(Debug, Default)]
pub struct Managed {
    pub members: std::collections::BTreeMap<String, ManagedEntry>,
    pub groups: std::collections::BTreeMap<String, ManagedEntry>,
}

/// One of them: the server's id, and the email (members) or name (groups).
#[derive(Debug, Clone)]
pub struct ManagedEntry {
    pub id: String,
    pub external_id: String,
    pub email: String,
    pub name: String,
}

/// A member as `GET /public/members` lists it (the fields orgsync reads).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicMember {
    id: String,
    email: Option<String>,
    external_id: Option<String>,
}

/// A group as `GET /public/groups` lists it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicGroup {
    id: String,
    name: String,
    external_id: Option<String>,
}

/// Copies the `fields` an update must send back (the server resets them otherwise) from what
/// was read, where it has them (servers differ in which they know).
fn keep(body: &mut serde_json::Value, read: &serde_json::Value, fields: &[&str]) {
    for field in fields {
        if let Some(value) = read.get(*field).filter(|v| !v.is_null()) {
            body[*field] = value.clone();
        }
    }
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
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
    http: Http,
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
        let http = Http::new(server.http.clone()).map_err(|e| match (&server.http.ca_file, e) {
            (Some(path), HttpError::Setup(message)) if message.contains("CA file") => {
                OrgError::CaFile {
                    path: path.display().to_string(),
                    message,
                }
            }
            (_, e) => OrgError::Protocol {
                url: server.urls.api.clone(),
                message: e.to_string(),
            },
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
        let answer = self
            .send(|client| {
                self.with_client_headers(client.post(&url))
                    .header("Accept", "application/json")
                    .form(&form)
            })
            .await?;
        let status = answer.status.as_u16();
        let body = String::from_utf8_lossy(&answer.body);
        if !answer.status.is_success() {
            return Err(OrgError::LoginRejected {
                message: error_message(status, &body),
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
        let body = serde_json::to_vec(request).map_err(|e| OrgError::Protocol {
            url: url.clone(),
            message: format!("cannot encode the import request: {e}"),
        })?;
        let answer = self
            .send(|client| {
                self.with_client_headers(client.post(&url))
                    .bearer_auth(token.token.expose())
                    .header("Content-Type", "application/json; charset=utf-8")
                    .body(body.clone())
            })
            .await?;
        let status = answer.status.as_u16();
        if answer.status.is_success() {
            return Ok(());
        }
        if status == 401 || status == 403 {
            return Err(OrgError::Unauthorized { status });
        }
        Err(OrgError::Rejected {
            status,
            body: error_message(status, &String::from_utf8_lossy(&answer.body)),
        })
    }

    /// What the organization holds, through Bitwarden's public members and groups API: its
    /// members and groups that have an externalId (the directory-managed ones), as a synced
    /// state. `Ok(None)` when the server has no such API (Vaultwarden).
    pub async fn roster(&self, token: &AccessToken) -> Result<Option<Roster>, OrgError> {
        let Some(listed) = self.managed(token).await? else {
            return Ok(None);
        };
        let mut roster = Roster::default();
        for member in listed.members.values() {
            roster
                .members
                .insert(member.external_id.clone(), member.email.clone());
        }
        let by_id: std::collections::HashMap<&str, &str> = listed
            .members
            .values()
            .map(|m| (m.id.as_str(), m.external_id.as_str()))
            .collect();
        for group in listed.groups.values() {
            let path = format!("/public/groups/{}/member-ids", group.id);
            let ids: Vec<String> = self.get_json(token, &path).await?.unwrap_or_default();
            let mut members: Vec<String> = ids
                .iter()
                .filter_map(|id| by_id.get(id.as_str()).map(|e| e.to_string()))
                .collect();
            members.sort();
            roster.groups.insert(
                group.external_id.clone(),
                crate::plan::SyncedGroup {
                    name: group.name.clone(),
                    members,
                },
            );
        }
        Ok(Some(roster))
    }

    /// The organization's members and groups that have an externalId, by externalId; `None`
    /// where the server has no public members API.
    pub async fn managed(&self, token: &AccessToken) -> Result<Option<Managed>, OrgError> {
        let Some(members) = self
            .get_list::<PublicMember>(token, "/public/members")
            .await?
        else {
            return Ok(None);
        };
        let groups = self
            .get_list::<PublicGroup>(token, "/public/groups")
            .await?
            .unwrap_or_default();
        let mut managed = Managed::default();
        for member in members {
            let (Some(external_id), Some(email)) = (non_empty(member.external_id), member.email)
            else {
                continue;
            };
            managed.members.insert(
                external_id.clone(),
                ManagedEntry {
                    id: member.id,
                    external_id,
                    email: email.trim().to_lowercase(),
                    name: String::new(),
                },
            );
        }
        for group in groups {
            let Some(external_id) = non_empty(group.external_id) else {
                continue;
            };
            managed.groups.insert(
                external_id.clone(),
                ManagedEntry {
                    id: group.id,
                    external_id,
                    email: String::new(),
                    name: group.name,
                },
            );
        }
        Ok(Some(managed))
    }

    /// Gives member `id` the externalId `to`, keeping its role, permissions, collections and
    /// groups: Bitwarden's member update resets what it is not sent, so they are read first.
    pub async fn rekey_member(
        &self,
        token: &AccessToken,
        id: &str,
        to: &str,
    ) -> Result<(), OrgError> {
        let path = format!("/public/members/{id}");
        let member: serde_json::Value = self
            .get_json(token, &path)
            .await?
            .ok_or_else(|| self.gone(&path))?;
        let groups: Vec<String> = self
            .get_json(token, &format!("{path}/group-ids"))
            .await?
            .unwrap_or_default();
        let mut body = serde_json::json!({
            "type": member["type"],
            "externalId": to,
            "resetPasswordEnrolled": member["resetPasswordEnrolled"].as_bool().unwrap_or(false),
            "collections": member["collections"].as_array().cloned().unwrap_or_default(),
            "groups": groups,
        });
        keep(&mut body, &member, &["permissions", "accessAll"]);
        self.put_json(token, &path, &body).await
    }

    /// Gives group `id` the externalId `to`, keeping its name and collections (its members are
    /// not part of the update).
    pub async fn rekey_group(
        &self,
        token: &AccessToken,
        id: &str,
        to: &str,
    ) -> Result<(), OrgError> {
        let path = format!("/public/groups/{id}");
        let group: serde_json::Value = self
            .get_json(token, &path)
            .await?
            .ok_or_else(|| self.gone(&path))?;
        let mut body = serde_json::json!({
            "name": group["name"],
            "externalId": to,
            "collections": group["collections"].as_array().cloned().unwrap_or_default(),
        });
        keep(&mut body, &group, &["accessAll"]);
        self.put_json(token, &path, &body).await
    }

    fn gone(&self, path: &str) -> OrgError {
        OrgError::Protocol {
            url: format!("{}{path}", self.urls.api),
            message: "the server no longer has it (removed meanwhile?); run the command again"
                .into(),
        }
    }

    async fn put_json(
        &self,
        token: &AccessToken,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(), OrgError> {
        let url = format!("{}{path}", self.urls.api);
        let body = body.to_string();
        let answer = self
            .send(|client| {
                self.with_client_headers(client.put(&url))
                    .bearer_auth(token.token.expose())
                    .header("Content-Type", "application/json; charset=utf-8")
                    .body(body.clone())
            })
            .await?;
        let status = answer.status.as_u16();
        match status {
            200..=299 => Ok(()),
            401 | 403 => Err(OrgError::Unauthorized { status }),
            _ => Err(OrgError::Protocol {
                message: format!(
                    "HTTP {status}: {}",
                    error_message(status, &String::from_utf8_lossy(&answer.body))
                ),
                url,
            }),
        }
    }

    /// A public API list (`{"object": "list", "data": [...]}`); `None` when the server does not
    /// have the endpoint.
    async fn get_list<T: serde::de::DeserializeOwned>(
        &self,
        token: &AccessToken,
        path: &str,
    ) -> Result<Option<Vec<T>>, OrgError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct List<T> {
            data: Vec<T>,
            #[serde(default)]
            continuation_token: Option<String>,
        }
        let Some(list) = self.get_json::<List<T>>(token, path).await? else {
            return Ok(None);
        };
        // A list is complete or it is an error: the public API documents no way to follow one.
        if list.continuation_token.is_some() {
            return Err(OrgError::Protocol {
                url: format!("{}{path}", self.urls.api),
                message: "the server sent only part of the list (a continuationToken)".into(),
            });
        }
        Ok(Some(list.data))
    }

    /// GET a public API path as JSON; `None` for 404, 405 or 501 (no such endpoint).
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        token: &AccessToken,
        path: &str,
    ) -> Result<Option<T>, OrgError> {
        let url = format!("{}{path}", self.urls.api);
        let answer = self
            .send(|client| {
                self.with_client_headers(client.get(&url))
                    .bearer_auth(token.token.expose())
                    .header("Accept", "application/json")
            })
            .await?;
        let status = answer.status.as_u16();
        match status {
            200..=299 => {
                serde_json::from_slice(&answer.body)
                    .map(Some)
                    .map_err(|e| OrgError::Protocol {
                        url,
                        message: format!(
                            "the answer is not what Bitwarden's public API sends ({e})"
                        ),
                    })
            }
            404 | 405 | 501 => Ok(None),
            401 | 403 => Err(OrgError::Unauthorized { status }),
            _ => Err(OrgError::Protocol {
                message: format!(
                    "HTTP {status}: {}",
                    error_message(status, &String::from_utf8_lossy(&answer.body))
                ),
                url,
            }),
        }
    }

    fn with_client_headers(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        // The server treats orgsync as Directory Connector, whose wire format it speaks.
        request
            .header("Device-Type", DEVICE_TYPE)
            .header("Bitwarden-Client-Name", "connector")
            .header("Bitwarden-Client-Version", env!("CARGO_PKG_VERSION"))
    }

    /// Sends a request through the shared HTTP layer, which retries 429 / 5xx / connection
    /// failures with backoff and Retry-After. Returns the final answer for the caller to read.
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, OrgError> {
        self.http
            .send(build, standard_verdict)
            .await
            .map_err(|e| match e {
                HttpError::GaveUp {
                    status,
                    attempts,
                    body,
                    ..
                } => OrgError::GaveUp {
                    status,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    message: error_message(status, &body),
                },
                HttpError::Unreachable { url, message } => OrgError::Unreachable { url, message },
                HttpError::Timeout { url, seconds } => OrgError::Unreachable {
                    url,
                    message: format!("no answer within {seconds} s (server.timeout_seconds)"),
                },
                HttpError::Unexpected { url, message } => OrgError::Protocol { url, message },
                HttpError::Setup(message) => OrgError::Protocol {
                    url: self.urls.api.clone(),
                    message,
                },
            })
    }
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
