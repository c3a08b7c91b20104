//! The `[onelogin]` table: the account's API host, the API credential, what Bitwarden groups
//! are made of (roles or OneLogin groups), the filters and the email fallback, validated into
//! [`ResolvedOneLogin`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Problem, non_blank};
use crate::directory::filter::{NameFilter, from_setting};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OneLoginConfig {
    /// The API credential's client ID (Administration → Developers → API Credentials; "Read
    /// users" is enough). Its secret: `orgsync config set-secret onelogin.client_secret`.
    #[serde(default)]
    pub client_id: String,
    /// `us` or `eu`: the regional API host `api.<region>.onelogin.com`, as Directory
    /// Connector uses it. Ignored when `subdomain` or `api_url` is set.
    #[serde(default = "default_region")]
    pub region: String,
    /// The account's subdomain (`example` for `example.onelogin.com`), whose own host serves
    /// the API: what OneLogin recommends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// The API's base URL instead (a custom domain, a test emulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// What becomes a Bitwarden group: `roles` (as Directory Connector has it) or `groups`
    /// (OneLogin groups; each user is in at most one).
    #[serde(default)]
    pub groups_from: GroupsFrom,
    /// Users to sync: `include:a@x.com,b@x.com` or `exclude:…` by email, and after `|` query
    /// parameters of the users API, e.g. `exclude:test@x.com | directory_id=12345`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// Roles (or groups) to sync: `include:Sales,IT` or `exclude:…` by name, and after `|`
    /// query parameters of the roles API, e.g. `| name=Sales*`. With a name clause, only
    /// members of synced roles are synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// A user without a valid email but with a username gets `<username><suffix>`, e.g.
    /// `@example.com` (Directory Connector's email suffix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_suffix: Option<String>,
    /// How many role member listings run at once. OneLogin's budget (5,000 requests an hour by
    /// default) is respected whatever the number.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Give up on one request after this long.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Extra CA certificate (PEM) to trust, e.g. of a TLS-inspecting proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ca_file: Option<PathBuf>,
}

/// The source of Bitwarden groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupsFrom {
    #[default]
    Roles,
    Groups,
}

fn default_region() -> String {
    "us".into()
}

fn default_concurrency() -> usize {
    4
}

fn default_timeout() -> u64 {
    60
}

impl Default for OneLoginConfig {
    fn default() -> Self {
        OneLoginConfig {
            client_id: String::new(),
            region: default_region(),
            subdomain: None,
            api_url: None,
            groups_from: GroupsFrom::Roles,
            user_filter: None,
            group_filter: None,
            email_suffix: None,
            concurrency: default_concurrency(),
            timeout_seconds: default_timeout(),
            ca_file: None,
        }
    }
}

/// The `[onelogin]` settings, checked.
#[derive(Clone, Debug)]
pub struct ResolvedOneLogin {
    pub client_id: String,
    /// `https://api.us.onelogin.com`, `https://<subdomain>.onelogin.com` or `api_url`.
    pub base: String,
    pub groups_from: GroupsFrom,
    pub user_filter: NameFilter,
    pub group_filter: NameFilter,
    pub email_suffix: Option<String>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
}

/// Keys whose values are file paths: `config set` stores them absolute.
pub const PATH_KEYS: &[&str] = &["onelogin.ca_file"];

impl OneLoginConfig {
    pub fn file_paths(&mut self) -> [&mut Option<PathBuf>; 1] {
        [&mut self.ca_file]
    }

    pub(crate) fn resolve(&self, problems: &mut Vec<Problem>) -> ResolvedOneLogin {
        let mut problem = |key: &str, message: String| {
            problems.push(Problem {
                key: key.into(),
                message,
            });
        };
        let client_id = self.client_id.trim().to_string();
        if client_id.is_empty() {
            problem(
                "onelogin.client_id",
                "is not set; run `orgsync config set onelogin.client_id <client ID>` (Administration → Developers → API Credentials)".into(),
            );
        }
        let base = match (non_blank(&self.api_url), non_blank(&self.subdomain)) {
            (Some(_), Some(_)) => {
                problem(
                    "onelogin.api_url",
                    "cannot be combined with onelogin.subdomain: set one".into(),
                );
                String::new()
            }
            (Some(url), None) => crate::config::check_http_url(url).unwrap_or_else(|message| {
                problem("onelogin.api_url", message);
                url.to_string()
            }),
            (None, Some(subdomain)) => {
                let valid = subdomain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
                if !valid {
                    problem(
                        "onelogin.subdomain",
                        format!(
                            "{subdomain:?} is not a subdomain; give the first part of your OneLogin address (example for example.onelogin.com)"
                        ),
                    );
                }
                format!("https://{subdomain}.onelogin.com")
            }
            (None, None) => match self.region.trim().to_lowercase().as_str() {
                region @ ("us" | "eu") => format!("https://api.{region}.onelogin.com"),
                other => {
                    problem(
                        "onelogin.region",
                        format!(
                            "{other:?} is not a OneLogin region; use us or eu, or set onelogin.subdomain"
                        ),
                    );
                    String::new()
                }
            },
        };
        let email_suffix = non_blank(&self.email_suffix).map(str::to_string);
        if let Some(suffix) = &email_suffix
            && (!suffix.starts_with('@') || suffix.len() < 4 || !suffix.contains('.'))
        {
            problem(
                "onelogin.email_suffix",
                format!("{suffix:?} is not an email suffix; write it like @example.com"),
            );
        }
        crate::config::check_file("onelogin.ca_file", self.ca_file.as_deref(), problems);
        let mut filter = |key: &str, value: &Option<String>| {
            let filter = from_setting(key, value, problems);
            match filter.native.as_deref().map(check_query) {
                Some(Err(message)) => {
                    problems.push(Problem {
                        key: key.into(),
                        message,
                    });
                    NameFilter::default()
                }
                _ => filter,
            }
        };
        let user_filter = filter("onelogin.user_filter", &self.user_filter);
        let group_filter = filter("onelogin.group_filter", &self.group_filter);
        if self.concurrency == 0 || self.concurrency > 16 {
            problems.push(Problem {
                key: "onelogin.concurrency".into(),
                message: format!(
                    "{} is out of range; use 1 to 16 (4 is a good value)",
                    self.concurrency
                ),
            });
        }
        ResolvedOneLogin {
            client_id,
            base,
            groups_from: self.groups_from,
            user_filter,
            group_filter,
            email_suffix,
            concurrency: self.concurrency.clamp(1, 16),
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// A native filter is query parameters: `name=value`, joined by `&`.
fn check_query(query: &str) -> Result<(), String> {
    let bad = query.split('&').find(|pair| {
        pair.split_once('=')
            .is_none_or(|(name, _)| name.trim().is_empty())
    });
    match bad {
        Some(pair) => Err(format!(
            "{pair:?} after `|` is not a query parameter; write name=value pairs joined by &, e.g. | directory_id=12345"
        )),
        None => Ok(()),
    }
}
