//! Runs the real `orgsyncd` binary for a [`cli::Installation`]: started as a child process with
//! the installation's clean environment (so it uses the same config file and data directory as
//! the `orgsync` commands of that installation), found through the `daemon.json` and `api-token`
//! it writes, and stopped the way systemd stops it (SIGTERM) or the way a crash does (SIGKILL).
//!
//! ```no_run
//! # async fn example() {
//! use testkit::cli::Installation;
//! use testkit::daemon::{self, Daemon};
//!
//! let inst = Installation::new();
//! daemon::prepare_quiet_daemon(&inst); // daemon.port = 0 (never the default 47613), no catch-up
//! let mut daemon = Daemon::start(&inst);
//! let status = daemon.client().status().await.unwrap();
//! assert!(status.polling);
//! let stopped = daemon.terminate(std::time::Duration::from_secs(35));
//! assert_eq!(stopped.code, Some(0));
//! # }
//! ```
//!
//! The daemon's stderr (its log) is appended to `orgsyncd.log` in the installation's directory,
//! across restarts; [`Daemon::log`] reads it for assertions and panic messages. Dropping a
//! [`Daemon`] stops it (SIGTERM, SIGKILL after 10 s); a watchdog stops it if the test process
//! dies first.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use orgsync_proto::api::{DAEMON_FILE, DaemonInfo, TOKEN_FILE};
use orgsync_proto::client::Client;

use crate::cli::{Installation, Run, binary};
use crate::ports::{self, ServerProcess};

/// How long orgsyncd may take from start to announcing itself in `daemon.json`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Sets `daemon.port = 0` (any free port, announced in `daemon.json`), so tests running in
/// parallel never fight over the default port, and `daemon.catch_up = false`, so a daemon
/// started on an installation that never synced runs nothing until the test asks (tests of the
/// catch-up turn it back on).
pub fn prepare_quiet_daemon(inst: &Installation) {
    inst.set("daemon.port", "0");
    inst.set("daemon.catch_up", "false");
}

/// The directory holding the installation's config file (its temp directory).
fn installation_dir(inst: &Installation) -> PathBuf {
    inst.config_file()
        .parent()
        .expect("the config file lives in the installation's directory")
        .to_path_buf()
}

/// The `daemon.json` of a data directory, if present and complete.
pub fn read_info(data_dir: &Path) -> Option<DaemonInfo> {
    let text = std::fs::read_to_string(data_dir.join(DAEMON_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// How a stopped daemon ended and how long it took to stop.
#[derive(Clone, Copy, Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it, if any (9 when [`Daemon::terminate`] had to SIGKILL it).
    pub signal: Option<i32>,
    /// From the signal to the process being gone.
    pub took: Duration,
}

impl Stopped {
    fn from(status: ExitStatus, took: Duration) -> Stopped {
        use std::os::unix::process::ExitStatusExt;
        Stopped {
            status,
            code: status.code(),
            signal: status.signal(),
            took,
        }
    }
}

/// A running `orgsyncd`.
pub struct Daemon {
    process: ServerProcess,
    info: DaemonInfo,
    token: String,
    data_dir: PathBuf,
    log: PathBuf,
    /// Where the log ended when this daemon started, so [`Daemon::log`] shows this run only.
    log_start: u64,
}

impl Daemon {
    /// Starts `orgsyncd` for `inst` and waits until it has announced itself (`daemon.json` with
    /// its PID, and the API token). Call [`prepare_quiet_daemon`] on the installation first.
    ///
    /// # Panics
    /// When the binary is missing, the daemon exits during start-up, or it does not announce
    /// itself within 15 s; the message quotes its log.
    #[track_caller]
    pub fn start(inst: &Installation) -> Daemon {
        match Daemon::try_start(inst) {
            Ok(daemon) => daemon,
            Err(message) => panic!("{message}"),
        }
    }

    /// Like [`Daemon::start`], but returns why it did not start instead of panicking.
    pub fn try_start(inst: &Installation) -> Result<Daemon, String> {
        let dir = installation_dir(inst);
        let log = dir.join("orgsyncd.log");
        let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let data_dir = inst.data_dir();
        let mut process =
            ServerProcess::spawn("orgsyncd", inst.command(binary("orgsyncd")), &log, &dir)
                .map_err(|e| format!("cannot start orgsyncd: {e}"))?;
        let pid = process.pid();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = process.exited() {
                return Err(format!(
                    "orgsyncd exited during start-up with {status}\n{}",
                    tail_from(&log, log_start, 40)
                ));
            }
            // A daemon.json left by a killed daemon has another PID: wait for ours.
            if let Some(info) = read_info(&data_dir).filter(|info| info.pid == pid)
                && let Ok(token) = std::fs::read_to_string(data_dir.join(TOKEN_FILE))
            {
                return Ok(Daemon {
                    process,
                    info,
                    token: token.trim().to_string(),
                    data_dir,
                    log,
                    log_start,
                });
            }
            if Instant::now() >= deadline {
                process.stop(Duration::from_secs(5));
                return Err(format!(
                    "orgsyncd (pid {pid}) did not write {} within {READY_TIMEOUT:?}\n{}",
                    data_dir.join(DAEMON_FILE).display(),
                    tail_from(&log, log_start, 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `orgsyncd` for `inst` expecting it to exit on its own (a refused start), and returns
    /// its exit code and output.
    ///
    /// # Panics
    /// When it is still running after `timeout` (it is killed first).
    pub fn run_to_exit(inst: &Installation, timeout: Duration) -> Run {
        Run::from(ports::run_command(
            &mut inst.command(binary("orgsyncd")),
            None,
            timeout,
        ))
    }

    /// What the daemon announced in `daemon.json`.
    pub fn info(&self) -> &DaemonInfo {
        &self.info
    }

    /// The API's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.info.url
    }

    /// The port the API listens on (127.0.0.1, and ::1 if available).
    pub fn port(&self) -> u16 {
        self.info.port
    }

    /// The API bearer token (from `api-token` in the data directory).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The data directory the daemon owns.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The typed client of the control API, for this daemon.
    pub fn client(&self) -> Client {
        Client::new(&self.info.url, &self.token)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether the process has exited (reaping it), and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.process.exited()
    }

    /// Everything this daemon logged so far (not earlier daemons of the installation).
    pub fn log(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let start = (self.log_start as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// The last `lines` lines this daemon logged, for panic messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_from(&self.log, self.log_start, lines)
    }

    /// Sends `signal` (`"TERM"`, `"INT"`, `"KILL"`, ...) to the daemon without waiting.
    pub fn send_signal(&self, signal: &str) {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// Waits up to `timeout` for the daemon to exit on its own; `took` is counted from this call.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Stopped> {
        let started = Instant::now();
        ports::wait_until(timeout, || self.process.exited().is_some())
            .then(|| Stopped::from(self.process.exited().expect("exited"), started.elapsed()))
    }

    /// Sends SIGTERM and waits up to `grace` for the daemon to exit; then SIGKILLs it, which
    /// shows as `signal: Some(9)`.
    pub fn terminate(&mut self, grace: Duration) -> Stopped {
        let started = Instant::now();
        self.send_signal("TERM");
        if self.wait_exit(grace).is_none() {
            eprintln!(
                "orgsyncd (pid {}) ignored SIGTERM for {grace:?}; killing it",
                self.pid()
            );
            self.send_signal("KILL");
            self.wait_exit(Duration::from_secs(10));
        }
        // Stops the watchdog (and reaps the process, were it still there).
        self.process.stop(Duration::from_secs(5));
        let status = self.process.exited().expect("stop reaps the process");
        Stopped::from(status, started.elapsed())
    }

    /// Kills the daemon with SIGKILL, as a crash or `kill -9` would, and reaps it.
    pub fn kill(&mut self) -> Stopped {
        let started = Instant::now();
        if self.process.exited().is_none() {
            self.send_signal("KILL");
            let gone = self.wait_exit(Duration::from_secs(10)).is_some();
            assert!(gone, "orgsyncd (pid {}) survived SIGKILL", self.pid());
        }
        // Stops the watchdog.
        self.process.stop(Duration::from_secs(5));
        let status = self.process.exited().expect("the process was reaped");
        Stopped::from(status, started.elapsed())
    }
}

/// The last `lines` lines of `path` from byte `start` on.
fn tail_from(path: &Path, start: u64, lines: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = (start as usize).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let all: Vec<&str> = text.lines().collect();
    format!(
        "--- last {lines} lines of {} ---\n{}\n---",
        path.display(),
        all[all.len().saturating_sub(lines)..].join("\n")
    )
}
