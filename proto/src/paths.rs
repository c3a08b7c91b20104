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
    /// `--config` / `ORGSYNC_CONFIG` or `~/.config/orgsync/config.toml`; `ORGSYNC_DATA_DIR` or
    /// `~/.local/share/orgsync`. `config_flag` is the value of a `--config` argument.
    ///
    /// # Errors
    /// When a default is needed and there is no home directory to put it in.
    pub fn resolve(config_flag: Option<PathBuf>) -> Result<Paths, String> {
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
        let data_dir = match env_path("ORGSYNC_DATA_DIR") {
            Some(path) => path,
            None => dirs()?.data_dir().to_path_buf(),
        };
        Ok(Paths {
            config_file,
            data_dir,
        })
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
