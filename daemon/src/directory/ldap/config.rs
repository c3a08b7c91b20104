//! The `[ldap]` table: connection, schema and filters of an LDAP or Active Directory server,
//! validated into [`ResolvedLdap`] with the AD / non-AD defaults filled in.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Problem, check_file, is_loopback_host, non_blank};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// Plain LDAP (the bind password crosses the network in clear text).
    #[default]
    None,
    /// TLS from the first byte (`ldaps://`, usually port 636).
    Ldaps,
    /// Plain connection upgraded with the StartTLS extended operation.
    Starttls,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// Server host name or IP address.
    #[serde(default)]
    pub host: String,
    /// Server port; defaults to 636 with `encryption = "ldaps"`, else 389.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `none`, `ldaps` or `starttls`.
    #[serde(default)]
    pub encryption: Encryption,
    /// CA certificate bundle (PEM) that signed the server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub client_cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub client_key_file: Option<PathBuf>,
    /// Do not verify the server certificate. Dangerous: anyone on the path can read the bind
    /// password. orgsync warns on every run.
    #[serde(default)]
    pub skip_verify: bool,
    /// DN (or for AD `DOMAIN\user` / UPN) to bind as. The password is a secret:
    /// `orgsync config set-secret ldap.bind_password`.
    #[serde(default)]
    pub bind_dn: String,
    /// Base DN of all searches, e.g. `dc=example,dc=org`.
    #[serde(default)]
    pub root_path: String,
    /// Extra LDAP filter for users, ANDed with the object class, e.g. `(memberOf=cn=staff,...)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// Extra LDAP filter for groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// Where users live, relative to `root_path` (e.g. `ou=people`). AD default `CN=Users`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_path: Option<String>,
    /// Where groups live, relative to `root_path` (e.g. `ou=groups`). AD default `CN=Users`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_path: Option<String>,
    /// Object class of users. Default `person` in AD mode, `inetOrgPerson` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_object_class: Option<String>,
    /// Object class of groups. Default `group` in AD mode, `groupOfNames` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_object_class: Option<String>,
    /// Attribute holding the user's email. Default `mail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_attribute: Option<String>,
    /// Attribute holding the group's name. Default `name` in AD mode, `cn` otherwise (falls back
    /// to `cn` when the entry lacks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name_attribute: Option<String>,
    /// Attribute listing a group's members: `member` / `uniqueMember` (DNs) or `memberUid`
    /// (user names). Default `member`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_attribute: Option<String>,
    /// When a user has no email, build one from `email_prefix_attribute` + `email_suffix`.
    #[serde(default)]
    pub use_email_prefix_suffix: bool,
    /// Attribute giving the local part of a synthesised email. Default `sAMAccountName` in AD
    /// mode, `uid` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_prefix_attribute: Option<String>,
    /// Appended to the prefix, e.g. `@example.com` (must start with `@`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_suffix: Option<String>,
    /// Does nothing: accepted so Directory Connector settings carry over (it stores but never
    /// uses it). orgsync warns on every run while it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date_attribute: Option<String>,
    /// Does nothing: accepted so Directory Connector settings carry over (it filters on it,
    /// e.g. `modifyTimestamp` or AD `whenChanged`). orgsync tracks changes with
    /// `ldap.incremental` instead, and warns on every run while this is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_date_attribute: Option<String>,
    /// Active Directory mode: AD attribute defaults, objectGUID, userAccountControl, deleted objects.
    #[serde(default)]
    pub active_directory: bool,
    /// Use the Simple Paged Results control (RFC 2696). Always on in AD mode.
    #[serde(default = "crate::config::default_true")]
    pub paged_search: bool,
    /// Entries per page for paged searches.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Read only what changed since the last sync where the server tracks changes (RFC 4533
    /// content synchronisation: OpenLDAP with the `syncprov` overlay). Elsewhere every read is
    /// full.
    #[serde(default = "crate::config::default_true")]
    pub incremental: bool,
    /// Give up connecting after this long.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// Give up on a single LDAP operation (bind, one search page) after this long.
    #[serde(default = "default_operation_timeout")]
    pub timeout_seconds: u64,
    /// Attribute whose value is the stable id sent to the organization as `externalId`. Default:
    /// `objectGUID` in AD mode, `entryUUID` otherwise. `dn` uses the entry's DN like Directory
    /// Connector does (choose it to continue an organization provisioned by Directory Connector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_attribute: Option<String>,
    /// LDAP filter matching disabled users on servers without AD's userAccountControl, e.g.
    /// `(pwdAccountLockedTime=*)` or `(nsAccountLock=TRUE)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_filter: Option<String>,
    /// Attribute holding the user name that `memberUid` values refer to. Default `uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_attribute: Option<String>,
}

fn default_page_size() -> u32 {
    500
}

fn default_connect_timeout() -> u64 {
    10
}

fn default_operation_timeout() -> u64 {
    120
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            host: String::new(),
            port: None,
            encryption: Encryption::None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            skip_verify: false,
            bind_dn: String::new(),
            root_path: String::new(),
            user_filter: None,
            group_filter: None,
            user_path: None,
            group_path: None,
            user_object_class: None,
            group_object_class: None,
            email_attribute: None,
            group_name_attribute: None,
            member_attribute: None,
            use_email_prefix_suffix: false,
            email_prefix_attribute: None,
            email_suffix: None,
            creation_date_attribute: None,
            revision_date_attribute: None,
            active_directory: false,
            paged_search: true,
            page_size: default_page_size(),
            incremental: true,
            connect_timeout_seconds: default_connect_timeout(),
            timeout_seconds: default_operation_timeout(),
            external_id_attribute: None,
            disabled_filter: None,
            uid_attribute: None,
        }
    }
}

/// LDAP settings with AD / non-AD defaults applied.
#[derive(Clone, Debug)]
pub struct ResolvedLdap {
    pub url: String,
    pub encryption: Encryption,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub skip_verify: bool,
    pub bind_dn: String,
    pub active_directory: bool,
    /// `None` when paging is off.
    pub page_size: Option<u32>,
    /// Track changes where the server can (`ldap.incremental`).
    pub incremental: bool,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    pub user_base: String,
    pub group_base: String,
    pub root_path: String,
    pub user_filter: String,
    pub group_filter: String,
    pub disabled_filter: Option<String>,
    pub external_id: ExternalIdSource,
    pub email_attribute: String,
    /// `(prefix attribute, suffix)` when emails are synthesised.
    pub email_prefix_suffix: Option<(String, String)>,
    pub group_name_attribute: String,
    pub member_attribute: String,
    pub uid_attribute: String,
}

/// Where a user's or group's `externalId` comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalIdSource {
    /// The entry DN, like Directory Connector on non-AD servers.
    Dn,
    /// AD's binary objectGUID, formatted as a GUID string.
    ObjectGuid,
    /// Any other attribute, used as a string (e.g. `entryUUID`, `nsUniqueId`, `ipaUniqueID`).
    Attribute(String),
}

/// Checks a filter with ldap3's own RFC 4515 parser, the one that will send it.
fn check_filter(key: &str, filter: &str, problems: &mut Vec<Problem>) {
    let filter = filter.trim();
    if !filter.starts_with('(') || ldap3::parse_filter(filter).is_err() {
        problems.push(Problem {
            key: key.into(),
            message: format!(
                "{filter:?} is not one parenthesised LDAP filter; write it like (cn=Sales) or (&(a=1)(b=2))"
            ),
        });
    }
}

impl LdapConfig {
    pub(crate) fn resolve(&self, problems: &mut Vec<Problem>) -> ResolvedLdap {
        let ad = self.active_directory;
        if self.host.trim().is_empty() {
            problems.push(Problem {
                key: "ldap.host".into(),
                message: "is not set; run `orgsync config set ldap.host ldap.example.com`".into(),
            });
        }
        if self.bind_dn.trim().is_empty() {
            problems.push(Problem {
                key: "ldap.bind_dn".into(),
                message: "is not set; run `orgsync config set ldap.bind_dn cn=reader,dc=example,dc=org` (anonymous binds are not supported)".into(),
            });
        }
        let root_path = self.root_path.trim().to_string();
        if root_path.is_empty() {
            problems.push(Problem {
                key: "ldap.root_path".into(),
                message: "is not set; run `orgsync config set ldap.root_path dc=example,dc=org`"
                    .into(),
            });
        } else if !root_path.contains('=') {
            problems.push(Problem {
                key: "ldap.root_path".into(),
                message: format!("{root_path:?} is not a DN; write it like dc=example,dc=org"),
            });
        }
        if self.port == Some(0) {
            problems.push(Problem {
                key: "ldap.port".into(),
                message: "0 is not a port; use 1 to 65535, or unset it for 389 (636 with ldaps)"
                    .into(),
            });
        }
        if self.page_size == 0 || self.page_size > 100_000 {
            problems.push(Problem {
                key: "ldap.page_size".into(),
                message: format!(
                    "{} is out of range; use 1 to 100000 (500 is a good value)",
                    self.page_size
                ),
            });
        }
        for (key, value) in [
            ("ldap.connect_timeout_seconds", self.connect_timeout_seconds),
            ("ldap.timeout_seconds", self.timeout_seconds),
        ] {
            if value == 0 {
                problems.push(Problem {
                    key: key.into(),
                    message: "must be at least 1 second".into(),
                });
            }
        }
        check_file("ldap.ca_file", self.ca_file.as_deref(), problems);
        check_file(
            "ldap.client_cert_file",
            self.client_cert_file.as_deref(),
            problems,
        );
        check_file(
            "ldap.client_key_file",
            self.client_key_file.as_deref(),
            problems,
        );
        let client_cert = match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            // Named under the missing one, so `config set` can set them one after the other.
            (Some(_), None) => {
                problems.push(Problem {
                    key: "ldap.client_key_file".into(),
                    message: "is required with ldap.client_cert_file; set it to the client's private key (PEM)".into(),
                });
                None
            }
            (None, Some(_)) => {
                problems.push(Problem {
                    key: "ldap.client_cert_file".into(),
                    message: "is required with ldap.client_key_file; set it to the client certificate (PEM)".into(),
                });
                None
            }
        };
        if client_cert.is_some() && self.ca_file.is_none() {
            problems.push(Problem {
                key: "ldap.ca_file".into(),
                message: "is required with a client certificate; set it to the CA that signed the server's certificate".into(),
            });
        }
        if self.encryption == Encryption::None && (self.ca_file.is_some() || client_cert.is_some())
        {
            problems.push(Problem {
                key: "ldap.encryption".into(),
                message: "is `none` but TLS files are set; set it to `ldaps` or `starttls`".into(),
            });
        }
        if let Some(filter) = non_blank(&self.disabled_filter) {
            check_filter("ldap.disabled_filter", filter, problems);
        }

        if let Some(filter) = non_blank(&self.user_filter) {
            check_filter("ldap.user_filter", filter, problems);
        }
        if let Some(filter) = non_blank(&self.group_filter) {
            check_filter("ldap.group_filter", filter, problems);
        }
        if self.use_email_prefix_suffix {
            match non_blank(&self.email_suffix) {
                None => problems.push(Problem {
                    key: "ldap.email_suffix".into(),
                    message:
                        "is required when use_email_prefix_suffix is on; set it like @example.com"
                            .into(),
                }),
                Some(suffix) if !suffix.starts_with('@') || suffix.len() < 2 => {
                    problems.push(Problem {
                        key: "ldap.email_suffix".into(),
                        message: format!("{suffix:?} must start with @, like @example.com"),
                    })
                }
                Some(_) => {}
            }
        }

        let port = self.port.unwrap_or(match self.encryption {
            Encryption::Ldaps => 636,
            _ => 389,
        });
        let scheme = if self.encryption == Encryption::Ldaps {
            "ldaps"
        } else {
            "ldap"
        };
        let host = self.host.trim();
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]") // a bare IPv6 address
        } else {
            host.to_string()
        };

        let pick = |value: &Option<String>, ad_default: &str, ldap_default: &str| {
            non_blank(value)
                .unwrap_or(if ad { ad_default } else { ldap_default })
                .to_string()
        };
        let base = |path: &Option<String>| match non_blank(path).or(ad.then_some("CN=Users")) {
            Some(path) => format!("{path},{root_path}"),
            None => root_path.clone(),
        };
        let user_object_class = pick(&self.user_object_class, "person", "inetOrgPerson");
        let group_object_class = pick(&self.group_object_class, "group", "groupOfNames");
        let object_filter = |class: &str, extra: Option<&str>| match extra {
            Some(extra) => format!("(&(objectClass={class}){extra})"),
            None => format!("(objectClass={class})"),
        };
        let external_id = match non_blank(&self.external_id_attribute) {
            Some(a) if a.eq_ignore_ascii_case("dn") => ExternalIdSource::Dn,
            Some(a) if a.eq_ignore_ascii_case("objectGUID") => ExternalIdSource::ObjectGuid,
            Some(a) => ExternalIdSource::Attribute(a.to_string()),
            None if ad => ExternalIdSource::ObjectGuid,
            None => ExternalIdSource::Attribute("entryUUID".into()),
        };
        let email_prefix_suffix = self.use_email_prefix_suffix.then(|| {
            (
                pick(&self.email_prefix_attribute, "sAMAccountName", "uid"),
                non_blank(&self.email_suffix)
                    .unwrap_or_default()
                    .to_string(),
            )
        });

        ResolvedLdap {
            url: format!("{scheme}://{host}:{port}"),
            encryption: self.encryption,
            ca_file: self.ca_file.clone(),
            client_cert,
            skip_verify: self.skip_verify,
            bind_dn: self.bind_dn.trim().to_string(),
            active_directory: ad,
            page_size: (self.paged_search || ad).then_some(self.page_size),
            incremental: self.incremental,
            connect_timeout: Duration::from_secs(self.connect_timeout_seconds),
            operation_timeout: Duration::from_secs(self.timeout_seconds),
            user_base: base(&self.user_path),
            group_base: base(&self.group_path),
            root_path: root_path.clone(),
            user_filter: object_filter(&user_object_class, non_blank(&self.user_filter)),
            group_filter: object_filter(&group_object_class, non_blank(&self.group_filter)),
            disabled_filter: non_blank(&self.disabled_filter).map(str::to_string),
            external_id,
            email_attribute: pick(&self.email_attribute, "mail", "mail"),
            email_prefix_suffix,
            group_name_attribute: pick(&self.group_name_attribute, "name", "cn"),
            member_attribute: pick(&self.member_attribute, "member", "member"),
            uid_attribute: non_blank(&self.uid_attribute).unwrap_or("uid").to_string(),
        }
    }
}

impl LdapConfig {
    /// What an admin should hear about on every run: secrets that would travel in clear, and
    /// Directory Connector's keys that orgsync accepts but does not use (each with what orgsync
    /// does instead: an admin who sets one must not believe it matters).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let host = self.host.trim();
        if self.encryption == Encryption::None && !host.is_empty() && !is_loopback_host(host) {
            let of = match self.bind_dn.trim() {
                "" => String::new(),
                dn => format!(" of {dn}"),
            };
            warnings.push(format!(
                "ldap.encryption = none: the bind password{of} travels in clear to {host}; use `orgsync config set ldap.encryption ldaps` (or starttls)"
            ));
        }
        if let Some(value) = &self.revision_date_attribute {
            warnings.push(format!(
                "ldap.revision_date_attribute = {value:?} does nothing in orgsync: changes are tracked with ldap.incremental (content sync, uSNChanged or modifyTimestamp) and sync.full_read_hours; remove it with `orgsync config unset ldap.revision_date_attribute`"
            ));
        }
        if let Some(value) = &self.creation_date_attribute {
            warnings.push(format!(
                "ldap.creation_date_attribute = {value:?} does nothing (Directory Connector never used it either); remove it with `orgsync config unset ldap.creation_date_attribute`"
            ));
        }
        warnings
    }
}

/// Keys whose values are file paths: `config set` stores them absolute.
pub const PATH_KEYS: &[&str] = &[
    "ldap.ca_file",
    "ldap.client_cert_file",
    "ldap.client_key_file",
];

impl LdapConfig {
    /// The file paths of the table (those of [`PATH_KEYS`]), to anchor relative ones.
    pub fn file_paths(&mut self) -> [&mut Option<PathBuf>; 3] {
        [
            &mut self.ca_file,
            &mut self.client_cert_file,
            &mut self.client_key_file,
        ]
    }
}
