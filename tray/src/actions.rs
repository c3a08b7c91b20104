//! Menu actions turned into calls of the daemon's API (through [`orgsync_proto::client::Client`]
//! only) and into files opened for the user.
//!
//! Opening a file is behind [`Opener`] so tests can see what would be opened without a desktop;
//! the tray uses [`xdg_open`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Local;
use orgsync_proto::api::{RunStarted, TestDone};
use orgsync_proto::client::{Client, ClientError};
use orgsync_proto::report::InstallationStatus;

use crate::model::Action;

/// How many runs "Show Last Report" asks for: the last one plus a few before it for context.
const REPORT_HISTORY: usize = 11;

/// Opens a file in the user's default application.
pub type Opener = Arc<dyn Fn(&Path) -> Result<(), String> + Send + Sync>;

/// What the actions need besides the client.
#[derive(Clone)]
pub struct Context {
    /// Where "Show Last Report" writes its text (private to this tray process).
    pub report_file: PathBuf,
    /// The config file to open when no daemon answers (resolved like the CLI does).
    pub config_file: PathBuf,
    pub opener: Opener,
}

/// What an action did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Test Now: the daemon's full dry-run report.
    Tested(TestDone),
    /// Sync Now: started; its end arrives as an event.
    SyncStarted(RunStarted),
    /// Start Sync / Stop Sync: polling as the daemon now has it.
    Polling(bool),
    CacheCleared(InstallationStatus),
    /// Open Config / Show Last Report: the file handed to the opener.
    Opened(PathBuf),
    /// Quit needs nothing from the daemon.
    Nothing,
}

#[derive(Debug)]
pub enum ActionError {
    /// The daemon refused or did not answer.
    Daemon(ClientError),
    /// No daemon to ask.
    NotConnected,
    /// A file could not be written or opened.
    File(String),
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionError::Daemon(e) => write!(f, "{e}"),
            ActionError::NotConnected => {
                f.write_str("the orgsync daemon is not running; start orgsyncd first")
            }
            ActionError::File(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ActionError {}

impl From<ClientError> for ActionError {
    fn from(e: ClientError) -> Self {
        ActionError::Daemon(e)
    }
}

/// Runs `action` against the daemon `client` (`None` when none answers).
pub async fn perform(
    client: Option<&Client>,
    action: Action,
    context: &Context,
) -> Result<Outcome, ActionError> {
    let daemon = || client.ok_or(ActionError::NotConnected);
    match action {
        Action::TestNow => Ok(Outcome::Tested(daemon()?.test().await?)),
        Action::SyncNow => Ok(Outcome::SyncStarted(daemon()?.start_sync(false).await?)),
        Action::StartPolling => Ok(Outcome::Polling(daemon()?.start_polling().await?.polling)),
        Action::StopPolling => Ok(Outcome::Polling(daemon()?.stop_polling().await?.polling)),
        Action::ClearCache => Ok(Outcome::CacheCleared(daemon()?.clear_cache().await?)),
        Action::OpenConfig => {
            // The file the daemon reads, which is the one that counts; ours when none answers.
            let file = match client {
                Some(client) => match client.config().await {
                    Ok(view) => PathBuf::from(view.file),
                    Err(ClientError::Unreachable(_)) => context.config_file.clone(),
                    Err(e) => return Err(e.into()),
                },
                None => context.config_file.clone(),
            };
            if !file.exists() {
                return Err(ActionError::File(format!(
                    "{} does not exist yet; create it with `orgsync config set …` (see the README)",
                    file.display()
                )));
            }
            open(context, &file)?;
            Ok(Outcome::Opened(file))
        }
        Action::ShowLastReport => {
            let history = daemon()?.history(REPORT_HISTORY).await?;
            let text = crate::report::render(&history.runs, &Local);
            write_private(&context.report_file, &text)?;
            open(context, &context.report_file)?;
            Ok(Outcome::Opened(context.report_file.clone()))
        }
        Action::Quit => Ok(Outcome::Nothing),
    }
}

fn open(context: &Context, file: &Path) -> Result<(), ActionError> {
    (context.opener)(file)
        .map_err(|e| ActionError::File(format!("cannot open {}: {e}", file.display())))
}

/// Writes `text` to `path`, readable by the user only: a report lists people's emails.
fn write_private(path: &Path, text: &str) -> Result<(), ActionError> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail =
        |e: std::io::Error| ActionError::File(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)
}

/// Opens files with `xdg-open`, the desktop's default application for the file type. The child is
/// reaped on a thread so no zombie is left; `xdg-open` itself returns once the viewer started.
pub fn xdg_open() -> Opener {
    Arc::new(|path: &Path| {
        let mut child = std::process::Command::new("xdg-open")
            .arg(path)
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run xdg-open (install xdg-utils): {e}"))?;
        let shown = path.display().to_string();
        std::thread::spawn(move || match child.wait() {
            Ok(status) if !status.success() => {
                tracing::warn!("xdg-open {shown} exited with {status}")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot wait for xdg-open {shown}: {e}"),
        });
        Ok(())
    })
}
