//! `orgsync-tray`: the tray icon of an orgsync installation. Shows the daemon's state, offers
//! Test Now, Sync Now, Start/Stop Sync, Clear Sync Cache, Open Config and Show Last Report, and
//! notifies about sync results. It only talks to `orgsyncd`; quitting it leaves the daemon
//! polling.
//!
//! Exit codes: 0 after Quit, SIGTERM or SIGINT, and when another tray already runs for the same
//! installation; 1 when it cannot start (no display, no tray library); 2 bad usage.

mod shell;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use orgsync_proto::paths::Paths;

/// orgsync's tray icon: the sync daemon's state at a glance and its controls.
#[derive(Debug, Parser)]
#[command(name = "orgsync-tray", version)]
struct Args {
    /// Config file [default: ~/.config/orgsync/config.toml]. The daemon is found through the data
    /// directory (ORGSYNC_DATA_DIR, default ~/.local/share/orgsync), like the CLI finds it.
    #[arg(long, env = "ORGSYNC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Data directory of the installation, where its daemon announces itself [default:
    /// ~/.local/share/orgsync]
    #[arg(long, env = "ORGSYNC_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// More log output on stderr (-v the tray's debug lines, -vv everything)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.verbose);
    let installation = match Paths::resolve(args.config, args.data_dir) {
        Ok(installation) => installation,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        tracing::error!(
            "no graphical session: neither DISPLAY nor WAYLAND_DISPLAY is set. orgsync-tray runs in a desktop session; orgsyncd and the orgsync CLI work without one"
        );
        return ExitCode::from(1);
    }
    // Held until exit: a second tray for the same installation would show a second icon and
    // send every notification twice.
    let _lock = match lock_installation(&installation.data_dir) {
        Ok(Some(lock)) => Some(lock),
        Ok(None) => {
            tracing::info!(
                "orgsync-tray already runs for {}; not starting a second one",
                installation.data_dir.display()
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            tracing::warn!("cannot take the tray lock (continuing anyway): {e}");
            None
        }
    };
    shell::run(installation)
}

fn init_logging(verbose: u8) {
    // -v: the tray's own debug lines (views, events); -vv: everyone's (HTTP, D-Bus).
    let default = match verbose {
        0 => "info",
        1 => "info,orgsync_tray=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORGSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Locks `tray.lock` in the data directory (created 0700 if missing, as the daemon does).
/// `Ok(None)` if another process holds it.
fn lock_installation(data_dir: &Path) -> std::io::Result<Option<File>> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join("tray.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}
