//! One run, wired together: read the directory, plan, and for a sync, send the import requests
//! and record the new state. The CLI (and later the daemon) call these functions; they never
//! talk to a directory or the organization server themselves.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use orgsync_proto::{
    DirectoryRead, ReadMode, Refusal, SCHEMA_VERSION, SkippedEntry, SyncOutcome, SyncReport,
    TestReport,
};
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, ResolvedConfig, ResolvedServer};
use crate::directory::{
    Directory, DirectoryError, Entries, Progress, ReadOptions, Snapshot, Source, Touched,
};
use crate::org::{AccessToken, ApiKey, OrgClient, OrgError};
use crate::plan::{self, Plan, PlanOptions};
use crate::secrets::{Secret, SecretError, SecretKey, Secrets};
use crate::state::{CopyInfo, CopyUpdate, RecordedRefusal, State, StateError, SyncTimes};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Org(#[from] OrgError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(
        "not logged in to the organization; run `orgsync login` (or set ORGSYNC_CLIENT_ID and ORGSYNC_CLIENT_SECRET)"
    )]
    NotLoggedIn,
    #[error("{}", duplicate_message(.0))]
    DuplicateEmails(Vec<SkippedEntry>),
    #[error("{0}")]
    Usage(String),
}

fn duplicate_message(entries: &[SkippedEntry]) -> String {
    let mut text = String::from(
        "emails must be unique, but these directory entries share one; fix them in the directory (or narrow the user filter) and sync again:",
    );
    for entry in entries {
        text.push_str(&format!(
            "\n  {}  {}",
            entry.email.as_deref().unwrap_or_default(),
            entry.reference
        ));
    }
    text
}

/// Everything a run uses.
pub struct Context {
    pub config: ResolvedConfig,
    pub state: Arc<State>,
    pub secrets: Secrets,
}

/// Options of `orgsync sync`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncOptions {
    /// Lift the removal guard for this run.
    pub allow_removals: bool,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// RFC 3339 with milliseconds, e.g. `2026-11-25T22:28:46.596Z`.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Context {
    fn plan_options(&self, remove_held: bool) -> PlanOptions {
        let sync = &self.config.sync;
        PlanOptions {
            sync_users: sync.users,
            sync_groups: sync.groups,
            remove_disabled: sync.remove_disabled,
            remove_missing_users: sync.remove_missing_users,
            overwrite_existing: sync.overwrite_existing,
            large_import: sync.large_import,
            invite_users_after_provisioning: sync.invite_users_after_provisioning,
            max_removals: self.config.safety.max_removals,
            max_removal_percent: self.config.safety.max_removal_percent,
            user_scope: self.config.directory.user_scope(),
            remove_held,
        }
    }

    fn directory(&self) -> Result<Source, RunError> {
        Ok(Source::open(&self.config, &self.secrets)?)
    }

    /// A hash of everything that shapes a read and a plan. A stored directory copy made under
    /// other settings (or by another orgsync version) is not continued.
    fn fingerprint(&self) -> String {
        // When runs happen does not change what they read.
        let sync = crate::config::SyncConfig {
            interval_minutes: 0,
            schedule: None,
            full_read_hours: 0,
            ..self.config.sync.clone()
        };
        let text = format!(
            "{}\n{}\n{:?}\n{:?}",
            env!("CARGO_PKG_VERSION"),
            crate::directory::ENTRY_FORMAT,
            self.config.directory,
            sync
        );
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            Sha256::digest(text.as_bytes()),
        )
    }

    fn snapshot(&self, entries: &Entries) -> Snapshot {
        let snapshot = entries.snapshot(self.config.sync.users, self.config.sync.groups);
        self.scoped(snapshot)
    }

    /// The snapshot with only the users the source's group filter scopes, where it does.
    fn scoped(&self, mut snapshot: Snapshot) -> Snapshot {
        let sync = &self.config.sync;
        if sync.groups && self.config.directory.scopes_users_by_groups() {
            snapshot.keep_group_members_only(sync.remove_disabled);
        }
        snapshot
    }

    /// The plan of this read; `remove_held` removes the members held since the switch from
    /// Directory Connector that the directory does not return.
    fn plan(
        &self,
        mut snapshot: Snapshot,
        warnings: Vec<String>,
        remove_held: bool,
    ) -> Result<Plan, RunError> {
        let config = self.config.warnings.iter().cloned();
        snapshot.warnings.splice(0..0, config.chain(warnings));
        let synced = self.state.synced()?;
        Ok(plan::plan(
            &snapshot,
            &synced,
            &self.plan_options(remove_held),
        ))
    }

    /// The dry run: what the directory holds and what a sync would change. Changes nothing.
    pub async fn test(&self, progress: &dyn Progress) -> Result<TestReport, RunError> {
        let options = ReadOptions {
            include_deleted: true,
            track_changes: false,
            fresh_sign_in: true,
        };
        let started = std::time::Instant::now();
        let read = self.directory()?.read(options, progress).await?;
        let read_time = started.elapsed();
        let snapshot = read
            .entries
            .into_snapshot(self.config.sync.users, self.config.sync.groups);
        let snapshot = self.scoped(snapshot);
        let plan = self.plan(snapshot, read.warnings, false)?;
        tracing::debug!(
            "test: read the directory in {read_time:?}, planned in {:?}",
            started.elapsed() - read_time
        );
        // What `sync` would stop on, said the same way.
        let failure = (!plan.conflicts.is_empty())
            .then(|| RunError::DuplicateEmails(plan.conflicts.clone()).to_string());
        Ok(TestReport {
            schema_version: SCHEMA_VERSION,
            source: Some(orgsync_proto::DirectorySource {
                kind: self.config.directory.table().to_string(),
                location: self.config.directory.location(),
            }),
            users: plan.users,
            groups: plan.groups,
            skipped: plan.skipped,
            diff: plan.diff,
            refusal: plan.refusal,
            warnings: plan.warnings,
            failure,
        })
    }

    /// Follows the directory, calling `on_change` for each change it pushes, until the
    /// connection ends. `Ok(false)` when the directory cannot push changes (then polling alone
    /// keeps the organization in step).
    pub async fn follow_directory(
        &self,
        on_change: &(dyn Fn() + Send + Sync),
    ) -> Result<bool, RunError> {
        Ok(self.directory()?.follow(on_change).await?)
    }

    /// Re-keys the organization to the directory's current external ids, after the id
    /// attribute changed: reads the directory in full, pairs synced members and groups with the
    /// entries that now carry another id ([`plan::rekeys`]), and with `apply` gives each its new
    /// externalId on the server (Bitwarden's public API, keeping everything else) and records
    /// them under it. Nobody is invited or removed. What was re-keyed before a failure is
    /// recorded, so running it again continues.
    pub async fn rekey(&self, apply: bool, progress: &dyn Progress) -> Result<Rekeyed, RunError> {
        let options = ReadOptions {
            include_deleted: false,
            track_changes: false,
            fresh_sign_in: true,
        };
        let read = self.directory()?.read(options, progress).await?;
        let snapshot = self.snapshot(&read.entries);
        let state = self.state.synced()?;
        let (members, groups) = plan::rekeys(&snapshot, &state);
        let mut done = Rekeyed {
            members,
            groups,
            applied: false,
        };
        if !apply || (done.members.is_empty() && done.groups.is_empty()) {
            return Ok(done);
        }
        let key = api_key(&self.secrets)?.ok_or(RunError::NotLoggedIn)?;
        let client = OrgClient::new(&self.config.server, &self.state.device_id()?)?;
        let token = self.token(&client, &key, false).await?;
        let managed = client.managed(&token).await?.ok_or_else(|| {
            RunError::Usage(
                "the organization server has no public members API (Vaultwarden): external ids cannot be changed there; keep the current ldap.external_id_attribute".into(),
            )
        })?;
        let (mut members, mut groups) = (Vec::new(), Vec::new());
        let mut failure = None;
        for rekey in &done.members {
            let Some(entry) = managed.members.get(&rekey.from) else {
                continue;
            };
            match client.rekey_member(&token, &entry.id, &rekey.to).await {
                Ok(()) => members.push(rekey.clone()),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none() {
            for rekey in &done.groups {
                let Some(entry) = managed.groups.get(&rekey.from) else {
                    continue;
                };
                match client.rekey_group(&token, &entry.id, &rekey.to).await {
                    Ok(()) => groups.push(rekey.clone()),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        self.state
            .record_rekey(&plan::rekeyed(&state, &members, &groups))?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        done.members = members;
        done.groups = groups;
        done.applied = true;
        Ok(done)
    }

    /// A fresh access token: the stored one, or a new login with the API key.
    async fn token(
        &self,
        client: &OrgClient,
        key: &ApiKey,
        force_new: bool,
    ) -> Result<AccessToken, RunError> {
        let now = now().timestamp();
        if !force_new
            && let Some(stored) = self.secrets.get(SecretKey::ACCESS_TOKEN)?
            && let Some(token) = AccessToken::from_stored(&stored)
            && token.is_fresh(now)
        {
            return Ok(token);
        }
        let token = client.login(key, now).await?;
        self.secrets
            .set(SecretKey::ACCESS_TOKEN, &token.to_stored())?;
        Ok(token)
    }

    /// A sync: read, plan, guard, send, record.
    pub async fn sync(
        &self,
        options: SyncOptions,
        progress: &dyn Progress,
    ) -> Result<SyncReport, RunError> {
        let started = now();
        let key = api_key(&self.secrets)?.ok_or(RunError::NotLoggedIn)?;
        let fingerprint = self.fingerprint();
        let mut times = SyncTimes {
            users: self.config.sync.users.then(|| rfc3339(started)),
            groups: self.config.sync.groups.then(|| rfc3339(started)),
            reconciled: None,
        };
        // Removing the members held since the switch from Directory Connector needs everyone read.
        let reconcile =
            self.reconcile_due(started)? || (options.allow_removals && self.state.has_held()?);
        let read = self.read(&fingerprint, reconcile, progress).await?;

        // Nothing changed since the last recorded sync: the organization already matches.
        if let Read::Unchanged { info } = &read {
            self.state
                .record_unchanged(&times, read.copy_update(info.users_read, info.groups_read))?;
            return Ok(SyncReport {
                schema_version: SCHEMA_VERSION,
                outcome: SyncOutcome::Unchanged,
                requests_sent: 0,
                users_read: info.users_read,
                groups_read: info.groups_read,
                diff: Default::default(),
                skipped: Vec::new(),
                refusal: None,
                warnings: self.config.warnings.clone(),
                started_at: rfc3339(started),
                read: read.report(),
                sent_because: None,
            });
        }
        let plan = self.plan(
            self.snapshot(read.entries()),
            read.warnings(),
            options.allow_removals,
        )?;
        if !plan.conflicts.is_empty() {
            return Err(RunError::DuplicateEmails(plan.conflicts));
        }
        let mut report = SyncReport {
            schema_version: SCHEMA_VERSION,
            outcome: SyncOutcome::Synced,
            requests_sent: 0,
            users_read: plan.users_read(),
            groups_read: plan.groups.len(),
            diff: plan.diff.clone(),
            skipped: plan.skipped.clone(),
            refusal: None,
            warnings: plan.warnings.clone(),
            started_at: rfc3339(started),
            read: read.report(),
            sent_because: None,
        };

        if let Some(refusal) = refused(&plan.refusal, options) {
            self.state.record_refusal(&RecordedRefusal {
                at: rfc3339(started),
                message: refusal.message.clone(),
            })?;
            report.outcome = SyncOutcome::Refused;
            report.refusal = Some(refusal);
            return Ok(report);
        }

        let copy = read.copy_update(report.users_read, report.groups_read);
        let client = OrgClient::new(&self.config.server, &self.state.device_id()?)?;
        let hash = plan.request_hash(&client.urls().api, key.organization_id());
        let full = !matches!(read, Read::Changes { .. });
        let requests = match full {
            true => plan.requests(),
            false => plan.change_requests(),
        };
        let last_hash = self.state.last_hash()?;
        let reason = if requests.is_empty() {
            None
        } else if last_hash.is_none() {
            Some(SendReason::NothingRecorded)
        } else if reconcile && full {
            Some(SendReason::Reconcile)
        } else if last_hash != Some(hash.clone()) || plan.has_state_changes() {
            Some(SendReason::RequestChanged)
        } else {
            None
        };
        let Some(reason) = reason else {
            self.state.record_unchanged(&times, copy)?;
            report.outcome = SyncOutcome::Unchanged;
            return Ok(report);
        };
        if report.diff.is_empty() {
            report.sent_because = Some(reason.describe().to_string());
        }
        if full {
            times.reconciled = Some(rfc3339(started));
        }

        let mut token = self.token(&client, &key, false).await?;
        let mut renewed = false;
        for (index, request) in requests.iter().enumerate() {
            loop {
                match client.import(&token, request).await {
                    Ok(()) => break,
                    // A token revoked or expired early: log in once more, then give up.
                    Err(OrgError::Unauthorized { .. }) if !renewed => {
                        renewed = true;
                        token = self.token(&client, &key, true).await?;
                    }
                    Err(e) => {
                        if index > 0 {
                            tracing::warn!(
                                "{index} of {} import batches were accepted before the failure; the next sync sends everything again",
                                requests.len()
                            );
                        }
                        return Err(e.into());
                    }
                }
            }
            report.requests_sent += 1;
        }
        let next_state = plan.next_state(&self.state.synced()?);
        self.state
            .record_sync(key.organization_id(), &next_state, &hash, &times, copy)?;
        Ok(report)
    }

    /// Whether this sync must reconcile: read in full and send the organization everything it
    /// must hold, even when the directory did not change, so that what was changed by hand in
    /// the organization (a member removed, a group edited) is repaired. Due every
    /// `sync.full_read_hours` (0: every sync), and when no sync has reconciled yet.
    fn reconcile_due(&self, started: DateTime<Utc>) -> Result<bool, RunError> {
        let hours = self.config.sync.full_read_hours;
        let last = self.state.sync_times()?.reconciled;
        Ok(hours == 0
            || last
                .as_deref()
                .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                .is_none_or(|at| {
                    started.signed_duration_since(at) >= chrono::Duration::hours(hours.into())
                }))
    }

    /// Reads the directory for a sync: only the changes when the stored copy can be continued,
    /// everything otherwise (with change tracking, so the next read can be incremental).
    async fn read(
        &self,
        fingerprint: &str,
        reconcile: bool,
        progress: &dyn Progress,
    ) -> Result<Read, RunError> {
        let directory = self.directory()?;
        let info = self.state.copy_info()?;
        let reason = match &info {
            _ if !directory.tracks_changes() => None,
            None => Some("no directory copy yet (first sync, or the cache was cleared)".into()),
            Some(info) if info.fingerprint != fingerprint => Some(format!(
                "the [{}] or [sync] settings changed since the last read",
                self.config.directory.table()
            )),
            Some(_) if reconcile => {
                Some("the periodic full read is due (sync.full_read_hours)".into())
            }
            Some(info) => match directory.read_changes(&info.watermark, progress).await? {
                Some(changes) if changes.is_empty() && self.state.last_hash()?.is_some() => {
                    let mut info = info.clone();
                    info.watermark = changes.watermark;
                    return Ok(Read::Unchanged { info });
                }
                Some(changes) => {
                    let mut entries = self.state.copy_entries()?;
                    let warnings = changes.warnings.clone();
                    let mut info = info.clone();
                    info.watermark = changes.watermark.clone();
                    let touched = changes.apply_to(&mut entries);
                    if touched.count() == 0 && self.state.last_hash()?.is_some() {
                        return Ok(Read::Unchanged { info });
                    }
                    return Ok(Read::Changes {
                        entries,
                        touched,
                        warnings,
                        info,
                    });
                }
                None => Some("the directory can no longer send changes since the last read".into()),
            },
        };
        let options = ReadOptions {
            include_deleted: true,
            track_changes: directory.tracks_changes(),
            fresh_sign_in: false,
        };
        let read = directory.read(options, progress).await?;
        let info = read.watermark.map(|watermark| CopyInfo {
            watermark,
            fingerprint: fingerprint.to_string(),
            users_read: 0,
            groups_read: 0,
        });
        Ok(Read::Full {
            reason: info.as_ref().and(reason),
            entries: read.entries,
            warnings: read.warnings,
            info,
        })
    }
}

/// Why a sync sends requests (said in the report when no member or group changed).
#[derive(Clone, Copy, Debug)]
enum SendReason {
    /// The periodic reconciliation.
    Reconcile,
    /// No sent request is on record: the first sync, or the cache was cleared.
    NothingRecorded,
    /// The requests differ from the last ones sent.
    RequestChanged,
}

impl SendReason {
    fn describe(self) -> &'static str {
        match self {
            SendReason::Reconcile => {
                "the periodic reconciliation is due (sync.full_read_hours): the organization was sent everything it must hold, which restores what was changed there by hand"
            }
            SendReason::NothingRecorded => {
                "no sent request was on record (the first sync, or the cache was cleared)"
            }
            SendReason::RequestChanged => {
                "the request differs from the last one sent, though no member or group changed (e.g. deleted directory entries are no longer listed)"
            }
        }
    }
}

/// What [`Context::read`] found.
enum Read {
    /// Nothing changed since the last recorded sync.
    Unchanged { info: CopyInfo },
    /// Changes, applied to the stored copy.
    Changes {
        entries: Entries,
        touched: Touched,
        warnings: Vec<String>,
        info: CopyInfo,
    },
    /// Everything; `info` is set when the directory can continue from this read.
    Full {
        entries: Entries,
        warnings: Vec<String>,
        info: Option<CopyInfo>,
        reason: Option<String>,
    },
}

impl Read {
    fn entries(&self) -> &Entries {
        match self {
            Read::Changes { entries, .. } | Read::Full { entries, .. } => entries,
            Read::Unchanged { .. } => unreachable!("an unchanged read is answered before planning"),
        }
    }

    fn warnings(&self) -> Vec<String> {
        match self {
            Read::Changes { warnings, .. } | Read::Full { warnings, .. } => warnings.clone(),
            Read::Unchanged { .. } => Vec::new(),
        }
    }

    fn report(&self) -> DirectoryRead {
        match self {
            Read::Unchanged { .. } => DirectoryRead {
                mode: ReadMode::Incremental,
                entries_changed: Some(0),
                reason: None,
            },
            Read::Changes { touched, .. } => DirectoryRead {
                mode: ReadMode::Incremental,
                entries_changed: Some(touched.count()),
                reason: None,
            },
            Read::Full { reason, .. } => DirectoryRead {
                mode: ReadMode::Full,
                entries_changed: None,
                reason: reason.clone(),
            },
        }
    }

    /// How recording this run updates the stored copy; the counts are kept for unchanged reads.
    fn copy_update(&self, users_read: usize, groups_read: usize) -> CopyUpdate<'_> {
        let counted = |info: &CopyInfo| CopyInfo {
            users_read,
            groups_read,
            ..info.clone()
        };
        match self {
            Read::Unchanged { info } => CopyUpdate::Watermark(info.clone()),
            Read::Changes {
                entries,
                touched,
                info,
                ..
            } => CopyUpdate::Apply {
                entries,
                touched,
                info: counted(info),
            },
            Read::Full { entries, info, .. } => CopyUpdate::Replace {
                entries,
                info: info.as_ref().map(counted),
            },
        }
    }
}

/// The refusal that applies to this run, if any.
fn refused(refusal: &Option<Refusal>, options: SyncOptions) -> Option<Refusal> {
    let refusal = refusal.as_ref()?;
    if refusal.overridable && options.allow_removals {
        tracing::warn!(
            "removal guard lifted by --allow-removals: {}",
            refusal.message
        );
        return None;
    }
    Some(refusal.clone())
}

/// What [`Context::rekey`] found (and with `applied`, changed on the server).
#[derive(Debug, Clone)]
pub struct Rekeyed {
    pub members: Vec<plan::Rekey>,
    pub groups: Vec<plan::Rekey>,
    pub applied: bool,
}

/// What [`take_over`] found in the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakenOver {
    pub members: usize,
    pub groups: usize,
}

/// Takes over an organization another tool kept in step (`orgsync import-bwdc`): logs in with
/// `key`, then records the directory-managed members and groups the organization holds as
/// synced, every member held until a read returns it ([`crate::plan::SyncedState::held`]), so
/// the first sync invites nobody again and removes nobody who left before the switch without
/// the admin's word. `Ok(None)` when the server cannot list its members (Vaultwarden).
pub async fn take_over(
    server: &ResolvedServer,
    state: &State,
    secrets: &Secrets,
    key: &ApiKey,
) -> Result<Option<TakenOver>, RunError> {
    login(server, state, secrets, key).await?;
    let client = OrgClient::new(server, &state.device_id()?)?;
    let token = secrets
        .get(SecretKey::ACCESS_TOKEN)?
        .as_ref()
        .and_then(AccessToken::from_stored)
        .ok_or(RunError::NotLoggedIn)?;
    let Some(mut roster) = client.roster(&token).await? else {
        return Ok(None);
    };
    roster.held = roster.members.keys().cloned().collect();
    state.adopt(key.organization_id(), &roster)?;
    Ok(Some(TakenOver {
        members: roster.members.len(),
        groups: roster.groups.len(),
    }))
}

/// The stored API key (or the one in ORGSYNC_CLIENT_ID / ORGSYNC_CLIENT_SECRET), if any.
pub fn api_key(secrets: &Secrets) -> Result<Option<ApiKey>, RunError> {
    let client_id = secrets.get(SecretKey::ORG_CLIENT_ID)?;
    let client_secret = secrets.get(SecretKey::ORG_CLIENT_SECRET)?;
    Ok(match (client_id, client_secret) {
        (Some(id), Some(secret)) => Some(ApiKey {
            client_id: id.expose().to_string(),
            client_secret: secret,
        }),
        _ => None,
    })
}

/// Logs in with an API key, checks it against the server, and stores it. Needs only the server
/// part of the configuration, so it works before the directory is set up. Returns the
/// organization whose key this one replaced, if it was another's (its sync state is then
/// started afresh).
pub async fn login(
    server: &ResolvedServer,
    state: &State,
    secrets: &Secrets,
    key: &ApiKey,
) -> Result<Option<String>, RunError> {
    crate::org::validate_client_id(&key.client_id).map_err(RunError::Usage)?;
    let client = OrgClient::new(server, &state.device_id()?)?;
    let token = client.login(key, now().timestamp()).await?;
    let organization = key.organization_id().to_string();
    let stored_key = api_key(secrets)?.map(|k| k.organization_id().to_string());
    let synced = state.organization_id()?;
    let replaced = [stored_key, synced.clone()]
        .into_iter()
        .flatten()
        .find(|previous| *previous != organization);
    if let Some(previous) = &synced
        && *previous != organization
    {
        state.reset_for_organization(&organization)?;
    }
    if let Some(previous) = &replaced {
        tracing::warn!(
            "the API key belongs to organization {organization}, not {previous}; this installation now syncs {organization}, from a fresh sync state"
        );
    }
    secrets.set(SecretKey::ORG_CLIENT_ID, &Secret::new(&key.client_id))?;
    secrets.set(SecretKey::ORG_CLIENT_SECRET, &key.client_secret)?;
    secrets.set(SecretKey::ACCESS_TOKEN, &token.to_stored())?;
    Ok(replaced)
}

/// Forgets the API key and token; returns whether there was one. Sync state stays.
pub fn logout(secrets: &Secrets) -> Result<bool, RunError> {
    let was_logged_in = api_key(secrets)?.is_some();
    for key in [
        SecretKey::ACCESS_TOKEN,
        SecretKey::ORG_CLIENT_SECRET,
        SecretKey::ORG_CLIENT_ID,
    ] {
        secrets.delete(key)?;
    }
    Ok(was_logged_in)
}

#[cfg(test)]
mod tests;
