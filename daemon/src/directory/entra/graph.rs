//! Microsoft Graph as orgsync talks to it: the token request (client secret or certificate
//! assertion) with its AADSTS errors classified, Graph's error bodies and throttling, and the
//! JSON of pages, users, groups and members.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::{Credential, ResolvedEntra};
use crate::directory::{DirectoryError, Failure};
use crate::http::jwt::{self, Algorithm, Identify, SigningKey};
use crate::http::{Answer, Api, Http, Token, TokenError, http_error, request_token};
use crate::secrets::Secret;

/// How the app signs in, with what it needs loaded.
pub enum Proof {
    Secret(Secret),
    Certificate {
        key: SigningKey,
        /// `x5t#S256` of the certificate.
        thumbprint: String,
    },
}

impl Proof {
    /// # Errors
    /// When the certificate or key cannot be read.
    pub fn load(config: &ResolvedEntra, secret: Option<Secret>) -> Result<Proof, DirectoryError> {
        match &config.credential {
            Credential::Secret => secret
                .map(Proof::Secret)
                .ok_or_else(|| DirectoryError::missing_secret(super::CLIENT_SECRET).hint(
                    "run `orgsync config set-secret entra.client_secret` (the secret's Value from Certificates & secrets, not its ID), set ORGSYNC_ENTRA_CLIENT_SECRET, or use entra.certificate_file",
                )),
            Credential::Certificate { cert, key } => Ok(Proof::Certificate {
                key: SigningKey::from_pem_file(key).map_err(|e| {
                    DirectoryError::new(Failure::Config, format!("entra.certificate_key_file: {e}"))
                })?,
                thumbprint: thumbprint(cert)?,
            }),
        }
    }
}

impl Proof {
    /// Names the credential without revealing it: a hash of the secret, or the certificate's
    /// thumbprint.
    pub fn fingerprint(&self) -> String {
        match self {
            Proof::Secret(secret) => jwt::thumbprint_s256(secret.expose().as_bytes()),
            Proof::Certificate { thumbprint, .. } => thumbprint.clone(),
        }
    }
}

fn thumbprint(cert: &Path) -> Result<String, DirectoryError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(cert).map_err(|e| {
        DirectoryError::new(
            Failure::Config,
            format!("entra.certificate_file {}: {e}", cert.display()),
        )
    })?;
    Ok(jwt::thumbprint_s256(&der))
}

/// Graph and its sign-in endpoint, for [`crate::http::ApiClient`].
pub struct Graph {
    pub config: ResolvedEntra,
    pub proof: Proof,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

impl Api for Graph {
    async fn login(&self, http: &Http) -> Result<Token, DirectoryError> {
        let config = &self.config;
        let mut form = vec![
            ("client_id", config.client_id.clone()),
            ("scope", config.scope.clone()),
            ("grant_type", "client_credentials".to_string()),
        ];
        match &self.proof {
            Proof::Secret(secret) => form.push(("client_secret", secret.expose().to_string())),
            Proof::Certificate { key, thumbprint } => {
                let now = chrono::Utc::now().timestamp();
                let claims = AssertionClaims {
                    aud: &config.token_url,
                    iss: &config.client_id,
                    sub: &config.client_id,
                    jti: jwt::unique_id(),
                    nbf: now,
                    iat: now,
                    exp: now + 600,
                };
                let identify = Identify {
                    key_id: None,
                    thumbprint_s256: Some(thumbprint.clone()),
                };
                let assertion = jwt::sign(key, Algorithm::PS256, identify, &claims)
                    .map_err(|e| DirectoryError::new(Failure::Config, e))?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion));
            }
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request_token(http, &config.token_url, &form, None)
            .await
            .map_err(|e| match e {
                TokenError::Http(e) => http_error("signing in to Microsoft Entra ID", e),
                TokenError::Refused { status, body, .. } => token_error(config, status, &body),
            })
    }

    fn error(&self, what: &str, answer: &Answer) -> DirectoryError {
        graph_error(what, answer)
    }
}

/// The token endpoint's error body.
#[derive(Deserialize, Default)]
struct TokenRefusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// A refused sign-in, by its AADSTS code, with what to fix in the Entra admin center.
fn token_error(config: &ResolvedEntra, status: u16, body: &[u8]) -> DirectoryError {
    let refusal: TokenRefusal = serde_json::from_slice(body).unwrap_or_default();
    // The first line only: the rest is trace and correlation ids.
    let said = refusal
        .error_description
        .lines()
        .next()
        .unwrap_or_default()
        .trim();
    let said = match (refusal.error.is_empty(), said.is_empty()) {
        (true, _) => format!("HTTP {status}"),
        (false, true) => refusal.error.clone(),
        (false, false) => format!("{}: {said}", refusal.error),
    };
    let code = refusal.error_codes.first().copied().unwrap_or_default();
    let (failure, hint) = match code {
        7_000_215 | 7_000_222 | 7_000_218 => (
            Failure::Credentials,
            "the client secret is wrong or expired: in the Entra admin center → App registrations → the app → Certificates & secrets, create a new secret and store its Value (not its Secret ID) with `orgsync config set-secret entra.client_secret`".to_string(),
        ),
        700_027 | 50_012 | 700_024 => (
            Failure::Credentials,
            "the certificate assertion was refused: upload entra.certificate_file's certificate to the app registration (Certificates & secrets → Certificates) and check the machine's clock".to_string(),
        ),
        90_002 | 900_023 => (
            Failure::Config,
            format!(
                "tenant {:?} was not found in this cloud: set entra.tenant to the Directory (tenant) ID from the Entra admin center's Overview, and entra.cloud to the tenant's cloud",
                config.tenant
            ),
        ),
        700_016 => (
            Failure::Config,
            format!(
                "no application {:?} in tenant {:?}: set entra.client_id to the Application (client) ID of an app registered in this tenant",
                config.client_id, config.tenant
            ),
        ),
        7_000_112 => (
            Failure::Permission,
            "the application is disabled: enable it under Enterprise applications → the app → Properties".to_string(),
        ),
        65_001 | 500_011 => (
            Failure::Permission,
            "the application lacks admin consent for Microsoft Graph here: in App registrations → the app → API permissions, grant admin consent (check entra.cloud too)".to_string(),
        ),
        _ => (
            match status {
                401 => Failure::Credentials,
                _ => Failure::Config,
            },
            "check entra.tenant, entra.client_id and the credential in the Entra admin center".to_string(),
        ),
    };
    let code_text = match code {
        0 => String::new(),
        code => format!(" (AADSTS{code})"),
    };
    DirectoryError::new(
        failure,
        format!("Microsoft Entra ID refused the sign-in{code_text}: {said}"),
    )
    .hint(hint)
}

/// Graph's error body: `{"error": {"code", "message"}}`.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The Graph error code of an answer, if it has one.
pub fn error_code(answer: &Answer) -> String {
    serde_json::from_slice::<ErrorBody>(&answer.body)
        .map(|b| b.error.code)
        .unwrap_or_default()
}

/// What a failed Graph call means.
pub fn graph_error(what: &str, answer: &Answer) -> DirectoryError {
    let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
    let status = answer.status.as_u16();
    let said = match (body.error.code.is_empty(), body.error.message.is_empty()) {
        (true, _) => answer.text(),
        (false, true) => body.error.code.clone(),
        (false, false) => format!("{}: {}", body.error.code, body.error.message),
    };
    let (failure, hint) = match (status, body.error.code.as_str()) {
        (403, _) | (_, "Authorization_RequestDenied") => (
            Failure::Permission,
            Some(
                "the app needs the Microsoft Graph application permissions User.Read.All and GroupMember.Read.All (AdministrativeUnit.Read.All with administrative unit filters) with admin consent: App registrations → the app → API permissions",
            ),
        ),
        (401, _) => (
            Failure::Credentials,
            Some(
                "Microsoft Graph refused the app's token; check entra.cloud and entra.graph_url match the tenant's cloud",
            ),
        ),
        (404, _) => (
            Failure::Config,
            Some(
                "an object ID in entra.user_filter or entra.group_filter does not exist in the tenant",
            ),
        ),
        (400, "Request_BadRequest") => (
            Failure::Config,
            Some("check the object IDs in entra.user_filter and entra.group_filter"),
        ),
        _ => (Failure::Read, None),
    };
    let error = DirectoryError::new(
        failure,
        format!("{what} failed: Microsoft Graph answered HTTP {status}: {said}"),
    );
    match hint {
        Some(hint) => error.hint(hint),
        None => error,
    }
}

/// One page of a Graph collection.
#[derive(Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

/// `@removed` on a delta entry: `changed` (soft-deleted, restorable for 30 days) or `deleted`;
/// either way the object left, and its record becomes a tombstone or goes.
pub type Removed = serde::de::IgnoredAny;

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(rename = "@removed", default)]
    pub removed: Option<Removed>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(rename = "members@delta", default)]
    pub members_delta: Option<Vec<Member>>,
    #[serde(rename = "@removed", default)]
    pub removed: Option<Removed>,
}

/// A directory object in a member list.
#[derive(Deserialize, Debug)]
pub struct Member {
    pub id: String,
    #[serde(rename = "@odata.type", default)]
    pub kind: String,
    #[serde(rename = "@removed", default)]
    pub removed: Option<Removed>,
}

/// What a member is, by its `@odata.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
    /// Devices, contacts, service principals: not people, never synced.
    Other,
}

impl Member {
    pub fn kind(&self) -> MemberKind {
        match self.kind.as_str() {
            "#microsoft.graph.user" => MemberKind::User,
            "#microsoft.graph.group" => MemberKind::Group,
            _ => MemberKind::Other,
        }
    }
}
