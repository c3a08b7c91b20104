//! Loopback ports, waiting for servers, and the lifecycle of the server processes the tests start.
//!
//! Tests run in parallel threads, several test binaries run at once, and other sessions on the same
//! machine run their own directory servers. So nothing here assumes a fixed port: ports are asked
//! from the kernel, a port handed out once is never handed out again by this process, and callers
//! retry when a server still loses the race for its port.
//!
//! [`ServerProcess`] owns a server started as a child process. It stops the server when dropped
//! (also while a failing test unwinds) and starts a small shell watchdog that stops the server if
//! the test process dies without running destructors (killed, aborted, or the server kept in a
//! `static`, which Rust never drops).
//!
//! Environment variables for debugging the servers of this kit:
//!
//! - `ORGSYNC_TESTKIT_KEEP`: keep each server's temporary directory (config, data, log) after
//!   the server stops, and print where it is.
//! - `ORGSYNC_TESTKIT_TIMINGS`: print how long starting the servers took (run the tests with
//!   `--nocapture`).
//! - `ORGSYNC_SLAPD_LOGLEVEL`: slapd's `-d` level, e.g. `stats` (default `none`: errors only).
//! - `ORGSYNC_SAMBA_FRESH`: provision every Samba DC from scratch instead of copying a template.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The loopback address the servers listen on. `127.0.0.1`, not `localhost`: ldap-utils
/// canonicalise `localhost` to the machine's host name, which then fails the TLS name check.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Ports this process has handed out, so two tests never get the same one even when the first
/// server has not bound its port yet.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed out
/// before.
///
/// Another process can still take it before the server binds it; servers started by this kit
/// detect that ("Address already in use") and retry with new ports.
pub fn free_port() -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..100 {
        let listener =
            TcpListener::bind((LOOPBACK, 0)).expect("bind an ephemeral port on 127.0.0.1");
        let port = listener
            .local_addr()
            .expect("local address of a bound socket")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("the kernel kept returning ports this process already handed out");
}

/// Whether `addr` can be bound right now (nothing listens there).
///
/// # Errors
/// Returns the bind error when it is anything but "address in use", e.g. permission denied for
/// a port below 1024 when not running as root.
pub fn can_bind(addr: SocketAddr) -> std::io::Result<bool> {
    match TcpListener::bind(addr) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether something accepts TCP connections at `addr`.
pub fn is_listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Polls `ready` every 50 ms until it returns true or `timeout` passes; returns whether it did.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until nothing accepts connections at `addr` any more; returns whether that happened
/// within `timeout`.
pub fn wait_closed(addr: SocketAddr, timeout: Duration) -> bool {
    wait_until(timeout, || !is_listening(addr))
}

/// The last `lines` lines of a log file, for panic messages. Reads at most the last 64 KiB.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    format!(
        "--- last {lines} lines of {} ---\n{tail}\n---",
        path.display()
    )
}

/// Keeps a server's temporary directory (config, data, log) instead of deleting it when the
/// environment variable `ORGSYNC_TESTKIT_KEEP` is set, and says where it is: panic messages
/// quote log paths that would otherwise be gone by the time someone reads them.
pub fn keep_if_asked(dir: &mut tempfile::TempDir, what: &str) {
    if std::env::var_os("ORGSYNC_TESTKIT_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!(
            "ORGSYNC_TESTKIT_KEEP: kept the {what} directory {}",
            dir.path().display()
        );
    }
}

/// Whether a process with this PID exists (a zombie counts until it is reaped).
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Runs a short-lived command (ldapsearch, samba-tool, …) with `stdin` fed from a thread, and
/// kills it after `timeout`, so a server that accepts but never answers fails the test instead
/// of hanging it.
///
/// # Panics
/// If the command cannot be started (the message names the package to install) or times out.
pub fn run_command(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let shown = show_command(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot run `{shown}`: {e} (install the test tools with scripts/setup.sh)")
    });
    let input = child.stdin.take();
    // Feed stdin and drain stdout/stderr concurrently: a large LDIF and a chatty tool would
    // otherwise deadlock on full pipes.
    let (status, stdout, stderr) = std::thread::scope(|s| {
        if let (Some(mut pipe), Some(data)) = (input, stdin) {
            s.spawn(move || {
                let _ = pipe.write_all(data);
            });
        }
        let mut out_pipe = child.stdout.take().expect("piped stdout");
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let out = s.spawn(move || {
            let mut v = Vec::new();
            let _ = out_pipe.read_to_end(&mut v);
            v
        });
        let err = s.spawn(move || {
            let mut v = Vec::new();
            let _ = err_pipe.read_to_end(&mut v);
            v
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for a child process") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{shown}` did not finish within {timeout:?}; killed it");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        (
            status,
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        )
    });
    Output {
        status,
        stdout,
        stderr,
    }
}

/// A command line for messages: program and arguments, shell-like.
pub fn show_command(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains([' ', '"', '\'', '(', ')', '!', '&', '|']) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A server running as a child process of the test, with its output in a log file.
///
/// Dropping it stops the server. [`ServerProcess::stop`] sends SIGTERM, waits for the process to
/// exit and reaps it, then falls back to SIGKILL; calling it again does nothing.
pub struct ServerProcess {
    name: String,
    child: Child,
    watchdog: Option<Child>,
    log: PathBuf,
    stopped: Option<ExitStatus>,
}

impl ServerProcess {
    /// Starts `cmd` with stdin from /dev/null and stdout+stderr appended to `log`, plus its
    /// watchdog. `name` is used in messages. `scratch_dir` is the server's temporary directory:
    /// if the test process dies, the watchdog deletes it after stopping the server (normally the
    /// owner's `TempDir` does).
    ///
    /// # Errors
    /// When the program cannot be started (not installed, log not writable).
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        log: &Path,
        scratch_dir: &Path,
    ) -> std::io::Result<ServerProcess> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()?;
        let watchdog = spawn_watchdog(child.id(), scratch_dir);
        Ok(ServerProcess {
            name: name.to_string(),
            child,
            watchdog,
            log: log.to_path_buf(),
            stopped: None,
        })
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file the server writes to.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the server's log, for panic messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// The exit status if the server has exited (reaping it), `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.stopped.is_none() {
            self.stopped = self.child.try_wait().ok().flatten();
        }
        self.stopped
    }

    /// Stops the server: SIGTERM, up to `grace` for it to exit, then SIGKILL. Idempotent.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_none() {
            signal(self.child.id(), "TERM");
            let exited = wait_until(grace, || {
                matches!(self.child.try_wait(), Ok(Some(_)) | Err(_))
            });
            if !exited {
                eprintln!(
                    "{} (pid {}) ignored SIGTERM for {grace:?}; killing it",
                    self.name,
                    self.child.id()
                );
                let _ = self.child.kill();
            }
            // Never panic here: this runs in Drop, possibly while a failed test unwinds. A
            // status is recorded either way so the PID is never signalled again.
            let status = self.child.wait().unwrap_or_else(|e| {
                eprintln!("cannot reap {} (pid {}): {e}", self.name, self.child.id());
                std::os::unix::process::ExitStatusExt::from_raw(0)
            });
            self.stopped = Some(status);
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Sends a signal with the `kill` program (the kit has no libc dependency).
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Starts `sh` polling once a second whether this test process and the server still exist. It
/// ends when the server is gone; if the test process vanished first, it stops the orphaned
/// server and deletes `scratch_dir`. Best effort: without `sh` the server has no watchdog.
fn spawn_watchdog(server_pid: u32, scratch_dir: &Path) -> Option<Child> {
    const SCRIPT: &str = r#"
while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
if ! kill -0 "$1" 2>/dev/null; then
  kill -TERM "$2" 2>/dev/null
  for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$2" 2>/dev/null || break; sleep 1; done
  kill -0 "$2" 2>/dev/null && kill -KILL "$2" 2>/dev/null && sleep 1
  [ -n "$3" ] && rm -rf -- "$3"
fi
"#;
    Command::new("sh")
        .args(["-c", SCRIPT, "orgsync-testkit-watchdog"])
        .arg(std::process::id().to_string())
        .arg(server_pid.to_string())
        .arg(if std::env::var_os("ORGSYNC_TESTKIT_KEEP").is_some() {
            Path::new("")
        } else {
            scratch_dir
        })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}
