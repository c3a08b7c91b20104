//! Secrets: the directory's (e.g. the LDAP bind password), the organization API key and the
//! cached access token.
//!
//! They are kept in the desktop keyring (Secret Service, through the `keyring-core` store) when one
//! answers, otherwise in `secrets.json` (mode 0600) in the data directory; environment variables
//! override both, for servers that inject secrets (systemd credentials, CI).
//!
//! [`Secret`] has no `Display`, `Serialize` or revealing `Debug`: the only way to its value is
//! [`Secret::expose`], called where a request is built.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::SecretsBackendKind;

/// A secret value. Redacted in `Debug`, impossible to print by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for building a request. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

/// A secret orgsync keeps: the name users type (`config set-secret ldap.bind_password`), what
/// to ask for, and the environment variable that overrides the stored value. Directory sources
/// declare theirs ([`crate::directory::DirectoryKind::secrets`]); the organization's are here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretKey {
    name: &'static str,
    prompt: &'static str,
    env_var: Option<&'static str>,
    whole_file: bool,
}

impl SecretKey {
    pub const fn new(
        name: &'static str,
        prompt: &'static str,
        env_var: Option<&'static str>,
    ) -> SecretKey {
        SecretKey {
            name,
            prompt,
            env_var,
            whole_file: false,
        }
    }

    /// The same key, whose value is a whole file (a JSON key file): `set-secret --file` and
    /// `--stdin` take all of it, not its first line.
    pub const fn whole_file(self) -> SecretKey {
        SecretKey {
            whole_file: true,
            ..self
        }
    }

    pub fn is_whole_file(self) -> bool {
        self.whole_file
    }

    pub const ORG_CLIENT_ID: SecretKey = SecretKey::new(
        "org.client_id",
        "Organization API key client_id",
        Some("ORGSYNC_CLIENT_ID"),
    );
    pub const ORG_CLIENT_SECRET: SecretKey = SecretKey::new(
        "org.client_secret",
        "Organization API key client_secret",
        Some("ORGSYNC_CLIENT_SECRET"),
    );
    /// The organization's access token, cached between runs (set by orgsync only).
    pub const ACCESS_TOKEN: SecretKey = SecretKey::new("org.access_token", "", None);

    pub fn name(self) -> &'static str {
        self.name
    }

    /// What to ask for when the value is typed in.
    pub fn prompt(self) -> &'static str {
        self.prompt
    }

    /// The environment variable that overrides the stored value, if any.
    pub fn env_var(self) -> Option<&'static str> {
        self.env_var
    }

    /// The secrets an admin sets by name: every directory source's (a source not in use yet
    /// may be prepared) and the organization's client secret (`login` sets it with its id).
    pub fn settable() -> Vec<SecretKey> {
        let sources = crate::directory::DirectoryKind::ALL.into_iter();
        let mut keys: Vec<SecretKey> = sources.flat_map(|kind| kind.secrets()).copied().collect();
        keys.push(SecretKey::ORG_CLIENT_SECRET);
        keys
    }

    /// Parses a user-typed name. Only the ones a user may set by hand are accepted.
    pub fn from_user_name(name: &str) -> Option<SecretKey> {
        SecretKey::settable().into_iter().find(|k| k.name == name)
    }

    /// The secrets `status` and `config show` report: those the configured directory needs,
    /// and the organization's.
    pub fn reported(config: &crate::config::Config) -> Vec<SecretKey> {
        let mut keys = config.directory.kind.needed_secrets(config);
        keys.extend([SecretKey::ORG_CLIENT_ID, SecretKey::ORG_CLIENT_SECRET]);
        keys
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the keyring is not available ({0}); set `secrets.backend = \"file\"` to keep secrets in a 0600 file instead"
    )]
    KeyringUnavailable(String),
    #[error("keyring error while accessing {key}: {message}")]
    Keyring { key: &'static str, message: String },
    #[error("cannot read or write the secrets file {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// A place that stores secrets.
trait SecretBackend: Send + Sync {
    fn get(&self, key: SecretKey) -> Result<Option<Secret>, SecretError>;
    fn set(&self, key: SecretKey, value: &Secret) -> Result<(), SecretError>;
    fn delete(&self, key: SecretKey) -> Result<(), SecretError>;
}

/// The secret store chosen for this installation, with environment overrides on top.
#[derive(Clone)]
pub struct Secrets {
    backend: Arc<dyn SecretBackend>,
    description: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("backend", &self.description)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Opens the configured backend. `auto` uses the Secret Service keyring when a session bus is
    /// present and the keyring answers, and falls back to the file otherwise.
    pub fn open(kind: SecretsBackendKind, data_dir: &Path) -> Result<Secrets, SecretError> {
        let file = || Secrets {
            backend: Arc::new(FileBackend {
                path: data_dir.join("secrets.json"),
            }),
            description: format!("file {}", data_dir.join("secrets.json").display()),
        };
        match kind {
            SecretsBackendKind::File => Ok(file()),
            SecretsBackendKind::Keyring => KeyringBackend::open(data_dir).map(|k| Secrets {
                backend: Arc::new(k),
                description: "desktop keyring (Secret Service)".into(),
            }),
            SecretsBackendKind::Auto => {
                if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
                    return Ok(file());
                }
                match KeyringBackend::open(data_dir) {
                    Ok(k) => Ok(Secrets {
                        backend: Arc::new(k),
                        description: "desktop keyring (Secret Service)".into(),
                    }),
                    Err(e) => {
                        tracing::info!("keyring unavailable ({e}); using the secrets file");
                        Ok(file())
                    }
                }
            }
        }
    }

    /// Where secrets are kept, for `status` and `config show`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The secret from its environment variable if set, else from the store.
    pub fn get(&self, key: SecretKey) -> Result<Option<Secret>, SecretError> {
        if let Some(var) = key.env_var()
            && let Ok(value) = std::env::var(var)
            && !value.is_empty()
        {
            return Ok(Some(Secret(value)));
        }
        self.backend.get(key)
    }

    /// Where `get` finds the key: "environment", the store, or nowhere.
    pub fn source(&self, key: SecretKey) -> Result<Option<String>, SecretError> {
        if let Some(var) = key.env_var()
            && std::env::var(var).is_ok_and(|v| !v.is_empty())
        {
            return Ok(Some(format!("environment variable {var}")));
        }
        Ok(self.backend.get(key)?.map(|_| self.description.clone()))
    }

    pub fn set(&self, key: SecretKey, value: &Secret) -> Result<(), SecretError> {
        self.backend.set(key, value)
    }

    pub fn delete(&self, key: SecretKey) -> Result<(), SecretError> {
        self.backend.delete(key)
    }
}

/// `secrets.json` in the data directory, created with mode 0600 and replaced atomically.
struct FileBackend {
    path: PathBuf,
}

impl FileBackend {
    fn read_all(&self) -> Result<BTreeMap<String, String>, SecretError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn write_all(&self, all: &BTreeMap<String, String>) -> Result<(), SecretError> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.error(e))?;
        let text = serde_json::to_string_pretty(all).map_err(|e| self.error(e))?;
        file.write_all(text.as_bytes()).map_err(|e| self.error(e))?;
        file.sync_all().map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.error(e))
    }

    fn error(&self, e: impl std::fmt::Display) -> SecretError {
        SecretError::File {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

impl SecretBackend for FileBackend {
    fn get(&self, key: SecretKey) -> Result<Option<Secret>, SecretError> {
        Ok(self.read_all()?.remove(key.name()).map(Secret))
    }

    fn set(&self, key: SecretKey, value: &Secret) -> Result<(), SecretError> {
        let mut all = self.read_all()?;
        all.insert(key.name().to_string(), value.0.clone());
        self.write_all(&all)
    }

    fn delete(&self, key: SecretKey) -> Result<(), SecretError> {
        let mut all = self.read_all()?;
        if all.remove(key.name()).is_some() {
            self.write_all(&all)?;
        }
        Ok(())
    }
}

/// The Secret Service keyring. Entries are named `orgsync` / `<key>@<data dir>`, so several
/// installations (one per data directory) keep separate secrets.
struct KeyringBackend {
    store: Arc<keyring_core::CredentialStore>,
    instance: String,
}

impl KeyringBackend {
    fn open(data_dir: &Path) -> Result<KeyringBackend, SecretError> {
        let store: Arc<keyring_core::CredentialStore> =
            zbus_secret_service_keyring_store::Store::new()
                .map_err(|e| SecretError::KeyringUnavailable(e.to_string()))?;
        let backend = KeyringBackend {
            store,
            instance: data_dir.display().to_string(),
        };
        // A locked or absent collection only shows on first use; probe now so `auto` can fall back.
        backend
            .get(SecretKey::ACCESS_TOKEN)
            .map_err(|e| SecretError::KeyringUnavailable(e.to_string()))?;
        Ok(backend)
    }

    fn entry(&self, key: SecretKey) -> Result<keyring_core::Entry, SecretError> {
        keyring_core::Entry::new_in_store(
            &self.store,
            "orgsync",
            &format!("{}@{}", key.name(), self.instance),
        )
        .map_err(|e| keyring_error(key, e))
    }
}

fn keyring_error(key: SecretKey, e: keyring_core::Error) -> SecretError {
    SecretError::Keyring {
        key: key.name(),
        message: e.to_string(),
    }
}

impl SecretBackend for KeyringBackend {
    fn get(&self, key: SecretKey) -> Result<Option<Secret>, SecretError> {
        match self.entry(key)?.get_password() {
            Ok(value) => Ok(Some(Secret(value))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(key, e)),
        }
    }

    fn set(&self, key: SecretKey, value: &Secret) -> Result<(), SecretError> {
        self.entry(key)?
            .set_password(&value.0)
            .map_err(|e| keyring_error(key, e))
    }

    fn delete(&self, key: SecretKey) -> Result<(), SecretError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn file_backend_round_trips_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets::open(SecretsBackendKind::File, dir.path()).unwrap();
        assert_eq!(secrets.get(SecretKey::ACCESS_TOKEN).unwrap(), None);
        secrets
            .set(SecretKey::ACCESS_TOKEN, &Secret::new("tok"))
            .unwrap();
        secrets
            .set(SecretKey::ORG_CLIENT_SECRET, &Secret::new("sec"))
            .unwrap();
        assert_eq!(
            secrets.get(SecretKey::ACCESS_TOKEN).unwrap(),
            Some(Secret::new("tok"))
        );
        let mode = std::fs::metadata(dir.path().join("secrets.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        secrets.delete(SecretKey::ACCESS_TOKEN).unwrap();
        assert_eq!(secrets.get(SecretKey::ACCESS_TOKEN).unwrap(), None);
        assert_eq!(
            secrets.get(SecretKey::ORG_CLIENT_SECRET).unwrap(),
            Some(Secret::new("sec"))
        );
    }
}
