//! The daemon's control API: paths, request and response bodies, events and errors.
//!
//! Every path is under `/v1`; every request carries `Authorization: Bearer <token>` (the token is
//! in the daemon's data directory, see [`TOKEN_FILE`]). Errors are [`ErrorBody`] with a stable
//! [`ErrorCode`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::{InstallationStatus, SyncReport, TestReport};

/// Bumped when a path or a body changes incompatibly (the paths carry it as `/v1`).
pub const API_VERSION: u32 = 1;

/// File in the data directory holding the API bearer token (mode 0600).
pub const TOKEN_FILE: &str = "api-token";
/// File in the data directory where a running daemon announces itself ([`DaemonInfo`]).
pub const DAEMON_FILE: &str = "daemon.json";

/// Request paths.
pub mod paths {
    pub const STATUS: &str = "/v1/status";
    pub const TEST: &str = "/v1/test";
    pub const SYNC: &str = "/v1/sync";
    pub const POLLING_START: &str = "/v1/polling/start";
    pub const POLLING_STOP: &str = "/v1/polling/stop";
    pub const CLEAR_CACHE: &str = "/v1/clear-cache";
    pub const HISTORY: &str = "/v1/history";
    pub const EVENTS: &str = "/v1/events";
    pub const CONFIG: &str = "/v1/config";
    pub const LOGIN: &str = "/v1/login";
    pub const LOGOUT: &str = "/v1/logout";
    pub const OPENAPI: &str = "/v1/openapi.json";
    pub const HELLO: &str = "/v1/hello";
}

/// What a running daemon writes to [`DAEMON_FILE`] so clients can find it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonInfo {
    pub pid: u32,
    pub port: u16,
    /// e.g. `http://127.0.0.1:47613`.
    pub url: String,
    pub version: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum RunKind {
    Test,
    Sync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum RunTrigger {
    /// Asked for through the API (CLI, tray).
    Manual,
    /// The polling schedule.
    Schedule,
    /// A change the directory pushed (RFC 4533 refreshAndPersist), after a short debounce.
    DirectoryChange,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum RunOutcome {
    /// A dry run completed.
    Tested,
    /// The organization accepted the changes.
    Synced,
    /// Nothing changed; nothing was sent.
    Unchanged,
    /// The removal guard refused the sync.
    Refused,
    /// The run failed (see `error`).
    Failed,
    /// A scheduled run was skipped because another run was in progress.
    Skipped,
    /// orgsyncd stopped (crash, kill, or a stop that outlasted the grace period) during the run.
    /// Nothing was recorded as synced; the next run sends everything again.
    Interrupted,
    /// The run is in progress (the history shows a run from its start).
    Running,
}

/// A run in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    pub id: u64,
    pub kind: RunKind,
    pub trigger: RunTrigger,
    pub started_at: String,
    /// Directory entries read so far.
    pub users_read: usize,
    pub groups_read: usize,
}

/// The short form of a diff, kept in the history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DiffSummary {
    pub invited: usize,
    pub removed: usize,
    pub groups_created: usize,
    pub groups_updated: usize,
    /// Up to 20 emails of invited members.
    pub invited_sample: Vec<String>,
    /// Up to 20 emails of removed members.
    pub removed_sample: Vec<String>,
}

/// A finished (or skipped) run, as kept in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub id: u64,
    pub kind: RunKind,
    pub trigger: RunTrigger,
    pub started_at: String,
    pub duration_ms: u64,
    pub outcome: RunOutcome,
    pub users_read: usize,
    pub groups_read: usize,
    pub requests_sent: usize,
    pub summary: DiffSummary,
    /// Why the run failed, was refused or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DaemonStatus {
    pub version: String,
    pub api_version: u32,
    pub pid: u32,
    /// Whether the daemon polls on its schedule.
    pub polling: bool,
    /// e.g. `every 5 minutes` or `cron 0 */15 * * * *`.
    pub schedule: String,
    /// When the next scheduled run starts (RFC 3339), if polling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_run: Option<RunInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunRecord>,
    /// Scheduled runs that failed in a row (polling backs off after failures).
    pub consecutive_failures: u32,
    /// The directory type the configuration names (`ldap`, …); also in `installation`.
    pub directory_type: String,
    pub installation: InstallationStatus,
    /// Set while the config file holds an edit the daemon did not adopt (it does not parse, or
    /// it fails validation where the configuration in force passed): why, and that the
    /// previous configuration stays in force until the file is fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_rejected: Option<String>,
}

/// `POST /v1/sync`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SyncRequest {
    /// Lift the removal guard for this run.
    pub allow_removals: bool,
    /// Answer when the run is finished, with its report, instead of right away.
    pub wait: bool,
}

/// The answer to `POST /v1/sync` without `wait`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    pub run_id: u64,
}

/// The answer to `POST /v1/sync` with `wait`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SyncDone {
    pub run_id: u64,
    pub report: SyncReport,
}

/// The answer to `POST /v1/test`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestDone {
    pub run_id: u64,
    pub report: TestReport,
}

/// `POST /v1/polling/start|stop` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PollingState {
    pub polling: bool,
}

/// `GET /v1/history?limit=N` answer, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub runs: Vec<RunRecord>,
}

/// Where one secret is set, never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecretState {
    pub key: String,
    /// `None` when not set, else e.g. `desktop keyring (Secret Service)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `GET /v1/config`: the effective configuration, secrets redacted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    pub file: String,
    /// The effective configuration (defaults included) as TOML.
    pub toml: String,
    /// The same as JSON, keyed by table.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub values: serde_json::Value,
    pub secrets: Vec<SecretState>,
    /// Validation problems of the current file, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `PUT /v1/config`: keys to set (dotted, values as typed on the command line) and to unset.
/// Applied together, validated before the file changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ConfigUpdate {
    pub set: BTreeMap<String, String>,
    pub unset: Vec<String>,
}

/// `POST /v1/login`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    pub client_id: String,
    pub client_secret: String,
}

/// `POST /v1/login` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LoginDone {
    pub organization_id: String,
    /// Where the key is kept.
    pub secrets: String,
    /// The organization whose key this login replaced, when it was another (its sync state
    /// was started afresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_organization: Option<String>,
}

/// Every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// The run in progress, for [`ErrorCode::RunInProgress`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<u64>,
}

/// Stable machine-readable error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Missing or wrong bearer token (401).
    Unauthorized,
    /// The Host or Origin header is not local (403).
    Forbidden,
    /// Another run is in progress (409).
    RunInProgress,
    /// The configuration or a requested change is invalid (422).
    InvalidConfig,
    /// Not logged in to the organization (409).
    NotLoggedIn,
    /// The run failed: directory, organization server or state (502).
    RunFailed,
    /// The sync was refused by the removal guard or duplicate emails (409).
    Refused,
    /// The request is malformed (400): bad JSON, an unknown field, a bad query.
    BadRequest,
    /// No such path (404).
    NotFound,
    /// The path does not take this method (405).
    MethodNotAllowed,
    /// The body is larger than the API accepts (413).
    PayloadTooLarge,
    /// The body is not JSON (415).
    UnsupportedMediaType,
    /// The daemon is shutting down (503).
    ShuttingDown,
    /// A bug or an unexpected local failure (500).
    Internal,
}

/// Server-Sent Events on `GET /v1/events`. The SSE event name is the `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    RunStarted { run: RunInfo },
    RunProgress { run: RunInfo },
    RunFinished { record: RunRecord },
    RunFailed { record: RunRecord },
    RunSkipped { record: RunRecord },
    PollingChanged { polling: bool },
    ConfigChanged,
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "runStarted",
            Event::RunProgress { .. } => "runProgress",
            Event::RunFinished { .. } => "runFinished",
            Event::RunFailed { .. } => "runFailed",
            Event::RunSkipped { .. } => "runSkipped",
            Event::PollingChanged { .. } => "pollingChanged",
            Event::ConfigChanged => "configChanged",
        }
    }
}

/// `GET /v1/hello?nonce=…`, the one call that needs no token: the daemon proves it holds the
/// installation's API token, so a client sends the token (and secrets) only to the real daemon,
/// never to whatever else took its port after a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    /// [`daemon_proof`] of the nonce, for the port the daemon listens on.
    pub proof: String,
    pub pid: u32,
}

/// Base64 HMAC-SHA256, keyed with the API token, of the port and the client's nonce. Bound to
/// the port, so a process on the advertised port cannot relay the question to a real daemon
/// elsewhere.
pub fn daemon_proof(token: &str, port: u16, nonce: &str) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    // HMAC takes keys of any length; were it ever to refuse one, no proof would match.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.trim().as_bytes()) else {
        return String::new();
    };
    mac.update(format!("orgsync-daemon-proof:{port}:{nonce}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
