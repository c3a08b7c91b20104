//! The TOML configuration: raw serde structs (what the admin wrote), validation, and the resolved
//! form the rest of orgsync uses.
//!
//! Two stages, like ripgrep's low/high args: [`Config`] holds exactly what the file says (every
//! optional attribute stays `None`, so `config show` can tell "unset" from "set to the default"),
//! and [`Config::resolve`] checks everything once and fills the defaults that depend on other
//! fields (Active Directory vs. other LDAP) into a [`ResolvedConfig`].
//!
//! Secrets are never part of this file: they live in [`crate::secrets`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::directory::DirectoryKind;
use crate::directory::Settings as DirectorySettings;
pub use crate::directory::entra::config::{EntraConfig, ResolvedEntra};
pub use crate::directory::google::config::{GoogleConfig, ResolvedGoogle};
pub use crate::directory::ldap::config::{Encryption, ExternalIdSource, LdapConfig, ResolvedLdap};
pub use crate::directory::okta::config::{OktaConfig, ResolvedOkta};
pub use crate::directory::onelogin::config::{GroupsFrom, OneLoginConfig, ResolvedOneLogin};

mod legacy;
pub use legacy::Moved;

/// Errors loading or changing the configuration. Every message names the key or file and says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write config file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    #[error("{0}")]
    Key(String),
}

/// One validation problem: the dotted key, the offending value and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The configuration file as written. Unknown keys are errors, not ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which directory to read.
    #[serde(default)]
    pub directory: DirectoryTable,
    /// The Bitwarden (or Vaultwarden) server that hosts the organization.
    #[serde(default)]
    pub server: ServerConfig,
    /// LDAP / Active Directory: connection, schema and filters (`directory.type = "ldap"`).
    #[serde(default)]
    pub ldap: LdapConfig,
    /// Microsoft Entra ID (Azure AD) through Microsoft Graph (`directory.type = "entra"`).
    #[serde(default)]
    pub entra: EntraConfig,
    /// Google Workspace through the Admin SDK (`directory.type = "google"`).
    #[serde(default)]
    pub google: GoogleConfig,
    /// Okta through its Management API (`directory.type = "okta"`).
    #[serde(default)]
    pub okta: OktaConfig,
    /// OneLogin through its API v2 (`directory.type = "onelogin"`).
    #[serde(default)]
    pub onelogin: OneLoginConfig,
    /// What to sync and how.
    #[serde(default)]
    pub sync: SyncConfig,
    /// How orgsync reaches HTTP services (the organization server and cloud directories).
    #[serde(default)]
    pub http: HttpConfig,
    /// Limits that stop a sync from removing many members by accident.
    #[serde(default)]
    pub safety: SafetyConfig,
    /// Where secrets are kept.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// The always-on daemon `orgsyncd`.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// Keys the file still has in the place an earlier release wrote them, read from there.
    #[serde(skip)]
    #[schema(ignore)]
    pub moved: Vec<Moved>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryTable {
    /// The directory orgsync reads: `ldap` (LDAP and Active Directory), `entra` (Microsoft
    /// Entra ID), `google` (Google Workspace), `okta` or `onelogin`. Its settings are in the table of the
    /// same name.
    #[serde(default, rename = "type")]
    pub kind: DirectoryKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `cloud-us` (bitwarden.com), `cloud-eu` (bitwarden.eu), or the base URL of a self-hosted
    /// Bitwarden or Vaultwarden server (its API is then at `<url>/api`, identity at `<url>/identity`).
    #[serde(default = "default_server_url")]
    pub url: String,
    /// Explicit API URL; overrides the one derived from `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Explicit identity URL; overrides the one derived from `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_url: Option<String>,
    /// Extra CA certificate (PEM) to trust for a self-hosted server with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ca_file: Option<PathBuf>,
    /// Request timeout for the organization server.
    #[serde(default = "default_server_timeout")]
    pub timeout_seconds: u64,
}

fn default_server_url() -> String {
    "cloud-us".to_string()
}

fn default_server_timeout() -> u64 {
    120
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            url: default_server_url(),
            api_url: None,
            identity_url: None,
            ca_file: None,
            timeout_seconds: default_server_timeout(),
        }
    }
}

pub(crate) fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Sync users (members).
    #[serde(default = "default_true")]
    pub users: bool,
    /// Sync groups and their memberships.
    #[serde(default = "default_true")]
    pub groups: bool,
    /// Minutes between syncs when the daemon polls (minimum 1).
    #[serde(default = "default_interval")]
    pub interval_minutes: u32,
    /// A cron expression for the daemon's syncs instead of the interval, e.g. `0 */15 * * * *`
    /// (seconds optional) or `@hourly`. Times are UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Every this many hours a sync reads the whole directory and sends the organization
    /// everything it must hold, even when nothing changed, so what was changed there by hand is
    /// repaired (a member removed by hand comes back). 0: every sync does.
    #[serde(default = "default_full_read_hours")]
    pub full_read_hours: u32,
    /// Remove disabled users from the organization.
    #[serde(default)]
    pub remove_disabled: bool,
    /// Remove members that orgsync synced before and that are no longer in the directory (or no
    /// longer match the filters). Guarded by `[safety]`.
    #[serde(default = "default_true")]
    pub remove_missing_users: bool,
    /// Ask the server to remove every directory-managed member not in this sync. For debugging;
    /// cannot be combined with batched large imports.
    #[serde(default)]
    pub overwrite_existing: bool,
    /// More than 2000 users or groups: send in batches of 2000 and lift the cloud's limit.
    #[serde(default)]
    pub large_import: bool,
    /// Send invitation emails to new members right away.
    #[serde(default)]
    pub invite_users_after_provisioning: bool,
}

fn default_interval() -> u32 {
    5
}

fn default_full_read_hours() -> u32 {
    24
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            users: true,
            groups: true,
            interval_minutes: default_interval(),
            schedule: None,
            remove_disabled: false,
            full_read_hours: default_full_read_hours(),
            remove_missing_users: true,
            overwrite_existing: false,
            large_import: false,
            invite_users_after_provisioning: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// A proxy for every HTTPS request, e.g. `http://proxy.example.com:3128`. Unset: the
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` environment variables apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Hosts reached without `proxy`, comma-separated like `NO_PROXY`, e.g.
    /// `vault.example.com,.internal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    /// Give up connecting to a server after this long.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// The longest a request may wait out throttling in all (the server's Retry-After
    /// included) before the sync fails and the next one tries again.
    #[serde(default = "default_max_retry_wait")]
    pub max_retry_wait_seconds: u64,
}

fn default_connect_timeout() -> u64 {
    15
}

fn default_max_retry_wait() -> u64 {
    300
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            proxy: None,
            no_proxy: None,
            connect_timeout_seconds: default_connect_timeout(),
            max_retry_wait_seconds: default_max_retry_wait(),
        }
    }
}

impl HttpConfig {
    /// The settings of a client with this CA file and request timeout.
    pub fn settings(
        &self,
        ca_file: Option<PathBuf>,
        timeout: Duration,
    ) -> crate::http::HttpSettings {
        crate::http::HttpSettings {
            ca_file,
            connect_timeout: Duration::from_secs(self.connect_timeout_seconds.max(1)),
            timeout,
            proxy: non_blank(&self.proxy).map(str::to_string),
            no_proxy: non_blank(&self.no_proxy).map(str::to_string),
            retry: crate::http::RetryPolicy {
                total_wait: Duration::from_secs(self.max_retry_wait_seconds),
                ..crate::http::RetryPolicy::default()
            },
        }
    }

    fn validate(&self, problems: &mut Vec<Problem>) {
        if let Some(proxy) = non_blank(&self.proxy)
            && reqwest::Proxy::all(proxy).is_err()
        {
            problems.push(Problem {
                key: "http.proxy".into(),
                message: format!(
                    "{proxy:?} is not a proxy URL; write it like http://proxy.example.com:3128"
                ),
            });
        }
        if self.connect_timeout_seconds == 0 {
            problems.push(Problem {
                key: "http.connect_timeout_seconds".into(),
                message: "must be at least 1 second".into(),
            });
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// A sync may always remove up to this many members.
    #[serde(default = "default_max_removals")]
    pub max_removals: usize,
    /// Above `max_removals`, a sync may remove at most this percentage of the synced members.
    #[serde(default = "default_max_removal_percent")]
    pub max_removal_percent: u32,
}

fn default_max_removals() -> usize {
    5
}
fn default_max_removal_percent() -> u32 {
    10
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            max_removals: default_max_removals(),
            max_removal_percent: default_max_removal_percent(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretsBackendKind {
    /// The desktop keyring (Secret Service) when one answers, else the 0600 file.
    #[default]
    Auto,
    /// The desktop keyring only; fail if it is unavailable.
    Keyring,
    /// `secrets.json` (mode 0600) in the data directory.
    File,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// `auto`, `keyring` or `file`.
    #[serde(default)]
    pub backend: SecretsBackendKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Loopback address of the control API: `127.0.0.1` (the default, which also listens on
    /// `::1`), another `127.x.y.z`, or `::1`. Anything else is refused.
    #[serde(default = "default_daemon_address")]
    pub address: String,
    /// TCP port of the control API on 127.0.0.1 and ::1. 0 picks a free port (announced in
    /// `daemon.json` in the data directory).
    #[serde(default = "default_daemon_port")]
    pub port: u16,
    /// When orgsyncd starts, or polling is switched on, and a scheduled sync is overdue (none
    /// since the last period, never synced, or the last run was cut short by a crash), run it
    /// a few seconds later instead of a whole period later. Off: wait for the schedule.
    #[serde(default = "default_true")]
    pub catch_up: bool,
}

fn default_daemon_address() -> String {
    "127.0.0.1".into()
}

/// An unassigned port, away from common services.
fn default_daemon_port() -> u16 {
    47613
}

impl DaemonConfig {
    /// The address to listen on; only loopback addresses are accepted, because the API controls
    /// the organization's membership.
    pub fn listen_address(&self) -> Result<std::net::IpAddr, String> {
        let ip: std::net::IpAddr = self.address.trim().parse().map_err(|_| {
            format!(
                "{:?} is not an IP address; use 127.0.0.1 or ::1",
                self.address
            )
        })?;
        if !ip.is_loopback() {
            return Err(format!(
                "{ip} is not a loopback address; the control API listens only on 127.0.0.1 or ::1"
            ));
        }
        Ok(ip)
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            address: default_daemon_address(),
            port: default_daemon_port(),
            catch_up: true,
        }
    }
}

/// Where the organization server's endpoints are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUrls {
    pub api: String,
    pub identity: String,
}

/// The validated configuration with every default filled in.
#[derive(Clone, Debug)]
pub struct ResolvedConfig {
    pub server: ResolvedServer,
    pub http: HttpConfig,
    /// The settings of the directory source in use.
    pub directory: DirectorySettings,
    pub sync: SyncConfig,
    pub safety: SafetyConfig,
    pub secrets: SecretsConfig,
    /// Settings that are accepted but change nothing, said in every run's report.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ResolvedServer {
    pub urls: ServerUrls,
    /// CA file, timeouts, proxy and retries of the client.
    pub http: crate::http::HttpSettings,
}

impl Config {
    /// Parses a config file's text. `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (text, moved) = legacy::upgrade_text(text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        let text = text.as_ref();
        let mut config: Config = toml::from_str(text).map_err(|e: toml::de::Error| {
            let key = e.span().and_then(|span| key_at(text, span.start));
            let message = humanise(&e.to_string());
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: match key {
                    Some(key) => format!("{key}: {message}"),
                    None => message,
                },
            }
        })?;
        config.moved = moved;
        Ok(config)
    }

    /// Loads the file, or the defaults if it does not exist yet. Relative file paths in it are
    /// taken from the file's own directory, never the working directory (which differs under
    /// systemd).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut config = Config::parse(&text, path)?;
                if let Some(dir) = path.parent() {
                    config.anchor_paths(dir);
                }
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Checks every field and fills defaults. All problems are reported at once.
    pub fn resolve(&self) -> Result<ResolvedConfig, ConfigError> {
        let mut problems = Vec::new();
        let server = self.server.resolve(&self.http, &mut problems);
        let directory = DirectorySettings::resolve(self, &mut problems);
        self.http.validate(&mut problems);
        if let Err(message) = self.daemon.listen_address() {
            problems.push(Problem {
                key: "daemon.address".into(),
                message,
            });
        }
        validate_sync(&self.sync, &mut problems);
        if self.safety.max_removal_percent > 100 {
            problems.push(Problem {
                key: "safety.max_removal_percent".into(),
                message: format!(
                    "{} is not a percentage; use a value from 0 to 100",
                    self.safety.max_removal_percent
                ),
            });
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        Ok(ResolvedConfig {
            server,
            directory,
            http: self.http.clone(),
            sync: self.sync.clone(),
            safety: self.safety.clone(),
            secrets: self.secrets.clone(),
            warnings: self.warnings(),
        })
    }

    /// Settings that work but that an admin should hear about on every run: keys that do
    /// nothing, and secrets that would travel in clear.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self.moved.iter().map(ToString::to_string).collect();
        warnings.extend(self.directory.kind.warnings(self));
        for (key, url) in [
            ("server.url", Some(self.server.url.as_str())),
            ("server.api_url", self.server.api_url.as_deref()),
            ("server.identity_url", self.server.identity_url.as_deref()),
        ] {
            let Some(rest) = url.and_then(|u| u.trim().strip_prefix("http://")) else {
                continue;
            };
            let host = url_host(rest);
            if !is_loopback_host(host) {
                warnings.push(format!(
                    "{key} is http://: the organization's client secret and access tokens travel in clear to {host}; use https://"
                ));
            }
        }
        warnings
    }

    /// Makes relative file paths absolute, from `dir`.
    fn anchor_paths(&mut self, dir: &Path) {
        let anchor = |path: &mut Option<PathBuf>| {
            if let Some(path) = path
                && path.is_relative()
            {
                *path = dir.join(&*path);
            }
        };
        anchor(&mut self.server.ca_file);
        crate::directory::file_paths(self)
            .into_iter()
            .for_each(anchor);
    }
}

/// One key `config set` takes: its dotted name, its default, and its doc comment (the same
/// text as on the struct field, read through the schema derived from it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDoc {
    pub key: String,
    /// The default as TOML, `None` when the key is unset by default.
    pub default: Option<String>,
    pub doc: String,
}

/// Every key of the config file, section by section, in the order of the file's sections.
pub fn keys() -> Vec<KeyDoc> {
    use utoipa::PartialSchema;
    use utoipa::openapi::{RefOr, Schema};
    let defaults = toml::Value::try_from(Config::default()).ok();
    let default_of = |section: &str, name: &str| {
        let value = defaults.as_ref()?.get(section)?.get(name)?;
        Some(value.to_string())
    };
    let description = |schema: &RefOr<Schema>| match schema {
        RefOr::T(Schema::Object(o)) => o.description.clone(),
        RefOr::T(Schema::AllOf(a)) => a.description.clone(),
        RefOr::T(Schema::OneOf(o)) => o.description.clone(),
        RefOr::T(Schema::Array(a)) => a.description.clone(),
        RefOr::Ref(r) => Some(r.description.clone()).filter(|d| !d.is_empty()),
        _ => None,
    };
    let mut sections = vec![
        ("directory", DirectoryTable::schema()),
        ("server", ServerConfig::schema()),
    ];
    sections.extend(crate::directory::config_tables());
    sections.extend([
        ("sync", SyncConfig::schema()),
        ("http", HttpConfig::schema()),
        ("safety", SafetyConfig::schema()),
        ("secrets", SecretsConfig::schema()),
        ("daemon", DaemonConfig::schema()),
    ]);
    let mut keys = Vec::new();
    for (section, schema) in sections {
        let RefOr::T(Schema::Object(object)) = schema else {
            continue;
        };
        for (name, property) in &object.properties {
            keys.push(KeyDoc {
                key: format!("{section}.{name}"),
                default: default_of(section, name),
                doc: description(property).unwrap_or_default(),
            });
        }
    }
    keys
}

/// The value `set_key` writes for `key`: a relative file path is made absolute from where the
/// command runs, which is where the admin meant it (the daemon's working directory is another);
/// other values as given.
///
/// # Errors
/// When a relative path is given and there is no working directory.
pub fn stored_value(key: &str, value: &str) -> Result<String, ConfigError> {
    if !is_path_key(key) || Path::new(value.trim()).is_absolute() {
        return Ok(value.to_string());
    }
    let cwd = std::env::current_dir().map_err(|e| {
        ConfigError::Key(format!(
            "cannot make {key} = {value} absolute (no working directory: {e}); give an absolute path"
        ))
    })?;
    Ok(cwd.join(value.trim()).display().to_string())
}

/// Keys whose values are file paths: `config set` stores them absolute.
fn is_path_key(key: &str) -> bool {
    key == "server.ca_file" || crate::directory::is_path_key(key)
}

/// `localhost`, `127.x.y.z`, `::1` (bracketed or not).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host of a URL's part after `scheme://` (without port, path or user).
fn url_host(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

/// The dotted key (`sync.interval_minutes`) whose value sits at byte `offset` of a TOML text.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let name = line.split_once('=')?.0.trim().trim_matches('"');
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']']).trim());
    Some(match table {
        Some(table) => format!("{table}.{name}"),
        None => name.to_string(),
    })
}

/// Serde's wording for people: no Rust type names.
fn humanise(message: &str) -> String {
    message
        .replace("expected u16", "expected a whole number from 0 to 65535")
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected u64", "expected a whole number")
        .replace("expected usize", "expected a whole number")
        .replace("expected a boolean", "expected true or false")
        .replace("expected a string", "expected text")
        .replace("invalid type: string", "invalid value: text")
        .replace("invalid type: integer", "invalid value: the number")
}

impl Config {
    /// Validates only what reaching the organization server takes, `[server]` and `[http]`
    /// (enough for `login`, before the directory is set up).
    pub fn resolve_server(&self) -> Result<ResolvedServer, ConfigError> {
        let mut problems = Vec::new();
        let server = self.server.resolve(&self.http, &mut problems);
        self.http.validate(&mut problems);
        if problems.is_empty() {
            Ok(server)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

impl ServerConfig {
    fn resolve(&self, http: &HttpConfig, problems: &mut Vec<Problem>) -> ResolvedServer {
        let derived = match self.url.trim() {
            "cloud-us"
            | "us"
            | "bitwarden.com"
            | "https://bitwarden.com"
            | "https://vault.bitwarden.com" => ServerUrls {
                api: "https://api.bitwarden.com".into(),
                identity: "https://identity.bitwarden.com".into(),
            },
            "cloud-eu"
            | "eu"
            | "bitwarden.eu"
            | "https://bitwarden.eu"
            | "https://vault.bitwarden.eu" => ServerUrls {
                api: "https://api.bitwarden.eu".into(),
                identity: "https://identity.bitwarden.eu".into(),
            },
            base => {
                let base = check_url("server.url", base, problems);
                ServerUrls {
                    api: format!("{base}/api"),
                    identity: format!("{base}/identity"),
                }
            }
        };
        let api = match &self.api_url {
            Some(url) => check_url("server.api_url", url, problems),
            None => derived.api,
        };
        let identity = match &self.identity_url {
            Some(url) => check_url("server.identity_url", url, problems),
            None => derived.identity,
        };
        check_file("server.ca_file", self.ca_file.as_deref(), problems);
        if self.timeout_seconds == 0 {
            problems.push(Problem {
                key: "server.timeout_seconds".into(),
                message: "must be at least 1".into(),
            });
        }
        let mut http = http.settings(
            self.ca_file.clone(),
            Duration::from_secs(self.timeout_seconds.max(1)),
        );
        // Five tries, as Directory Connector's clients make.
        http.retry.attempts = 5;
        http.retry.first_backoff = Duration::from_secs(1);
        ResolvedServer {
            urls: ServerUrls { api, identity },
            http,
        }
    }
}

/// Accepts `http(s)://host[:port][/path]`, returns it without a trailing slash.
fn check_url(key: &str, value: &str, problems: &mut Vec<Problem>) -> String {
    check_http_url(value).unwrap_or_else(|_| {
        problems.push(Problem {
            key: key.into(),
            message: format!(
                "{value:?} is not a server URL; use `cloud-us`, `cloud-eu` or a URL like https://vault.example.com"
            ),
        });
        value.trim().to_string()
    })
}

/// `http(s)://host[:port][/path]` without a trailing slash.
///
/// # Errors
/// When it is not such a URL, saying how to write one.
pub(crate) fn check_http_url(value: &str) -> Result<String, String> {
    let trimmed = value.trim().trim_end_matches('/');
    let ok = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
    match ok {
        true => Ok(trimmed.to_string()),
        false => Err(format!(
            "{value:?} is not a URL; write it like https://host.example.com"
        )),
    }
}

/// What a PEM file must hold.
#[derive(Clone, Copy)]
enum Pem {
    Certificates,
    PrivateKey,
}

pub(crate) fn check_file(key: &str, path: Option<&Path>, problems: &mut Vec<Problem>) {
    let pem = match key.ends_with("client_key_file") {
        true => Pem::PrivateKey,
        false => Pem::Certificates,
    };
    let Some(path) = path else { return };
    let problem = if !path.is_file() {
        Some(format!(
            "file {} does not exist or is not readable; fix the path or remove the key",
            path.display()
        ))
    } else {
        pem_problem(path, pem)
    };
    if let Some(message) = problem {
        problems.push(Problem {
            key: key.into(),
            message,
        });
    }
}

/// Why the file does not hold what it must, if it does not.
fn pem_problem(path: &Path, pem: Pem) -> Option<String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    match pem {
        Pem::Certificates => {
            let found = CertificateDer::pem_file_iter(path)
                .map(|certs| certs.filter(Result::is_ok).count())
                .unwrap_or(0);
            (found == 0).then(|| {
                format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA certificate file",
                    path.display()
                )
            })
        }
        Pem::PrivateKey => PrivateKeyDer::from_pem_file(path).is_err().then(|| {
            format!(
                "{} holds no PEM private key (-----BEGIN PRIVATE KEY----- or RSA/EC); give the client's key file",
                path.display()
            )
        }),
    }
}

pub(crate) fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn validate_sync(sync: &SyncConfig, problems: &mut Vec<Problem>) {
    if sync.interval_minutes == 0 {
        problems.push(Problem {
            key: "sync.interval_minutes".into(),
            message: "0 is too short; the minimum is 1 minute".into(),
        });
    }
    if let Some(expression) = non_blank(&sync.schedule)
        && let Err(e) = crate::schedule::Schedule::cron(expression)
    {
        problems.push(Problem {
            key: "sync.schedule".into(),
            message: e,
        });
    }
    if !sync.users && !sync.groups {
        problems.push(Problem {
            key: "sync.users".into(),
            message:
                "both sync.users and sync.groups are off, so there is nothing to sync; turn one on"
                    .into(),
        });
    }
    if sync.overwrite_existing && sync.large_import {
        problems.push(Problem {
            key: "sync.overwrite_existing".into(),
            message: "cannot be combined with sync.large_import (batched imports cannot overwrite); turn one off".into(),
        });
    }
}

/// Replaces the config file with `text` atomically (write a temporary file, then rename), so a
/// crash never leaves a half-written config.
pub fn write_file(path: &Path, text: &str) -> Result<(), ConfigError> {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text)?;
        // Keep the mode an admin gave the file (e.g. root:orgsync 0640 on a server).
        if let Ok(existing) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, existing.permissions())?;
        }
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The config file's text, or an empty text if it does not exist yet.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Sets `key` (dotted, e.g. `ldap.host`) to `value` in the config file text, keeping comments and
/// layout. The value is typed by the schema: `true`/`false` for switches, numbers for counts,
/// text otherwise. The result is parsed and validated as a whole before it is returned, so a bad
/// value never reaches the file.
pub fn set_key(
    text: &str,
    key: &str,
    value: Option<&str>,
    path: &Path,
) -> Result<String, ConfigError> {
    // Secrets never land in the TOML file.
    if crate::secrets::SecretKey::from_user_name(key).is_some() {
        return Err(ConfigError::Key(format!(
            "{key} is a secret and is never written to the config file; use `orgsync config set-secret {key}`"
        )));
    }
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
    // The file is rewritten in the current layout, and an old key name still works.
    legacy::upgrade(&mut doc).map_err(ConfigError::Key)?;
    let key = legacy::renamed(key).unwrap_or(key);
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) || parts.len() > 2 {
        return Err(ConfigError::Key(format!(
            "{key:?} is not a config key; keys look like ldap.host or sync.interval_minutes (see `orgsync config show`)"
        )));
    }
    let stored = value.map(|value| stored_value(key, value)).transpose()?;
    let value = stored.as_deref();
    let candidates: Vec<toml_edit::Item> = match value {
        None => vec![toml_edit::Item::None],
        Some(value) => typed_candidates(value),
    };
    // The most specific reading's complaint is the telling one (a number said as a number).
    let mut first_error = None;
    for candidate in candidates {
        let mut trial = doc.clone();
        place(&mut trial, &parts, candidate);
        match Config::parse(&trial.to_string(), path) {
            Ok(_) => {
                doc = trial;
                first_error = None;
                break;
            }
            Err(ConfigError::Parse { message, .. }) => {
                first_error.get_or_insert(message);
            }
            Err(other) => return Err(other),
        }
    }
    if let Some(message) = first_error {
        let message = message.trim().replace('\n', " ");
        return Err(ConfigError::Key(match value {
            Some(value) => format!("cannot set {key} to {value}: {message}"),
            None => format!("cannot unset {key}: {message}"),
        }));
    }
    // Problems with other keys are normal while an installation is being set up; only the key
    // being changed must be valid now.
    let text = doc.to_string();
    if let Err(ConfigError::Invalid(problems)) = Config::parse(&text, path)?.resolve()
        && let Some(problem) = problems.into_iter().find(|p| p.key == key)
    {
        return Err(ConfigError::Key(format!("cannot set {problem}")));
    }
    Ok(text)
}

/// The ways a command-line value can be read, most specific first.
fn typed_candidates(value: &str) -> Vec<toml_edit::Item> {
    let mut items = Vec::new();
    match value {
        "true" => items.push(toml_edit::value(true)),
        "false" => items.push(toml_edit::value(false)),
        _ => {}
    }
    if let Ok(n) = value.parse::<i64>() {
        items.push(toml_edit::value(n));
    }
    items.push(toml_edit::value(value));
    items
}

fn place(doc: &mut toml_edit::DocumentMut, parts: &[&str], item: toml_edit::Item) {
    match parts {
        [key] => {
            if item.is_none() {
                doc.remove(key);
            } else {
                doc[key] = item;
            }
        }
        [table, key] => {
            if item.is_none() {
                if let Some(t) = doc.get_mut(table).and_then(|t| t.as_table_like_mut()) {
                    t.remove(key);
                }
            } else {
                if !doc.contains_key(table) {
                    doc[table] = toml_edit::table();
                }
                doc[table][key] = item;
            }
        }
        _ => unreachable!("checked by set_key"),
    }
}

#[cfg(test)]
mod tests;
