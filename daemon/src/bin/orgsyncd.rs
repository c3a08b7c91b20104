//! `orgsyncd`, the always-on daemon: polls on the configured schedule and serves the control API
//! on loopback. Thin glue over [`orgsync::service`] and [`orgsync::api`].
//!
//! Exit codes: 0 after SIGTERM/SIGINT; 1 when it cannot start (state in use, port taken);
//! 2 when a person must act: bad usage or configuration (e.g. a non-loopback
//! `daemon.address`), a damaged state database, the data directory deleted under it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use orgsync::engine::RunError;
use orgsync::paths::Paths;
use orgsync::service::{Service, ServiceError};
use orgsync_proto::api::{DAEMON_FILE, DaemonInfo};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long a stop waits for a run in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The orgsync daemon: syncs on a schedule and serves a local control API.
#[derive(Debug, Parser)]
#[command(name = "orgsyncd", version, after_help = ENVIRONMENT)]
struct Args {
    /// Config file [default: ~/.config/orgsync/config.toml]
    #[arg(long, env = "ORGSYNC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Data directory: sync state, secrets file, daemon.json and api-token [default:
    /// ~/.local/share/orgsync]. Each config file needs its own
    #[arg(long, env = "ORGSYNC_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Log format on stderr: text (journald-friendly) or json (one object per line, for shippers)
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,

    /// More log output (-v debug)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Every environment variable orgsyncd reads, for `--help`.
const ENVIRONMENT: &str = "\
Environment:
  ORGSYNC_CONFIG              config file (as --config)
  ORGSYNC_DATA_DIR            data directory (as --data-dir)
  ORGSYNC_LOG                 log filter, e.g. debug or orgsync=debug (as -v)
  ORGSYNC_LDAP_BIND_PASSWORD  the bind password, over the keyring and secrets file
  ORGSYNC_ENTRA_CLIENT_SECRET, ORGSYNC_GOOGLE_KEY, ORGSYNC_OKTA_TOKEN, ORGSYNC_OKTA_PRIVATE_KEY,
  ORGSYNC_ONELOGIN_CLIENT_SECRET
                              the other directories' secrets, likewise
  ORGSYNC_CLIENT_ID           the organization API key's client id, over the stored one
  ORGSYNC_CLIENT_SECRET       the organization API key's secret, over the stored one
  DBUS_SESSION_BUS_ADDRESS    the session bus of the Secret Service keyring (secrets.backend)
  JOURNAL_STREAM              set by systemd: log lines without timestamps or colours
  HOME                        where the default config file and data directory live
  RUST_BACKTRACE              1: a backtrace with an internal error's message

Settings: `orgsync config keys`. The control API: /v1/openapi.json on the daemon's address.";

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// ldap3 decodes every search result into a tree of small allocations and copies it once
/// more; with glibc's malloc that churn was a third of a large read's CPU time (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format, args.verbose);
    orgsync::crash::report_panics_with(|line| tracing::error!("{line}"));
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        tracing::error!("cannot start the async runtime");
        return ExitCode::from(1);
    };
    // A panic in a request or a run ends only that task (the hook logged it); one here ends the
    // daemon with an error, for the service manager to restart.
    let Some(outcome) = orgsync::crash::catch(|| runtime.block_on(run(args))) else {
        return ExitCode::from(1);
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            tracing::error!("{message}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(format: LogFormat, verbose: u8) {
    let default = if verbose > 0 { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORGSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => builder.json().init(),
        // journald stamps each line itself; colours only for a terminal.
        LogFormat::Text if std::env::var_os("JOURNAL_STREAM").is_some() => {
            builder.without_time().with_ansi(false).init()
        }
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

async fn run(args: Args) -> Result<(), (u8, String)> {
    let paths = Paths::resolve(args.config, args.data_dir).map_err(|e| (2, e))?;
    paths.check_owner(true).map_err(|e| (2, e))?;
    // A bad config or a damaged state file needs a person: exit 2, which the systemd units
    // do not restart on (RestartPreventExitStatus), instead of failing again every few seconds.
    let service = Service::open(paths.clone()).map_err(|e| match &e {
        ServiceError::Config(_) => (2, e.to_string()),
        ServiceError::Run {
            error: RunError::State(state),
            ..
        } if state.needs_attention() => (2, e.to_string()),
        _ => (1, e.to_string()),
    })?;
    let config = service.config();
    let address = config
        .daemon
        .listen_address()
        .map_err(|e| (2, format!("daemon.address: {e}")))?;
    let token = orgsync::api::load_or_create_token(&paths.data_dir).map_err(|e| {
        (
            1,
            format!(
                "cannot write the API token in {}: {e}",
                paths.data_dir.display()
            ),
        )
    })?;

    let listener = TcpListener::bind(SocketAddr::new(address, config.daemon.port))
        .await
        .map_err(|e| {
            (1, format!(
                "cannot listen on {address}:{}: {e}; set daemon.port to a free port (or 0 for any)",
                config.daemon.port
            ))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| (1, e.to_string()))?
        .port();
    // 127.0.0.1 also answers on ::1, so `localhost` works whichever way it resolves.
    let ipv6 = if address == IpAddr::from([127, 0, 0, 1]) {
        TcpListener::bind(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port))
            .await
            .ok()
    } else {
        None
    };
    let url = match address {
        IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
        IpAddr::V4(ip) => format!("http://{ip}:{port}"),
    };
    let info = DaemonInfo {
        pid: std::process::id(),
        port,
        url: url.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let daemon_file = paths.data_dir.join(DAEMON_FILE);
    std::fs::write(
        &daemon_file,
        serde_json::to_string_pretty(&info).expect("json"),
    )
    .map_err(|e| (1, format!("cannot write {}: {e}", daemon_file.display())))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let router = orgsync::api::router(service.clone(), token, port, stop_rx.clone());
    tracing::info!(
        "orgsyncd {} listening on {url}{}; polling {}; config {}; data {}",
        env!("CARGO_PKG_VERSION"),
        if ipv6.is_some() {
            format!(" and http://[::1]:{port}")
        } else {
            String::new()
        },
        if service.polling() { "on" } else { "off" },
        paths.config_file.display(),
        paths.data_dir.display()
    );

    let poller = tokio::spawn({
        let service = service.clone();
        let stop = stop_rx.clone();
        async move { service.poll(stop).await }
    });
    let watcher = tokio::spawn({
        let service = service.clone();
        let stop = stop_rx.clone();
        async move { service.watch_config(stop).await }
    });
    let follower = tokio::spawn({
        let service = service.clone();
        let stop = stop_rx.clone();
        async move { service.follow_directory(stop).await }
    });
    // Set when the daemon stops because its installation was taken away, not by a signal.
    let removed = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let stopping = {
        let service = service.clone();
        let removed = removed.clone();
        async move {
            tokio::select! {
                () = shutdown_signal() => tracing::info!("stopping: no new runs"),
                reason = service.installation_removed() => {
                    tracing::error!("{reason}; stopping, so that the daemon and the CLI do not split the installation. Restore it, or start orgsyncd again to begin a new one");
                    *removed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
                }
            }
            service.shutdown(SHUTDOWN_GRACE).await;
            // Only now end the poller and the event streams, so followers (the tray) still
            // receive the end of the run that was in progress.
            let _ = stop_tx.send(true);
        }
    };
    let (stopped_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let serve_ipv6 = ipv6.map(|listener| {
        let router = router.clone();
        let mut stopped = stopped_tx.subscribe();
        tokio::spawn(orgsync::api::serve(listener, router, async move {
            let _ = stopped.recv().await;
        }))
    });
    orgsync::api::serve(listener, router, async move {
        stopping.await;
        let _ = stopped_tx.send(());
    })
    .await;
    if let Some(task) = serve_ipv6 {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), poller).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), watcher).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), follower).await;
    let _ = std::fs::remove_file(&daemon_file);
    let removed = removed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(reason) = removed {
        return Err((2, format!("stopped: {reason}")));
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (systemd stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("listen for SIGTERM");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
