//! Directory sources. Each source reads the users and groups of one kind of directory into
//! [`Entries`], in full or (where the directory tracks changes) as [`Changes`] since a watermark.
//! Resolving group members ([`Entries::snapshot`]) is shared here; everything after that
//! (normalising, flattening, diffing) is shared in [`crate::plan`].
//!
//! **Invariant:** a source returns either a complete snapshot or an error. A read that stopped
//! half-way (a failed page, a size limit, a lost connection) is an error, never a short snapshot,
//! because the plan removes members that are missing from it. The same holds for changes.

pub mod entra;
#[cfg(test)]
pub(crate) mod fake;
pub mod filter;
pub mod google;
pub mod ldap;
pub mod okta;
pub mod onelogin;

/// How stored entries are laid out (aliases, member references). A directory copy written in
/// another format is read again in full rather than continued (2: AD members by objectGUID;
/// 3: emails as the directory has them, normalised on the way to the plan).
pub const ENTRY_FORMAT: u32 = 3;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};

use crate::config::{Config, Problem, ResolvedConfig};
use crate::secrets::{SecretKey, Secrets};

/// A user as the directory describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    /// Where the entry lives (LDAP: its DN). Used in reports.
    pub reference: String,
    /// The stable id sent to the organization.
    pub external_id: String,
    /// The email, if the directory has (or orgsync could build) one, as the directory has it:
    /// a snapshot trims and lower-cases it ([`normalise_email`]).
    pub email: Option<String>,
    pub disabled: bool,
    pub deleted: bool,
}

/// A group as the directory describes it, before nested groups are flattened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub reference: String,
    pub external_id: String,
    pub name: String,
    /// External ids of users that are direct members.
    pub user_members: Vec<String>,
    /// Indexes (into [`Snapshot::groups`]) of groups that are direct members.
    pub group_members: Vec<usize>,
}

/// Everything one read of the directory returned, with group members resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `None` when users are not synced.
    pub users: Option<Vec<DirectoryUser>>,
    /// `None` when groups are not synced.
    pub groups: Option<Vec<DirectoryGroup>>,
    /// Things the admin should know that do not stop the sync.
    pub warnings: Vec<String>,
}

/// A user entry as kept between reads: the user plus the values a group's member list may name
/// it by (LDAP: its normalised DN and its lower-cased uid).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub user: DirectoryUser,
    pub aliases: Vec<String>,
}

/// A group entry as kept between reads, its members still unresolved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub reference: String,
    pub external_id: String,
    pub name: String,
    /// The value a parent group's member list names this group by.
    pub alias: String,
    /// Member references, normalised the way aliases are.
    pub members: Vec<String>,
}

/// The entries of the directory, keyed by the source's stable entry key (LDAP: the entryUUID
/// when the server tracks changes, the normalised DN otherwise). This is what an incremental
/// read updates and what the engine stores between syncs, so requests are always built from
/// the whole directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    pub users: HashMap<String, UserRecord>,
    /// Keys of users that a separate search (LDAP: `ldap.disabled_filter`) marks disabled.
    pub disabled: HashSet<String>,
    pub groups: HashMap<String, GroupRecord>,
}

/// A set of entries keyed like [`Entries`], as a read reports changes to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta<T> {
    /// Entries added or changed, in full.
    pub upserts: Vec<(String, T)>,
    /// Keys of entries deleted or no longer selected.
    pub deletes: Vec<String>,
    /// When the source listed every unchanged entry instead of naming deletions: the keys it
    /// listed. Every other entry that was not upserted is gone.
    pub present: Option<HashSet<String>>,
}

impl<T> Default for Delta<T> {
    fn default() -> Self {
        Delta {
            upserts: Vec::new(),
            deletes: Vec::new(),
            present: None,
        }
    }
}

impl<T: PartialEq> Delta<T> {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty() && self.present.is_none()
    }

    /// Applies the delta; returns the keys it added, changed or removed.
    fn apply(self, map: &mut HashMap<String, T>) -> Vec<String> {
        let mut touched: Vec<String> = self.deletes.clone();
        if let Some(present) = &self.present {
            let upserted: HashSet<&str> = self.upserts.iter().map(|(k, _)| k.as_str()).collect();
            map.retain(|key, _| {
                let keep = present.contains(key) || upserted.contains(key.as_str());
                if !keep {
                    touched.push(key.clone());
                }
                keep
            });
        }
        for key in &self.deletes {
            map.remove(key);
        }
        // Revision filters reach back a little, so an entry may come again unchanged.
        for (key, value) in self.upserts {
            if map.get(&key) != Some(&value) {
                touched.push(key.clone());
                map.insert(key, value);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        touched
    }
}

/// What changed in the directory since the read that returned the watermark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub users: Delta<UserRecord>,
    /// Changes to the set of users marked disabled (the value is unused).
    pub disabled: Delta<()>,
    pub groups: Delta<GroupRecord>,
    /// Users the directory reports deleted: their records become tombstones, so the plan
    /// removes them, until the next full read.
    pub deleted_users: Vec<String>,
    /// Groups whose changes came as differences (Graph's `members@delta`), merged into the
    /// stored group.
    pub group_patches: Vec<(String, GroupPatch)>,
    /// Where the next incremental read starts.
    pub watermark: String,
    /// Things the admin should know that do not stop the sync.
    pub warnings: Vec<String>,
}

impl Changes {
    /// No entry changed (the watermark may still have moved on).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.disabled.is_empty()
            && self.groups.is_empty()
            && self.deleted_users.is_empty()
            && self.group_patches.is_empty()
    }

    /// Applies the changes; returns the keys they touched, so only those are written back.
    pub fn apply_to(mut self, entries: &mut Entries) -> Touched {
        // A listing names live entries only: records of deleted users (tombstones) stay until a
        // full read, which reads them again, drops them.
        if let Some(present) = &mut self.users.present {
            let deleted = entries.users.iter().filter(|(_, r)| r.user.deleted);
            present.extend(deleted.map(|(key, _)| key.clone()));
        }
        let mut disabled: HashMap<String, ()> = entries.disabled.drain().map(|k| (k, ())).collect();
        let mut touched = Touched {
            users: self.users.apply(&mut entries.users),
            disabled: self.disabled.apply(&mut disabled),
            groups: self.groups.apply(&mut entries.groups),
        };
        entries.disabled = disabled.into_keys().collect();
        for key in self.deleted_users {
            if let Some(record) = entries.users.get_mut(&key)
                && !record.user.deleted
            {
                record.user.deleted = true;
                touched.users.push(key);
            }
        }
        for (key, patch) in self.group_patches {
            if patch.apply(entries.groups.entry(key.clone())) {
                touched.groups.push(key);
            }
        }
        for keys in [&mut touched.users, &mut touched.groups] {
            keys.sort_unstable();
            keys.dedup();
        }
        touched
    }
}

/// A change to one group told as a difference: a new name and members added (for a group not
/// seen before, the whole group), and members removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupPatch {
    /// The group as far as the change tells: an empty name leaves the name as it was.
    pub group: GroupRecord,
    pub removed: Vec<String>,
}

impl GroupPatch {
    /// Merges the patch into the stored group; returns whether it changed. A group not seen
    /// before is added when the change names it (a nameless one was filtered out).
    fn apply(self, slot: std::collections::hash_map::Entry<'_, String, GroupRecord>) -> bool {
        use std::collections::hash_map::Entry;
        match slot {
            Entry::Occupied(mut stored) => {
                let before = stored.get().clone();
                let group = stored.get_mut();
                if !self.group.name.is_empty() {
                    group.name = self.group.name;
                    group.reference = self.group.reference;
                }
                for member in self.group.members {
                    if !group.members.contains(&member) {
                        group.members.push(member);
                    }
                }
                group.members.retain(|m| !self.removed.contains(m));
                *group != before
            }
            Entry::Vacant(slot) if !self.group.name.is_empty() => {
                let mut group = self.group;
                group.members.retain(|m| !self.removed.contains(m));
                slot.insert(group);
                true
            }
            Entry::Vacant(_) => false,
        }
    }
}

/// Keys of the entries an incremental read added, changed or removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    pub users: Vec<String>,
    pub disabled: Vec<String>,
    pub groups: Vec<String>,
}

impl Touched {
    /// How many entries changed (a user that also changed its disabled mark counts once).
    pub fn count(&self) -> usize {
        let users: HashSet<&String> = self.users.iter().chain(&self.disabled).collect();
        users.len() + self.groups.len()
    }
}

/// A complete read.
#[derive(Clone, Debug, Default)]
pub struct FullRead {
    pub entries: Entries,
    /// Set when the directory can later report changes since this read.
    pub watermark: Option<String>,
    /// Things the admin should know that do not stop the sync.
    pub warnings: Vec<String>,
}

/// How many unresolved group members to name in a warning.
const EXAMPLES: usize = 3;

impl Entries {
    /// Resolves group members against the users and groups and returns what the plan reads.
    /// Groups are sorted by key (group members name them by index); users come in no
    /// particular order, and the plan sorts what it reports. The users are copied on a second
    /// thread while the members resolve: at 50k users each half takes tens of milliseconds.
    pub fn snapshot(&self, sync_users: bool, sync_groups: bool) -> Snapshot {
        let user_entries: Vec<(&String, &UserRecord)> = self.users.iter().collect();
        std::thread::scope(|scope| {
            let users = sync_users.then(|| {
                scope.spawn(|| {
                    user_entries
                        .iter()
                        .map(|(key, record)| {
                            with_disabled(record.user.clone(), key, &self.disabled)
                        })
                        .collect()
                })
            });
            let mut warnings = Vec::new();
            let groups = sync_groups.then(|| self.resolve_groups(&user_entries, &mut warnings));
            Snapshot {
                users: users.map(|copying| copying.join().expect("copying the users")),
                groups,
                warnings,
            }
        })
    }

    /// Like [`Entries::snapshot`], for entries read once (a dry run): the users move into the
    /// snapshot instead of being copied, which at 50k users saves tens of megabytes.
    pub fn into_snapshot(self, sync_users: bool, sync_groups: bool) -> Snapshot {
        let mut warnings = Vec::new();
        let groups = sync_groups.then(|| {
            let user_entries: Vec<(&String, &UserRecord)> = self.users.iter().collect();
            self.resolve_groups(&user_entries, &mut warnings)
        });
        let Entries {
            users, disabled, ..
        } = self;
        let users = sync_users.then(|| {
            users
                .into_iter()
                .map(|(key, record)| with_disabled(record.user, &key, &disabled))
                .collect()
        });
        Snapshot {
            users,
            groups,
            warnings,
        }
    }

    /// The groups, sorted by key, with their members resolved by alias.
    fn resolve_groups(
        &self,
        user_entries: &[(&String, &UserRecord)],
        warnings: &mut Vec<String>,
    ) -> Vec<DirectoryGroup> {
        let mut group_entries: Vec<(&String, &GroupRecord)> = self.groups.iter().collect();
        group_entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // The directory's own strings as keys: FxHash is several times faster than SipHash.
        let mut by_alias: FxHashMap<&str, Member> = FxHashMap::default();
        by_alias.reserve(group_entries.len() + 2 * user_entries.len());
        for (index, (_, record)) in group_entries.iter().enumerate() {
            by_alias.insert(record.alias.as_str(), Member::Group(index));
        }
        // Users win over groups that share an alias, and of two users the one with the greater
        // key, whatever order the users come in; deleted users are nobody's member.
        for (index, (key, record)) in user_entries.iter().enumerate() {
            if record.user.deleted {
                continue;
            }
            for alias in &record.aliases {
                let slot = by_alias
                    .entry(alias.as_str())
                    .or_insert(Member::User(index));
                if let Member::User(other) = *slot
                    && user_entries[other].0 > *key
                {
                    continue;
                }
                *slot = Member::User(index);
            }
        }
        // The last group each user was added to, to list a user once per group.
        let mut added_to = vec![usize::MAX; user_entries.len()];
        let mut unresolved = 0usize;
        let mut examples = Vec::new();
        let groups = group_entries
            .iter()
            .enumerate()
            .map(|(group_index, (_, record))| {
                let mut group = DirectoryGroup {
                    reference: record.reference.clone(),
                    external_id: record.external_id.clone(),
                    name: record.name.clone(),
                    user_members: Vec::new(),
                    group_members: Vec::new(),
                };
                for value in &record.members {
                    match by_alias.get(value.as_str()) {
                        Some(&Member::User(user)) => {
                            if added_to[user] != group_index {
                                added_to[user] = group_index;
                                let id = &user_entries[user].1.user.external_id;
                                group.user_members.push(id.clone());
                            }
                        }
                        Some(&Member::Group(index)) => group.group_members.push(index),
                        None => {
                            unresolved += 1;
                            if examples.len() < EXAMPLES {
                                examples.push(value.as_str());
                            }
                        }
                    }
                }
                group
            })
            .collect();
        if unresolved > 0 {
            warnings.push(format!(
                "{unresolved} group member value(s) match no synced user or group (outside the user/group path or filter), e.g. {}",
                examples.join("; ")
            ));
        }
        groups
    }
}

impl Snapshot {
    /// Keeps only the users who are direct members of a synced group, and the deleted ones
    /// (so they are removed), and the disabled ones when `keep_disabled` (so they are removed
    /// too): what the cloud directories sync when a group filter chooses the groups.
    pub fn keep_group_members_only(&mut self, keep_disabled: bool) {
        let (Some(users), Some(groups)) = (&mut self.users, &self.groups) else {
            return;
        };
        let members: HashSet<&str> = groups
            .iter()
            .flat_map(|g| g.user_members.iter().map(String::as_str))
            .collect();
        users.retain(|u| {
            u.deleted || (keep_disabled && u.disabled) || members.contains(u.external_id.as_str())
        });
    }
}

/// The user as the plan sees it: its email normalised, and disabled also when the separate
/// disabled search listed it. Every source's users pass here on their way to the plan.
fn with_disabled(mut user: DirectoryUser, key: &str, disabled: &HashSet<String>) -> DirectoryUser {
    user.disabled |= !disabled.is_empty() && disabled.contains(key);
    normalise_email(&mut user.email);
    user
}

/// Trims and lower-cases an email, and makes a blank one none: directories keep addresses as
/// people typed them, the organization knows each address once. Whether what is left is an
/// address the server accepts is the plan's check ([`crate::plan::is_valid_email`]).
pub fn normalise_email(email: &mut Option<String>) {
    let Some(text) = email else { return };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        *email = None;
    } else if trimmed.len() != text.len() || trimmed.chars().any(char::is_uppercase) {
        *text = trimmed.to_lowercase();
    }
}

/// What a member value resolves to: an index into the users or the sorted groups.
enum Member {
    User(usize),
    Group(usize),
}

/// Runs `read` for each of `items`, `concurrency` at a time, reporting progress as `kind`
/// every 50; the first error ends them all (a listing that failed fails the read). For the
/// cloud sources' per-group member listings.
///
/// # Errors
/// The first error of `read`.
pub async fn read_each<T, R, Fut>(
    items: Vec<T>,
    concurrency: usize,
    progress: &dyn Progress,
    kind: EntryKind,
    read: impl Fn(T) -> Fut,
) -> Result<Vec<R>, DirectoryError>
where
    Fut: Future<Output = Result<R, DirectoryError>>,
{
    use futures_util::{StreamExt, TryStreamExt};
    let mut done = 0;
    let results: Vec<R> = futures_util::stream::iter(items.into_iter().map(read))
        .buffer_unordered(concurrency.max(1))
        .inspect_ok(|_| {
            done += 1;
            if done % 50 == 0 {
                progress.entries_read(kind, done);
            }
        })
        .try_collect()
        .await?;
    progress.entries_read(kind, results.len());
    Ok(results)
}

/// What the caller wants from a read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// Also read deleted objects (AD tombstones) so they can be shown and removed.
    pub include_deleted: bool,
    /// Ask the directory to track changes, so later reads can be incremental.
    pub track_changes: bool,
    /// Sign in anew rather than with a token kept from an earlier run: a dry run checks the
    /// credentials as they are now.
    pub fresh_sign_in: bool,
}

/// What a source is reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Users,
    Groups,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Users => "users",
            EntryKind::Groups => "groups",
        }
    }
}

/// Receives progress while a source reads, for a progress indicator.
pub trait Progress: Send + Sync {
    /// `count` entries of `kind` have been read so far.
    fn entries_read(&self, kind: EntryKind, count: usize);
}

/// A progress sink that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn entries_read(&self, _kind: EntryKind, _count: usize) {}
}

/// The directory types orgsync reads, as `directory.type` names them. Each has a module here
/// that owns its config table, its secrets and its client; this is the one list of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryKind {
    /// LDAP and Active Directory (`[ldap]`).
    #[default]
    Ldap,
    /// Microsoft Entra ID through Microsoft Graph (`[entra]`).
    Entra,
    /// Google Workspace through the Admin SDK Directory API (`[google]`).
    Google,
    /// Okta through its Management API (`[okta]`).
    Okta,
    /// OneLogin through its API v2 (`[onelogin]`).
    #[serde(rename = "onelogin")]
    OneLogin,
}

impl DirectoryKind {
    pub const ALL: [DirectoryKind; 5] = [
        DirectoryKind::Ldap,
        DirectoryKind::Entra,
        DirectoryKind::Google,
        DirectoryKind::Okta,
        DirectoryKind::OneLogin,
    ];

    /// The name in the config file, which is also the name of the source's table.
    pub fn name(self) -> &'static str {
        match self {
            DirectoryKind::Ldap => "ldap",
            DirectoryKind::Entra => "entra",
            DirectoryKind::Google => "google",
            DirectoryKind::Okta => "okta",
            DirectoryKind::OneLogin => "onelogin",
        }
    }

    /// The secrets the source needs, as `config set-secret` names them.
    pub fn secrets(self) -> &'static [SecretKey] {
        match self {
            DirectoryKind::Ldap => &[ldap::BIND_PASSWORD],
            DirectoryKind::Entra => &[entra::CLIENT_SECRET],
            DirectoryKind::Google => &[google::KEY],
            DirectoryKind::Okta => &[okta::TOKEN, okta::PRIVATE_KEY],
            DirectoryKind::OneLogin => &[onelogin::CLIENT_SECRET],
        }
    }

    /// The secrets the source needs as `config` sets it up: none for a credential kept in a
    /// file instead (an Entra certificate, a Google key file), and of Okta's the one its way of
    /// signing in takes.
    pub fn needed_secrets(self, config: &Config) -> Vec<SecretKey> {
        let in_files = match self {
            DirectoryKind::Ldap | DirectoryKind::Okta | DirectoryKind::OneLogin => false,
            DirectoryKind::Entra => config.entra.certificate_file.is_some(),
            DirectoryKind::Google => config.google.key_file.is_some(),
        };
        if self == DirectoryKind::Okta {
            let okta = &config.okta;
            return match (
                crate::config::non_blank(&okta.client_id),
                &okta.private_key_file,
            ) {
                (None, _) => vec![okta::TOKEN],
                (Some(_), None) => vec![okta::PRIVATE_KEY],
                (Some(_), Some(_)) => Vec::new(),
            };
        }
        match in_files {
            true => Vec::new(),
            false => self.secrets().to_vec(),
        }
    }

    /// The warnings of the source's table (see [`crate::config::Config::warnings`]).
    pub fn warnings(self, config: &Config) -> Vec<String> {
        match self {
            DirectoryKind::Ldap => config.ldap.warnings(),
            DirectoryKind::Entra => config.entra.warnings(),
            DirectoryKind::Google | DirectoryKind::OneLogin => Vec::new(),
            DirectoryKind::Okta => config.okta.warnings(),
        }
    }
}

/// Every source's config table, for the key listing: its name and its schema.
pub fn config_tables() -> Vec<(&'static str, RefOr<Schema>)> {
    use utoipa::PartialSchema;
    vec![
        ("ldap", ldap::config::LdapConfig::schema()),
        ("entra", entra::config::EntraConfig::schema()),
        ("google", google::config::GoogleConfig::schema()),
        ("okta", okta::config::OktaConfig::schema()),
        ("onelogin", onelogin::config::OneLoginConfig::schema()),
    ]
}

/// Whether `key` of a source's table is a file path (stored absolute by `config set`).
pub fn is_path_key(key: &str) -> bool {
    [
        ldap::config::PATH_KEYS,
        entra::config::PATH_KEYS,
        google::config::PATH_KEYS,
        okta::config::PATH_KEYS,
        onelogin::config::PATH_KEYS,
    ]
    .iter()
    .any(|keys| keys.contains(&key))
}

/// The file paths of every source's table, to anchor relative ones.
pub fn file_paths(config: &mut Config) -> Vec<&mut Option<PathBuf>> {
    let Config {
        ldap,
        entra,
        google,
        okta,
        onelogin,
        ..
    } = config;
    let paths = ldap.file_paths().into_iter().chain(entra.file_paths());
    let paths = paths.chain(google.file_paths());
    let paths = paths.chain(okta.file_paths());
    paths.chain(onelogin.file_paths()).collect()
}

/// The resolved settings of the source `directory.type` names.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per run, never in a collection"
)]
pub enum Settings {
    Ldap(ldap::config::ResolvedLdap),
    Entra(entra::config::ResolvedEntra),
    Google(google::config::ResolvedGoogle),
    Okta(okta::config::ResolvedOkta),
    OneLogin(onelogin::config::ResolvedOneLogin),
    /// An in-process directory for the engine's unit tests.
    #[cfg(test)]
    Fake(fake::FakeDirectory),
}

impl Settings {
    /// Validates the table of the source in use (the others are not read).
    pub(crate) fn resolve(config: &Config, problems: &mut Vec<Problem>) -> Settings {
        match config.directory.kind {
            DirectoryKind::Ldap => Settings::Ldap(config.ldap.resolve(problems)),
            DirectoryKind::Entra => Settings::Entra(config.entra.resolve(problems)),
            DirectoryKind::Google => Settings::Google(config.google.resolve(problems)),
            DirectoryKind::Okta => Settings::Okta(config.okta.resolve(problems)),
            DirectoryKind::OneLogin => Settings::OneLogin(config.onelogin.resolve(problems)),
        }
    }

    /// The name of the source's config table.
    pub fn table(&self) -> &'static str {
        match self {
            Settings::Ldap(_) => DirectoryKind::Ldap.name(),
            Settings::Entra(_) => DirectoryKind::Entra.name(),
            Settings::Google(_) => DirectoryKind::Google.name(),
            Settings::Okta(_) => DirectoryKind::Okta.name(),
            Settings::OneLogin(_) => DirectoryKind::OneLogin.name(),
            #[cfg(test)]
            Settings::Fake(_) => "fake",
        }
    }

    /// The settings that decide which users a read returns, for messages.
    pub fn user_scope(&self) -> &'static str {
        match self {
            Settings::Ldap(_) => "ldap.root_path, ldap.user_path and ldap.user_filter",
            Settings::Entra(_) => "entra.user_filter and entra.group_filter",
            Settings::Google(_) => {
                "google.customer or google.domain, google.user_filter and google.group_filter"
            }
            Settings::Okta(_) => "okta.user_filter and okta.group_filter",
            Settings::OneLogin(_) => "onelogin.user_filter and onelogin.group_filter",
            #[cfg(test)]
            Settings::Fake(_) => "the fake directory",
        }
    }

    /// Whether only users who are direct members of a synced group are synced: the cloud
    /// directories do so when a group filter chooses groups (Directory Connector's rule).
    pub fn scopes_users_by_groups(&self) -> bool {
        match self {
            Settings::Entra(entra) => entra.group_filter.is_set(),
            Settings::Google(google) => !google.group_filter.set.is_all(),
            Settings::Okta(okta) => !okta.group_filter.set.is_all(),
            Settings::OneLogin(onelogin) => !onelogin.group_filter.set.is_all(),
            _ => false,
        }
    }

    /// Where the directory is, for `status`: a URL, a tenant.
    pub fn location(&self) -> String {
        match self {
            Settings::Ldap(ldap) => ldap.url.clone(),
            Settings::Entra(entra) => format!(
                "Microsoft Entra ID tenant {} ({})",
                entra.tenant, entra.graph
            ),
            Settings::Google(google) => {
                let (name, value) = google.scope.param();
                format!(
                    "Google Workspace {name} {value} as {} ({})",
                    google.admin_user, google.api
                )
            }
            Settings::Okta(okta) => format!("Okta org {}", okta.org),
            Settings::OneLogin(onelogin) => format!("OneLogin {}", onelogin.base),
            #[cfg(test)]
            Settings::Fake(_) => "fake".into(),
        }
    }
}

/// The configured directory source, built by [`Source::open`]: one variant per source, so the
/// engine and the service go through it and name no source themselves.
#[allow(
    clippy::large_enum_variant,
    reason = "one per run, never in a collection"
)]
pub enum Source {
    Ldap(ldap::LdapDirectory),
    Entra(entra::EntraDirectory),
    Google(google::GoogleDirectory),
    Okta(okta::OktaDirectory),
    OneLogin(onelogin::OneLoginDirectory),
    #[cfg(test)]
    Fake(fake::FakeDirectory),
}

impl Source {
    /// The source the configuration names, with its secrets.
    ///
    /// # Errors
    /// When a secret the source needs is not set or cannot be read.
    pub fn open(config: &ResolvedConfig, secrets: &Secrets) -> Result<Source, DirectoryError> {
        Ok(match &config.directory {
            Settings::Ldap(ldap) => Source::Ldap(ldap::LdapDirectory::open(
                ldap.clone(),
                secrets,
                config.sync.groups,
            )?),
            Settings::Entra(entra) => Source::Entra(entra::EntraDirectory::open(
                entra.clone(),
                &config.http,
                secrets,
                config.sync.groups,
            )?),
            Settings::Google(google) => Source::Google(google::GoogleDirectory::open(
                google.clone(),
                &config.http,
                secrets,
                config.sync.groups,
            )?),
            Settings::Okta(okta) => Source::Okta(okta::OktaDirectory::open(
                okta.clone(),
                &config.http,
                secrets,
                config.sync.groups,
            )?),
            Settings::OneLogin(onelogin) => Source::OneLogin(onelogin::OneLoginDirectory::open(
                onelogin.clone(),
                &config.http,
                secrets,
                config.sync.groups,
            )?),
            #[cfg(test)]
            Settings::Fake(fake) => Source::Fake(fake.clone()),
        })
    }

    /// Whether reads can continue from a watermark (the source's own setting).
    pub fn tracks_changes(&self) -> bool {
        match self {
            Source::Ldap(ldap) => ldap.tracks_changes(),
            Source::Entra(entra) => entra.tracks_changes(),
            // The Directory API has no delta query.
            Source::Google(_) => false,
            Source::Okta(okta) => okta.tracks_changes(),
            // No deletions reported, role changes not dated: every read is full.
            Source::OneLogin(_) => false,
            #[cfg(test)]
            Source::Fake(fake) => fake.tracks_changes(),
        }
    }
}

impl Directory for Source {
    async fn read(
        &self,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<FullRead, DirectoryError> {
        match self {
            Source::Ldap(ldap) => ldap.read(options, progress).await,
            Source::Entra(entra) => entra.read(options, progress).await,
            Source::Google(google) => google.read(options, progress).await,
            Source::Okta(okta) => okta.read(options, progress).await,
            Source::OneLogin(onelogin) => onelogin.read(options, progress).await,
            #[cfg(test)]
            Source::Fake(fake) => fake.read(options, progress).await,
        }
    }

    async fn read_changes(
        &self,
        watermark: &str,
        progress: &dyn Progress,
    ) -> Result<Option<Changes>, DirectoryError> {
        match self {
            Source::Ldap(ldap) => ldap.read_changes(watermark, progress).await,
            Source::Entra(entra) => entra.read_changes(watermark, progress).await,
            Source::Google(google) => google.read_changes(watermark, progress).await,
            Source::Okta(okta) => okta.read_changes(watermark, progress).await,
            Source::OneLogin(onelogin) => onelogin.read_changes(watermark, progress).await,
            #[cfg(test)]
            Source::Fake(fake) => fake.read_changes(watermark, progress).await,
        }
    }

    async fn follow(&self, on_change: &(dyn Fn() + Send + Sync)) -> Result<bool, DirectoryError> {
        match self {
            Source::Ldap(ldap) => ldap.follow(on_change).await,
            Source::Entra(entra) => entra.follow(on_change).await,
            Source::Google(google) => google.follow(on_change).await,
            Source::Okta(okta) => okta.follow(on_change).await,
            Source::OneLogin(onelogin) => onelogin.follow(on_change).await,
            #[cfg(test)]
            Source::Fake(fake) => fake.follow(on_change).await,
        }
    }
}

/// The one trait every directory source implements.
pub trait Directory: Send + Sync {
    /// Reads every user and group the configuration selects.
    ///
    /// # Errors
    /// Any failure to connect, authenticate or read completely.
    fn read(
        &self,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<FullRead, DirectoryError>> + Send;

    /// Reads what changed since the read that returned `watermark`. `Ok(None)` when the
    /// directory can no longer tell (the watermark expired or the server lost track): the
    /// caller then reads everything.
    ///
    /// # Errors
    /// As [`Directory::read`]; a half-read change set is an error, never a short one.
    fn read_changes(
        &self,
        watermark: &str,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<Option<Changes>, DirectoryError>> + Send;

    /// Stays connected and calls `on_change` whenever the directory pushes a change, until the
    /// connection ends (an error). `Ok(false)` at once when the directory cannot push changes.
    fn follow(
        &self,
        on_change: &(dyn Fn() + Send + Sync),
    ) -> impl Future<Output = Result<bool, DirectoryError>> + Send;
}

/// Why a directory read failed, said so an admin can act on it: what failed (naming the
/// server, search or request), and the source's hint of what to do. The error it came from, if
/// any, is its [`std::error::Error::source`].
#[derive(Debug)]
pub struct DirectoryError {
    failure: Failure,
    what: String,
    hint: Option<String>,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What kind of failure a [`DirectoryError`] is, for the callers that decide on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The directory could not be reached (name, connection, TLS).
    Unreachable,
    /// The directory refused the credentials.
    Credentials,
    /// The credentials are accepted but lack a permission the read needs.
    Permission,
    /// The directory did not answer in time.
    Timeout,
    /// The directory kept throttling beyond the wait a read allows.
    Throttled,
    /// A request failed or an answer was unusable part-way: the read is incomplete.
    Read,
    /// A setting or secret is missing or wrong.
    Config,
}

impl DirectoryError {
    pub fn new(failure: Failure, what: impl Into<String>) -> DirectoryError {
        DirectoryError {
            failure,
            what: what.into(),
            hint: None,
            cause: None,
        }
    }

    /// Adds what the admin can do about it.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> DirectoryError {
        self.hint = Some(hint.into());
        self
    }

    /// Records the error this one came from.
    #[must_use]
    pub fn caused_by(
        mut self,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> DirectoryError {
        self.cause = Some(cause.into());
        self
    }

    /// A secret the source needs is not set.
    pub fn missing_secret(key: SecretKey) -> DirectoryError {
        let env = key
            .env_var()
            .map(|var| format!(" or set {var}"))
            .unwrap_or_default();
        DirectoryError::new(Failure::Config, format!("{} is not set", key.name())).hint(format!(
            "run `orgsync config set-secret {}`{env}",
            key.name()
        ))
    }

    /// The secret store could not be read.
    pub fn secret_store(key: SecretKey, cause: crate::secrets::SecretError) -> DirectoryError {
        DirectoryError::new(
            Failure::Config,
            format!("cannot read {}: {cause}", key.name()),
        )
        .caused_by(cause)
    }

    pub fn failure(&self) -> Failure {
        self.failure
    }

    /// The same error, classified as `failure` (a caller knows better, e.g. a second 401).
    #[must_use]
    pub fn with_failure(mut self, failure: Failure) -> DirectoryError {
        self.failure = failure;
        self
    }
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)?;
        match &self.hint {
            Some(hint) => write!(f, "; {hint}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for DirectoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests;
