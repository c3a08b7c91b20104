//! The daemon's service: owns the installation while `orgsyncd` runs and is the one place that
//! starts runs, so there is never more than one at a time. The control API ([`crate::api`]) and
//! the poller ([`Service::poll`]) both go through it; it records every run in the history and
//! announces everything on the event bus.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
// A panic while a lock is held must not make every later request panic too: each value behind
// these locks is whole after every statement, so a poisoned lock is simply taken over.
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use orgsync_proto::api::{
    ConfigUpdate, DaemonStatus, DiffSummary, Event, RunInfo, RunKind, RunOutcome, RunRecord,
    RunTrigger,
};
use orgsync_proto::{Diff, InstallationStatus, SyncOutcome, SyncReport, TestReport};
use tokio::sync::{Notify, broadcast, watch};

use crate::config::{self, Config, ConfigError};
use crate::directory::{EntryKind, Progress};
use crate::engine::{self, Context, RunError, SyncOptions};
use crate::org::ApiKey;
use crate::paths::Paths;
use crate::schedule::Schedule;
use crate::secrets::{Secret, SecretKey, Secrets};
use crate::state::State;

/// Emails per list kept in a run's summary.
const SAMPLE: usize = 20;
/// Entries between two progress events.
const PROGRESS_EVERY: usize = 500;
/// How long the daemon waits after a pushed directory change before it syncs, so a burst of
/// changes makes one sync.
const FOLLOW_DEBOUNCE: Duration = Duration::from_secs(2);

/// Why the service did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("run {0} is in progress; wait for it to finish")]
    RunInProgress(u64),
    #[error(
        "run {0} is still in progress after {waited}; try again when it has ended (`orgsync daemon status` shows it)",
        waited = humantime(.1)
    )]
    StillInProgress(u64, Duration),
    #[error("orgsyncd is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{error}")]
    Run {
        run_id: Option<u64>,
        error: RunError,
    },
    #[error("{0}")]
    Internal(String),
}

impl From<RunError> for ServiceError {
    fn from(error: RunError) -> ServiceError {
        ServiceError::Run {
            run_id: None,
            error,
        }
    }
}

/// inotify events of `dir` (one watch; the daemon's idle wake-ups come only from these).
fn watch_directory(
    dir: &std::path::Path,
    mask: inotify::WatchMask,
) -> std::io::Result<inotify::EventStream<[u8; 4096]>> {
    let inotify = inotify::Inotify::init()?;
    inotify.watches().add(dir, mask)?;
    inotify.into_event_stream([0u8; 4096])
}

/// How soon an overdue scheduled run starts after the daemon starts or polling is switched on.
const CATCH_UP_DELAY: Duration = Duration::from_secs(3);

/// How long a manual run waits for the one in progress to end.
const QUEUE_WAIT: Duration = Duration::from_secs(30 * 60);

fn humantime(duration: &Duration) -> String {
    match duration.as_secs() {
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// A handle to the service; cheap to clone.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    paths: Paths,
    state: Arc<State>,
    secrets: Secrets,
    /// The config and the file's modification time when it was read: a hand edit is picked up
    /// at the next use, without a restart.
    config: RwLock<(Config, Option<SystemTime>)>,
    /// Why the config file's content is not in force, while it is not (see [`Service::config`]).
    config_rejected: Mutex<Option<String>>,
    events: broadcast::Sender<Event>,
    current: Mutex<Option<RunInfo>>,
    next_run_id: AtomicU64,
    polling: watch::Sender<bool>,
    /// Wakes the poller when the schedule may have changed.
    reschedule: Notify,
    failures: AtomicU32,
    next_run_at: Mutex<Option<DateTime<Utc>>>,
    shutting_down: AtomicBool,
    /// Signalled whenever a run ends.
    run_ended: Notify,
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Service {
    /// Opens the installation: state (exclusively: the CLI talks to the daemon while it runs),
    /// secrets and config. The config may be incomplete; runs then fail with the problems.
    pub fn open(paths: Paths) -> Result<Service, ServiceError> {
        let modified = modified(&paths.config_file);
        let config = Config::load(&paths.config_file)?;
        let state = Arc::new(State::open(&paths.data_dir).map_err(RunError::State)?);
        let secrets = Secrets::open(config.secrets.backend, &paths.data_dir).map_err(internal)?;
        let polling = state.polling().map_err(internal)?;
        let next_run_id = state.next_run_id().map_err(internal)?;
        let (events, _) = broadcast::channel(256);
        Ok(Service {
            inner: Arc::new(Inner {
                paths,
                state,
                secrets,
                config: RwLock::new((config, modified)),
                config_rejected: Mutex::new(None),
                events,
                current: Mutex::new(None),
                next_run_id: AtomicU64::new(next_run_id),
                polling: watch::Sender::new(polling),
                reschedule: Notify::new(),
                failures: AtomicU32::new(0),
                next_run_at: Mutex::new(None),
                shutting_down: AtomicBool::new(false),
                run_ended: Notify::new(),
            }),
        })
    }

    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }

    /// The current config, re-read first if the file changed since it was last read. An edit
    /// that does not parse, or that fails validation where the config in force passed, is not
    /// adopted: the last good config stays in force, and `status` says why until the file is
    /// fixed. (While the config in force is incomplete itself, as during setup, edits apply.)
    pub fn config(&self) -> Config {
        let path = &self.inner.paths.config_file;
        let now = modified(path);
        {
            let current = self
                .inner
                .config
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if current.1 == now {
                return current.0.clone();
            }
        }
        let mut current = self
            .inner
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if current.1 != now {
            current.1 = now;
            let rejected = match Config::load(path) {
                Ok(config) => match config.resolve() {
                    Err(problem) if current.0.resolve().is_ok() => Some(format!(
                        "the edit of {} was not adopted: {problem}",
                        path.display()
                    )),
                    _ => {
                        tracing::info!("{} changed; using the new configuration", path.display());
                        current.0 = config;
                        self.emit(Event::ConfigChanged);
                        self.inner.reschedule.notify_waiters();
                        None
                    }
                },
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = &rejected {
                tracing::warn!(
                    "{why}; orgsyncd keeps the previous configuration until the file is fixed"
                );
            }
            *self
                .inner
                .config_rejected
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = rejected.map(|why| {
                format!("{why}; the previous configuration stays in force until the file is fixed")
            });
        }
        current.0.clone()
    }

    /// New subscribers see events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    fn emit(&self, event: Event) {
        let _ = self.inner.events.send(event); // no subscribers is fine
    }

    fn context(&self) -> Result<Context, ServiceError> {
        Ok(Context {
            config: self.config().resolve()?,
            state: self.inner.state.clone(),
            secrets: self.inner.secrets.clone(),
        })
    }

    /// Claims the single run slot, or says which run holds it.
    fn begin(&self, kind: RunKind, trigger: RunTrigger) -> Result<RunInfo, ServiceError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(ServiceError::ShuttingDown);
        }
        let mut current = self
            .inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(run) = current.as_ref() {
            return Err(ServiceError::RunInProgress(run.id));
        }
        let run = RunInfo {
            id: self.inner.next_run_id.fetch_add(1, Ordering::SeqCst),
            kind,
            trigger,
            started_at: now_text(),
            users_read: 0,
            groups_read: 0,
        };
        *current = Some(run.clone());
        drop(current);
        // Recorded at once, so the id is never handed out twice and a run cut short by a crash
        // still shows in the history; `end` overwrites it with the outcome.
        let mut placeholder = record_for(&run, Instant::now());
        placeholder.outcome = RunOutcome::Interrupted;
        placeholder.error = Some("orgsyncd stopped during this run".into());
        if let Ok(json) = serde_json::to_string(&placeholder)
            && let Err(e) = self.inner.state.record_run(run.id, &json)
        {
            tracing::error!("cannot record run {} in the history: {e}", run.id);
        }
        tracing::info!(run = run.id, ?kind, ?trigger, "run started");
        self.emit(Event::RunStarted { run: run.clone() });
        Ok(run)
    }

    /// Records the run, releases the run slot and announces it.
    fn end(&self, record: RunRecord) {
        // Record first, then free the slot: until then `history` hides this run, so nobody sees
        // the start-time placeholder of a run that has in fact finished.
        match serde_json::to_string(&record) {
            Ok(json) => {
                if let Err(e) = self.inner.state.record_run(record.id, &json) {
                    tracing::error!("cannot record run {} in the history: {e}", record.id);
                }
            }
            Err(e) => tracing::error!("cannot encode run {}: {e}", record.id),
        }
        *self
            .inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        match record.outcome {
            RunOutcome::Failed => {
                tracing::warn!(
                    run = record.id,
                    error = record.error.as_deref(),
                    "run failed"
                );
                self.emit(Event::RunFailed { record });
            }
            outcome => {
                tracing::info!(
                    run = record.id,
                    ?outcome,
                    ms = record.duration_ms,
                    "run finished"
                );
                self.emit(Event::RunFinished { record });
            }
        }
        self.inner.run_ended.notify_waiters();
    }

    /// A dry run, waited for.
    /// Like [`Service::begin`], but while another run holds the slot, waits for it to end (up
    /// to [`QUEUE_WAIT`]): a second `orgsync sync`, or a test during a scheduled poll, runs
    /// after the one in progress instead of failing.
    async fn begin_after_current(
        &self,
        kind: RunKind,
        trigger: RunTrigger,
    ) -> Result<RunInfo, ServiceError> {
        let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
        loop {
            // Registered before trying, so an end between the try and the wait is not missed.
            let ended = self.inner.run_ended.notified();
            match self.begin(kind, trigger) {
                Err(ServiceError::RunInProgress(id)) => {
                    if tokio::time::timeout_at(deadline, ended).await.is_err() {
                        return Err(ServiceError::StillInProgress(id, QUEUE_WAIT));
                    }
                }
                other => return other,
            }
        }
    }

    pub async fn test(&self, trigger: RunTrigger) -> Result<(u64, TestReport), ServiceError> {
        let run = self.begin_after_current(RunKind::Test, trigger).await?;
        let started = Instant::now();
        let result = async {
            let context = self.context()?;
            Ok::<_, ServiceError>(context.test(&RunProgress::new(self, &run)).await?)
        }
        .await;
        let mut record = record_for(&run, started);
        match &result {
            Ok(report) => {
                record.outcome = RunOutcome::Tested;
                record.users_read = report.users.len() + report.skipped.len();
                record.groups_read = report.groups.len();
                record.summary = summarize(&report.diff);
                record.error = report.refusal.as_ref().map(|r| r.message.clone());
            }
            Err(e) => record.error = Some(e.to_string()),
        }
        self.end(record);
        result
            .map(|report| (run.id, report))
            .map_err(|e| with_run(e, run.id))
    }

    /// Starts a sync in the background and returns its id; `409` style error if busy.
    pub fn start_sync(
        &self,
        trigger: RunTrigger,
        allow_removals: bool,
    ) -> Result<u64, ServiceError> {
        let run = self.begin(RunKind::Sync, trigger)?;
        let id = run.id;
        let service = self.clone();
        tokio::spawn(async move {
            let _ = service.execute_sync(run, allow_removals).await;
        });
        Ok(id)
    }

    /// A sync, waited for.
    pub async fn sync(
        &self,
        trigger: RunTrigger,
        allow_removals: bool,
    ) -> Result<(u64, SyncReport), ServiceError> {
        let run = self.begin_after_current(RunKind::Sync, trigger).await?;
        let id = run.id;
        self.execute_sync(run, allow_removals)
            .await
            .map(|report| (id, report))
            .map_err(|e| with_run(e, id))
    }

    async fn execute_sync(
        &self,
        run: RunInfo,
        allow_removals: bool,
    ) -> Result<SyncReport, ServiceError> {
        let started = Instant::now();
        let result = async {
            let context = self.context()?;
            let options = SyncOptions { allow_removals };
            Ok::<_, ServiceError>(context.sync(options, &RunProgress::new(self, &run)).await?)
        }
        .await;
        let mut record = record_for(&run, started);
        match &result {
            Ok(report) => {
                record.outcome = match report.outcome {
                    SyncOutcome::Synced => RunOutcome::Synced,
                    SyncOutcome::Unchanged => RunOutcome::Unchanged,
                    SyncOutcome::Refused => RunOutcome::Refused,
                };
                record.users_read = report.users_read;
                record.groups_read = report.groups_read;
                record.requests_sent = report.requests_sent;
                record.summary = summarize(&report.diff);
                record.error = report.refusal.as_ref().map(|r| r.message.clone());
            }
            Err(e) => record.error = Some(e.to_string()),
        }
        self.end(record);
        result
    }

    /// The scheduled-run loop: sleeps until the next run time (one timer, no polling), runs a
    /// sync, and starts over. Returns when `shutdown` turns true.
    pub async fn poll(&self, mut shutdown: watch::Receiver<bool>) {
        let mut polling = self.inner.polling.subscribe();
        // At the start, and whenever polling is switched on, a run that is overdue (or that a
        // crash cut short) happens soon rather than a whole period later.
        let mut catch_up = true;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let on = *polling.borrow_and_update();
            let next = if on {
                let config = self.config();
                let schedule = Schedule::from_config(&config.sync).unwrap_or(
                    Schedule::Every(Duration::from_secs(300)), // config validation keeps this rare
                );
                let now = Utc::now();
                let failures = self.inner.failures.load(Ordering::SeqCst);
                if std::mem::take(&mut catch_up)
                    && config.daemon.catch_up
                    && self.overdue(&schedule, now)
                {
                    tracing::info!("a scheduled run is overdue; running in {CATCH_UP_DELAY:?}");
                    Some(now + chrono::Duration::from_std(CATCH_UP_DELAY).unwrap_or_default())
                } else {
                    Some(schedule.next_after(now, failures))
                }
            } else {
                None
            };
            *self
                .inner
                .next_run_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = next;
            let sleep = async {
                match next {
                    Some(at) => {
                        tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = polling.changed() => {
                    catch_up = true;
                    continue;
                }
                _ = self.inner.reschedule.notified() => continue,
                _ = shutdown.changed() => continue,
            }
            self.scheduled_tick().await;
        }
    }

    /// Whether the schedule should have run since the last sync: never synced, a run due
    /// since the last sync's time, or the newest run was cut short by a crash.
    fn overdue(&self, schedule: &Schedule, now: DateTime<Utc>) -> bool {
        let interrupted = self.inner.state.runs(1).ok().is_some_and(|runs| {
            runs.first()
                .and_then(|json| serde_json::from_str::<RunRecord>(json).ok())
                .is_some_and(|run| run.outcome == RunOutcome::Interrupted)
        });
        let times = self.inner.state.sync_times().unwrap_or_default();
        let last = [times.users, times.groups]
            .into_iter()
            .flatten()
            .filter_map(|at| DateTime::parse_from_rfc3339(&at).ok())
            .map(|at| at.with_timezone(&Utc))
            .max();
        interrupted || last.is_none_or(|last| schedule.next_after(last, 0) <= now)
    }

    /// Follows the config file with inotify (no polling, so an idle daemon stays asleep) and
    /// applies hand edits at once, so a changed schedule takes effect without waiting for the
    /// old timer. Returns when `shutdown` turns true.
    pub async fn watch_config(&self, mut shutdown: watch::Receiver<bool>) {
        let path = self.inner.paths.config_file.clone();
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        // Editors and `config set` replace the file, so watch its directory.
        let watch = || {
            std::fs::create_dir_all(dir)?;
            watch_directory(
                dir,
                inotify::WatchMask::CLOSE_WRITE
                    | inotify::WatchMask::MOVED_TO
                    | inotify::WatchMask::CREATE
                    | inotify::WatchMask::DELETE,
            )
        };
        let mut events = match watch() {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(
                    "cannot watch {} ({e}); hand edits apply at the next run",
                    dir.display()
                );
                return;
            }
        };
        loop {
            tokio::select! {
                event = futures_util::StreamExt::next(&mut events) => match event {
                    Some(Ok(event)) if event.name.as_deref() == Some(name) => {
                        self.config();
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!("watching the config file failed ({e}); hand edits apply at the next run");
                        return;
                    }
                    None => return,
                },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Waits until the installation is taken away under the daemon: the data directory, or the
    /// state database in it, deleted or moved. The daemon would otherwise keep writing to a
    /// database nobody can find while the CLI starts a new one beside it. Returns what happened;
    /// never returns while both are in place (or when they cannot be watched, said in the log).
    pub async fn installation_removed(&self) -> String {
        let dir = self.inner.paths.data_dir.clone();
        let state = self.inner.state.path().to_path_buf();
        let state_name = state.file_name().map(|n| n.to_os_string());
        let watched = watch_directory(
            &dir,
            inotify::WatchMask::DELETE_SELF
                | inotify::WatchMask::MOVE_SELF
                | inotify::WatchMask::DELETE
                | inotify::WatchMask::MOVED_FROM,
        );
        let mut events = match watched {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(
                    "cannot watch the data directory {} ({e}); deleting it while orgsyncd runs goes unnoticed",
                    dir.display()
                );
                return std::future::pending().await;
            }
        };
        while let Some(event) = futures_util::StreamExt::next(&mut events).await {
            let Ok(event) = event else { break };
            let mask = event.mask;
            if mask.intersects(inotify::EventMask::DELETE_SELF | inotify::EventMask::MOVE_SELF) {
                return format!("the data directory {} was deleted or moved", dir.display());
            }
            if event.name.as_deref() == state_name.as_deref() {
                return format!(
                    "the state database {} was deleted or moved",
                    state.display()
                );
            }
        }
        tracing::warn!("watching the data directory {} ended", dir.display());
        std::future::pending().await
    }

    /// Follows the directory where it can push changes (RFC 4533 refreshAndPersist) and syncs
    /// shortly after each burst of changes, so a change reaches the organization in seconds
    /// instead of at the next poll. Polling stays as it is, the fallback. Reconnects with
    /// backoff, restarts when the config changes, pauses while polling is off. Returns when
    /// `shutdown` turns true.
    pub async fn follow_directory(&self, mut shutdown: watch::Receiver<bool>) {
        let changed = Arc::new(Notify::new());
        let follower = async {
            let mut polling = self.inner.polling.subscribe();
            let mut failures = 0u32;
            loop {
                if !*polling.borrow_and_update() {
                    let _ = polling.changed().await;
                    continue;
                }
                let config_changed = self.inner.reschedule.notified();
                tokio::pin!(config_changed);
                let on_change = {
                    let changed = changed.clone();
                    move || changed.notify_one()
                };
                let follow = async {
                    match self.context() {
                        Ok(context) => context
                            .follow_directory(&on_change)
                            .await
                            .map_err(ServiceError::from),
                        Err(e) => Err(e),
                    }
                };
                tokio::select! {
                    result = follow => match result {
                        // The directory cannot push: polling alone, until the config changes.
                        Ok(false) => {
                            tokio::select! {
                                _ = &mut config_changed => {}
                                _ = polling.changed() => {}
                            }
                        }
                        Ok(true) => failures = 0,
                        Err(e) => {
                            failures = failures.saturating_add(1);
                            let wait = Duration::from_secs(5 * 2u64.pow(failures.min(6)));
                            tracing::info!("following the directory stopped ({e}); trying again in {} s", wait.as_secs());
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = self.inner.reschedule.notified() => {}
                            }
                        }
                    },
                    _ = &mut config_changed => {}
                    _ = polling.changed() => {}
                }
            }
        };
        let syncer = async {
            loop {
                changed.notified().await;
                // Changes come in bursts (a new hire touches a user and some groups): wait for
                // the burst to settle, then one sync reads all of it.
                tokio::time::sleep(FOLLOW_DEBOUNCE).await;
                self.sync_after_change().await;
            }
        };
        tokio::select! {
            _ = follower => {}
            _ = syncer => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }

    /// A sync for a pushed change. If another run is in progress it may have read before the
    /// change, so this one waits for it and runs afterwards.
    async fn sync_after_change(&self) {
        loop {
            match self.begin(RunKind::Sync, RunTrigger::DirectoryChange) {
                Ok(run) => {
                    let _ = self.execute_sync(run, false).await;
                    return;
                }
                Err(ServiceError::RunInProgress(_)) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(_) => return, // shutting down
            }
        }
    }

    async fn scheduled_tick(&self) {
        match self.begin(RunKind::Sync, RunTrigger::Schedule) {
            Ok(run) => {
                let ok = matches!(
                    self.execute_sync(run, false).await,
                    Ok(SyncReport {
                        outcome: SyncOutcome::Synced | SyncOutcome::Unchanged,
                        ..
                    })
                );
                if ok {
                    self.inner.failures.store(0, Ordering::SeqCst);
                } else {
                    self.inner.failures.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(ServiceError::RunInProgress(busy)) => {
                let id = self.inner.next_run_id.fetch_add(1, Ordering::SeqCst);
                let record = RunRecord {
                    id,
                    kind: RunKind::Sync,
                    trigger: RunTrigger::Schedule,
                    started_at: now_text(),
                    duration_ms: 0,
                    outcome: RunOutcome::Skipped,
                    users_read: 0,
                    groups_read: 0,
                    requests_sent: 0,
                    summary: DiffSummary::default(),
                    error: Some(format!("run {busy} was in progress")),
                };
                if let Ok(json) = serde_json::to_string(&record) {
                    let _ = self.inner.state.record_run(id, &json);
                }
                tracing::info!(run = id, busy, "scheduled run skipped");
                self.emit(Event::RunSkipped { record });
            }
            Err(_) => {} // shutting down
        }
    }

    pub fn set_polling(&self, on: bool) -> Result<bool, ServiceError> {
        self.inner.state.set_polling(on).map_err(internal)?;
        let changed = self.inner.polling.send_replace(on) != on;
        if changed {
            tracing::info!(polling = on, "polling changed");
            self.emit(Event::PollingChanged { polling: on });
        }
        Ok(on)
    }

    pub fn polling(&self) -> bool {
        *self.inner.polling.borrow()
    }

    pub fn clear_cache(&self) -> Result<InstallationStatus, ServiceError> {
        self.inner.state.clear_cache().map_err(internal)?;
        self.installation_status()
    }

    /// The run holding the slot, if any.
    fn current_run(&self) -> Option<RunInfo> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The newest runs first, the one in progress included (as `running`, with what it has
    /// read so far) from the moment it starts.
    pub fn history(&self, limit: usize) -> Result<Vec<RunRecord>, ServiceError> {
        let running = self.current_run();
        let runs = self.inner.state.runs(limit).map_err(internal)?;
        Ok(runs
            .iter()
            .filter_map(|json| serde_json::from_str::<RunRecord>(json).ok())
            .map(|record| match &running {
                // Its stored record is the placeholder for a crash; show it as it stands.
                Some(run) if run.id == record.id => RunRecord {
                    outcome: RunOutcome::Running,
                    error: None,
                    users_read: run.users_read,
                    groups_read: run.groups_read,
                    ..record
                },
                _ => record,
            })
            .collect())
    }

    /// Applies a config change: every key is validated, the file is replaced only if all are
    /// valid, and the new config takes effect for the next run (and the schedule) at once.
    pub fn update_config(&self, update: &ConfigUpdate) -> Result<(), ServiceError> {
        let path = &self.inner.paths.config_file;
        let mut text = config::read_file(path)?;
        for (key, value) in &update.set {
            text = config::set_key(&text, key, Some(value), path)?;
        }
        for key in &update.unset {
            text = config::set_key(&text, key, None, path)?;
        }
        let parsed = Config::parse(&text, path)?;
        config::write_file(path, &text)?;
        *self
            .inner
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = (parsed, modified(path));
        *self
            .inner
            .config_rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        // The keys, never values: secrets are not config keys, but filters and paths may be
        // nobody's business in a log either.
        let keys: Vec<&str> = update
            .set
            .keys()
            .map(String::as_str)
            .chain(update.unset.iter().map(|k| k.as_str()))
            .collect();
        tracing::info!("configuration changed through the API: {}", keys.join(", "));
        self.emit(Event::ConfigChanged);
        self.inner.reschedule.notify_waiters();
        Ok(())
    }

    /// Where each secret of the configured directory and the organization comes from.
    pub fn secret_sources(&self) -> Vec<(SecretKey, Option<String>)> {
        SecretKey::reported(&self.config())
            .into_iter()
            .map(|key| (key, self.inner.secrets.source(key).ok().flatten()))
            .collect()
    }

    pub async fn login(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<(String, Option<String>), ServiceError> {
        let server = self.config().resolve_server()?;
        let key = ApiKey {
            client_id: client_id.trim().to_string(),
            client_secret: Secret::new(client_secret.trim()),
        };
        let replaced = engine::login(&server, &self.inner.state, &self.inner.secrets, &key).await?;
        Ok((key.organization_id().to_string(), replaced))
    }

    pub fn logout(&self) -> Result<InstallationStatus, ServiceError> {
        engine::logout(&self.inner.secrets)?;
        self.installation_status()
    }

    pub fn secrets_description(&self) -> String {
        self.inner.secrets.description().to_string()
    }

    pub fn installation_status(&self) -> Result<InstallationStatus, ServiceError> {
        crate::status::installation_status(
            &self.inner.paths,
            &self.config(),
            &self.inner.secrets,
            Some(&self.inner.state),
        )
        .map_err(ServiceError::from)
    }

    pub fn status(&self) -> Result<DaemonStatus, ServiceError> {
        let config = self.config();
        // Each lock in its own statement: a guard held across `history` (which takes the run
        // lock too) would deadlock.
        let current_run = self.current_run();
        let next_run_at = *self
            .inner
            .next_run_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The last finished run: the one in progress is `current_run`.
        let last_run = self
            .history(2)?
            .into_iter()
            .find(|run| run.outcome != RunOutcome::Running);
        let schedule = Schedule::from_config(&config.sync)
            .map(|s| s.describe())
            .unwrap_or_else(|e| format!("invalid: {e}"));
        Ok(DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            api_version: orgsync_proto::api::API_VERSION,
            pid: std::process::id(),
            polling: self.polling(),
            schedule,
            next_run_at: next_run_at.map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            current_run,
            last_run,
            consecutive_failures: self.inner.failures.load(Ordering::SeqCst),
            directory_type: config.directory.kind.name().to_string(),
            installation: self.installation_status()?,
            config_rejected: self
                .inner
                .config_rejected
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        })
    }

    /// Stops accepting runs and waits up to `grace` for the one in progress to finish.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let ended = self.inner.run_ended.notified();
            let Some(run) = self.current_run() else {
                return;
            };
            tracing::info!(run = run.id, "waiting for the run in progress to finish");
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                tracing::warn!(
                    run = run.id,
                    "the run did not finish within {} s; stopping anyway (the state only advances after the server accepted the import, so the next start retries it)",
                    grace.as_secs()
                );
                return;
            }
        }
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn with_run(error: ServiceError, run_id: u64) -> ServiceError {
    match error {
        ServiceError::Run { error, .. } => ServiceError::Run {
            run_id: Some(run_id),
            error,
        },
        other => other,
    }
}

/// A failed record for `run`; the caller fills in the outcome.
fn record_for(run: &RunInfo, started: Instant) -> RunRecord {
    RunRecord {
        id: run.id,
        kind: run.kind,
        trigger: run.trigger,
        started_at: run.started_at.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        outcome: RunOutcome::Failed,
        users_read: 0,
        groups_read: 0,
        requests_sent: 0,
        summary: DiffSummary::default(),
        error: None,
    }
}

fn summarize(diff: &Diff) -> DiffSummary {
    DiffSummary {
        invited: diff.invite.len(),
        removed: diff.remove.len(),
        groups_created: diff.groups_created.len(),
        groups_updated: diff.groups_updated.len(),
        invited_sample: diff
            .invite
            .iter()
            .take(SAMPLE)
            .map(|m| m.email.clone())
            .collect(),
        removed_sample: diff
            .remove
            .iter()
            .take(SAMPLE)
            .map(|m| m.email.clone())
            .collect(),
    }
}

/// Feeds a run's progress into the status and, now and then, the event bus.
struct RunProgress<'a> {
    service: &'a Service,
    run: RunInfo,
}

impl<'a> RunProgress<'a> {
    fn new(service: &'a Service, run: &RunInfo) -> Self {
        RunProgress {
            service,
            run: run.clone(),
        }
    }
}

impl Progress for RunProgress<'_> {
    fn entries_read(&self, kind: EntryKind, count: usize) {
        let mut current = self
            .service
            .inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(run) = current.as_mut().filter(|r| r.id == self.run.id) else {
            return;
        };
        match kind {
            EntryKind::Groups => run.groups_read = count,
            EntryKind::Users => run.users_read = count,
        }
        if count.is_multiple_of(PROGRESS_EVERY) {
            let run = run.clone();
            drop(current);
            self.service.emit(Event::RunProgress { run });
        }
    }
}
