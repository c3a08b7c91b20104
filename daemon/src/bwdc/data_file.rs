//! Finding and reading Directory Connector's `data.json`: where the connector keeps it, and every
//! layout it migrates from (state versions 3 and 4 nest everything under the active account;
//! 5 to 8 are flat). The file is only read, never written.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The newest state version this import knows (Directory Connector's current one).
pub const NEWEST_STATE_VERSION: u64 = 8;

/// The folder name Directory Connector keeps its data in (its product name).
const FOLDER: &str = "Bitwarden Directory Connector";

/// Where Directory Connector keeps `data.json`, in the order it looks: its two environment
/// variables, then the per-user folder of each desktop OS (Linux first: this is where orgsync
/// runs; the others are tried for a home directory copied from a Mac).
pub fn candidates(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for var in [
        "BITWARDENCLI_CONNECTOR_APPDATA_DIR",
        "BITWARDEN_CONNECTOR_APPDATA_DIR",
    ] {
        if let Some(dir) = env(var).filter(|d| !d.trim().is_empty()) {
            dirs.push(PathBuf::from(dir));
        }
    }
    if let Some(config) = env("XDG_CONFIG_HOME").filter(|d| !d.trim().is_empty()) {
        dirs.push(Path::new(&config).join(FOLDER));
    }
    if let Some(home) = env("HOME").filter(|d| !d.trim().is_empty()) {
        let home = PathBuf::from(home);
        dirs.push(home.join(".config").join(FOLDER));
        dirs.push(home.join("Library/Application Support").join(FOLDER));
    }
    dirs.into_iter().map(|d| d.join("data.json")).collect()
}

/// The file to import: `given` (a `data.json` or the folder holding one), else the first
/// candidate that exists.
///
/// # Errors
/// When `given` does not exist, or no candidate does (the message lists where it looked).
pub fn locate(
    given: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, String> {
    if let Some(given) = given {
        let file = match given.is_dir() {
            true => given.join("data.json"),
            false => given.to_path_buf(),
        };
        return match file.is_file() {
            true => Ok(file),
            false => Err(format!(
                "{} does not exist; give the path of Directory Connector's data.json (`bwdc data-file` prints it)",
                file.display()
            )),
        };
    }
    let looked = candidates(env);
    looked.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        format!(
            "found no Directory Connector data.json; looked in:\n{}\ngive its path: `orgsync import-bwdc PATH` (`bwdc data-file` prints it)",
            looked
                .iter()
                .map(|p| format!("  {}", p.display()))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// What a `data.json` holds, whatever its layout.
#[derive(Debug, Default)]
pub struct Connector {
    pub path: PathBuf,
    /// The state version the file was written in (8 for a file without one, as the connector
    /// treats it).
    pub state_version: u64,
    /// 0 LDAP, 1 Entra ID, 2 Google Workspace, 3 Okta, 4 OneLogin.
    pub directory_type: Option<i64>,
    pub organization_id: Option<String>,
    pub ldap: Map<String, Value>,
    pub entra: Map<String, Value>,
    pub gsuite: Map<String, Value>,
    pub okta: Map<String, Value>,
    pub onelogin: Map<String, Value>,
    pub sync: Map<String, Value>,
    /// `{base, api, identity, webVault}`.
    pub environment_urls: Map<String, Value>,
    /// The organization API key kept in the file: plaintext-secrets mode (flat layout) or the
    /// account object of versions 3 and 4.
    pub api_key_client_id: Option<String>,
    pub api_key_client_secret: Option<String>,
    /// Versions 3 and 4: the account id that prefixes the keychain entries (`<id>_ldapPassword`).
    pub account_id: Option<String>,
}

/// Reads `path`.
///
/// # Errors
/// A file that cannot be read, is not a JSON object, has no directory configured, or is of a
/// state version the connector itself could not migrate or orgsync does not know.
pub fn read(path: &Path) -> Result<Connector, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not valid JSON ({e}); Directory Connector itself would reset it to {{}}. Give a good copy (it keeps data.json.bak when it resets one)",
            path.display()
        )
    })?;
    let Value::Object(root) = value else {
        return Err(format!(
            "{} is not a Directory Connector data file: it is not a JSON object",
            path.display()
        ));
    };
    let version_value = root
        .get("stateVersion")
        .or_else(|| root.get("global").and_then(|g| g.get("stateVersion")));
    let state_version = match version_value {
        None => NEWEST_STATE_VERSION,
        Some(v) => v.as_u64().ok_or_else(|| {
            format!(
                "{}: stateVersion {v} is not a number; the file is damaged",
                path.display()
            )
        })?,
    };
    let connector = match state_version {
        0..=2 => {
            return Err(format!(
                "{}: state version {state_version} is older than Directory Connector itself can migrate (3); open it in a current Directory Connector first, or configure orgsync by hand",
                path.display()
            ));
        }
        3 | 4 => nested(path, &root, state_version)?,
        5..=NEWEST_STATE_VERSION => flat(path, &root, state_version),
        newer => {
            return Err(format!(
                "{}: state version {newer} is newer than this orgsync knows ({NEWEST_STATE_VERSION}); update orgsync, or report the version so it can be supported",
                path.display()
            ));
        }
    };
    if connector.directory_type.is_none() {
        return Err(format!(
            "{} has no directory configured (directoryType is not set); configure Directory Connector first, or orgsync by hand",
            path.display()
        ));
    }
    Ok(connector)
}

/// `directoryType`, a number (some hand-edited files have it as text).
fn directory_type(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn object(value: Option<&Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Versions 5 to 8: every item is a top-level key.
fn flat(path: &Path, root: &Map<String, Value>, state_version: u64) -> Connector {
    let mut sync = object(root.get("sync"));
    upgrade_sync(&mut sync, state_version);
    Connector {
        path: path.to_path_buf(),
        state_version,
        directory_type: directory_type(root.get("directoryType")),
        organization_id: text(root.get("organizationId")).or_else(|| text(root.get("entityId"))),
        ldap: object(root.get("directoryLdap")),
        entra: object(
            root.get("directoryEntra")
                .or_else(|| root.get("directoryAzure")),
        ),
        gsuite: object(root.get("directoryGsuite")),
        okta: object(root.get("directoryOkta")),
        onelogin: object(root.get("directoryOnelogin")),
        sync,
        environment_urls: object(root.get("environmentUrls")),
        api_key_client_id: text(root.get("apiKeyClientId")),
        api_key_client_secret: text(root.get("apiKeyClientSecret")),
        account_id: None,
    }
}

/// Versions 3 and 4: the active account's object holds the configuration and settings,
/// `global` the server URLs.
fn nested(path: &Path, root: &Map<String, Value>, state_version: u64) -> Result<Connector, String> {
    let account_id = text(root.get("activeUserId")).ok_or_else(|| {
        format!(
            "{}: state version {state_version} keeps the configuration under the active account, but activeUserId is not set",
            path.display()
        )
    })?;
    let account = object(root.get(&account_id));
    let configs = object(account.get("directoryConfigurations"));
    let settings = object(account.get("directorySettings"));
    let mut sync = object(settings.get("sync"));
    upgrade_sync(&mut sync, state_version);
    Ok(Connector {
        path: path.to_path_buf(),
        state_version,
        directory_type: directory_type(settings.get("directoryType")),
        organization_id: text(settings.get("organizationId")),
        ldap: object(configs.get("ldap")),
        entra: object(configs.get("entra").or_else(|| configs.get("azure"))),
        gsuite: object(configs.get("gsuite")),
        okta: object(configs.get("okta")),
        onelogin: object(configs.get("oneLogin")),
        sync,
        environment_urls: object(root.get("global").and_then(|g| g.get("environmentUrls"))),
        api_key_client_id: text(account.get("profile").and_then(|p| p.get("apiKeyClientId"))),
        api_key_client_secret: text(
            account
                .get("keys")
                .and_then(|k| k.get("apiKeyClientSecret")),
        ),
        account_id: Some(account_id),
    })
}

/// The connector's own migration to version 8: an older install kept inviting every new member
/// (`inviteUsersAfterProvisioning` missing means true).
fn upgrade_sync(sync: &mut Map<String, Value>, state_version: u64) {
    if state_version < 8 && !sync.is_empty() && !sync.contains_key("inviteUsersAfterProvisioning") {
        sync.insert("inviteUsersAfterProvisioning".into(), Value::Bool(true));
    }
}
