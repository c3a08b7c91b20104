//! One run, wired together: read the directory, plan, and for a sync, send the import requests
//! and record the new state. The CLI (and later the daemon) call these functions; they never
//! talk to a directory or the organization server themselves.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use orgsync_proto::{Refusal, SCHEMA_VERSION, SkippedEntry, SyncOutcome, SyncReport, TestReport};

use crate::config::{ConfigError, ResolvedConfig, ResolvedServer};
use crate::directory::ldap::LdapDirectory;
use crate::directory::{Directory, DirectoryError, Progress, ReadOptions};
use crate::org::{AccessToken, ApiKey, OrgClient, OrgError};
use crate::plan::{self, Plan, PlanOptions};
use crate::secrets::{Secret, SecretError, SecretKey, Secrets};
use crate::state::{RecordedRefusal, State, StateError, SyncTimes};

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
        "emails must be unique, but these directory entries share one; fix them in the directory (or narrow sync.user_filter) and sync again:",
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
    fn plan_options(&self) -> PlanOptions {
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
        }
    }

    fn directory(&self) -> Result<LdapDirectory, RunError> {
        let password = self
            .secrets
            .get(SecretKey::LdapBindPassword)?
            .ok_or_else(|| DirectoryError::MissingPassword(self.config.ldap.bind_dn.clone()))?;
        Ok(LdapDirectory::new(
            self.config.ldap.clone(),
            password,
            self.config.sync.users,
            self.config.sync.groups,
        ))
    }

    /// Reads the directory and plans against the last synced state.
    async fn read_and_plan(&self, progress: &dyn Progress) -> Result<Plan, RunError> {
        let directory = self.directory()?;
        let options = ReadOptions {
            include_deleted: true,
        };
        let snapshot = directory.read(options, progress).await?;
        let synced = self.state.synced()?;
        Ok(plan::plan(&snapshot, &synced, &self.plan_options()))
    }

    /// The dry run: what the directory holds and what a sync would change. Changes nothing.
    pub async fn test(&self, progress: &dyn Progress) -> Result<TestReport, RunError> {
        let plan = self.read_and_plan(progress).await?;
        Ok(TestReport {
            schema_version: SCHEMA_VERSION,
            users: plan.users,
            groups: plan.groups,
            skipped: plan.skipped,
            diff: plan.diff,
            refusal: plan.refusal,
            warnings: plan.warnings,
        })
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
            && let Some(stored) = self.secrets.get(SecretKey::AccessToken)?
            && let Some(token) = AccessToken::from_stored(&stored)
            && token.is_fresh(now)
        {
            return Ok(token);
        }
        let token = client.login(key, now).await?;
        self.secrets
            .set(SecretKey::AccessToken, &token.to_stored())?;
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
        let plan = self.read_and_plan(progress).await?;
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

        let times = SyncTimes {
            users: self.config.sync.users.then(|| rfc3339(started)),
            groups: self.config.sync.groups.then(|| rfc3339(started)),
        };
        let client = OrgClient::new(&self.config.server, &self.state.device_id()?)?;
        let hash = plan.request_hash(&client.urls().api, key.organization_id());
        let requests = plan.requests();
        let unchanged = self.state.last_hash()?.as_deref() == Some(hash.as_str())
            && !plan.has_missing_removals();
        if unchanged || requests.is_empty() {
            self.state.record_unchanged(&times)?;
            report.outcome = SyncOutcome::Unchanged;
            return Ok(report);
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
            .record_sync(key.organization_id(), &next_state, &hash, &times)?;
        Ok(report)
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

/// The stored API key (or the one in ORGSYNC_CLIENT_ID / ORGSYNC_CLIENT_SECRET), if any.
pub fn api_key(secrets: &Secrets) -> Result<Option<ApiKey>, RunError> {
    let client_id = secrets.get(SecretKey::OrgClientId)?;
    let client_secret = secrets.get(SecretKey::OrgClientSecret)?;
    Ok(match (client_id, client_secret) {
        (Some(id), Some(secret)) => Some(ApiKey {
            client_id: id.expose().to_string(),
            client_secret: secret,
        }),
        _ => None,
    })
}

/// Logs in with an API key, checks it against the server, and stores it. Needs only the server
/// part of the configuration, so it works before the directory is set up.
pub async fn login(
    server: &ResolvedServer,
    state: &State,
    secrets: &Secrets,
    key: &ApiKey,
) -> Result<(), RunError> {
    crate::org::validate_client_id(&key.client_id).map_err(RunError::Usage)?;
    let client = OrgClient::new(server, &state.device_id()?)?;
    let token = client.login(key, now().timestamp()).await?;
    let organization = key.organization_id().to_string();
    if let Some(previous) = state.organization_id()?
        && previous != organization
    {
        tracing::warn!(
            "the API key belongs to organization {organization}, not {previous}; starting its sync state afresh"
        );
        state.reset_for_organization(&organization)?;
    }
    secrets.set(SecretKey::OrgClientId, &Secret::new(&key.client_id))?;
    secrets.set(SecretKey::OrgClientSecret, &key.client_secret)?;
    secrets.set(SecretKey::AccessToken, &token.to_stored())?;
    Ok(())
}

/// Forgets the API key and token; returns whether there was one. Sync state stays.
pub fn logout(secrets: &Secrets) -> Result<bool, RunError> {
    let was_logged_in = api_key(secrets)?.is_some();
    for key in [
        SecretKey::AccessToken,
        SecretKey::OrgClientSecret,
        SecretKey::OrgClientId,
    ] {
        secrets.delete(key)?;
    }
    Ok(was_logged_in)
}
