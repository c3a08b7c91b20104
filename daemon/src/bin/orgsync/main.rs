//! `orgsync`, the command line: argument parsing and glue over the library. Errors are printed
//! and exit codes chosen in one place, [`main`].

mod args;
mod render;

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use orgsync::config::{Config, ConfigError};
use orgsync::directory::{EntryKind, Progress};
use orgsync::engine::{self, Context, RunError, SyncOptions};
use orgsync::org::ApiKey;
use orgsync::paths::Paths;
use orgsync::secrets::{Secret, SecretKey, Secrets};
use orgsync::state::{State, StateError};
use orgsync_proto::api::{ConfigUpdate, ErrorCode, TOKEN_FILE};
use orgsync_proto::client::{Client, ClientError};
use orgsync_proto::{InstallationStatus, SyncOutcome};

use args::{Args, Command, ConfigCommand, DaemonCommand, LastSyncObject};

/// How a command ended, and so the exit code.
enum Failure {
    /// The run failed or was refused: exit 1.
    Run(String),
    /// Bad usage or configuration: exit 2.
    Usage(String),
    /// `orgsync daemon status` found no daemon: exit 3 (like `systemctl status`).
    NotRunning(String),
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Failure {
        match e {
            RunError::Config(_) | RunError::Usage(_) => Failure::Usage(e.to_string()),
            RunError::State(e) => e.into(),
            other => Failure::Run(other.to_string()),
        }
    }
}

/// A damaged state file needs a person, not a retry: exit 2, like a bad config.
impl From<StateError> for Failure {
    fn from(e: StateError) -> Failure {
        match e.needs_attention() {
            true => Failure::Usage(e.to_string()),
            false => Failure::Run(e.to_string()),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::Usage(e.to_string())
    }
}

/// ldap3 decodes every search result into a tree of small allocations and copies it once
/// more; with glibc's malloc that churn was a third of a large read's CPU time (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.verbose);
    orgsync::crash::report_panics_with(|line| eprintln!("error: {line}"));
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("error: cannot start the async runtime");
        return ExitCode::from(1);
    };
    // A panic has been reported by the hook; it ends the run like any other failure.
    let Some(outcome) = orgsync::crash::catch(|| runtime.block_on(run(args))) else {
        return ExitCode::from(1);
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Run(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::NotRunning(message)) => {
            eprintln!("{message}");
            ExitCode::from(3)
        }
    }
}

/// Logs go to stderr so stdout stays clean for `--json`. `ORGSYNC_LOG` overrides the level.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORGSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}

/// The parts of an installation a command needs, opened on demand.
struct Installation {
    paths: Paths,
    /// A file that does not parse is an error only for the commands that read it: `daemon
    /// status`, `config set` (to fix it) and `config path` still work.
    config: Result<Config, String>,
}

impl Installation {
    fn open(args: &Args) -> Result<Installation, Failure> {
        let paths =
            Paths::resolve(args.config.clone(), args.data_dir.clone()).map_err(Failure::Usage)?;
        paths
            .check_owner(!args.command.only_looks())
            .map_err(Failure::Usage)?;
        let config = Config::load(&paths.config_file).map_err(|e| e.to_string());
        Ok(Installation { paths, config })
    }

    fn config(&self) -> Result<&Config, Failure> {
        self.config
            .as_ref()
            .map_err(|message| Failure::Usage(message.clone()))
    }

    fn secrets(&self) -> Result<Secrets, Failure> {
        Secrets::open(self.config()?.secrets.backend, &self.paths.data_dir)
            .map_err(|e| Failure::Run(e.to_string()))
    }

    fn state(&self) -> Result<State, Failure> {
        Ok(State::open(&self.paths.data_dir)?)
    }

    /// The state if there is one; commands that only look create none.
    fn existing_state(&self) -> Result<Option<State>, Failure> {
        Ok(State::open_existing(&self.paths.data_dir)?)
    }

    fn context(&self) -> Result<Context, Failure> {
        Ok(Context {
            config: self.config()?.resolve()?,
            state: std::sync::Arc::new(self.state()?),
            secrets: self.secrets()?,
        })
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    let installation = Installation::open(&args)?;
    // While orgsyncd runs it owns the state; commands that need the state go through its API.
    let daemon = if args.command.uses_state() {
        Client::discover(&installation.paths.data_dir)
            .await
            .map_err(|e| match e {
                ClientError::NotAnswering(_) | ClientError::Impostor(_) => {
                    Failure::Run(e.to_string())
                }
                other => Failure::Run(format!("orgsyncd is running but refused the CLI: {other}")),
            })?
    } else {
        None
    };
    match args.command {
        Command::Login {
            client_id,
            client_secret,
        } => login(&installation, daemon.as_ref(), client_id, client_secret).await,
        Command::Logout => {
            let was_logged_in = match &daemon {
                Some(client) => {
                    client
                        .status()
                        .await
                        .map_err(api_failure)?
                        .installation
                        .logged_in
                        && !client.logout().await.map_err(api_failure)?.logged_in
                }
                None => engine::logout(&installation.secrets()?)?,
            };
            println!(
                "{}",
                if was_logged_in {
                    "Logged out."
                } else {
                    "Not logged in."
                }
            );
            Ok(())
        }
        Command::Test { json, list } => {
            let spinner = Spinner::start("Reading the directory");
            let report = match &daemon {
                Some(client) => client
                    .test()
                    .await
                    .map(|done| done.report)
                    .map_err(api_failure),
                None => match installation.context() {
                    Ok(context) => context.test(&spinner).await.map_err(Failure::from),
                    Err(e) => Err(e),
                },
            };
            spinner.finish();
            let report = report?;
            if json {
                print_json(&report);
            } else {
                print!("{}", render::test_report(&report, list));
            }
            let would_stop = report.failure.is_some() || report.refusal.is_some();
            // The process ends right after: freeing a large report entry by entry only costs time.
            std::mem::forget(report);
            match would_stop {
                true => Err(Failure::Run(
                    "the sync this test previews would fail or be refused (see above)".into(),
                )),
                false => Ok(()),
            }
        }
        Command::Sync {
            json,
            allow_removals,
        } => {
            let spinner = Spinner::start("Reading the directory");
            let report = match &daemon {
                Some(client) => client
                    .sync(allow_removals)
                    .await
                    .map(|done| done.report)
                    .map_err(api_failure),
                None => match installation.context() {
                    Ok(context) => context
                        .sync(SyncOptions { allow_removals }, &spinner)
                        .await
                        .map_err(Failure::from),
                    Err(e) => Err(e),
                },
            };
            spinner.finish();
            let report = report?;
            if json {
                print_json(&report);
            } else {
                print!("{}", render::sync_report(&report));
            }
            match report.outcome {
                SyncOutcome::Refused => Err(Failure::Run(
                    "sync refused by the removal guard; nothing was changed".into(),
                )),
                SyncOutcome::Synced | SyncOutcome::Unchanged => Ok(()),
            }
        }
        Command::LastSync { what } => {
            let status = installation_status(&installation, daemon.as_ref()).await?;
            let time = match what {
                LastSyncObject::Users => status.last_user_sync,
                LastSyncObject::Groups => status.last_group_sync,
            };
            if let Some(time) = time {
                println!("{time}");
            }
            Ok(())
        }
        Command::ClearCache => {
            match &daemon {
                Some(client) => {
                    client.clear_cache().await.map_err(api_failure)?;
                }
                None => installation
                    .state()?
                    .clear_cache()
                    .map_err(|e| Failure::Run(e.to_string()))?,
            }
            println!(
                "The sync cache has been cleared; the next sync reads the whole directory and sends it."
            );
            Ok(())
        }
        Command::Config { command } => {
            config_command(&installation, daemon.as_ref(), command).await
        }
        Command::Status { json } => {
            let status = render::Status(installation_status(&installation, daemon.as_ref()).await?);
            if json {
                print_json(&status);
            } else {
                print!("{}", status.render());
                if let Some(client) = &daemon {
                    println!("Daemon:           running at {}", client.base_url());
                }
            }
            Ok(())
        }
        Command::Daemon { command } => daemon_command(&installation, daemon, command).await,
        Command::Rekey { dry_run } => {
            if daemon.is_some() {
                return Err(Failure::Run(
                    "orgsyncd is running for this installation: stop it, re-key, then start it again".into(),
                ));
            }
            let context = installation.context()?;
            let spinner = Spinner::start("Reading the directory");
            let done = context.rekey(!dry_run, &spinner).await;
            spinner.finish();
            print!("{}", render::rekey_report(&done?));
            Ok(())
        }
        Command::ImportBwdc {
            path,
            dry_run,
            force,
        } => import_bwdc(&installation, daemon.as_ref(), path, dry_run, force).await,
    }
}

/// The installation's status, from the daemon when it runs (it holds the state).
async fn installation_status(
    installation: &Installation,
    daemon: Option<&Client>,
) -> Result<InstallationStatus, Failure> {
    match daemon {
        Some(client) => Ok(client.status().await.map_err(api_failure)?.installation),
        None => Ok(orgsync::status::installation_status(
            &installation.paths,
            installation.config()?,
            &installation.secrets()?,
            installation.existing_state()?.as_ref(),
        )?),
    }
}

/// A daemon's error answer, with the exit code its code implies.
fn api_failure(e: ClientError) -> Failure {
    match e.code() {
        Some(ErrorCode::InvalidConfig | ErrorCode::BadRequest) => Failure::Usage(e.to_string()),
        _ => Failure::Run(e.to_string()),
    }
}

async fn daemon_command(
    installation: &Installation,
    daemon: Option<Client>,
    command: DaemonCommand,
) -> Result<(), Failure> {
    let data_dir = &installation.paths.data_dir;
    let Some(client) = daemon else {
        let message = format!(
            "orgsyncd is not running for this installation (data directory {}); start it with `systemctl --user start orgsyncd` or `orgsyncd`",
            data_dir.display()
        );
        return Err(match command {
            DaemonCommand::Status { .. } => Failure::NotRunning(message),
            _ => Failure::Run(message),
        });
    };
    match command {
        DaemonCommand::Status { json } => {
            let status = client.status().await.map_err(api_failure)?;
            if json {
                print_json(&status);
            } else {
                print!(
                    "{}",
                    render::daemon_status(&status, client.base_url(), &data_dir.join(TOKEN_FILE))
                );
            }
        }
        DaemonCommand::StartPolling => {
            client.start_polling().await.map_err(api_failure)?;
            println!("Polling started.");
        }
        DaemonCommand::StopPolling => {
            client.stop_polling().await.map_err(api_failure)?;
            println!("Polling stopped; orgsyncd keeps running and answers the API.");
        }
        DaemonCommand::History { limit, json } => {
            let history = client.history(limit).await.map_err(api_failure)?;
            if json {
                print_json(&history);
            } else {
                print!("{}", render::history(&history.runs));
            }
        }
    }
    Ok(())
}

async fn login(
    installation: &Installation,
    daemon: Option<&Client>,
    client_id: Option<String>,
    client_secret: Option<String>,
) -> Result<(), Failure> {
    let client_id = match client_id.or_else(|| env_value("ORGSYNC_CLIENT_ID")) {
        Some(id) => id,
        None => prompt_line("client_id: ")?,
    };
    let client_secret = match client_secret.or_else(|| env_value("ORGSYNC_CLIENT_SECRET")) {
        Some(secret) => secret,
        None => prompt_secret("client_secret: ")?,
    };
    let (organization, where_kept, replaced) = match daemon {
        Some(client) => {
            let done = client
                .login(client_id.trim(), client_secret.trim())
                .await
                .map_err(api_failure)?;
            (
                done.organization_id,
                done.secrets,
                done.replaced_organization,
            )
        }
        None => {
            let server = installation.config()?.resolve_server()?;
            let key = ApiKey {
                client_id: client_id.trim().to_string(),
                client_secret: Secret::new(client_secret.trim()),
            };
            let secrets = installation.secrets()?;
            let state = installation.state()?;
            let replaced = engine::login(&server, &state, &secrets, &key).await?;
            (
                key.organization_id().to_string(),
                secrets.description().to_string(),
                replaced,
            )
        }
    };
    println!("Logged in to organization {organization}; the API key is kept in the {where_kept}.");
    if let Some(previous) = replaced {
        eprintln!(
            "warning: this replaced the API key of organization {previous}: this installation now syncs {organization}, from a fresh sync state. To sync both, give each its own config file and data directory (--config, --data-dir)"
        );
    }
    Ok(())
}

/// `orgsync import-bwdc`: reads the connector's installation, prints what it maps to, and
/// (without `--dry-run`) writes the config file, stores the secrets and logs in.
async fn import_bwdc(
    installation: &Installation,
    daemon: Option<&Client>,
    path: Option<std::path::PathBuf>,
    dry_run: bool,
    force: bool,
) -> Result<(), Failure> {
    use orgsync::bwdc::keychain::{DesktopKeyring, Keychain, Unavailable};
    let keychain: Box<dyn Keychain> = match DesktopKeyring::open() {
        Ok(keyring) => Box::new(keyring),
        Err(e) => Box::new(Unavailable(e)),
    };
    let env = |var: &str| std::env::var(var).ok();
    let import =
        orgsync::bwdc::read(path.as_deref(), &env, keychain.as_ref()).map_err(Failure::Usage)?;
    let config_path = &installation.paths.config_file;
    let (text, refused) = import.config_text(config_path);
    print!("{}", render::import_report(&import, &refused));
    if dry_run {
        println!(
            "\nThe config file it would write ({}):\n",
            config_path.display()
        );
        print!("{text}");
        println!("\nNothing was written (--dry-run).");
        return Ok(());
    }
    if daemon.is_some() {
        return Err(Failure::Run(
            "orgsyncd is running for this installation: stop it, import, then start it again"
                .into(),
        ));
    }
    if config_path.exists() && !force {
        return Err(Failure::Usage(format!(
            "{} exists; nothing was written. Add --force to replace it (--dry-run shows what it would hold)",
            config_path.display()
        )));
    }
    orgsync::config::write_file(config_path, &text)?;
    println!("\nWrote {}.", config_path.display());
    let config = Config::parse(&text, config_path)?;
    let secrets = Secrets::open(config.secrets.backend, &installation.paths.data_dir)
        .map_err(|e| Failure::Run(e.to_string()))?;
    let mut key = (None, None);
    for found in &import.mapped.secrets {
        match found.key {
            SecretKey::ORG_CLIENT_ID => key.0 = Some(found.value.expose().to_string()),
            SecretKey::ORG_CLIENT_SECRET => key.1 = Some(found.value.clone()),
            other => {
                secrets
                    .set(other, &found.value)
                    .map_err(|e| Failure::Run(e.to_string()))?;
                println!("Stored {} in the {}.", other.name(), secrets.description());
            }
        }
    }
    // Without the connector's API key, the one this installation already has (`orgsync login`).
    let key = match key {
        (Some(client_id), Some(client_secret)) => Some(ApiKey {
            client_id,
            client_secret,
        }),
        _ => engine::api_key(&secrets)?,
    };
    if let Some(key) = key {
        let state = installation.state()?;
        match engine::take_over(&config.resolve_server()?, &state, &secrets, &key).await {
            Ok(Some(taken)) => println!(
                "Logged in to organization {}, and took over its {} directory-managed member(s) and {} group(s) as synced: nobody is invited again, and who left the directory before the switch is removed only with `orgsync sync --allow-removals`.",
                key.organization_id(),
                taken.members,
                taken.groups
            ),
            Ok(None) => println!(
                "Logged in to organization {}. The server cannot list its members (Vaultwarden has no public members API), so the first `orgsync test` shows every directory member as new; the server matches them to the members the connector invited, so nobody is invited twice. Who left before the switch is not known to orgsync and is not removed.",
                key.organization_id()
            ),
            Err(e) => eprintln!(
                "warning: could not take over the organization ({e}); fix that and run `orgsync login` with the organization's API key"
            ),
        }
    }
    println!(
        "\nNext: `orgsync test` shows what a sync would change (for a directory the connector kept in step: nothing to invite, nobody to remove); then `orgsync sync`, or start orgsyncd to sync every {} minutes.",
        config.sync.interval_minutes
    );
    Ok(())
}

async fn config_command(
    installation: &Installation,
    daemon: Option<&Client>,
    command: ConfigCommand,
) -> Result<(), Failure> {
    let path = &installation.paths.config_file;
    match command {
        ConfigCommand::Path => {
            println!("{}", path.display());
            Ok(())
        }
        ConfigCommand::Keys => {
            print!("{}", render::config_keys(&orgsync::config::keys()));
            Ok(())
        }
        ConfigCommand::Show => {
            let secrets = installation.secrets()?;
            print!(
                "{}",
                render::config_show(installation.config()?, &secrets, path)
            );
            Ok(())
        }
        ConfigCommand::Set { key, value } => {
            write_key(installation, daemon, &key, Some(&value)).await
        }
        ConfigCommand::Unset { key } => write_key(installation, daemon, &key, None).await,
        ConfigCommand::SetSecret {
            key,
            stdin,
            env,
            file,
        } => {
            let Some(secret_key) = SecretKey::from_user_name(&key) else {
                return Err(Failure::Usage(format!(
                    "{key:?} is not a secret orgsync keeps; use one of: {}",
                    SecretKey::settable()
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let value = if stdin {
                let mut text = String::new();
                let mut input = std::io::stdin().lock();
                match secret_key.is_whole_file() {
                    true => std::io::Read::read_to_string(&mut input, &mut text),
                    false => input.read_line(&mut text),
                }
                .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
                text
            } else if let Some(var) = env {
                std::env::var(&var)
                    .map_err(|_| Failure::Usage(format!("environment variable {var} is not set")))?
            } else if let Some(file) = file {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
                match secret_key.is_whole_file() {
                    true => text.trim().to_string(),
                    false => text.lines().next().unwrap_or_default().to_string(),
                }
            } else {
                prompt_secret(&format!("{} ({key}): ", secret_key.prompt()))?
            };
            let value = value.trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                return Err(Failure::Usage(format!(
                    "the value for {key} is empty; nothing stored"
                )));
            }
            let secrets = installation.secrets()?;
            secrets
                .set(secret_key, &Secret::new(value))
                .map_err(|e| Failure::Run(e.to_string()))?;
            println!("Stored {key} in the {}.", secrets.description());
            Ok(())
        }
    }
}

/// Changes one key in the config file; the key is validated before the file is replaced. While
/// orgsyncd runs the change goes through it, so it applies without a restart.
async fn write_key(
    installation: &Installation,
    daemon: Option<&Client>,
    key: &str,
    value: Option<&str>,
) -> Result<(), Failure> {
    let path = &installation.paths.config_file;
    match daemon {
        Some(client) => {
            let mut update = ConfigUpdate::default();
            match value {
                Some(value) => {
                    update.set.insert(key.to_string(), value.to_string());
                }
                None => update.unset.push(key.to_string()),
            }
            client.update_config(&update).await.map_err(api_failure)?;
        }
        None => {
            let text = orgsync::config::read_file(path)?;
            let updated = orgsync::config::set_key(&text, key, value, path)?;
            orgsync::config::write_file(path, &updated)?;
        }
    }
    match value {
        Some(value) => {
            // Say what was stored (a relative path is stored absolute).
            let stored = orgsync::config::stored_value(key, value)?;
            println!("Set {key} = {stored} in {}.", path.display())
        }
        None => println!(
            "Removed {key} from {}; its default applies.",
            path.display()
        ),
    }
    // What every run will warn about in this key's section is said at once (a key that does
    // nothing, a password that would travel in clear).
    let section = key.split('.').next().unwrap_or(key);
    if let Ok(config) = Config::load(path) {
        for warning in config.warnings() {
            if warning.starts_with(&format!("{section}.")) {
                eprintln!("warning: {warning}");
            }
        }
    }
    Ok(())
}

fn env_value(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

fn prompt_line(prompt: &str) -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "{} is required; pass it as an argument or in the environment",
            prompt.trim_end_matches([':', ' '])
        )));
    }
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
    Ok(line.trim().to_string())
}

fn prompt_secret(prompt: &str) -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "{} is required; pass it with --stdin, --env, --file or in the environment",
            prompt.trim_end_matches([':', ' '])
        )));
    }
    rpassword::prompt_password(prompt)
        .map_err(|e| Failure::Usage(format!("cannot read the secret: {e}")))
}

/// Streams JSON to stdout: a large report is never built as one string.
fn print_json<T: serde::Serialize>(value: &T) {
    use std::io::Write;
    // Stdout is line-buffered and a large report has a line per value: without a large buffer
    // of its own, writing 20 MB of JSON takes thousands of small writes.
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the report: {e}");
    }
}

/// A spinner on stderr while the directory is read; invisible when stderr is not a terminal.
struct Spinner {
    bar: indicatif::ProgressBar,
}

impl Spinner {
    fn start(message: &str) -> Spinner {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar.set_message(message.to_string());
        Spinner { bar }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Spinner {
    fn entries_read(&self, kind: EntryKind, count: usize) {
        if count.is_multiple_of(100) {
            self.bar
                .set_message(format!("Reading the directory: {count} {}", kind.name()));
        }
    }
}
