//! The `[entra]` table: the tenant, the app registration and how it proves itself, the cloud,
//! and the filters, validated into [`ResolvedEntra`].

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Problem, check_file, is_loopback_host, non_blank};
use crate::directory::filter::{Grammar, NameFilter, SetFilter, set_of};

/// The national clouds: each has its own sign-in host and Graph, and a token of one is
/// worthless at another's Graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    /// Microsoft's global cloud (also Microsoft 365 GCC).
    #[default]
    Global,
    /// US Government L4 (GCC High).
    Usgov,
    /// US Government L5 (DoD).
    UsgovDod,
    /// Microsoft Azure operated by 21Vianet (China).
    China,
}

impl Cloud {
    /// The sign-in host and the Graph root of the cloud.
    fn hosts(self) -> (&'static str, &'static str) {
        match self {
            Cloud::Global => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Cloud::Usgov => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            Cloud::UsgovDod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            Cloud::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntraConfig {
    /// The tenant: its ID (a GUID) or a verified domain such as `contoso.onmicrosoft.com`.
    #[serde(default)]
    pub tenant: String,
    /// The app registration's Application (client) ID. Its client secret is a secret:
    /// `orgsync config set-secret entra.client_secret`; or use a certificate.
    #[serde(default)]
    pub client_id: String,
    /// `global`, `usgov` (GCC High), `usgov-dod` or `china`: the sign-in host, Graph and token
    /// scope always come from the same cloud.
    #[serde(default)]
    pub cloud: Cloud,
    /// Sign in with this certificate (PEM) uploaded to the app registration instead of a client
    /// secret; needs `certificate_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub certificate_file: Option<PathBuf>,
    /// The certificate's private key (PEM, RSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub certificate_key_file: Option<PathBuf>,
    /// Users to sync: `include:a@x.com,b@x.com` or `exclude:…` by email, `includeGroup:<id>,…`
    /// or `excludeGroup:<id>` by (transitive) membership of groups given by object ID; after an
    /// `includeGroup:` clause, `|excludeGroup:<id>` and `|exclude:<email>` clauses narrow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// Groups to sync: `include:Sales,IT` or `exclude:…` by display name, or
    /// `includeadministrativeunit:<id>` / `excludeadministrativeunit:<id>` by administrative
    /// unit. With a filter, only users who are direct members of a synced group are synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// Guest accounts whose only address is their `#EXT#` user principal name are skipped (as
    /// Directory Connector does); on, their own address is read from it
    /// (`ann_example.com#EXT#@…` → `ann@example.com`).
    #[serde(default)]
    pub include_guests: bool,
    /// How many group member listings run at once. 16 stays far inside Graph's budget for a
    /// tenant (a listing costs 2 of the 3,500–8,000 resource units per 10 s) while a 1,000-group
    /// read takes seconds, not minutes.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Read only what changed since the last sync (Graph delta queries); the periodic full
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
    /// Sign-in host instead of the cloud's, e.g. `https://login.example.test` (for special
    /// clouds and test emulators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    /// Microsoft Graph root instead of the cloud's, e.g. `https://graph.example.test`. The
    /// token scope follows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_url: Option<String>,
}

fn default_concurrency() -> usize {
    16
}

fn default_timeout() -> u64 {
    60
}

impl Default for EntraConfig {
    fn default() -> Self {
        EntraConfig {
            tenant: String::new(),
            client_id: String::new(),
            cloud: Cloud::Global,
            certificate_file: None,
            certificate_key_file: None,
            user_filter: None,
            group_filter: None,
            include_guests: false,
            concurrency: default_concurrency(),
            incremental: true,
            timeout_seconds: default_timeout(),
            ca_file: None,
            login_url: None,
            graph_url: None,
        }
    }
}

/// How the app proves itself.
#[derive(Clone, Debug)]
pub enum Credential {
    /// `entra.client_secret`.
    Secret,
    /// A certificate and its key (PEM files).
    Certificate { cert: PathBuf, key: PathBuf },
}

/// Which users the user filter keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub emails: SetFilter,
    /// Users must be transitive members of one of these groups (object IDs, lower-cased).
    pub include_groups: BTreeSet<String>,
    /// Users must not be transitive members of these groups.
    pub exclude_groups: BTreeSet<String>,
}

/// Which groups the group filter keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupFilter {
    pub names: SetFilter,
    /// Groups must be members of one of these administrative units.
    pub include_units: BTreeSet<String>,
    pub exclude_units: BTreeSet<String>,
}

impl GroupFilter {
    /// Whether the filter chooses groups at all (then only their members are synced).
    pub fn is_set(&self) -> bool {
        !self.names.is_all() || !self.include_units.is_empty() || !self.exclude_units.is_empty()
    }
}

/// The `[entra]` settings, checked.
#[derive(Clone, Debug)]
pub struct ResolvedEntra {
    pub tenant: String,
    pub client_id: String,
    pub credential: Credential,
    /// `<login>/<tenant>/oauth2/v2.0/token`.
    pub token_url: String,
    /// `<graph>/v1.0`.
    pub graph: String,
    /// `<graph>/.default`.
    pub scope: String,
    pub user_filter: UserFilter,
    pub group_filter: GroupFilter,
    pub include_guests: bool,
    pub concurrency: usize,
    pub incremental: bool,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
}

/// Keys whose values are file paths: `config set` stores them absolute.
pub const PATH_KEYS: &[&str] = &[
    "entra.certificate_file",
    "entra.certificate_key_file",
    "entra.ca_file",
];

impl EntraConfig {
    pub fn file_paths(&mut self) -> [&mut Option<PathBuf>; 3] {
        [
            &mut self.certificate_file,
            &mut self.certificate_key_file,
            &mut self.ca_file,
        ]
    }

    /// What an admin should hear on every run: secrets and tokens that would travel in clear.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (key, url) in [
            ("entra.login_url", &self.login_url),
            ("entra.graph_url", &self.graph_url),
        ] {
            if let Some(rest) = url
                .as_deref()
                .and_then(|u| u.trim().strip_prefix("http://"))
            {
                let host = rest.split(['/', ':']).next().unwrap_or_default();
                if !is_loopback_host(host) {
                    warnings.push(format!(
                        "{key} is http://: the app's credentials and tokens travel in clear to {host}; use https://"
                    ));
                }
            }
        }
        warnings
    }

    pub(crate) fn resolve(&self, problems: &mut Vec<Problem>) -> ResolvedEntra {
        let tenant = self.tenant.trim().to_string();
        if tenant.is_empty() {
            problems.push(Problem {
                key: "entra.tenant".into(),
                message: "is not set; run `orgsync config set entra.tenant <Directory (tenant) ID>` (Entra admin center → Overview)".into(),
            });
        } else if ["common", "organizations", "consumers"].contains(&tenant.to_lowercase().as_str())
            || tenant.contains(['/', ' ', '?', '#'])
        {
            problems.push(Problem {
                key: "entra.tenant".into(),
                message: format!(
                    "{tenant:?} is not a tenant; give the Directory (tenant) ID or a verified domain like contoso.onmicrosoft.com"
                ),
            });
        }
        let client_id = self.client_id.trim().to_string();
        if client_id.is_empty() {
            problems.push(Problem {
                key: "entra.client_id".into(),
                message: "is not set; run `orgsync config set entra.client_id <Application (client) ID>` (Entra admin center → App registrations)".into(),
            });
        }
        check_file(
            "entra.certificate_file",
            self.certificate_file.as_deref(),
            problems,
        );
        check_file("entra.ca_file", self.ca_file.as_deref(), problems);
        let credential = match (&self.certificate_file, &self.certificate_key_file) {
            (None, None) => Credential::Secret,
            (Some(cert), Some(key)) => {
                if let Err(message) = crate::http::jwt::SigningKey::from_pem_file(key) {
                    problems.push(Problem {
                        key: "entra.certificate_key_file".into(),
                        message,
                    });
                }
                Credential::Certificate {
                    cert: cert.clone(),
                    key: key.clone(),
                }
            }
            (Some(_), None) => {
                problems.push(Problem {
                    key: "entra.certificate_key_file".into(),
                    message: "is required with entra.certificate_file; set it to the certificate's private key (PEM)".into(),
                });
                Credential::Secret
            }
            (None, Some(_)) => {
                problems.push(Problem {
                    key: "entra.certificate_file".into(),
                    message: "is required with entra.certificate_key_file; set it to the certificate uploaded to the app registration (PEM)".into(),
                });
                Credential::Secret
            }
        };
        if self.concurrency == 0 || self.concurrency > 64 {
            problems.push(Problem {
                key: "entra.concurrency".into(),
                message: format!(
                    "{} is out of range; use 1 to 64 (16 is a good value)",
                    self.concurrency
                ),
            });
        }
        if self.timeout_seconds == 0 {
            problems.push(Problem {
                key: "entra.timeout_seconds".into(),
                message: "must be at least 1 second".into(),
            });
        }
        let (cloud_login, cloud_graph) = self.cloud.hosts();
        let mut url = |key: &str, value: &Option<String>, default: &str| match non_blank(value) {
            Some(url) => match crate::config::check_http_url(url) {
                Ok(url) => url,
                Err(message) => {
                    problems.push(Problem {
                        key: key.into(),
                        message,
                    });
                    default.to_string()
                }
            },
            None => default.to_string(),
        };
        let login = url("entra.login_url", &self.login_url, cloud_login);
        let graph = url("entra.graph_url", &self.graph_url, cloud_graph);
        let user_filter = match non_blank(&self.user_filter).map(parse_user_filter) {
            Some(Err(message)) => {
                problems.push(Problem {
                    key: "entra.user_filter".into(),
                    message,
                });
                UserFilter::default()
            }
            Some(Ok(filter)) => filter,
            None => UserFilter::default(),
        };
        let group_filter = match non_blank(&self.group_filter).map(parse_group_filter) {
            Some(Err(message)) => {
                problems.push(Problem {
                    key: "entra.group_filter".into(),
                    message,
                });
                GroupFilter::default()
            }
            Some(Ok(filter)) => filter,
            None => GroupFilter::default(),
        };
        ResolvedEntra {
            token_url: format!("{login}/{tenant}/oauth2/v2.0/token"),
            scope: format!("{graph}/.default"),
            graph: format!("{graph}/v1.0"),
            tenant,
            client_id,
            credential,
            user_filter,
            group_filter,
            include_guests: self.include_guests,
            concurrency: self.concurrency.clamp(1, 64),
            incremental: self.incremental,
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// Directory Connector's Entra user filter (its §4.2): one primary clause, and after an
/// `includeGroup:` primary, `excludeGroup:` and `exclude:` clauses on top.
fn parse_user_filter(text: &str) -> Result<UserFilter, String> {
    let grammar = Grammar {
        keywords: &["include", "exclude", "includeGroup", "excludeGroup"],
        native: false,
    };
    let mut clauses = grammar.parse(text)?.clauses.into_iter();
    let mut filter = UserFilter::default();
    let Some(primary) = clauses.next() else {
        return Ok(filter);
    };
    let narrows = primary.keyword == "includeGroup";
    match primary.keyword {
        "includeGroup" => filter.include_groups = primary.values,
        "excludeGroup" => filter.exclude_groups = primary.values,
        _ => filter.emails = set_of(primary),
    }
    let mut excluded_emails = BTreeSet::new();
    for clause in clauses {
        match clause.keyword {
            "excludeGroup" if narrows => filter.exclude_groups.extend(clause.values),
            "exclude" if narrows => excluded_emails.extend(clause.values),
            keyword => {
                return Err(format!(
                    "a {keyword}: clause after `|` only narrows an includeGroup: filter (write includeGroup:<id>|excludeGroup:<id>|exclude:<email>)"
                ));
            }
        }
    }
    if !excluded_emails.is_empty() {
        filter.emails = SetFilter::Exclude(excluded_emails);
    }
    Ok(filter)
}

/// Directory Connector's Entra group filter (its §4.3): names or administrative units.
fn parse_group_filter(text: &str) -> Result<GroupFilter, String> {
    let grammar = Grammar {
        keywords: &[
            "include",
            "exclude",
            "includeadministrativeunit",
            "excludeadministrativeunit",
        ],
        native: false,
    };
    let parsed = grammar.parse(text)?;
    if parsed.clauses.len() > 1 {
        return Err("takes one clause (include:, exclude:, includeadministrativeunit: or excludeadministrativeunit:)".into());
    }
    let mut filter = GroupFilter::default();
    if let Some(clause) = parsed.clauses.into_iter().next() {
        match clause.keyword {
            "includeadministrativeunit" => filter.include_units = clause.values,
            "excludeadministrativeunit" => filter.exclude_units = clause.values,
            _ => filter.names = NameFilter::parse(text, false)?.set,
        }
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_filters_combine_as_directory_connector_allows_and_refuse_what_it_ignores() {
        let filter =
            parse_user_filter("includeGroup:AAA,bbb | excludeGroup:ccc | exclude:Test@X.com")
                .unwrap();
        assert_eq!(
            filter.include_groups,
            ["aaa", "bbb"].map(String::from).into()
        );
        assert_eq!(filter.exclude_groups, ["ccc"].map(String::from).into());
        assert!(!filter.emails.keeps(Some("test@x.com")));
        let err = parse_user_filter("include:a@x.com|excludeGroup:ccc").unwrap_err();
        assert!(err.contains("only narrows an includeGroup"), "{err}");
        assert!(parse_user_filter("includegroups:x").is_err());
    }

    #[test]
    fn group_filters_take_names_or_administrative_units() {
        let names = parse_group_filter("include:Sales, IT").unwrap();
        assert!(names.names.keeps(Some("sales")) && !names.names.keeps(Some("hr")));
        let units = parse_group_filter("includeAdministrativeUnit:U1").unwrap();
        assert_eq!(units.include_units, ["u1"].map(String::from).into());
        assert!(units.is_set());
        assert!(parse_group_filter("include:a|exclude:b").is_err());
    }

    #[test]
    fn the_cloud_picks_sign_in_host_graph_and_scope_together() {
        let config = EntraConfig {
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: "11111111-2222-3333-4444-555555555555".into(),
            cloud: Cloud::UsgovDod,
            ..EntraConfig::default()
        };
        let mut problems = Vec::new();
        let resolved = config.resolve(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            resolved.token_url,
            "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(resolved.graph, "https://dod-graph.microsoft.us/v1.0");
        assert_eq!(resolved.scope, "https://dod-graph.microsoft.us/.default");
    }
}
