//! Which installation the tray belongs to: the same rules as the `orgsync` CLI and `orgsyncd`
//! (`daemon/src/paths.rs`), repeated here because the tray must not link the daemon's library.
//!
//! The data directory is what matters: the daemon announces itself there (`daemon.json`, the API
//! token). The config file is only used for "Open Config" while no daemon answers; when one does,
//! the tray opens the file the daemon actually reads.

use std::path::PathBuf;

/// The config file and data directory of one installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
}

impl Installation {
    /// `--config` / `ORGSYNC_CONFIG` or `~/.config/orgsync/config.toml`; `ORGSYNC_DATA_DIR` or
    /// `~/.local/share/orgsync`. `config_flag` is the value of `--config` (clap already folds
    /// `ORGSYNC_CONFIG` into it, but it is read here too so library users get the same rules).
    ///
    /// # Errors
    /// When a default is needed and there is no home directory to put it in.
    pub fn resolve(config_flag: Option<PathBuf>) -> Result<Installation, String> {
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
        Ok(Installation {
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
