//! The sync plan: pure functions from a directory [`Snapshot`] and the last synced state to the
//! import requests, the diff an admin sees, and the state to record once the server accepts.
//!
//! **Invariant:** nothing here does I/O or reads the clock, so the same inputs always give the
//! same plan (and the same request hash). Users and groups are sorted, so the order in which a
//! directory returns entries never changes the hash.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use base64::Engine;
use orgsync_proto::{
    Diff, EmailChange, EntryKind, GroupChange, GroupEntry, MemberChange, MemberRemoval, Refusal,
    RemovalReason, SkipReason, SkippedEntry, UserEntry, UsersByState,
};
use rustc_hash::{FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};

use crate::directory::{DirectoryGroup, DirectoryUser, Snapshot};
use crate::org::{ImportGroup, ImportMember, ImportRequest};

/// What the organization server validates in an import (Bitwarden's import model; Vaultwarden
/// accepts more): an entry that fails any of these would make the server reject the whole
/// request, so it is skipped and reported instead. Lengths are in characters.
const MAX_EMAIL_LEN: usize = 256;
const MAX_EXTERNAL_ID_LEN: usize = 300;
const MAX_GROUP_NAME_LEN: usize = 100;
/// The external id given to the old membership of a member whose email changed (see
/// [`Plan::move_requests`]).
const MOVED_PREFIX: &str = "orgsync-moved:";
/// Objects per request in batched ("large import") mode, as Directory Connector does.
pub const BATCH_SIZE: usize = 2000;

/// What the organization holds because of earlier syncs: the base of the diff and of removals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncedState {
    /// externalId → email of members orgsync added (and has not removed).
    pub members: BTreeMap<String, String>,
    /// externalId → group as last sent.
    pub groups: BTreeMap<String, SyncedGroup>,
    /// Members taken over from the organization (`orgsync import-bwdc`) that no directory read
    /// has returned since: people who left before the switch, whom Directory Connector never
    /// removed. They are removed only when the admin says so (`sync --allow-removals`).
    pub held: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncedGroup {
    pub name: String,
    /// Sorted member externalIds.
    pub members: Vec<String>,
}

/// The sync options that shape a plan.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub sync_users: bool,
    pub sync_groups: bool,
    pub remove_disabled: bool,
    pub remove_missing_users: bool,
    pub overwrite_existing: bool,
    pub large_import: bool,
    pub invite_users_after_provisioning: bool,
    pub max_removals: usize,
    pub max_removal_percent: u32,
    /// The settings that decide which users the directory returns, named in the refusal when
    /// it returned none (e.g. `ldap.root_path, ldap.user_path and ldap.user_filter`).
    pub user_scope: &'static str,
    /// Remove the held members ([`SyncedState::held`]) the directory does not return.
    pub remove_held: bool,
}

/// Everything a run needs to decide and report. The import requests, their hash and the next
/// state are derived on demand from the same data, so a dry run never builds them.
#[derive(Clone, Debug)]
pub struct Plan {
    pub users: UsersByState,
    pub groups: Vec<GroupEntry>,
    pub skipped: Vec<SkippedEntry>,
    pub diff: Diff,
    pub warnings: Vec<String>,
    /// Set when the removal guard refuses this plan.
    pub refusal: Option<Refusal>,
    /// Users that share an email with another entry. A sync is refused while there are any.
    pub conflicts: Vec<SkippedEntry>,
    /// Synced members and groups whose entries were read but skipped: they stay in the
    /// organization, so the next state keeps them (and removes them when they leave).
    kept_members: Vec<(String, String)>,
    kept_groups: Vec<String>,
    /// externalId → the synced email, for members removed under an email the directory changed.
    removal_emails: BTreeMap<String, String>,
    /// Held members ([`SyncedState::held`]) this read did not return: they stay held.
    still_held: BTreeSet<String>,
    /// Tombstones removed by the email only the synced state knows: like missing members,
    /// their removal depends on the state, so it is not part of the hash (once accepted, they
    /// drop out of the next plan, and the unchanged directory hashes the same again).
    state_removals: BTreeSet<String>,
    options: PlanOptions,
    users_synced: bool,
    groups_synced: bool,
}

impl Plan {
    pub fn users_read(&self) -> usize {
        self.users.len() + self.skipped.len()
    }

    /// The members the directory yields, sorted by (email, externalId), with `deleted` set for
    /// deleted users and, with `remove_disabled`, disabled ones.
    fn directory_members(&self) -> Vec<ImportMember> {
        if !self.users_synced {
            return Vec::new();
        }
        let remove_disabled = self.options.remove_disabled;
        let mut members: Vec<ImportMember> = [
            (&self.users.enabled, false),
            (&self.users.disabled, remove_disabled),
            (&self.users.deleted, true),
        ]
        .into_iter()
        .flat_map(|(users, deleted)| {
            users.iter().map(move |u| ImportMember {
                // Vaultwarden matches members by email: a removal names the one it holds.
                email: match deleted {
                    true => self.removal_emails.get(&u.external_id).unwrap_or(&u.email),
                    false => &u.email,
                }
                .clone(),
                external_id: u.external_id.clone(),
                deleted,
            })
        })
        .collect();
        members.sort_by(|a, b| (&a.email, &a.external_id).cmp(&(&b.email, &b.external_id)));
        members
    }

    /// Members orgsync synced before that the directory no longer returns, sent as deleted.
    fn missing_members(&self) -> impl Iterator<Item = ImportMember> + '_ {
        self.diff
            .remove
            .iter()
            .filter(|r| r.reason == RemovalReason::Missing && self.options.remove_missing_users)
            .map(|r| ImportMember {
                email: r.email.clone(),
                external_id: r.external_id.clone(),
                deleted: true,
            })
    }

    fn import_groups(&self) -> Vec<ImportGroup> {
        self.groups
            .iter()
            .map(|g| ImportGroup {
                name: g.name.clone(),
                external_id: g.external_id.clone(),
                member_external_ids: g.member_external_ids.clone(),
            })
            .collect()
    }

    /// Whether the requests change the organization beyond what the hash covers: removals of
    /// members that vanished from the directory, and memberships moved to a changed email. These
    /// depend on the synced state, so they are always sent.
    pub fn has_state_changes(&self) -> bool {
        self.missing_members().next().is_some()
            || !self.diff.email_changed.is_empty()
            || !self.state_removals.is_empty()
    }

    /// The requests to send, in order.
    pub fn requests(&self) -> Vec<ImportRequest> {
        let mut members = self.directory_members();
        members.extend(self.missing_members());
        let mut requests = self.move_requests();
        requests.extend(build_requests(members, self.import_groups(), &self.options));
        requests
    }

    /// The request that retires the old membership of every member whose email changed, sent
    /// before the requests that invite the new email. A request of its own, because Bitwarden
    /// skips the removal of an externalId the same request also lists as a member.
    ///
    /// Each old membership is named twice: by its externalId, which Bitwarden removes, and by
    /// its email under a retired externalId, which Vaultwarden (matching by email, revoking
    /// instead of removing, the last listed externalId winning) revokes and detaches from the
    /// external id, so the person's groups do not keep the old membership. Bitwarden ignores the
    /// retired id, which matches nobody.
    fn move_requests(&self) -> Vec<ImportRequest> {
        let members: Vec<ImportMember> = self
            .diff
            .email_changed
            .iter()
            .flat_map(|change| {
                [
                    ImportMember {
                        email: change.from.clone(),
                        external_id: change.external_id.clone(),
                        deleted: true,
                    },
                    ImportMember {
                        email: change.from.clone(),
                        external_id: format!("{MOVED_PREFIX}{}", change.from),
                        deleted: true,
                    },
                ]
            })
            .collect();
        if members.is_empty() {
            return Vec::new();
        }
        let options = PlanOptions {
            overwrite_existing: false,
            ..self.options.clone()
        };
        build_requests(members, Vec::new(), &options)
    }

    /// The requests of an incremental sync: only what changed against the synced state, that is
    /// members to invite and to remove, and the groups created or changed, each with its full
    /// membership (the server replaces a group's members with the listed ones). Members and
    /// groups not listed stay as they are, unless `overwrite_existing` is on, in which case the
    /// server removes unlisted members, so the full requests are sent instead.
    pub fn change_requests(&self) -> Vec<ImportRequest> {
        if self.options.overwrite_existing {
            return self.requests();
        }
        let moved = self.diff.email_changed.iter().map(|c| MemberChange {
            email: c.to.clone(),
            external_id: c.external_id.clone(),
        });
        let invited = self
            .diff
            .invite
            .iter()
            .cloned()
            .chain(moved)
            .map(|m| ImportMember {
                email: m.email,
                external_id: m.external_id,
                deleted: false,
            });
        let removed = self
            .diff
            .remove
            .iter()
            .filter(|r| r.reason != RemovalReason::Missing || self.options.remove_missing_users)
            .map(|r| ImportMember {
                email: r.email.clone(),
                external_id: r.external_id.clone(),
                deleted: true,
            });
        let members: Vec<ImportMember> = invited.chain(removed).collect();
        let changed: HashSet<&str> = self
            .diff
            .groups_created
            .iter()
            .chain(&self.diff.groups_updated)
            .map(|g| g.external_id.as_str())
            .collect();
        // A moved membership is a new one to the server: every group holding it is sent again.
        let moved: HashSet<&str> = self
            .diff
            .email_changed
            .iter()
            .map(|c| c.external_id.as_str())
            .collect();
        let groups: Vec<ImportGroup> = self
            .import_groups()
            .into_iter()
            .filter(|g| {
                changed.contains(g.external_id.as_str())
                    || g.member_external_ids
                        .iter()
                        .any(|id| moved.contains(id.as_str()))
            })
            .collect();
        let mut requests = self.move_requests();
        requests.extend(build_requests(members, groups, &self.options));
        requests
    }

    /// Directory Connector's change-detection hash of the directory-derived requests (without
    /// the missing-user removals): base64(SHA-256(api URL + organization id + payload JSON)),
    /// where the payload is the request object, or the array when batched. The JSON is streamed
    /// into the hash, never built as one string.
    pub fn request_hash(&self, api_url: &str, organization_id: &str) -> String {
        let mut members = self.directory_members();
        members.retain(|m| !self.state_removals.contains(&m.external_id));
        let requests = build_requests(members, self.import_groups(), &self.options);
        let mut hasher = HashWriter(Sha256::new());
        hasher.0.update(api_url.as_bytes());
        hasher.0.update(organization_id.as_bytes());
        let written = match requests.as_slice() {
            [single] => serde_json::to_writer(&mut hasher, single),
            many => serde_json::to_writer(&mut hasher, many),
        };
        written.expect("import requests always serialise");
        base64::engine::general_purpose::STANDARD.encode(hasher.0.finalize())
    }

    /// The state to record once every request is accepted: the members that stay in the
    /// organization and the groups as sent. What was not synced this time is kept from
    /// `previous`.
    pub fn next_state(&self, previous: &SyncedState) -> SyncedState {
        let members = if self.users_synced {
            self.directory_members()
                .into_iter()
                .filter(|m| !m.deleted)
                .map(|m| (m.external_id, m.email))
                .chain(self.kept_members.iter().cloned())
                .collect()
        } else {
            previous.members.clone()
        };
        let held = match self.users_synced {
            true => self.still_held.clone(),
            false => previous.held.clone(),
        };
        let groups = if self.groups_synced {
            let kept = self
                .kept_groups
                .iter()
                .filter_map(|id| Some((id.clone(), previous.groups.get(id)?.clone())));
            self.groups
                .iter()
                .map(|g| {
                    (
                        g.external_id.clone(),
                        SyncedGroup {
                            name: g.name.clone(),
                            members: g.member_external_ids.clone(),
                        },
                    )
                })
                .chain(kept)
                .collect()
        } else {
            previous.groups.clone()
        };
        SyncedState {
            members,
            groups,
            held,
        }
    }
}

/// Feeds serialised JSON straight into the hash.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A user that passed normalisation.
struct Member<'a> {
    user: &'a DirectoryUser,
    /// The user's email, or for a tombstone the one it was synced with.
    email: &'a str,
    /// Sent as `deleted: true` (removed or kept out of the organization).
    removed: bool,
}

/// Builds the plan. `snapshot` must be a complete read (see [`crate::directory`]).
pub fn plan(snapshot: &Snapshot, state: &SyncedState, options: &PlanOptions) -> Plan {
    let mut skipped = Vec::new();
    let mut warnings = snapshot.warnings.clone();

    let users_read = snapshot.users.as_deref().unwrap_or_default();
    // Flattening the groups needs nothing from the users: it runs on a second thread meanwhile.
    let (flat_groups, (members, mut conflicts, skipped_users)) = std::thread::scope(|scope| {
        let flattening = scope.spawn(|| snapshot.groups.as_deref().map(flatten_groups));
        let users = normalise_users(users_read, state, options, &mut skipped);
        (flattening.join().expect("flattening the groups"), users)
    });
    let (flat_groups, skipped_groups) = match flat_groups {
        Some((groups, skipped_groups)) => (Some(groups), skipped_groups),
        None => (None, Vec::new()),
    };
    let kept_members: Vec<(String, String)> = skipped_users
        .into_iter()
        .filter_map(|id| Some((id.to_string(), state.members.get(id)?.clone())))
        .collect();
    let kept_groups: Vec<String> = skipped_groups
        .iter()
        .filter(|(id, _)| state.groups.contains_key(id))
        .map(|(id, _)| id.clone())
        .collect();
    skipped.extend(skipped_groups.into_iter().map(|(_, entry)| entry));
    // The snapshot's users come in no particular order; what is reported by name is sorted.
    skipped.sort_by(|a, b| (a.kind, &a.reference, &a.email).cmp(&(b.kind, &b.reference, &b.email)));
    conflicts.sort_by(|a, b| a.reference.cmp(&b.reference));
    // Sized up front: collecting from a filter would grow (and rehash) the table many times.
    let mut active: FxHashMap<&str, &str> = FxHashMap::default();
    active.reserve(members.len());
    active.extend(
        members
            .iter()
            .filter(|m| !m.removed)
            .map(|m| (m.user.external_id.as_str(), m.email)),
    );

    // Group membership: limited to users who stay members when users are synced, so a removed
    // or skipped user does not linger in a group's list.
    let mut groups: Vec<GroupEntry> = flat_groups.unwrap_or_default();
    if snapshot.users.is_some() {
        for group in &mut groups {
            group
                .member_external_ids
                .retain(|id| active.contains_key(id.as_str()));
        }
    }

    // Held members the directory does not return stay held; the others are seen now.
    let mut still_held: BTreeSet<String> = match snapshot.users.is_some() && !state.held.is_empty()
    {
        true => {
            let read_ids: FxHashSet<&str> =
                users_read.iter().map(|u| u.external_id.as_str()).collect();
            state
                .held
                .iter()
                .filter(|id| !read_ids.contains(id.as_str()) && state.members.contains_key(*id))
                .cloned()
                .collect()
        }
        false => BTreeSet::new(),
    };
    // Members that orgsync synced before and that the directory no longer returns at all.
    let mut missing: Vec<(&String, &String)> = if snapshot.users.is_some()
        && (options.remove_missing_users || options.overwrite_existing)
        && !state.members.is_empty()
    {
        let read_ids: FxHashSet<&str> = users_read.iter().map(|u| u.external_id.as_str()).collect();
        state
            .members
            .iter()
            .filter(|(id, _)| !read_ids.contains(id.as_str()))
            .collect()
    } else {
        Vec::new()
    };
    let mut kept_members = kept_members;
    if !still_held.is_empty() {
        let (held, leaving): (Vec<_>, Vec<_>) = missing
            .into_iter()
            .partition(|(id, _)| still_held.contains(*id));
        missing = leaving;
        match options.remove_held {
            true => missing.extend(held),
            false => {
                warnings.push(held_warning(&held));
                kept_members.extend(
                    held.iter()
                        .map(|(id, email)| ((*id).clone(), (*email).clone())),
                );
            }
        }
        if options.remove_held {
            still_held.clear();
        }
    }
    if options.overwrite_existing && !options.remove_missing_users && !missing.is_empty() {
        warnings.push(format!(
            "sync.overwrite_existing is on: the server will remove {} member(s) that are no longer in the directory",
            missing.len()
        ));
    }

    let diff = diff(
        &members,
        &missing,
        &groups,
        &kept_groups,
        snapshot,
        state,
        &active,
    );
    if !options.remove_disabled {
        warnings.extend(disabled_invites(&members, state));
    }
    let refusal = guard(snapshot, state, options, &diff);
    let removal_emails = members
        .iter()
        .filter(|m| m.removed)
        .filter_map(|m| {
            let synced = state.members.get(&m.user.external_id)?;
            (synced != m.email).then(|| (m.user.external_id.clone(), synced.clone()))
        })
        .collect();
    let state_removals = members
        .iter()
        // The email came from the synced state: the directory no longer has one.
        .filter(|m| m.user.email.is_none())
        .map(|m| m.user.external_id.clone())
        .collect();
    // Freed before the user lists are built, which is when a large plan's memory peaks.
    drop(active);
    let users = users_by_state(&members);

    Plan {
        users,
        groups,
        skipped,
        diff,
        warnings,
        refusal,
        conflicts,
        kept_members,
        kept_groups,
        removal_emails,
        still_held,
        state_removals,
        options: options.clone(),
        users_synced: snapshot.users.is_some(),
        groups_synced: snapshot.groups.is_some(),
    }
}

/// A member or group the directory now names by another external id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rekey {
    /// The member's email or the group's name.
    pub name: String,
    pub from: String,
    pub to: String,
}

/// The members and groups of `state` that `snapshot` names by another external id (after the
/// id attribute changed, e.g. `ldap.external_id_attribute` from `dn` to `entryUUID`): a synced
/// member the read does not return under its id is the read's user with the same email and an
/// id orgsync never synced; a synced group is the read's group whose reference (its DN) is the
/// old id, else the only one with its name.
pub fn rekeys(snapshot: &Snapshot, state: &SyncedState) -> (Vec<Rekey>, Vec<Rekey>) {
    let mut members = Vec::new();
    if let Some(users) = &snapshot.users {
        let read: HashSet<&str> = users.iter().map(|u| u.external_id.as_str()).collect();
        let by_email: BTreeMap<&str, &str> = state
            .members
            .iter()
            .filter(|(id, _)| !read.contains(id.as_str()))
            .map(|(id, email)| (email.as_str(), id.as_str()))
            .collect();
        for user in users {
            let Some(email) = user.email.as_deref() else {
                continue;
            };
            if state.members.contains_key(&user.external_id) {
                continue;
            }
            if let Some(old) = by_email.get(email) {
                members.push(Rekey {
                    name: email.to_string(),
                    from: (*old).to_string(),
                    to: user.external_id.clone(),
                });
            }
        }
    }
    let mut groups = Vec::new();
    if let Some(read) = &snapshot.groups {
        let ids: HashSet<&str> = read.iter().map(|g| g.external_id.as_str()).collect();
        let gone: BTreeMap<&str, &SyncedGroup> = state
            .groups
            .iter()
            .filter(|(id, _)| !ids.contains(id.as_str()))
            .map(|(id, g)| (id.as_str(), g))
            .collect();
        let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, group) in &gone {
            by_name.entry(group.name.as_str()).or_default().push(id);
        }
        for group in read {
            if state.groups.contains_key(&group.external_id) {
                continue;
            }
            let old = match gone.contains_key(group.reference.as_str()) {
                true => Some(group.reference.as_str()),
                false => match by_name.get(group.name.as_str()).map(Vec::as_slice) {
                    Some([only]) => Some(*only),
                    _ => None,
                },
            };
            if let Some(old) = old {
                groups.push(Rekey {
                    name: group.name.clone(),
                    from: old.to_string(),
                    to: group.external_id.clone(),
                });
            }
        }
    }
    (members, groups)
}

/// `state` with the re-keyed members and groups under their new ids (group member lists and
/// held members too).
pub fn rekeyed(state: &SyncedState, members: &[Rekey], groups: &[Rekey]) -> SyncedState {
    let member_ids: BTreeMap<&str, &str> = members
        .iter()
        .map(|r| (r.from.as_str(), r.to.as_str()))
        .collect();
    let group_ids: BTreeMap<&str, &str> = groups
        .iter()
        .map(|r| (r.from.as_str(), r.to.as_str()))
        .collect();
    let member = |id: &String| {
        member_ids
            .get(id.as_str())
            .map_or_else(|| id.clone(), |to| to.to_string())
    };
    SyncedState {
        members: state
            .members
            .iter()
            .map(|(id, email)| (member(id), email.clone()))
            .collect(),
        groups: state
            .groups
            .iter()
            .map(|(id, group)| {
                let mut members: Vec<String> = group.members.iter().map(member).collect();
                members.sort();
                let id = group_ids
                    .get(id.as_str())
                    .map_or_else(|| id.clone(), |to| to.to_string());
                (
                    id,
                    SyncedGroup {
                        name: group.name.clone(),
                        members,
                    },
                )
            })
            .collect(),
        held: state.held.iter().map(member).collect(),
    }
}

/// Says who left the directory before the switch from Directory Connector and stays until the
/// admin removes them.
fn held_warning(held: &[(&String, &String)]) -> String {
    let mut emails: Vec<&str> = held.iter().map(|(_, email)| email.as_str()).collect();
    emails.sort_unstable();
    let shown = &emails[..emails.len().min(10)];
    let more = match emails.len() - shown.len() {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "{} member(s) left the directory before the switch from Directory Connector, which never removed them: {}{more}. They stay until you remove them: `orgsync sync --allow-removals`",
        emails.len(),
        shown.join(", ")
    )
}

/// Says who is invited although disabled (with `remove_disabled` off, as in Directory
/// Connector), so an admin who set a disabled filter is not surprised.
fn disabled_invites(members: &[Member<'_>], state: &SyncedState) -> Option<String> {
    let disabled: Vec<&str> = members
        .iter()
        .filter(|m| m.user.disabled && !m.removed)
        .filter(|m| !state.members.contains_key(&m.user.external_id))
        .map(|m| m.email)
        .collect();
    if disabled.is_empty() {
        return None;
    }
    let shown = &disabled[..disabled.len().min(10)];
    let more = match disabled.len() - shown.len() {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Some(format!(
        "{} disabled user(s) are invited anyway, because sync.remove_disabled is off: {}{more}. To keep disabled accounts out of the organization: `orgsync config set sync.remove_disabled true`",
        disabled.len(),
        shown.join(", ")
    ))
}

/// Users that pass normalisation, the conflicting entries, and the external ids of the entries
/// skipped (conflicts included).
type Normalised<'a> = (Vec<Member<'a>>, Vec<SkippedEntry>, Vec<&'a str>);

/// Applies Directory Connector's email rules: drop missing or over-long emails, and resolve
/// duplicates (identical repeats and tombstones of an active user are dropped; two different
/// active entries with one email are conflicts). Unlike Directory Connector, entries the server
/// would reject (an invalid email, an over-long external id) are dropped too, so one bad entry
/// never fails the import for everyone, and every dropped or conflicting entry is reported by
/// name.
fn normalise_users<'a>(
    users: &'a [DirectoryUser],
    state: &'a SyncedState,
    options: &PlanOptions,
    skipped: &mut Vec<SkippedEntry>,
) -> Normalised<'a> {
    let mut skipped_ids: Vec<&'a str> = Vec::new();
    let mut members: Vec<Member<'a>> = Vec::with_capacity(users.len());
    // email → index of the first active member with it
    let mut active_by_email: FxHashMap<&str, usize> = FxHashMap::default();
    active_by_email.reserve(users.len());
    let mut conflicting: BTreeSet<&str> = BTreeSet::new();

    // Active users first, so a tombstone never shadows the live account with the same email.
    let ordered = users
        .iter()
        .filter(|u| !u.deleted)
        .chain(users.iter().filter(|u| u.deleted));

    for user in ordered {
        // A tombstone has usually lost its email; the state still knows it if orgsync added it.
        let email = user.email.as_deref().or_else(|| {
            user.deleted
                .then(|| state.members.get(&user.external_id).map(String::as_str))?
        });
        let problem = match email {
            None => Some(SkipReason::NoEmail),
            Some(email) if longer_than(email, MAX_EMAIL_LEN) => Some(SkipReason::EmailTooLong),
            Some(email) if !is_valid_email(email) => Some(SkipReason::InvalidEmail),
            Some(_) if longer_than(&user.external_id, MAX_EXTERNAL_ID_LEN) => {
                Some(SkipReason::ExternalIdTooLong)
            }
            Some(_) => None,
        };
        let (Some(email), None) = (email, problem) else {
            skipped.push(SkippedEntry {
                kind: EntryKind::User,
                reference: user.reference.clone(),
                email: email.map(str::to_string),
                reason: problem.unwrap_or(SkipReason::NoEmail),
            });
            skipped_ids.push(&user.external_id);
            continue;
        };
        if user.deleted {
            if active_by_email.contains_key(email) {
                continue; // the tombstone of someone who is active again
            }
        } else if let Some(&first) = active_by_email.get(email) {
            if members[first].user != user {
                conflicting.insert(email);
            }
            continue; // an identical repeat is dropped silently
        } else {
            active_by_email.insert(email, members.len());
        }
        let removed = user.deleted || (options.remove_disabled && user.disabled);
        members.push(Member {
            user,
            email,
            removed,
        });
    }

    let mut conflicts = Vec::new();
    if !conflicting.is_empty() {
        for user in users {
            if let Some(email) = &user.email
                && conflicting.contains(email.as_str())
            {
                skipped_ids.push(&user.external_id);
                conflicts.push(SkippedEntry {
                    kind: EntryKind::User,
                    reference: user.reference.clone(),
                    email: Some(email.clone()),
                    reason: SkipReason::DuplicateEmail,
                });
            }
        }
        members.retain(|m| !conflicting.contains(m.email));
        skipped.extend(conflicts.iter().cloned());
    }
    members.sort_by(|a, b| {
        (a.email, a.user.external_id.as_str()).cmp(&(b.email, b.user.external_id.as_str()))
    });
    (members, conflicts, skipped_ids)
}

/// Whether `text` has more than `max` characters; a string of no more bytes has no more.
fn longer_than(text: &str, max: usize) -> bool {
    text.len() > max && text.chars().count() > max
}

/// An address both organization servers accept and mail can reach: one `@` with a name before
/// it and a domain after it (no empty labels), and no spaces or control characters anywhere.
/// Bitwarden's own check is looser (one `@`, not first or last), but an address with a space
/// or an empty domain label is a typo in the directory, not someone to invite.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.split('.').all(|label| !label.is_empty())
}

/// Why the server would reject a group, if it would.
fn group_problem(group: &DirectoryGroup) -> Option<SkipReason> {
    if group.name.trim().is_empty() {
        Some(SkipReason::NoGroupName)
    } else if longer_than(&group.name, MAX_GROUP_NAME_LEN) {
        Some(SkipReason::GroupNameTooLong)
    } else if longer_than(&group.external_id, MAX_EXTERNAL_ID_LEN) {
        Some(SkipReason::ExternalIdTooLong)
    } else {
        None
    }
}

/// Each group's members become its direct users plus the direct users of every group reachable
/// through nesting. Cycles are safe (visited set); cost is the size of the output, never
/// users × groups. A group the server would reject is skipped (with its external id), but its
/// members still reach the groups it is nested in.
fn flatten_groups(groups: &[DirectoryGroup]) -> (Vec<GroupEntry>, Vec<(String, SkippedEntry)>) {
    let mut out = Vec::with_capacity(groups.len());
    let mut skipped = Vec::new();
    let mut visited = vec![false; groups.len()];
    let mut reached = Vec::new();
    for (index, group) in groups.iter().enumerate() {
        if let Some(reason) = group_problem(group) {
            let entry = SkippedEntry {
                kind: EntryKind::Group,
                reference: group.reference.clone(),
                email: None,
                reason,
            };
            skipped.push((group.external_id.clone(), entry));
            continue;
        }
        reached.clear();
        let mut stack = vec![index];
        visited[index] = true;
        while let Some(current) = stack.pop() {
            reached.push(current);
            for &child in &groups[current].group_members {
                if child < groups.len() && !visited[child] {
                    visited[child] = true;
                    stack.push(child);
                }
            }
        }
        // Sorted and without repeats; a sorted Vec is cheaper than a BTreeSet per group.
        let mut members: Vec<&str> = Vec::new();
        for &g in &reached {
            visited[g] = false;
            members.extend(groups[g].user_members.iter().map(String::as_str));
        }
        members.sort_unstable();
        members.dedup();
        out.push(GroupEntry {
            name: group.name.clone(),
            external_id: group.external_id.clone(),
            member_external_ids: members.into_iter().map(str::to_string).collect(),
        });
    }
    out.sort_by(|a, b| (&a.name, &a.external_id).cmp(&(&b.name, &b.external_id)));
    (out, skipped)
}

fn diff(
    members: &[Member<'_>],
    missing: &[(&String, &String)],
    groups: &[GroupEntry],
    kept_groups: &[String],
    snapshot: &Snapshot,
    state: &SyncedState,
    active: &FxHashMap<&str, &str>,
) -> Diff {
    let mut diff = Diff::default();
    if snapshot.users.is_some() {
        // Room for every member being new, as on a first sync (without the doubling's spare).
        diff.invite
            .reserve(members.len().saturating_sub(state.members.len()));
        for m in members {
            let synced = state.members.get(&m.user.external_id);
            match (m.removed, synced) {
                (false, None) => diff.invite.push(MemberChange {
                    email: m.email.to_string(),
                    external_id: m.user.external_id.clone(),
                }),
                (false, Some(synced)) if synced != m.email => {
                    diff.email_changed.push(EmailChange {
                        external_id: m.user.external_id.clone(),
                        from: synced.clone(),
                        to: m.email.to_string(),
                    });
                }
                (true, Some(synced)) => diff.remove.push(MemberRemoval {
                    // The email the organization holds the member under.
                    email: synced.clone(),
                    external_id: m.user.external_id.clone(),
                    reason: if m.user.deleted {
                        RemovalReason::Deleted
                    } else {
                        RemovalReason::Disabled
                    },
                }),
                _ => {}
            }
        }
        for (id, email) in missing {
            diff.remove.push(MemberRemoval {
                email: (*email).clone(),
                external_id: (*id).clone(),
                reason: RemovalReason::Missing,
            });
        }
        diff.remove.sort_by(|a, b| a.email.cmp(&b.email));
        diff.email_changed.sort_by(|a, b| a.from.cmp(&b.from));
    }

    if snapshot.groups.is_some() {
        let email_of = |id: &str| -> String {
            active
                .get(id)
                .map(|e| e.to_string())
                .or_else(|| state.members.get(id).cloned())
                .unwrap_or_else(|| id.to_string())
        };
        let emails = |ids: &mut dyn Iterator<Item = &String>| -> Vec<String> {
            let mut list: Vec<String> = ids.map(|id| email_of(id)).collect();
            list.sort();
            list
        };
        // A skipped group is still in the directory: not gone, just not sent.
        let mut seen: FxHashSet<&str> = kept_groups.iter().map(String::as_str).collect();
        for group in groups {
            seen.insert(group.external_id.as_str());
            match state.groups.get(&group.external_id) {
                None => diff.groups_created.push(GroupChange {
                    name: group.name.clone(),
                    external_id: group.external_id.clone(),
                    renamed_from: None,
                    added: emails(&mut group.member_external_ids.iter()),
                    removed: Vec::new(),
                }),
                Some(before) => {
                    let now: BTreeSet<&String> = group.member_external_ids.iter().collect();
                    let then: BTreeSet<&String> = before.members.iter().collect();
                    let added = emails(&mut now.difference(&then).copied());
                    let removed = emails(&mut then.difference(&now).copied());
                    let renamed_from = (before.name != group.name).then(|| before.name.clone());
                    if renamed_from.is_some() || !added.is_empty() || !removed.is_empty() {
                        diff.groups_updated.push(GroupChange {
                            name: group.name.clone(),
                            external_id: group.external_id.clone(),
                            renamed_from,
                            added,
                            removed,
                        });
                    }
                }
            }
        }
        for (id, group) in &state.groups {
            if !seen.contains(id.as_str()) {
                diff.groups_gone.push(GroupChange {
                    name: group.name.clone(),
                    external_id: id.clone(),
                    renamed_from: None,
                    added: Vec::new(),
                    removed: Vec::new(),
                });
            }
        }
    }
    diff
}

/// The removal guard. Refuses a plan that removes more than `max_removals` members and more than
/// `max_removal_percent` of the synced members, and always refuses one built on an empty read
/// when members were synced before (a wrong filter or path looks exactly like that).
fn guard(
    snapshot: &Snapshot,
    state: &SyncedState,
    options: &PlanOptions,
    diff: &Diff,
) -> Option<Refusal> {
    let synced = state.members.len();
    let removals = diff.remove.len();
    let read_nothing = snapshot
        .users
        .as_ref()
        .is_some_and(|users| users.is_empty());
    if read_nothing && synced > 0 {
        return Some(Refusal {
            removals,
            synced_members: synced,
            message: format!(
                "the directory returned no users, but {synced} member(s) were synced before; refusing to remove everyone. Check {} with `orgsync test`",
                options.user_scope
            ),
            overridable: false,
        });
    }
    let over_count = removals > options.max_removals;
    let over_percent = removals * 100 > options.max_removal_percent as usize * synced;
    if over_count && over_percent {
        let names: Vec<&str> = diff
            .remove
            .iter()
            .take(10)
            .map(|r| r.email.as_str())
            .collect();
        let more = removals.saturating_sub(names.len());
        return Some(Refusal {
            removals,
            synced_members: synced,
            message: format!(
                "this sync would remove {removals} of {synced} synced member(s), more than safety.max_removals ({}) and safety.max_removal_percent ({}%): {}{}. Check the directory with `orgsync test`; if the removals are intended, run `orgsync sync --allow-removals`",
                options.max_removals,
                options.max_removal_percent,
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
            overridable: true,
        });
    }
    None
}

/// Directory Connector's request building: one request, or with `large_import` and more than
/// [`BATCH_SIZE`] objects, member batches (no groups) followed by group batches (no members).
fn build_requests(
    members: Vec<ImportMember>,
    groups: Vec<ImportGroup>,
    options: &PlanOptions,
) -> Vec<ImportRequest> {
    if members.is_empty() && groups.is_empty() && !options.overwrite_existing {
        return Vec::new();
    }
    let invite = options.invite_users_after_provisioning;
    if !options.large_import || members.len() + groups.len() <= BATCH_SIZE {
        return vec![ImportRequest {
            groups,
            members,
            overwrite_existing: options.overwrite_existing,
            large_import: false,
            invite_users_after_provisioning: invite,
        }];
    }
    let member_batches = members.chunks(BATCH_SIZE).map(|chunk| ImportRequest {
        groups: Vec::new(),
        members: chunk.to_vec(),
        overwrite_existing: false,
        large_import: true,
        invite_users_after_provisioning: invite,
    });
    let group_batches = groups.chunks(BATCH_SIZE).map(|chunk| ImportRequest {
        groups: chunk.to_vec(),
        members: Vec::new(),
        overwrite_existing: false,
        large_import: true,
        invite_users_after_provisioning: invite,
    });
    member_batches.chain(group_batches).collect()
}

fn users_by_state(members: &[Member<'_>]) -> UsersByState {
    let mut users = UsersByState::default();
    // Sized up front: these lists hold every user, and doubling would leave up to half spare.
    let deleted = members.iter().filter(|m| m.user.deleted).count();
    let disabled = members
        .iter()
        .filter(|m| !m.user.deleted && m.user.disabled)
        .count();
    users.deleted.reserve_exact(deleted);
    users.disabled.reserve_exact(disabled);
    users
        .enabled
        .reserve_exact(members.len() - deleted - disabled);
    for m in members {
        let entry = UserEntry {
            external_id: m.user.external_id.clone(),
            email: m.email.to_string(),
            reference: m.user.reference.clone(),
        };
        if m.user.deleted {
            users.deleted.push(entry);
        } else if m.user.disabled {
            users.disabled.push(entry);
        } else {
            users.enabled.push(entry);
        }
    }
    users
}

#[cfg(test)]
mod tests;
