//! The `[okta]` table: the org, how orgsync signs in (an API token, or an OAuth service app
//! with a private key), the filters and the pace, validated into [`ResolvedOkta`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Problem, non_blank};
use crate::directory::filter::{NameFilter, from_setting};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OktaConfig {
    /// The org's URL, e.g. `https://example.okta.com` (a custom domain or port is fine; not the
    /// `-admin` URL).
    #[serde(default)]
    pub org_url: String,
    /// The client ID of an Okta API service app: sign in with OAuth 2.0 and its private key
    /// (recommended) instead of an API token. The app needs the scopes `okta.users.read
    /// okta.groups.read` and an admin role such as Read-only Administrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The service app's private key (PEM, RSA or P-256 EC). Or store it as a secret:
    /// `orgsync config set-secret okta.private_key --file key.pem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub private_key_file: Option<PathBuf>,
    /// The key's ID (`kid`) as the app's public keys list it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Users to sync: `include:a@x.com,b@x.com` or `exclude:…` by email, and after `|` an Okta
    /// user filter, e.g. `exclude:test@x.com | profile.lastName eq "Smith"`, as the API's
    /// `filter` parameter takes it (`status`, `lastUpdated`, `id`, `profile.login`,
    /// `profile.email`, `profile.firstName`, `profile.lastName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// Groups to sync: `include:Sales,IT` or `exclude:…` by name, and after `|` an Okta group
    /// filter, e.g. `| type eq "OKTA_GROUP"`. With a name clause, only direct members of synced
    /// groups are synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// How many group member listings run at once. Okta's rate limits are respected whatever
    /// the number: requests wait for the limit's reset before it runs out.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Read only what changed since the last sync (users and groups by `lastUpdated`,
    /// memberships by `lastMembershipUpdated`, deprovisioned users included). The periodic full
    /// read (`sync.full_read_hours`) still reconciles.
    #[serde(default = "crate::config::default_true")]
    pub incremental: bool,
    /// Give up on one request after this long.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Extra CA certificate (PEM) to trust, e.g. of a TLS-inspecting proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ca_file: Option<PathBuf>,
}

fn default_concurrency() -> usize {
    8
}

fn default_timeout() -> u64 {
    60
}

impl Default for OktaConfig {
    fn default() -> Self {
        OktaConfig {
            org_url: String::new(),
            client_id: None,
            private_key_file: None,
            key_id: None,
            user_filter: None,
            group_filter: None,
            concurrency: default_concurrency(),
            incremental: true,
            timeout_seconds: default_timeout(),
            ca_file: None,
        }
    }
}

/// How orgsync proves who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An API token (`Authorization: SSWS …`), the secret `okta.token`.
    ApiToken,
    /// An API service app: `private_key_jwt` client credentials with the key in a file
    /// (`None`: the secret `okta.private_key`).
    ServiceApp {
        client_id: String,
        key_file: Option<PathBuf>,
        key_id: Option<String>,
    },
}

/// The `[okta]` settings, checked.
#[derive(Clone, Debug)]
pub struct ResolvedOkta {
    /// `scheme://host[:port]`, no trailing slash.
    pub org: String,
    pub credential: Credential,
    pub user_filter: NameFilter,
    pub group_filter: NameFilter,
    pub concurrency: usize,
    pub incremental: bool,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
}

/// Keys whose values are file paths: `config set` stores them absolute.
pub const PATH_KEYS: &[&str] = &["okta.private_key_file", "okta.ca_file"];

impl OktaConfig {
    pub fn file_paths(&mut self) -> [&mut Option<PathBuf>; 2] {
        [&mut self.private_key_file, &mut self.ca_file]
    }

    /// What an admin should hear on every run: a token that would travel in clear.
    pub fn warnings(&self) -> Vec<String> {
        let url = self.org_url.trim();
        match url.strip_prefix("http://") {
            Some(rest) => {
                let host = rest.split(['/', ':']).next().unwrap_or_default();
                match crate::config::is_loopback_host(host) {
                    true => Vec::new(),
                    false => vec![format!(
                        "okta.org_url is http://: the token travels in clear to {host}; use https://"
                    )],
                }
            }
            None => Vec::new(),
        }
    }

    pub(crate) fn resolve(&self, problems: &mut Vec<Problem>) -> ResolvedOkta {
        let mut problem = |key: &str, message: String| {
            problems.push(Problem {
                key: key.into(),
                message,
            });
        };
        let org = match self.org_url.trim() {
            "" => {
                problem(
                    "okta.org_url",
                    "is not set; run `orgsync config set okta.org_url https://<your org>.okta.com`"
                        .into(),
                );
                String::new()
            }
            url => match org_origin(url) {
                Ok(org) => org,
                Err(message) => {
                    problem("okta.org_url", message);
                    url.to_string()
                }
            },
        };
        let credential = match non_blank(&self.client_id) {
            Some(client_id) => {
                if let Some(path) = &self.private_key_file
                    && !path.is_file()
                {
                    problem(
                        "okta.private_key_file",
                        format!(
                            "file {} does not exist or is not readable; give the service app's private key (PEM)",
                            path.display()
                        ),
                    );
                }
                Credential::ServiceApp {
                    client_id: client_id.to_string(),
                    key_file: self.private_key_file.clone(),
                    key_id: non_blank(&self.key_id).map(str::to_string),
                }
            }
            None => {
                if self.private_key_file.is_some() {
                    problem(
                        "okta.client_id",
                        "is not set, but okta.private_key_file is: set the service app's client ID, or remove the key file to sign in with an API token".into(),
                    );
                }
                Credential::ApiToken
            }
        };
        crate::config::check_file("okta.ca_file", self.ca_file.as_deref(), problems);
        let user_filter = from_setting("okta.user_filter", &self.user_filter, problems);
        let group_filter = from_setting("okta.group_filter", &self.group_filter, problems);
        if self.concurrency == 0 || self.concurrency > 32 {
            problems.push(Problem {
                key: "okta.concurrency".into(),
                message: format!(
                    "{} is out of range; use 1 to 32 (8 is a good value)",
                    self.concurrency
                ),
            });
        }
        ResolvedOkta {
            org,
            credential,
            user_filter,
            group_filter,
            concurrency: self.concurrency.clamp(1, 32),
            incremental: self.incremental,
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// The org's origin from what the admin wrote: any port, a trailing slash or an API path
/// (`/api/v1`) dropped; the admin console's `-admin` host is not the org's.
fn org_origin(url: &str) -> Result<String, String> {
    let checked = crate::config::check_http_url(url)?;
    let parsed = reqwest::Url::parse(&checked).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    if let Some(org) = host
        .split('.')
        .next()
        .and_then(|l| l.strip_suffix("-admin"))
    {
        let fixed = checked.replacen(&format!("{org}-admin."), &format!("{org}."), 1);
        return Err(format!(
            "{url:?} is the admin console's address; the API is at the org's: {fixed}"
        ));
    }
    let path = parsed.path().trim_end_matches('/');
    if !path.is_empty() && path != "/api/v1" {
        return Err(format!(
            "{url:?} has a path; give only the org's address, e.g. {}",
            parsed.origin().ascii_serialization()
        ));
    }
    Ok(parsed.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_org_url_keeps_its_port_and_loses_a_trailing_slash() {
        assert_eq!(
            org_origin("https://example.okta.com/").unwrap(),
            "https://example.okta.com"
        );
        assert_eq!(
            org_origin("https://sso.example.com:8443").unwrap(),
            "https://sso.example.com:8443"
        );
        assert_eq!(
            org_origin("https://example.okta.com/api/v1/").unwrap(),
            "https://example.okta.com"
        );
        let admin = org_origin("https://example-admin.okta.com").unwrap_err();
        assert!(admin.contains("https://example.okta.com"), "{admin}");
        assert!(org_origin("https://example.okta.com/app/x").is_err());
        assert!(org_origin("example.okta.com").is_err());
    }

    #[test]
    fn a_key_file_without_a_client_id_is_named() {
        let config = OktaConfig {
            org_url: "https://example.okta.com".into(),
            private_key_file: Some("/nonexistent.pem".into()),
            ..OktaConfig::default()
        };
        let mut problems = Vec::new();
        let resolved = config.resolve(&mut problems);
        assert_eq!(resolved.credential, Credential::ApiToken);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "okta.client_id");
    }
}
