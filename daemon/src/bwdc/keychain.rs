//! Directory Connector's secrets as it keeps them: in the desktop keyring (Secret Service items
//! with the attributes `service = "Bitwarden Directory Connector"` and `account = <key>`, each
//! value JSON-encoded), or in plaintext-secrets mode inside `data.json` itself.

use std::collections::HashMap;
use std::sync::Arc;

/// The keyring's service name for every connector entry.
pub const SERVICE: &str = "Bitwarden Directory Connector";

/// What the config objects hold in place of a secret kept in the keyring.
pub const STORED_SECURELY: &str = "[STORED SECURELY]";

/// Reads the connector's keychain entries.
pub trait Keychain {
    /// The value stored under `account`, as stored (JSON-encoded); `Ok(None)` when there is no
    /// such entry.
    ///
    /// # Errors
    /// When the keyring cannot be asked (no session bus, locked).
    fn get(&self, account: &str) -> Result<Option<String>, String>;
}

/// The desktop keyring (Secret Service), searched by the connector's attributes.
pub struct DesktopKeyring {
    store: Arc<keyring_core::CredentialStore>,
}

impl DesktopKeyring {
    /// # Errors
    /// When there is no session bus or no Secret Service on it.
    pub fn open() -> Result<DesktopKeyring, String> {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
            return Err("no desktop session bus (DBUS_SESSION_BUS_ADDRESS is not set)".into());
        }
        let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| e.to_string())?;
        Ok(DesktopKeyring { store })
    }
}

impl Keychain for DesktopKeyring {
    fn get(&self, account: &str) -> Result<Option<String>, String> {
        let spec = HashMap::from([("service", SERVICE), ("account", account)]);
        let found =
            keyring_core::Entry::search_in_store(&self.store, &spec).map_err(|e| e.to_string())?;
        let Some(entry) = found.first() else {
            return Ok(None);
        };
        match entry.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A keychain that cannot be read, with the reason (said for every secret it was asked for).
pub struct Unavailable(pub String);

impl Keychain for Unavailable {
    fn get(&self, _account: &str) -> Result<Option<String>, String> {
        Err(self.0.clone())
    }
}

/// The connector stores every value JSON-encoded (`"abc"` with the quotes); an entry written
/// raw (by an old release) is taken as it is.
fn decode(stored: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(stored) {
        Ok(serde_json::Value::String(s)) => s,
        _ => stored.to_string(),
    }
}

/// Where the connector keeps the secret of one directory type: the config object's field
/// (plaintext mode), and the keychain accounts it reads, newest first.
pub struct SecretPlace {
    /// The config object's field, e.g. `password`.
    pub field: &'static str,
    /// `secretLdap`, … (scoped `:<config id>`, then unscoped).
    pub keys: &'static [&'static str],
    /// The pre-version-5 suffix, `<account id>_<legacy>`.
    pub legacy: &'static [&'static str],
}

/// Each directory type's secret, by `directoryType`.
pub fn secret_place(directory_type: i64) -> Option<SecretPlace> {
    Some(match directory_type {
        0 => SecretPlace {
            field: "password",
            keys: &["secretLdap"],
            legacy: &["ldapPassword"],
        },
        1 => SecretPlace {
            field: "key",
            keys: &["secretEntra", "secretAzure"],
            legacy: &["entraIdKey", "entraKey", "azureKey"],
        },
        2 => SecretPlace {
            field: "privateKey",
            keys: &["secretGsuite"],
            legacy: &["gsuitePrivateKey"],
        },
        3 => SecretPlace {
            field: "token",
            keys: &["secretOkta"],
            legacy: &["oktaToken"],
        },
        4 => SecretPlace {
            field: "clientSecret",
            keys: &["secretOneLogin"],
            legacy: &["oneLoginClientSecret"],
        },
        _ => return None,
    })
}

/// A secret found, and where (for the report; never the value).
pub struct Found {
    pub value: String,
    pub origin: String,
}

/// Looks a directory secret up as the connector does: inline in its config object (plaintext
/// mode), else `<key>:<config id>`, else the unscoped key, else the pre-version-5 entries.
///
/// # Errors
/// When it is in none of them: the message says what was tried.
pub fn directory_secret(
    place: &SecretPlace,
    config: &serde_json::Map<String, serde_json::Value>,
    account_id: Option<&str>,
    keychain: &dyn Keychain,
) -> Result<Found, String> {
    if let Some(inline) = config
        .get(place.field)
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty() && *v != STORED_SECURELY)
    {
        return Ok(Found {
            value: inline.to_string(),
            origin: format!("data.json (plaintext secrets), field {}", place.field),
        });
    }
    let id = config.get("id").and_then(|v| v.as_str());
    let mut accounts: Vec<String> = Vec::new();
    for key in place.keys {
        if let Some(id) = id {
            accounts.push(format!("{key}:{id}"));
        }
        accounts.push((*key).to_string());
    }
    if let Some(account) = account_id {
        accounts.extend(place.legacy.iter().map(|l| format!("{account}_{l}")));
    }
    lookup(&accounts, keychain)
}

/// The first of `accounts` the keychain has.
///
/// # Errors
/// None of them is there, or the keychain cannot be read.
pub fn lookup(accounts: &[String], keychain: &dyn Keychain) -> Result<Found, String> {
    for account in accounts {
        match keychain.get(account) {
            Ok(Some(stored)) if !decode(&stored).is_empty() => {
                return Ok(Found {
                    value: decode(&stored),
                    origin: format!("keyring entry {SERVICE:?} / {account}"),
                });
            }
            Ok(_) => {}
            Err(e) => return Err(format!("the keyring cannot be read: {e}")),
        }
    }
    Err(format!(
        "not in the keyring (looked for {})",
        accounts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(HashMap<String, String>);
    impl Keychain for Fixed {
        fn get(&self, account: &str) -> Result<Option<String>, String> {
            Ok(self.0.get(account).cloned())
        }
    }

    fn config(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_json_decoded_and_scoped_keys_come_first() {
        let keychain = Fixed(HashMap::from([
            (
                "secretLdap:abc".to_string(),
                r#""scoped \"pw\"""#.to_string(),
            ),
            ("secretLdap".to_string(), r#""unscoped""#.to_string()),
        ]));
        let place = secret_place(0).unwrap();
        let found = directory_secret(
            &place,
            &config(serde_json::json!({"id": "abc", "password": STORED_SECURELY})),
            None,
            &keychain,
        )
        .unwrap();
        assert_eq!(found.value, r#"scoped "pw""#);
        let found = directory_secret(
            &place,
            &config(serde_json::json!({"id": "other"})),
            None,
            &keychain,
        )
        .unwrap();
        assert_eq!(found.value, "unscoped");
    }

    #[test]
    fn entra_falls_back_to_azure_and_legacy_entries() {
        let keychain = Fixed(HashMap::from([(
            "user-1_azureKey".to_string(),
            "raw-value".to_string(),
        )]));
        let place = secret_place(1).unwrap();
        let found = directory_secret(
            &place,
            &config(serde_json::json!({})),
            Some("user-1"),
            &keychain,
        )
        .unwrap();
        assert_eq!(found.value, "raw-value");
        let missing = directory_secret(
            &place,
            &config(serde_json::json!({"id": "x"})),
            None,
            &keychain,
        )
        .err()
        .unwrap();
        assert!(
            missing.contains("secretEntra:x, secretEntra, secretAzure:x, secretAzure"),
            "{missing}"
        );
    }

    #[test]
    fn plaintext_mode_keeps_the_secret_inline() {
        let place = secret_place(3).unwrap();
        let found = directory_secret(
            &place,
            &config(serde_json::json!({"token": "00abc"})),
            None,
            &Unavailable("no bus".into()),
        )
        .unwrap();
        assert_eq!(found.value, "00abc");
        assert!(found.origin.contains("plaintext"));
    }
}
