//! Reports of a dry run (`test`) and of a sync: what the directory holds and what changes in the
//! organization.

use serde::{Deserialize, Serialize};

/// What `orgsync test` found: the directory as orgsync sees it, and the diff a sync would apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    pub schema_version: u32,
    /// The directory that was read: its type and where it is (e.g. `ldap` at
    /// `ldaps://dc1.example.com:636`, `entra` tenant …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DirectorySource>,
    /// Users read from the directory, split by state. Sorted by email.
    pub users: UsersByState,
    /// Groups read from the directory, sorted by name, with their flattened membership.
    pub groups: Vec<GroupEntry>,
    /// Directory entries that cannot be synced, each with the reason (no email, duplicate, ...).
    pub skipped: Vec<SkippedEntry>,
    /// What a sync would change, compared with the last synced state.
    pub diff: Diff,
    /// If a sync would be refused by the removal guard, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// Non-fatal observations (e.g. group members outside the user search scope).
    pub warnings: Vec<String>,
    /// Why a sync of this directory would fail (e.g. two entries share an email), if it would.
    /// `orgsync test` exits 1 when this or `refusal` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Which directory a report read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DirectorySource {
    /// `directory.type`: `ldap`, `entra`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it is: a URL, a tenant.
    pub location: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UsersByState {
    pub enabled: Vec<UserEntry>,
    pub disabled: Vec<UserEntry>,
    pub deleted: Vec<UserEntry>,
}

impl UsersByState {
    pub fn len(&self) -> usize {
        self.enabled.len() + self.disabled.len() + self.deleted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UserEntry {
    pub external_id: String,
    pub email: String,
    /// Where the user lives in the directory (an LDAP DN, a cloud directory's object id).
    pub reference: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GroupEntry {
    pub name: String,
    pub external_id: String,
    /// External ids of all users in the group, nested groups included. Sorted.
    pub member_external_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SkippedEntry {
    /// Whether the entry is a user or a group.
    #[serde(default)]
    pub kind: EntryKind,
    /// Where the entry lives in the directory (an LDAP DN, a cloud directory's object id).
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub reason: SkipReason,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum EntryKind {
    #[default]
    User,
    Group,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum SkipReason {
    /// No email attribute and no prefix/suffix to build one.
    NoEmail,
    /// The email is longer than the 256 characters Bitwarden accepts.
    EmailTooLong,
    /// Another directory entry has the same email; the sync is refused until it is resolved.
    DuplicateEmail,
    /// The email is not an address the organization server accepts.
    InvalidEmail,
    /// The external id is longer than the 300 characters the server accepts.
    ExternalIdTooLong,
    /// The group has no name.
    NoGroupName,
    /// The group name is longer than the 100 characters the server accepts.
    GroupNameTooLong,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::NoEmail => "no email address",
            SkipReason::EmailTooLong => "email longer than 256 characters",
            SkipReason::DuplicateEmail => "email shared with another directory entry",
            SkipReason::InvalidEmail => {
                "not a valid email address (one @ with a name before it and a domain after it, no spaces); fix it in the directory"
            }
            SkipReason::ExternalIdTooLong => {
                "external id longer than the 300 characters the server accepts; choose a shorter id in the directory source's settings (for LDAP, ldap.external_id_attribute such as entryUUID instead of dn)"
            }
            SkipReason::NoGroupName => "group without a name",
            SkipReason::GroupNameTooLong => {
                "group name longer than the 100 characters the server accepts; shorten it in the directory"
            }
        }
    }
}

/// The changes a sync makes to the organization, relative to what orgsync last synced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    /// Users that will be invited (or linked, if already a member by email).
    pub invite: Vec<MemberChange>,
    /// Members that will be removed from the organization.
    pub remove: Vec<MemberRemoval>,
    pub groups_created: Vec<GroupChange>,
    pub groups_updated: Vec<GroupChange>,
    /// Groups orgsync synced before that are no longer in the directory. The import API never
    /// deletes groups, so they stay in the organization (shown so an admin can delete them).
    pub groups_gone: Vec<GroupChange>,
    /// Members whose email changed in the directory: the membership under the old email is
    /// removed and the new email invited, under the same external id.
    #[serde(default)]
    pub email_changed: Vec<EmailChange>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.invite.is_empty()
            && self.remove.is_empty()
            && self.email_changed.is_empty()
            && self.groups_created.is_empty()
            && self.groups_updated.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    pub email: String,
    pub external_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EmailChange {
    pub external_id: String,
    /// The email the organization knows the member by.
    pub from: String,
    /// The email the directory has now.
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MemberRemoval {
    pub email: String,
    pub external_id: String,
    pub reason: RemovalReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum RemovalReason {
    /// The directory marks the account deleted (e.g. an AD tombstone).
    Deleted,
    /// The account is disabled and `remove_disabled` is on.
    Disabled,
    /// The user is no longer in the directory (or no longer matches the filters) and
    /// `remove_missing_users` is on.
    Missing,
}

impl RemovalReason {
    pub fn describe(self) -> &'static str {
        match self {
            RemovalReason::Deleted => "deleted in the directory",
            RemovalReason::Disabled => "disabled in the directory",
            RemovalReason::Missing => "no longer in the directory",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GroupChange {
    pub name: String,
    pub external_id: String,
    /// The group's previous name, when it was renamed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// Emails of members added to the group (all members for a new group).
    pub added: Vec<String>,
    /// Emails of members removed from the group.
    pub removed: Vec<String>,
}

/// Why the removal guard refused a sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// Members the sync would remove.
    pub removals: usize,
    /// Members orgsync last synced (the base of the percentage).
    pub synced_members: usize,
    /// Human-readable reason, naming the limit that was crossed and what to do.
    pub message: String,
    /// Whether `--allow-removals` lifts the refusal (it does not for an empty directory read).
    pub overridable: bool,
}

/// What `orgsync sync` did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub schema_version: u32,
    pub outcome: SyncOutcome,
    /// Import requests sent (0 when unchanged or refused).
    pub requests_sent: usize,
    pub users_read: usize,
    pub groups_read: usize,
    pub diff: Diff,
    pub skipped: Vec<SkippedEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    pub warnings: Vec<String>,
    /// RFC 3339 time the run started.
    pub started_at: String,
    /// How the directory was read.
    #[serde(default)]
    pub read: DirectoryRead,
    /// Why requests were sent although no member or group changed (e.g. the periodic
    /// reconciliation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_because: Option<String>,
}

/// How a sync read the directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DirectoryRead {
    pub mode: ReadMode,
    /// Entries added, changed or removed since the last sync (incremental reads only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries_changed: Option<usize>,
    /// Why a read was full although the directory tracks changes (e.g. the first sync, the
    /// daily full read, changed settings, a cleared cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ReadMode {
    /// Every user and group was read, and the requests carry all of them.
    #[default]
    Full,
    /// Only what changed since the last sync was read, and the requests carry only the changes.
    Incremental,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum SyncOutcome {
    /// The organization accepted every import request.
    Synced,
    /// The directory matched the last sync; nothing was sent.
    Unchanged,
    /// The removal guard refused the sync; nothing was sent.
    Refused,
}

/// A secret the directory needs, by the name `orgsync config set-secret` takes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecretStatus {
    pub key: String,
    pub set: bool,
}

/// `orgsync status`: where the installation lives and how it stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InstallationStatus {
    pub config_file: String,
    pub data_dir: String,
    /// `None` when the configuration is valid, else the validation message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_problem: Option<String>,
    /// The directory URL (e.g. `ldaps://dc1.example.com:636`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The organization server's API URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub logged_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Where secrets are kept.
    pub secrets: String,
    /// The directory type the configuration names (`directory.type`: `ldap`, …).
    #[serde(default)]
    pub directory_type: String,
    /// The secrets that directory needs as configured (none for a credential kept in a file),
    /// and whether each is set.
    #[serde(default)]
    pub directory_secrets: Vec<SecretStatus>,
    /// Deprecated (use `directorySecrets`; goes in the next release): whether every secret of
    /// the directory is set, which for LDAP is its bind password.
    pub bind_password_set: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_user_sync: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_group_sync: Option<String>,
    /// Members and groups orgsync last synced.
    pub synced_members: usize,
    pub synced_groups: usize,
    /// The last sync refused by the removal guard, if no sync succeeded since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<String>,
}
