//! Where an installation lives: its config file and its data directory. The CLI, the daemon and
//! the tray resolve them the same way, so they share one installation; the daemon announces
//! itself in the data directory ([`crate::api::DAEMON_FILE`], [`crate::api::TOKEN_FILE`]).

use std::path::PathBuf;

/// The config file and data directory of one installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
}

impl Paths {
    /// `--config` / `ORGSYNC_CONFIG` or `~/.config/orgsync/config.toml`; `--data-dir` /
    /// `ORGSYNC_DATA_DIR` or `~/.local/share/orgsync`. The flags are the values of the command
    /// line arguments.
    ///
    /// # Errors
    /// When a default is needed and there is no home directory to put it in.
    pub fn resolve(
        config_flag: Option<PathBuf>,
        data_dir_flag: Option<PathBuf>,
    ) -> Result<Paths, String> {
        let dirs = || {
            directories::ProjectDirs::from("", "", "orgsync").ok_or_else(|| {
                "cannot find the home directory; set HOME, or ORGSYNC_CONFIG and ORGSYNC_DATA_DIR"
                    .to_string()
            })
        };
        let config_file = match config_flag
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| env_path("ORGSYNC_CONFIG"))
        {
            Some(path) => path,
            None => dirs()?.config_dir().join("config.toml"),
        };
        let data_dir = match data_dir_flag
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| env_path("ORGSYNC_DATA_DIR"))
        {
            Some(path) => path,
            None => dirs()?.data_dir().to_path_buf(),
        };
        Ok(Paths {
            config_file,
            data_dir,
        })
    }

    /// Checks that the data directory belongs to this config file, and with `claim` records it
    /// as this config's when it is nobody's yet. Two config files sharing one data directory
    /// would share its sync state, its secrets and its daemon: the second one's `login` would
    /// silently replace the first one's organization key.
    ///
    /// # Errors
    /// When the data directory belongs to another config file (or the record cannot be read or
    /// written), with what to do.
    pub fn check_owner(&self, claim: bool) -> Result<(), String> {
        let owner_file = self.data_dir.join(OWNER_FILE);
        let this = std::fs::canonicalize(&self.config_file)
            .or_else(|_| std::path::absolute(&self.config_file))
            .unwrap_or_else(|_| self.config_file.clone());
        match std::fs::read_to_string(&owner_file) {
            Ok(owner) if this == std::path::Path::new(owner.trim()) => Ok(()),
            Ok(owner) => Err(format!(
                "the data directory {} belongs to the config file {}, not {}: two config files sharing one data directory would share its sync state, secrets and daemon. Give this config a data directory of its own with --data-dir DIR (or ORGSYNC_DATA_DIR=DIR), or use {}",
                self.data_dir.display(),
                owner.trim(),
                this.display(),
                owner.trim()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if claim {
                    create_private_dir(&self.data_dir).map_err(|e| {
                        format!(
                            "cannot create the data directory {}: {e}",
                            self.data_dir.display()
                        )
                    })?;
                    std::fs::write(&owner_file, format!("{}\n", this.display()))
                        .map_err(|e| format!("cannot write {}: {e}", owner_file.display()))?;
                }
                Ok(())
            }
            Err(e) => Err(format!("cannot read {}: {e}", owner_file.display())),
        }
    }
}

/// The file in a data directory naming the config file the directory belongs to.
pub const OWNER_FILE: &str = "config-path";

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Creates a directory only its owner may enter (it holds the state, secrets and API token).
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
