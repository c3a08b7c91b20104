//! What the test servers' standalone binaries share: logging to stderr, a small runtime, one
//! error line and exit 1 when they cannot start, and running until SIGINT or SIGTERM.

use std::future::Future;
use std::process::ExitCode;

/// Runs `server` on a two-thread runtime with `RUST_LOG`-style logging (default `info`) on
/// stderr; its error is printed as `name: message`, exit code 1.
pub fn main(name: &str, server: impl Future<Output = Result<(), String>>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for SIGTERM or SIGINT.
///
/// # Errors
/// When the signals cannot be watched.
pub async fn wait_for_signal() -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// A test server's binary started by a test: its stdout read line by line, stopped with
/// SIGTERM, which must end it with exit code 0.
pub struct Spawned {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Spawned {
    /// Starts `binary` with `args` and reads its announcement, `<name> listening on <url>`;
    /// returns it and the URL.
    ///
    /// # Panics
    /// When it does not start or announce itself within 20 s.
    pub async fn start(binary: &str, args: &[&std::ffi::OsStr]) -> (Spawned, String) {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(binary)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut spawned = Spawned {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
        };
        let first = spawned.next_line().await;
        let url = first
            .split_once(" listening on ")
            .map(|(_, url)| url.to_string())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        (spawned, url)
    }

    /// The next line on its stdout.
    ///
    /// # Panics
    /// When none comes within 20 s.
    pub async fn next_line(&mut self) -> String {
        tokio::time::timeout(std::time::Duration::from_secs(20), self.lines.next_line())
            .await
            .expect("a line within 20 s")
            .expect("readable stdout")
            .expect("a line before the end")
    }

    /// Sends SIGTERM and checks it exits with 0 within 10 s.
    ///
    /// # Panics
    /// When it does not.
    pub async fn stop(mut self) {
        let pid = self.child.id().expect("it is running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let status = tokio::time::timeout(std::time::Duration::from_secs(10), self.child.wait())
            .await
            .expect("it stops on SIGTERM")
            .expect("its exit status");
        assert!(status.success(), "{status}");
    }
}
