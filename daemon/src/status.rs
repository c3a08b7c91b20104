//! The installation at a glance (`orgsync status`, and part of the daemon's status).

use orgsync_proto::{InstallationStatus, SecretStatus};

use crate::config::Config;
use crate::engine::{RunError, api_key};
use crate::paths::Paths;
use crate::secrets::Secrets;
use crate::state::State;

/// `state` is `None` when there is no state database yet (never synced): a status is a look,
/// it creates nothing.
pub fn installation_status(
    paths: &Paths,
    config: &Config,
    secrets: &Secrets,
    state: Option<&State>,
) -> Result<InstallationStatus, RunError> {
    let resolved = config.resolve();
    let kind = config.directory.kind;
    let directory_secrets = kind
        .needed_secrets(config)
        .into_iter()
        .map(|key| {
            Ok(SecretStatus {
                key: key.name().to_string(),
                set: secrets.get(key)?.is_some(),
            })
        })
        .collect::<Result<Vec<_>, RunError>>()?;
    let key = api_key(secrets)?;
    let times = state
        .map(State::sync_times)
        .transpose()?
        .unwrap_or_default();
    let (synced_members, synced_groups) = state
        .map(State::synced_counts)
        .transpose()?
        .unwrap_or_default();
    let last_refusal = state.map(State::last_refusal).transpose()?.flatten();
    Ok(InstallationStatus {
        config_file: paths.config_file.display().to_string(),
        data_dir: paths.data_dir.display().to_string(),
        config_problem: resolved.as_ref().err().map(|e| e.to_string()),
        directory: resolved.as_ref().ok().map(|c| c.directory.location()),
        server: config.resolve_server().ok().map(|s| s.urls.api),
        logged_in: key.is_some(),
        organization_id: key.as_ref().map(|k| k.organization_id().to_string()),
        secrets: secrets.description().to_string(),
        directory_type: kind.name().to_string(),
        bind_password_set: directory_secrets.iter().all(|s| s.set),
        directory_secrets,
        last_user_sync: times.users,
        last_group_sync: times.groups,
        synced_members,
        synced_groups,
        last_refusal: last_refusal.map(|r| format!("{}: {}", r.at, r.message)),
    })
}
