//! The tray's async side: finds the daemon, follows its events, runs menu actions, decides on
//! notifications and hands every changed [`View`] to the GUI.
//!
//! It runs on a tokio runtime on its own thread; the GUI thread only renders what it receives and
//! sends clicks back as [`Command`]s. One loop owns the [`Model`], so there is no shared state
//! and no lock: events, clicks, action results and timers are handled one at a time.
//!
//! Connection handling: while no daemon answers, [`Client::discover`] is retried with backoff
//! (`retry_min` doubling up to `retry_max`), so a daemon that starts or restarts (possibly on a
//! new port, which discovery reads from its `daemon.json`) is found within seconds. The event
//! stream ending means the daemon stopped or restarted. The status is also refreshed every
//! `refresh_every`: it moves "next sync" along and catches up on events missed while the stream
//! was being set up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Local;
use orgsync_proto::api::Event;
use orgsync_proto::client::{Client, ClientError};
use tokio::sync::mpsc;

use crate::actions::{self, ActionError, Outcome};
use crate::model::{Action, MenuId, Model, View};
use crate::notifications::{self, Decider, Note};

/// How many runs are read at connection time to find the last sync and the last run.
const HISTORY_AT_CONNECT: usize = 20;

/// Longest wait for the quick calls the loop makes itself (discovery, status, history). The
/// client only bounds connecting; a daemon that accepts but never answers (wedged, or stopped
/// with SIGSTOP) must not freeze the menu, so such a daemon counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// From the GUI to the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Click(MenuId),
    /// The GUI is closing.
    Shutdown,
}

/// From the controller to the GUI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    View(View),
    Quit,
}

/// Receives views; returns false once the GUI is gone, which ends the controller.
pub type UiSink = Box<dyn Fn(Update) -> bool + Send>;
/// Shows (or, in tests, records) notifications. Called on the controller's runtime.
pub type NoteSink = Arc<dyn Fn(Note) + Send + Sync>;

/// Timing of reconnects and refreshes.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub refresh_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(5),
            refresh_every: Duration::from_secs(10),
        }
    }
}

/// The notification sink of the real tray: logs each note, then shows it on the desktop in the
/// background (a slow notification server must not hold up the loop).
pub fn desktop_notes() -> NoteSink {
    Arc::new(|note: Note| {
        tracing::info!(summary = %note.summary, body = %note.body, "notification");
        tokio::spawn(async move { notifications::show(&note).await });
    })
}

pub struct Controller {
    data_dir: PathBuf,
    context: actions::Context,
    ui: UiSink,
    notes: NoteSink,
    timing: Timing,
    model: Model,
    decider: Decider,
    client: Option<Client>,
    events: Option<mpsc::UnboundedReceiver<Event>>,
    follower: Option<tokio::task::JoinHandle<()>>,
    last_view: Option<View>,
}

impl Controller {
    pub fn new(
        data_dir: PathBuf,
        context: actions::Context,
        ui: UiSink,
        notes: NoteSink,
        timing: Timing,
    ) -> Controller {
        Controller {
            data_dir,
            context,
            ui,
            notes,
            timing,
            model: Model::new(),
            decider: Decider::new(),
            client: None,
            events: None,
            follower: None,
            last_view: None,
        }
    }

    /// Runs until the GUI sends [`Command::Shutdown`], drops its sender, or stops taking views.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Action, ActionResult)>();
        let mut retry = self.timing.retry_min;
        let mut next_connect = tokio::time::Instant::now();
        let mut next_refresh = tokio::time::Instant::now() + self.timing.refresh_every;
        loop {
            if !self.publish() {
                break;
            }
            let confirm_deadline = self
                .model
                .confirm_deadline()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Click(id)) => {
                        if let Some(action) = self.model.click(id, Instant::now()) {
                            if action == Action::Quit {
                                (self.ui)(Update::Quit);
                                break;
                            }
                            self.spawn_action(action, done_tx.clone());
                        }
                    }
                    Some(Command::Shutdown) | None => break,
                },
                Some((action, result)) = done_rx.recv() => {
                    self.action_done(action, result).await;
                }
                event = next_event(&mut self.events), if self.events.is_some() => match event {
                    Some(event) => self.event(event).await,
                    None => {
                        tracing::info!("the daemon's event stream ended; looking for it again");
                        self.disconnect(format!(
                            "orgsyncd stopped (data directory {})",
                            self.data_dir.display()
                        ));
                        retry = self.timing.retry_min;
                        next_connect = tokio::time::Instant::now();
                    }
                },
                _ = tokio::time::sleep_until(next_connect), if self.client.is_none() => {
                    if self.connect().await {
                        retry = self.timing.retry_min;
                        next_refresh = tokio::time::Instant::now() + self.timing.refresh_every;
                    } else {
                        next_connect = tokio::time::Instant::now() + retry;
                        retry = (retry * 2).min(self.timing.retry_max);
                    }
                }
                _ = tokio::time::sleep_until(next_refresh), if self.client.is_some() => {
                    self.refresh_status().await;
                    next_refresh = tokio::time::Instant::now() + self.timing.refresh_every;
                }
                _ = sleep_until_opt(confirm_deadline), if confirm_deadline.is_some() => {
                    self.model.expire(Instant::now());
                }
            }
        }
        if let Some(follower) = self.follower.take() {
            follower.abort();
        }
    }

    /// Sends the view if it changed; false when the GUI is gone.
    fn publish(&mut self) -> bool {
        let view = self.model.view(Instant::now(), &Local::now());
        if self.last_view.as_ref() == Some(&view) {
            return true;
        }
        self.last_view = Some(view.clone());
        (self.ui)(Update::View(view))
    }

    fn note(&self, note: Note) {
        (self.notes)(note);
    }

    /// Finds the daemon, starts following its events and loads its state. False if none answers.
    async fn connect(&mut self) -> bool {
        let discovered = bounded(Client::discover(&self.data_dir)).await;
        let client = match discovered {
            Ok(Some(client)) => client,
            Ok(None) => {
                self.disconnect(format!(
                    "orgsyncd is not running (data directory {})",
                    self.data_dir.display()
                ));
                return false;
            }
            Err(e @ ClientError::Unreachable(_)) => {
                self.disconnect(format!("orgsyncd does not answer: {e}"));
                return false;
            }
            Err(e @ (ClientError::NotAnswering(_) | ClientError::Impostor(_))) => {
                self.disconnect(e.to_string());
                return false;
            }
            Err(e) => {
                self.disconnect(format!("orgsyncd refused the tray: {e}"));
                return false;
            }
        };
        // Follow first, then read the status: an event between the two is then not lost (and
        // one racing the subscription is caught up by the next status refresh).
        let (tx, rx) = mpsc::unbounded_channel();
        let follower = {
            let client = client.clone();
            tokio::spawn(async move {
                if let Err(e) = client.follow_events(|event| tx.send(event).is_ok()).await {
                    tracing::debug!("event stream: {e}");
                }
            })
        };
        let loaded = bounded(async {
            let status = client.status().await?;
            let history = client.history(HISTORY_AT_CONNECT).await?;
            Ok::<_, ClientError>((status, history))
        })
        .await;
        match loaded {
            Ok((status, history)) => {
                tracing::info!(
                    "connected to orgsyncd {} at {}; following its events",
                    status.version,
                    client.base_url()
                );
                self.model.connected(status, &history.runs);
                self.client = Some(client);
                self.events = Some(rx);
                self.follower = Some(follower);
                true
            }
            Err(e) => {
                follower.abort();
                self.disconnect(format!("orgsyncd did not answer: {e}"));
                false
            }
        }
    }

    fn disconnect(&mut self, reason: String) {
        if self.client.is_some() || self.model.is_connected() {
            tracing::info!("{reason}");
        }
        if let Some(follower) = self.follower.take() {
            follower.abort();
        }
        self.client = None;
        self.events = None;
        self.model.disconnected(reason);
    }

    async fn event(&mut self, event: Event) {
        tracing::debug!(event = event.name(), "daemon event");
        let effect = self.model.apply_event(&event);
        if let Some(record) = effect.finished
            && let Some(note) = self.decider.finished(&record)
        {
            self.note(note);
        }
        if effect.refresh_status {
            self.refresh_status().await;
        }
    }

    async fn refresh_status(&mut self) {
        let Some(client) = self.client.clone() else {
            return;
        };
        match bounded(client.status()).await {
            Ok(status) => {
                if let Some(record) = self.model.apply_status(status)
                    && let Some(note) = self.decider.finished(&record)
                {
                    self.note(note);
                }
            }
            Err(ClientError::Unreachable(e)) => {
                self.disconnect(format!("orgsyncd stopped answering: {e}"));
            }
            Err(e) => tracing::warn!("cannot read the daemon's status: {e}"),
        }
    }

    fn spawn_action(&self, action: Action, done: mpsc::UnboundedSender<(Action, ActionResult)>) {
        tracing::info!(action = action.label(), "menu action");
        let client = self.client.clone();
        let context = self.context.clone();
        tokio::spawn(async move {
            let result = actions::perform(client.as_ref(), action, &context).await;
            let _ = done.send((action, result));
        });
    }

    async fn action_done(&mut self, action: Action, result: ActionResult) {
        match result {
            Ok(Outcome::Tested(done)) => {
                self.note(notifications::tested(&done));
                self.refresh_status().await;
            }
            Ok(Outcome::SyncStarted(started)) => {
                tracing::info!(run = started.run_id, "sync started");
                self.refresh_status().await;
            }
            Ok(Outcome::Polling(polling)) => {
                self.model.set_polling(polling);
                self.refresh_status().await;
            }
            Ok(Outcome::CacheCleared(_)) => {
                self.note(notifications::cache_cleared());
                self.refresh_status().await;
            }
            Ok(Outcome::Opened(path)) => tracing::info!("opened {}", path.display()),
            Ok(Outcome::Nothing) => {}
            Err(e) => {
                tracing::warn!(action = action.label(), "failed: {e}");
                self.note(notifications::action_failed(action, &e.to_string()));
                if matches!(e, ActionError::Daemon(ClientError::Unreachable(_))) {
                    self.disconnect(format!("orgsyncd stopped answering: {e}"));
                }
            }
        }
    }
}

type ActionResult = Result<Outcome, ActionError>;

/// `call`, or [`ClientError::Unreachable`] if it takes longer than [`CALL_TIMEOUT`].
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Unreachable(format!(
                "no answer within {} s",
                CALL_TIMEOUT.as_secs()
            )))
        })
}

async fn next_event(events: &mut Option<mpsc::UnboundedReceiver<Event>>) -> Option<Event> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
