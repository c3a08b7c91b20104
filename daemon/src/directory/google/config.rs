//! The `[google]` table: the service account, the administrator it acts as, the account or
//! domain, and the filters, validated into [`ResolvedGoogle`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Problem, non_blank};
use crate::directory::filter::{NameFilter, from_setting};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// The service account's JSON key file (keep it readable by orgsync only). Or store the
    /// file's content as a secret: `orgsync config set-secret google.key --file key.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub key_file: Option<PathBuf>,
    /// The administrator the service account acts as (domain-wide delegation), e.g.
    /// `admin@example.com`: a user with an admin role that can read users and groups.
    #[serde(default)]
    pub admin_user: String,
    /// The account to read: `my_customer` (the service account's own, the default) or a
    /// customer ID such as `C01abc23d`. Every domain of the account is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Read only this domain of a multi-domain account, e.g. `example.com` (instead of
    /// `customer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Users to sync: `include:a@x.com,b@x.com` or `exclude:…` by email, and after `|` a
    /// Directory API user query, e.g. `exclude:test@x.com | orgUnitPath='/Engineering'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// Groups to sync: `include:Sales,IT` or `exclude:…` by name, and after `|` a group query,
    /// e.g. `|name:Eng*`. With a name clause, only direct members of synced groups are synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// How many group member listings run at once. Quota answers (the default is 2,400 queries
    /// a minute per administrator) are waited out and retried, so more only goes faster while
    /// the project's quota allows.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Give up on one request after this long.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Extra CA certificate (PEM) to trust, e.g. of a TLS-inspecting proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ca_file: Option<PathBuf>,
    /// The Directory API's root instead of `https://admin.googleapis.com` (for test
    /// emulators). The token endpoint is the key file's `token_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

fn default_concurrency() -> usize {
    16
}

fn default_timeout() -> u64 {
    60
}

impl Default for GoogleConfig {
    fn default() -> Self {
        GoogleConfig {
            key_file: None,
            admin_user: String::new(),
            customer: None,
            domain: None,
            user_filter: None,
            group_filter: None,
            concurrency: default_concurrency(),
            timeout_seconds: default_timeout(),
            ca_file: None,
            api_url: None,
        }
    }
}

/// Whose users and groups are read: exactly one of the two is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Customer(String),
    Domain(String),
}

impl Scope {
    /// The query parameter that names it.
    pub fn param(&self) -> (&'static str, &str) {
        match self {
            Scope::Customer(customer) => ("customer", customer),
            Scope::Domain(domain) => ("domain", domain),
        }
    }
}

/// The `[google]` settings, checked.
#[derive(Clone, Debug)]
pub struct ResolvedGoogle {
    /// `None`: the key is the secret `google.key`.
    pub key_file: Option<PathBuf>,
    pub admin_user: String,
    pub scope: Scope,
    pub user_filter: NameFilter,
    pub group_filter: NameFilter,
    pub concurrency: usize,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    /// `<root>/admin/directory/v1`.
    pub api: String,
}

/// Keys whose values are file paths: `config set` stores them absolute.
pub const PATH_KEYS: &[&str] = &["google.key_file", "google.ca_file"];

impl GoogleConfig {
    pub fn file_paths(&mut self) -> [&mut Option<PathBuf>; 2] {
        [&mut self.key_file, &mut self.ca_file]
    }

    pub(crate) fn resolve(&self, problems: &mut Vec<Problem>) -> ResolvedGoogle {
        let admin_user = self.admin_user.trim().to_string();
        if admin_user.is_empty() {
            problems.push(Problem {
                key: "google.admin_user".into(),
                message: "is not set; run `orgsync config set google.admin_user admin@example.com` (an administrator who can read users and groups)".into(),
            });
        } else if !crate::plan::is_valid_email(&admin_user) {
            problems.push(Problem {
                key: "google.admin_user".into(),
                message: format!(
                    "{admin_user:?} is not an email address; give the administrator's primary email"
                ),
            });
        }
        if let Some(path) = &self.key_file
            && !path.is_file()
        {
            problems.push(Problem {
                key: "google.key_file".into(),
                message: format!(
                    "file {} does not exist or is not readable; give the service account's JSON key file",
                    path.display()
                ),
            });
        }
        crate::config::check_file("google.ca_file", self.ca_file.as_deref(), problems);
        let scope = match (non_blank(&self.customer), non_blank(&self.domain)) {
            (Some(_), Some(_)) => {
                problems.push(Problem {
                    key: "google.domain".into(),
                    message: "cannot be combined with google.customer: set one (customer reads every domain of the account, domain only that one)".into(),
                });
                Scope::Customer("my_customer".into())
            }
            (Some(customer), None) => Scope::Customer(customer.to_string()),
            (None, Some(domain)) => Scope::Domain(domain.to_string()),
            (None, None) => Scope::Customer("my_customer".into()),
        };
        let user_filter = from_setting("google.user_filter", &self.user_filter, problems);
        let group_filter = from_setting("google.group_filter", &self.group_filter, problems);
        if self.concurrency == 0 || self.concurrency > 64 {
            problems.push(Problem {
                key: "google.concurrency".into(),
                message: format!(
                    "{} is out of range; use 1 to 64 (16 is a good value)",
                    self.concurrency
                ),
            });
        }
        let root = match non_blank(&self.api_url) {
            Some(url) => crate::config::check_http_url(url).unwrap_or_else(|message| {
                problems.push(Problem {
                    key: "google.api_url".into(),
                    message,
                });
                url.to_string()
            }),
            None => "https://admin.googleapis.com".to_string(),
        };
        ResolvedGoogle {
            key_file: self.key_file.clone(),
            admin_user,
            scope,
            user_filter,
            group_filter,
            concurrency: self.concurrency.clamp(1, 64),
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
            ca_file: self.ca_file.clone(),
            api: format!("{root}/admin/directory/v1"),
        }
    }
}
