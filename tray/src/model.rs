//! The tray's state and its menu, as plain data.
//!
//! [`Model`] is fed by the controller with what the daemon says (its status, recent history and
//! the live events) and with the user's clicks. It answers with a [`View`] (icon state, the status
//! lines and each item's label and whether it can be clicked) and, for a click, the [`Action`] to
//! run. Nothing here does I/O or reads a clock: the caller passes `now`, so every rule is tested
//! without a display or a daemon.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone};
use orgsync_proto::api::{DaemonStatus, Event, RunInfo, RunKind, RunOutcome, RunRecord};

/// How long "Clear Sync Cache" waits for the confirming second click. Long enough to read the
/// changed label and click again, short enough that a stray click much later does not clear.
pub const CONFIRM_WINDOW: Duration = Duration::from_secs(6);

/// Number of (disabled) status lines at the top of the menu. Fixed, so the shell builds the menu
/// once and only changes texts.
pub const STATUS_LINES: usize = 4;

/// Longest error text put in a menu line; menus do not wrap, and the full text is in the report.
const MENU_TEXT_MAX: usize = 60;

/// What the icon shows, in order of precedence: no daemon beats everything, a run in progress
/// beats the last result, a failed last run beats a stopped schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrayState {
    /// No daemon answers for this installation (or it refuses the tray).
    Unreachable,
    /// The daemon runs, polling is on and the last run went well (or there was none yet).
    Ok,
    /// A sync or a test is running.
    Syncing,
    /// The last run failed or was cut short, the removal guard refused the last sync, or the
    /// installation cannot sync (invalid config, not logged in).
    Failed,
    /// The daemon runs but does not poll: nothing syncs until someone asks.
    PollingStopped,
}

impl TrayState {
    pub const ALL: [TrayState; 5] = [
        TrayState::Unreachable,
        TrayState::Ok,
        TrayState::Syncing,
        TrayState::Failed,
        TrayState::PollingStopped,
    ];
}

/// The clickable menu items, in menu order. The status lines above them are not clickable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MenuId {
    TestNow,
    SyncNow,
    /// "Start Sync" / "Stop Sync": one item whose label follows polling.
    TogglePolling,
    ClearCache,
    OpenConfig,
    ShowLastReport,
    Quit,
}

impl MenuId {
    pub const ALL: [MenuId; 7] = [
        MenuId::TestNow,
        MenuId::SyncNow,
        MenuId::TogglePolling,
        MenuId::ClearCache,
        MenuId::OpenConfig,
        MenuId::ShowLastReport,
        MenuId::Quit,
    ];

    /// The id given to the GUI toolkit's menu item, and read back from its click events.
    pub fn as_str(self) -> &'static str {
        match self {
            MenuId::TestNow => "test-now",
            MenuId::SyncNow => "sync-now",
            MenuId::TogglePolling => "toggle-polling",
            MenuId::ClearCache => "clear-cache",
            MenuId::OpenConfig => "open-config",
            MenuId::ShowLastReport => "show-last-report",
            MenuId::Quit => "quit",
        }
    }

    pub fn parse(text: &str) -> Option<MenuId> {
        MenuId::ALL.into_iter().find(|id| id.as_str() == text)
    }
}

/// What a click asks for. The controller turns each into API calls ([`crate::actions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    TestNow,
    SyncNow,
    StartPolling,
    StopPolling,
    ClearCache,
    OpenConfig,
    ShowLastReport,
    Quit,
}

impl Action {
    /// The menu label the user clicked, for messages such as "Sync Now failed: …".
    pub fn label(self) -> &'static str {
        match self {
            Action::TestNow => "Test Now",
            Action::SyncNow => "Sync Now",
            Action::StartPolling => "Start Sync",
            Action::StopPolling => "Stop Sync",
            Action::ClearCache => "Clear Sync Cache",
            Action::OpenConfig => "Open Config",
            Action::ShowLastReport => "Show Last Report",
            Action::Quit => "Quit",
        }
    }
}

/// One clickable item as it should look now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: MenuId,
    pub label: String,
    pub enabled: bool,
}

/// Everything the shell renders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub state: TrayState,
    /// One line for hover text where the platform has it (the Linux appindicator has none, so the
    /// same facts are also the status lines).
    pub tooltip: String,
    /// The disabled lines at the top of the menu: headline, last sync, next sync, counts.
    pub status: [String; STATUS_LINES],
    /// Every [`MenuId`], in [`MenuId::ALL`] order.
    pub items: Vec<Item>,
}

impl View {
    pub fn item(&self, id: MenuId) -> &Item {
        self.items
            .iter()
            .find(|item| item.id == id)
            .expect("a view has every menu item")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Connection {
    /// Started, not yet known whether a daemon runs.
    Connecting,
    Connected,
    /// Why no daemon can be used (not running, or it refused us).
    Unreachable(String),
}

/// What an event did, for the controller.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventEffect {
    /// A run that finished (or failed, or was skipped) and was not seen before: the input of the
    /// notification decision.
    pub finished: Option<RunRecord>,
    /// The event changes things only `GET /v1/status` tells (next run time, counts, schedule).
    pub refresh_status: bool,
}

/// The tray's state.
#[derive(Clone, Debug)]
pub struct Model {
    connection: Connection,
    status: Option<DaemonStatus>,
    /// The newest run that was not skipped: the icon's "last run failed" comes from it.
    last_run: Option<RunRecord>,
    /// The newest sync (not test) that was not skipped: the "Last sync" line.
    last_sync: Option<RunRecord>,
    /// The newest run id already accounted for, so a run learnt from a status refresh (an event
    /// missed while connecting or lagging) is reported once, and runs from before the tray
    /// connected are not reported at all.
    seen_run: Option<u64>,
    /// Set by the first click on "Clear Sync Cache": a second click before this instant clears.
    confirm_clear_until: Option<Instant>,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    pub fn new() -> Model {
        Model {
            connection: Connection::Connecting,
            status: None,
            last_run: None,
            last_sync: None,
            seen_run: None,
            confirm_clear_until: None,
        }
    }

    /// A daemon answered: its status and its recent history (newest first). Runs up to now are
    /// history, not news: none of them is reported as finished.
    pub fn connected(&mut self, status: DaemonStatus, history: &[RunRecord]) {
        self.connection = Connection::Connected;
        self.last_run = None;
        self.last_sync = None;
        self.seen_run = None;
        // Oldest first, so the newest ends up in last_run / last_sync. A run in progress is
        // news when it ends, not now.
        let finished = history
            .iter()
            .rev()
            .chain(status.last_run.as_ref())
            .filter(|record| record.outcome != RunOutcome::Running);
        for record in finished {
            self.remember(record.clone());
        }
        self.status = Some(status);
    }

    /// No daemon to talk to; `reason` says why, in the user's words.
    pub fn disconnected(&mut self, reason: impl Into<String>) {
        self.connection = Connection::Unreachable(reason.into());
        self.status = None;
        self.last_run = None;
        self.last_sync = None;
        self.seen_run = None;
        self.confirm_clear_until = None;
    }

    pub fn is_connected(&self) -> bool {
        self.connection == Connection::Connected
    }

    pub fn status(&self) -> Option<&DaemonStatus> {
        self.status.as_ref()
    }

    pub fn last_run(&self) -> Option<&RunRecord> {
        self.last_run.as_ref()
    }

    pub fn last_sync(&self) -> Option<&RunRecord> {
        self.last_sync.as_ref()
    }

    pub fn polling(&self) -> Option<bool> {
        self.status.as_ref().map(|s| s.polling)
    }

    /// A fresh `GET /v1/status`. Returns the daemon's last run if it is one this model has not
    /// seen, which happens when its event was missed (the stream was being set up, or lagged).
    pub fn apply_status(&mut self, status: DaemonStatus) -> Option<RunRecord> {
        if !self.is_connected() {
            self.connected(status, &[]);
            return None;
        }
        // While connected, an `interrupted` last run is the daemon's placeholder for a run that
        // is just ending (a real interruption stops the daemon and so ends the connection):
        // the final record follows, by event or by the next refresh.
        let record = status
            .last_run
            .clone()
            .filter(|record| record.outcome != RunOutcome::Interrupted);
        let news = record.as_ref().filter(|r| self.is_new(r.id)).cloned();
        if let Some(record) = record {
            // Also when known: a final record replaces a placeholder learnt at connection time.
            self.remember(record);
        }
        self.status = Some(status);
        news
    }

    /// An event from `GET /v1/events`.
    pub fn apply_event(&mut self, event: &Event) -> EventEffect {
        let mut effect = EventEffect::default();
        match event {
            Event::RunStarted { run } | Event::RunProgress { run } => self.set_current(Some(run)),
            Event::RunFinished { record }
            | Event::RunFailed { record }
            | Event::RunSkipped { record } => {
                if self.current_run().is_some_and(|run| run.id == record.id) {
                    self.set_current(None);
                }
                if self.is_connected() && self.status.is_some() {
                    // News once; but the record is stored either way, since an event carries
                    // the final word on its run (it replaces what a status said earlier).
                    if self.is_new(record.id) {
                        effect.finished = Some(record.clone());
                    }
                    self.remember(record.clone());
                }
                effect.refresh_status = true;
            }
            Event::PollingChanged { polling } => {
                self.set_polling(*polling);
                effect.refresh_status = true;
            }
            Event::ConfigChanged => effect.refresh_status = true,
        }
        effect
    }

    /// Polling as the daemon answered a start/stop request (the event follows; this makes the
    /// label flip at once).
    pub fn set_polling(&mut self, polling: bool) {
        if let Some(status) = &mut self.status {
            status.polling = polling;
            if !polling {
                status.next_run_at = None;
            }
        }
    }

    fn set_current(&mut self, run: Option<&RunInfo>) {
        if let Some(status) = &mut self.status {
            status.current_run = run.cloned();
        }
    }

    fn current_run(&self) -> Option<&RunInfo> {
        self.status.as_ref()?.current_run.as_ref()
    }

    fn is_new(&self, id: u64) -> bool {
        self.seen_run.is_none_or(|seen| id > seen) && self.is_connected() && self.status.is_some()
    }

    fn remember(&mut self, record: RunRecord) {
        self.seen_run = Some(self.seen_run.map_or(record.id, |seen| seen.max(record.id)));
        if record.outcome == RunOutcome::Skipped {
            return;
        }
        if record.kind == RunKind::Sync
            && self
                .last_sync
                .as_ref()
                .is_none_or(|last| record.id >= last.id)
        {
            self.last_sync = Some(record.clone());
        }
        if self
            .last_run
            .as_ref()
            .is_none_or(|last| record.id >= last.id)
        {
            self.last_run = Some(record);
        }
    }

    /// The icon's state.
    pub fn state(&self) -> TrayState {
        let Some(status) = self.status.as_ref().filter(|_| self.is_connected()) else {
            return TrayState::Unreachable;
        };
        if status.current_run.is_some() {
            TrayState::Syncing
        } else if self.last_run_failed() || needs_setup(status) {
            // A broken config or a missing login fails every run; say so before the first one.
            TrayState::Failed
        } else if !status.polling {
            TrayState::PollingStopped
        } else {
            TrayState::Ok
        }
    }

    fn last_run_failed(&self) -> bool {
        self.last_run.as_ref().is_some_and(|r| {
            matches!(
                r.outcome,
                RunOutcome::Failed | RunOutcome::Refused | RunOutcome::Interrupted
            )
        })
    }

    /// Whether "Clear Sync Cache" waits for its confirming click at `now`.
    pub fn confirming_clear(&self, now: Instant) -> bool {
        self.confirm_clear_until.is_some_and(|until| now < until)
    }

    /// When the pending confirmation runs out, so the controller can wake up and restore the label.
    pub fn confirm_deadline(&self) -> Option<Instant> {
        self.confirm_clear_until
    }

    /// Drops a confirmation that ran out; true if the view changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self.confirm_clear_until.is_some_and(|until| now >= until) {
            self.confirm_clear_until = None;
            return true;
        }
        false
    }

    fn enabled(&self, id: MenuId) -> bool {
        let connected = self.is_connected() && self.status.is_some();
        let idle = self.current_run().is_none();
        match id {
            MenuId::TestNow | MenuId::SyncNow => connected && idle,
            MenuId::TogglePolling | MenuId::ClearCache => connected,
            MenuId::ShowLastReport => connected && self.last_run.is_some(),
            MenuId::OpenConfig | MenuId::Quit => true,
        }
    }

    /// A click on `id` at `now`: the action to run, if any. Clicks on disabled items are ignored
    /// (a click can race a view update). "Clear Sync Cache" needs a second click within
    /// [`CONFIRM_WINDOW`]; any other click cancels a pending confirmation.
    pub fn click(&mut self, id: MenuId, now: Instant) -> Option<Action> {
        let confirming = self.confirming_clear(now);
        self.confirm_clear_until = None;
        if !self.enabled(id) {
            return None;
        }
        match id {
            MenuId::TestNow => Some(Action::TestNow),
            MenuId::SyncNow => Some(Action::SyncNow),
            MenuId::TogglePolling => Some(if self.polling() == Some(true) {
                Action::StopPolling
            } else {
                Action::StartPolling
            }),
            MenuId::ClearCache if confirming => Some(Action::ClearCache),
            MenuId::ClearCache => {
                self.confirm_clear_until = Some(now + CONFIRM_WINDOW);
                None
            }
            MenuId::OpenConfig => Some(Action::OpenConfig),
            MenuId::ShowLastReport => Some(Action::ShowLastReport),
            MenuId::Quit => Some(Action::Quit),
        }
    }

    /// The view at `now` (for the confirmation) and wall-clock `wall` (for "today 14:05").
    pub fn view<Tz: TimeZone>(&self, now: Instant, wall: &DateTime<Tz>) -> View
    where
        Tz::Offset: std::fmt::Display,
    {
        let state = self.state();
        let status = self.status_lines(state, wall);
        let tooltip = format!("{} · {}", status[0], status[1]);
        let items = MenuId::ALL
            .into_iter()
            .map(|id| Item {
                id,
                label: self.label(id, now),
                enabled: self.enabled(id),
            })
            .collect();
        View {
            state,
            tooltip,
            status,
            items,
        }
    }

    fn label(&self, id: MenuId, now: Instant) -> String {
        match id {
            MenuId::TogglePolling if self.polling() == Some(true) => "Stop Sync".into(),
            MenuId::TogglePolling => "Start Sync".into(),
            MenuId::ClearCache if self.confirming_clear(now) => {
                "Click again to clear the sync cache".into()
            }
            MenuId::ClearCache => "Clear Sync Cache".into(),
            MenuId::TestNow => "Test Now".into(),
            MenuId::SyncNow => "Sync Now".into(),
            MenuId::OpenConfig => "Open Config".into(),
            MenuId::ShowLastReport => "Show Last Report".into(),
            MenuId::Quit => "Quit".into(),
        }
    }

    fn status_lines<Tz: TimeZone>(&self, state: TrayState, wall: &DateTime<Tz>) -> [String; 4]
    where
        Tz::Offset: std::fmt::Display,
    {
        let status = match (&self.connection, &self.status) {
            (Connection::Connected, Some(status)) => status,
            (Connection::Unreachable(reason), _) => {
                return [
                    "orgsync: daemon not running".into(),
                    shorten(reason),
                    "Start orgsyncd (systemctl --user start orgsyncd)".into(),
                    "Checking again every few seconds".into(),
                ];
            }
            _ => {
                return [
                    "orgsync: looking for the daemon…".into(),
                    "Last sync: unknown".into(),
                    "Next sync: unknown".into(),
                    String::new(),
                ];
            }
        };
        let headline = match state {
            TrayState::Syncing => match status.current_run.as_ref() {
                Some(run) if run.kind == RunKind::Test => {
                    format!("orgsync: testing… {}", progress(run))
                }
                Some(run) => format!("orgsync: syncing… {}", progress(run)),
                None => "orgsync: syncing…".into(),
            },
            TrayState::Failed => match self.last_run.as_ref() {
                Some(r) if r.outcome == RunOutcome::Refused => "orgsync: last sync refused".into(),
                Some(r) if r.outcome == RunOutcome::Failed && r.kind == RunKind::Test => {
                    "orgsync: last test failed".into()
                }
                Some(r) if r.outcome == RunOutcome::Failed => "orgsync: last sync failed".into(),
                Some(r) if r.outcome == RunOutcome::Interrupted => {
                    "orgsync: last run interrupted".into()
                }
                _ if status.installation.config_problem.is_some() => {
                    "orgsync: configuration problem".into()
                }
                _ => "orgsync: not logged in".into(),
            },
            TrayState::PollingStopped => "orgsync: polling stopped".into(),
            TrayState::Ok if self.last_sync.is_none() => "orgsync: not synced yet".into(),
            TrayState::Ok => "orgsync: up to date".into(),
            TrayState::Unreachable => "orgsync: daemon not running".into(),
        };
        let last = match self.last_sync.as_ref() {
            None => "Last sync: never".to_string(),
            Some(record) => format!(
                "Last sync: {}, {}",
                crate::time::short(&record.started_at, wall),
                outcome_text(record)
            ),
        };
        let next = if !status.polling {
            "Next sync: none, polling is stopped".to_string()
        } else {
            let when = match status.next_run_at.as_deref() {
                Some(at) => crate::time::short(at, wall),
                None if status.current_run.is_some() => "after this run".into(),
                None => "soon".into(),
            };
            if status.consecutive_failures > 0 {
                format!(
                    "Next sync: {when} (backing off after {} failure(s))",
                    status.consecutive_failures
                )
            } else {
                format!("Next sync: {when} ({})", status.schedule)
            }
        };
        let installation = &status.installation;
        let counts = if let Some(problem) = &installation.config_problem {
            let problem = problem.trim_start_matches("invalid configuration:");
            shorten(&format!("Config: {}", shorten(problem)))
        } else if !installation.logged_in {
            "Not logged in: run `orgsync login`".to_string()
        } else {
            format!(
                "Synced: {} member(s), {} group(s)",
                installation.synced_members, installation.synced_groups
            )
        };
        [headline, last, next, counts]
    }
}

fn progress(run: &RunInfo) -> String {
    if run.users_read == 0 && run.groups_read == 0 {
        "(reading the directory)".into()
    } else {
        format!(
            "({} users, {} groups read)",
            run.users_read, run.groups_read
        )
    }
}

/// "4 invited, 1 removed, 2 groups changed", "no changes", "failed: …".
pub fn outcome_text(record: &RunRecord) -> String {
    let s = &record.summary;
    match record.outcome {
        RunOutcome::Synced | RunOutcome::Tested => {
            let mut parts = Vec::new();
            if s.invited > 0 {
                parts.push(format!("{} invited", s.invited));
            }
            if s.removed > 0 {
                parts.push(format!("{} removed", s.removed));
            }
            let groups = s.groups_created + s.groups_updated;
            if groups > 0 {
                parts.push(format!("{groups} group(s) changed"));
            }
            if parts.is_empty() {
                "no changes".into()
            } else {
                parts.join(", ")
            }
        }
        RunOutcome::Unchanged => "no changes".into(),
        RunOutcome::Refused => "refused by the removal guard".into(),
        RunOutcome::Skipped => "skipped (another run was in progress)".into(),
        RunOutcome::Interrupted => "interrupted (orgsyncd stopped during it)".into(),
        RunOutcome::Running => "running".into(),
        RunOutcome::Failed => shorten(&format!(
            "failed: {}",
            record.error.as_deref().unwrap_or("no reason given")
        )),
    }
}

/// `text` on one line (list bullets dropped), cut to fit a menu.
pub fn shorten(text: &str) -> String {
    let line = text
        .lines()
        .map(|l| l.trim().trim_start_matches("- "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() <= MENU_TEXT_MAX {
        return line;
    }
    let cut: String = line.chars().take(MENU_TEXT_MAX - 1).collect();
    format!("{}…", cut.trim_end())
}

/// The installation cannot sync as it is: the config is invalid or nobody logged in.
fn needs_setup(status: &DaemonStatus) -> bool {
    status.installation.config_problem.is_some() || !status.installation.logged_in
}

#[cfg(test)]
mod tests;
