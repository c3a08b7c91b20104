//! `orgsync import-bwdc`: an installation of Bitwarden's Directory Connector as orgsync's
//! configuration and secrets, so that switching costs one command and reshuffles nothing.
//!
//! [`data_file`] finds and reads the connector's `data.json` (every state version it migrates
//! from), [`keychain`] reads its secrets (desktop keyring or plaintext mode), [`mapping`] turns
//! its settings into orgsync's, and [`Import::config_text`] writes them through the same
//! validation as `orgsync config set`.

pub mod data_file;
pub mod keychain;
pub mod mapping;

use std::path::Path;

pub use data_file::Connector;
pub use mapping::{Mapped, MissingSecret, Setting};

use crate::config::{self, Config};

/// A connector installation read and mapped.
#[derive(Debug)]
pub struct Import {
    pub connector: Connector,
    pub mapped: Mapped,
}

/// Reads the connector's installation: `given` or the first `data.json` where the connector
/// keeps it, its secrets from `keychain` where the file does not hold them.
///
/// # Errors
/// No file, a damaged or unknown file, or a directory type orgsync does not support.
pub fn read(
    given: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    keychain: &dyn keychain::Keychain,
) -> Result<Import, String> {
    let path = data_file::locate(given, env)?;
    let connector = data_file::read(&path)?;
    let mapped = mapping::map(&connector, keychain)?;
    Ok(Import { connector, mapped })
}

impl Import {
    /// The orgsync config file: every mapped setting set as `orgsync config set` would, in the
    /// connector's order. A value orgsync refuses (a CA file that does not exist, say) is left
    /// out and said in the returned notes, so one bad field never stops the import.
    pub fn config_text(&self, path: &Path) -> (String, Vec<String>) {
        let mut text = String::new();
        let mut refused = Vec::new();
        for setting in &self.mapped.settings {
            match config::set_key(&text, &setting.key, Some(&setting.value), path) {
                Ok(next) => text = next,
                Err(e) => refused.push(format!(
                    "{} ({:?}) is not carried over: {e}",
                    setting.from, setting.value
                )),
            }
        }
        // What is valid key by key can still be incomplete as a whole (a host not set in the
        // connector): say so now rather than at the first sync.
        if let Ok(parsed) = Config::parse(&text, path)
            && let Err(config::ConfigError::Invalid(problems)) = parsed.resolve()
        {
            refused.extend(problems.into_iter().map(|p| format!("still to set: {p}")));
        }
        let header = format!(
            "# Imported from Bitwarden Directory Connector ({}) by `orgsync import-bwdc`.\n\n",
            self.connector.path.display()
        );
        (header + &text, refused)
    }
}

#[cfg(test)]
mod tests;
