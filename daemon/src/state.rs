//! Sync state in redb: what orgsync last synced (members, groups, request hash, times), the
//! device id, and the last refusal. The only module that opens the database.
//!
//! **Invariant:** [`State::record_sync`] writes the new synced state, hash and times in one
//! transaction, and is called only after the server accepted every import request. A crash at any
//! point leaves either the old state or the new one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::directory::{Entries, GroupRecord, Touched, UserRecord};
use crate::plan::{SyncedGroup, SyncedState};

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// externalId → email of members orgsync synced.
const MEMBERS: TableDefinition<&str, &str> = TableDefinition::new("members");
/// externalId → JSON [`StoredGroup`].
const GROUPS: TableDefinition<&str, &str> = TableDefinition::new("groups");
/// externalIds of members taken over from the organization that no read has returned since
/// ([`SyncedState::held`]).
const HELD: TableDefinition<&str, ()> = TableDefinition::new("held_members");
/// run id → JSON `orgsync_proto::api::RunRecord`, the daemon's run history.
const RUNS: TableDefinition<u64, &str> = TableDefinition::new("runs");
/// The directory copy that incremental reads update: entry key → JSON [`UserRecord`].
const COPY_USERS: TableDefinition<&str, &str> = TableDefinition::new("directory_users");
/// Keys of users a separate search marks disabled.
const COPY_DISABLED: TableDefinition<&str, ()> = TableDefinition::new("directory_disabled");
/// Entry key → JSON [`GroupRecord`].
const COPY_GROUPS: TableDefinition<&str, &str> = TableDefinition::new("directory_groups");

/// How many runs the history keeps.
const HISTORY_LIMIT: usize = 500;

const SCHEMA_VERSION: &str = "1";

const KEY_SCHEMA: &str = "schema_version";
const KEY_DEVICE_ID: &str = "device_id";
const KEY_HASH: &str = "last_hash";
const KEY_USER_SYNC: &str = "last_user_sync";
const KEY_GROUP_SYNC: &str = "last_group_sync";
const KEY_REFUSAL: &str = "last_refusal";
const KEY_ORGANIZATION: &str = "organization_id";
const KEY_POLLING: &str = "polling";
const KEY_COPY: &str = "directory_copy";
/// When a sync last sent the organization everything it must hold (RFC 3339).
const KEY_RECONCILED: &str = "last_reconciled";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state database {path} is in use by another orgsync process (is orgsyncd running?); stop it or use its API"
    )]
    InUse { path: PathBuf },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database {path}: {message}")]
    Database { path: PathBuf, message: String },
    #[error(
        "state database {path} was written by a newer orgsync (schema {found}); upgrade orgsync"
    )]
    NewerSchema { path: PathBuf, found: String },
    #[error(
        "the state database {path} is damaged ({detail}). orgsync does not start over on its own: the file records whom orgsync added to the organization, and without it members who leave the directory later are never removed. Restore it from a backup, or move it aside to start afresh (`mv {path} {path}.damaged`); the next sync then invites everyone in the directory again (existing members are matched, not duplicated) and removes nobody it did not add itself"
    )]
    Damaged { path: PathBuf, detail: String },
}

impl StateError {
    /// Whether the error is the file's, not the moment's: retrying will not help, a person must.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            StateError::Damaged { .. } | StateError::NewerSchema { .. }
        )
    }
}

#[derive(Serialize, Deserialize)]
struct StoredGroup {
    name: String,
    members: Vec<String>,
}

/// A refused sync, kept so `status` can say why nothing happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRefusal {
    pub at: String,
    pub message: String,
}

/// Times of the last successful sync (RFC 3339).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncTimes {
    pub users: Option<String>,
    pub groups: Option<String>,
    /// Set when this sync sent the full requests, which reconciles the organization.
    pub reconciled: Option<String>,
}

/// What the stored directory copy is: where the next incremental read starts, and which
/// settings it was read with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyInfo {
    pub watermark: String,
    /// A hash of the settings that shape a read; another value means the copy is stale.
    pub fingerprint: String,
    /// What the last sync read, reported again when nothing changed.
    pub users_read: usize,
    pub groups_read: usize,
}

/// How a recorded run changes the stored directory copy.
pub enum CopyUpdate<'a> {
    /// Nothing changed: only the watermark moves.
    Watermark(CopyInfo),
    /// A full read: replace it, or drop it when the directory gave no watermark.
    Replace {
        entries: &'a Entries,
        info: Option<CopyInfo>,
    },
    /// An incremental read: write the touched entries of `entries` (already updated in
    /// memory) and move the watermark.
    Apply {
        entries: &'a Entries,
        touched: &'a Touched,
        info: CopyInfo,
    },
}

/// Whether redb's error says the file is not (or no longer) a sound database.
fn is_damage(e: &redb::DatabaseError) -> bool {
    match e {
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => true,
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
            io.kind() == std::io::ErrorKind::InvalidData || io.to_string().contains("redb")
        }
        _ => false,
    }
}

/// The open state database.
pub struct State {
    db: Database,
    path: PathBuf,
}

/// The state database's file name in the data directory.
pub const STATE_FILE: &str = "state.redb";

impl State {
    /// Opens (or creates) `state.redb` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<State, StateError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StateError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        restrict_dir(data_dir);
        Self::open_file(data_dir.join(STATE_FILE))
    }

    /// Opens `state.redb` in `data_dir` if there is one; `None` when there is none, which a
    /// command that only looks (`status`) takes as "never synced" without creating it.
    pub fn open_existing(data_dir: &Path) -> Result<Option<State>, StateError> {
        let path = data_dir.join(STATE_FILE);
        match path.try_exists() {
            Ok(true) => Self::open_file(path).map(Some),
            Ok(false) => Ok(None),
            Err(e) => Err(StateError::Database {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// Opens the file, checking every page first: a file damaged outside redb (a disk error, a
    /// truncation, a hand edit) is an error, never a panic or a silently fresh database.
    fn open_file(path: PathBuf) -> Result<State, StateError> {
        let damaged = |detail: String| StateError::Damaged {
            path: path.clone(),
            detail,
        };
        // redb takes an empty file for a new database, which would forget every synced member.
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
            return Err(damaged("the file is empty".into()));
        }
        let opened = std::panic::catch_unwind(|| {
            Database::builder()
                .set_check_integrity_on_open(true)
                .create(&path)
        });
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(StateError::InUse { path });
            }
            Ok(Err(e)) if is_damage(&e) => return Err(damaged(e.to_string())),
            Ok(Err(e)) => {
                return Err(StateError::Database {
                    path: path.clone(),
                    message: e.to_string(),
                });
            }
            Err(_) => return Err(damaged("its pages do not hold together".into())),
        };
        let state = State { db, path };
        state.initialise()?;
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Database {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn initialise(&self) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
            txn.open_table(MEMBERS).map_err(|e| self.error(e))?;
            txn.open_table(GROUPS).map_err(|e| self.error(e))?;
            txn.open_table(HELD).map_err(|e| self.error(e))?;
            txn.open_table(RUNS).map_err(|e| self.error(e))?;
            txn.open_table(COPY_USERS).map_err(|e| self.error(e))?;
            txn.open_table(COPY_DISABLED).map_err(|e| self.error(e))?;
            txn.open_table(COPY_GROUPS).map_err(|e| self.error(e))?;
            let found = meta
                .get(KEY_SCHEMA)
                .map_err(|e| self.error(e))?
                .map(|v| v.value().to_string());
            match found {
                None => {
                    meta.insert(KEY_SCHEMA, SCHEMA_VERSION)
                        .map_err(|e| self.error(e))?;
                    let device_id = uuid::Uuid::new_v4().to_string();
                    meta.insert(KEY_DEVICE_ID, device_id.as_str())
                        .map_err(|e| self.error(e))?;
                }
                Some(v) if v == SCHEMA_VERSION => {}
                Some(found) => {
                    return Err(StateError::NewerSchema {
                        path: self.path.clone(),
                        found,
                    });
                }
            }
        }
        txn.commit().map_err(|e| self.error(e))
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(META).map_err(|e| self.error(e))?;
        Ok(table
            .get(key)
            .map_err(|e| self.error(e))?
            .map(|v| v.value().to_string()))
    }

    fn set_meta(&self, entries: &[(&str, Option<&str>)]) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut table = txn.open_table(META).map_err(|e| self.error(e))?;
            for (key, value) in entries {
                match value {
                    Some(value) => table.insert(*key, *value).map(|_| ()),
                    None => table.remove(*key).map(|_| ()),
                }
                .map_err(|e| self.error(e))?;
            }
        }
        txn.commit().map_err(|e| self.error(e))
    }

    /// The stable id this installation presents to the organization server.
    pub fn device_id(&self) -> Result<String, StateError> {
        Ok(self.meta(KEY_DEVICE_ID)?.unwrap_or_default())
    }

    pub fn last_hash(&self) -> Result<Option<String>, StateError> {
        self.meta(KEY_HASH)
    }

    pub fn sync_times(&self) -> Result<SyncTimes, StateError> {
        Ok(SyncTimes {
            users: self.meta(KEY_USER_SYNC)?,
            groups: self.meta(KEY_GROUP_SYNC)?,
            reconciled: self.meta(KEY_RECONCILED)?,
        })
    }

    pub fn last_refusal(&self) -> Result<Option<RecordedRefusal>, StateError> {
        Ok(self
            .meta(KEY_REFUSAL)?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    pub fn record_refusal(&self, refusal: &RecordedRefusal) -> Result<(), StateError> {
        let json = serde_json::to_string(refusal).map_err(|e| self.error(e))?;
        self.set_meta(&[(KEY_REFUSAL, Some(&json))])
    }

    /// The organization the synced state belongs to. Logging in to another one starts afresh.
    pub fn organization_id(&self) -> Result<Option<String>, StateError> {
        self.meta(KEY_ORGANIZATION)
    }

    /// How many members and groups orgsync last synced, without loading them.
    pub fn synced_counts(&self) -> Result<(usize, usize), StateError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let members = txn.open_table(MEMBERS).map_err(|e| self.error(e))?;
        let groups = txn.open_table(GROUPS).map_err(|e| self.error(e))?;
        Ok((
            members.len().map_err(|e| self.error(e))? as usize,
            groups.len().map_err(|e| self.error(e))? as usize,
        ))
    }

    /// What orgsync last synced into the organization.
    pub fn synced(&self) -> Result<SyncedState, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let members_table = txn.open_table(MEMBERS).map_err(|e| self.error(e))?;
        let mut members = BTreeMap::new();
        for row in members_table.iter().map_err(|e| self.error(e))? {
            let (id, email) = row.map_err(|e| self.error(e))?;
            members.insert(id.value().to_string(), email.value().to_string());
        }
        let groups_table = txn.open_table(GROUPS).map_err(|e| self.error(e))?;
        let mut groups = BTreeMap::new();
        for row in groups_table.iter().map_err(|e| self.error(e))? {
            let (id, json) = row.map_err(|e| self.error(e))?;
            let stored: StoredGroup =
                serde_json::from_str(json.value()).map_err(|e| self.error(e))?;
            groups.insert(
                id.value().to_string(),
                SyncedGroup {
                    name: stored.name,
                    members: stored.members,
                },
            );
        }
        let mut held = std::collections::BTreeSet::new();
        // A state written before held members existed has no such table.
        match txn.open_table(HELD) {
            Ok(table) => {
                for row in table.iter().map_err(|e| self.error(e))? {
                    held.insert(row.map_err(|e| self.error(e))?.0.value().to_string());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.error(e)),
        }
        Ok(SyncedState {
            members,
            groups,
            held,
        })
    }

    /// Whether members taken over from the organization are still held ([`SyncedState::held`]).
    pub fn has_held(&self) -> Result<bool, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        match txn.open_table(HELD) {
            Ok(table) => Ok(!table.is_empty().map_err(|e| self.error(e))?),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Takes over what the organization holds (`orgsync import-bwdc`): its directory-managed
    /// members and groups become the synced state, every member held until a read returns it.
    /// Only for a state that has synced nothing yet.
    ///
    /// # Errors
    /// When this installation has synced before: its own state is the truth then.
    pub fn adopt(&self, organization_id: &str, adopted: &SyncedState) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
            let synced_before = meta.get(KEY_HASH).map_err(|e| self.error(e))?.is_some()
                || !txn
                    .open_table(MEMBERS)
                    .map_err(|e| self.error(e))?
                    .is_empty()
                    .map_err(|e| self.error(e))?;
            if synced_before {
                return Err(StateError::Database {
                    path: self.path.clone(),
                    message: "this installation has synced before; its own record of the organization is kept (nothing was taken over)".into(),
                });
            }
            meta.insert(KEY_ORGANIZATION, organization_id)
                .map_err(|e| self.error(e))?;
        }
        self.write_synced(&txn, adopted)?;
        txn.commit().map_err(|e| self.error(e))
    }

    /// Records members and groups re-keyed on the server (`orgsync rekey`): `synced` under the
    /// new ids, and the request hash forgotten so the next sync sends everything.
    pub fn record_rekey(&self, synced: &SyncedState) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        self.write_synced(&txn, synced)?;
        txn.open_table(META)
            .map_err(|e| self.error(e))?
            .remove(KEY_HASH)
            .map_err(|e| self.error(e))?;
        txn.commit().map_err(|e| self.error(e))
    }

    /// Replaces the synced members, groups and held members inside `txn`.
    fn write_synced(
        &self,
        txn: &redb::WriteTransaction,
        synced: &SyncedState,
    ) -> Result<(), StateError> {
        let mut members = txn.open_table(MEMBERS).map_err(|e| self.error(e))?;
        members.retain(|_, _| false).map_err(|e| self.error(e))?;
        for (id, email) in &synced.members {
            members
                .insert(id.as_str(), email.as_str())
                .map_err(|e| self.error(e))?;
        }
        let mut groups = txn.open_table(GROUPS).map_err(|e| self.error(e))?;
        groups.retain(|_, _| false).map_err(|e| self.error(e))?;
        for (id, group) in &synced.groups {
            let json = serde_json::to_string(&StoredGroup {
                name: group.name.clone(),
                members: group.members.clone(),
            })
            .map_err(|e| self.error(e))?;
            groups
                .insert(id.as_str(), json.as_str())
                .map_err(|e| self.error(e))?;
        }
        let mut held = txn.open_table(HELD).map_err(|e| self.error(e))?;
        held.retain(|_, _| false).map_err(|e| self.error(e))?;
        for id in &synced.held {
            held.insert(id.as_str(), ()).map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// Records an accepted sync: the new synced state, the request hash and the sync times, in
    /// one transaction. Clears a recorded refusal.
    pub fn record_sync(
        &self,
        organization_id: &str,
        synced: &SyncedState,
        hash: &str,
        times: &SyncTimes,
        copy: CopyUpdate<'_>,
    ) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        self.write_copy(&txn, copy)?;
        self.write_synced(&txn, synced)?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
            meta.insert(KEY_HASH, hash).map_err(|e| self.error(e))?;
            meta.insert(KEY_ORGANIZATION, organization_id)
                .map_err(|e| self.error(e))?;
            for (key, time) in [
                (KEY_USER_SYNC, &times.users),
                (KEY_GROUP_SYNC, &times.groups),
                (KEY_RECONCILED, &times.reconciled),
            ] {
                if let Some(time) = time {
                    meta.insert(key, time.as_str()).map_err(|e| self.error(e))?;
                }
            }
            meta.remove(KEY_REFUSAL).map_err(|e| self.error(e))?;
        }
        txn.commit().map_err(|e| self.error(e))
    }

    /// Records an unchanged sync: the times move, and the directory copy as the read says.
    pub fn record_unchanged(
        &self,
        times: &SyncTimes,
        copy: CopyUpdate<'_>,
    ) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        self.write_copy(&txn, copy)?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
            for (key, time) in [
                (KEY_USER_SYNC, &times.users),
                (KEY_GROUP_SYNC, &times.groups),
            ] {
                match time {
                    Some(time) => meta.insert(key, time.as_str()).map(|_| ()),
                    None => meta.remove(key).map(|_| ()),
                }
                .map_err(|e| self.error(e))?;
            }
            meta.remove(KEY_REFUSAL).map_err(|e| self.error(e))?;
        }
        txn.commit().map_err(|e| self.error(e))
    }

    /// Forgets the hash, the sync times and the directory copy, so the next sync reads
    /// everything and posts. What is known to be in the organization stays, so a cache clear
    /// never turns into mass removals.
    pub fn clear_cache(&self) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        self.forget_sync_cache(&txn)?;
        txn.commit().map_err(|e| self.error(e))
    }

    /// Drops the hash, the sync times, the refusal and the directory copy.
    fn forget_sync_cache(&self, txn: &redb::WriteTransaction) -> Result<(), StateError> {
        let no_copy = CopyUpdate::Replace {
            entries: &Entries::default(),
            info: None,
        };
        self.write_copy(txn, no_copy)?;
        let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
        for key in [
            KEY_HASH,
            KEY_USER_SYNC,
            KEY_GROUP_SYNC,
            KEY_REFUSAL,
            KEY_RECONCILED,
        ] {
            meta.remove(key).map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// What the stored directory copy is, without loading it.
    pub fn copy_info(&self) -> Result<Option<CopyInfo>, StateError> {
        Ok(self
            .meta(KEY_COPY)?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// The stored directory copy.
    pub fn copy_entries(&self) -> Result<Entries, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let mut entries = Entries::default();
        let users = txn.open_table(COPY_USERS).map_err(|e| self.error(e))?;
        for row in users.iter().map_err(|e| self.error(e))? {
            let (key, json) = row.map_err(|e| self.error(e))?;
            let record: UserRecord =
                serde_json::from_str(json.value()).map_err(|e| self.error(e))?;
            entries.users.insert(key.value().to_string(), record);
        }
        let disabled = txn.open_table(COPY_DISABLED).map_err(|e| self.error(e))?;
        for row in disabled.iter().map_err(|e| self.error(e))? {
            let (key, _) = row.map_err(|e| self.error(e))?;
            entries.disabled.insert(key.value().to_string());
        }
        let groups = txn.open_table(COPY_GROUPS).map_err(|e| self.error(e))?;
        for row in groups.iter().map_err(|e| self.error(e))? {
            let (key, json) = row.map_err(|e| self.error(e))?;
            let record: GroupRecord =
                serde_json::from_str(json.value()).map_err(|e| self.error(e))?;
            entries.groups.insert(key.value().to_string(), record);
        }
        Ok(entries)
    }

    fn write_copy(
        &self,
        txn: &redb::WriteTransaction,
        copy: CopyUpdate<'_>,
    ) -> Result<(), StateError> {
        let (entries, touched, info) = match copy {
            CopyUpdate::Watermark(info) => {
                let json = serde_json::to_string(&info).map_err(|e| self.error(e))?;
                let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
                meta.insert(KEY_COPY, json.as_str())
                    .map_err(|e| self.error(e))?;
                return Ok(());
            }
            CopyUpdate::Replace { entries, info } => (entries, None, info),
            CopyUpdate::Apply {
                entries,
                touched,
                info,
            } => (entries, Some(touched), Some(info)),
        };
        let mut users = txn.open_table(COPY_USERS).map_err(|e| self.error(e))?;
        let mut disabled = txn.open_table(COPY_DISABLED).map_err(|e| self.error(e))?;
        let mut groups = txn.open_table(COPY_GROUPS).map_err(|e| self.error(e))?;
        // A replaced copy drops what the read no longer has (everything when the read cannot be
        // continued) and writes what differs, so an unchanged full read writes next to nothing.
        let all_users: Vec<&String>;
        let all_disabled: Vec<&String>;
        let all_groups: Vec<&String>;
        let (user_keys, disabled_keys, group_keys) = match touched {
            Some(t) => (
                t.users.iter().collect::<Vec<_>>(),
                t.disabled.iter().collect::<Vec<_>>(),
                t.groups.iter().collect::<Vec<_>>(),
            ),
            None => {
                let keep = info.is_some();
                users
                    .retain(|key, _| keep && entries.users.contains_key(key))
                    .map_err(|e| self.error(e))?;
                disabled
                    .retain(|key, ()| keep && entries.disabled.contains(key))
                    .map_err(|e| self.error(e))?;
                groups
                    .retain(|key, _| keep && entries.groups.contains_key(key))
                    .map_err(|e| self.error(e))?;
                all_users = entries.users.keys().filter(|_| keep).collect();
                all_disabled = entries.disabled.iter().filter(|_| keep).collect();
                all_groups = entries.groups.keys().filter(|_| keep).collect();
                (all_users, all_disabled, all_groups)
            }
        };
        for key in user_keys {
            let record = entries.users.get(key);
            self.write_row(&mut users, key, record)?;
        }
        for key in disabled_keys {
            if entries.disabled.contains(key) {
                disabled.insert(key.as_str(), ()).map(|_| ())
            } else {
                disabled.remove(key.as_str()).map(|_| ())
            }
            .map_err(|e| self.error(e))?;
        }
        for key in group_keys {
            let record = entries.groups.get(key);
            self.write_row(&mut groups, key, record)?;
        }
        let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
        match info {
            Some(info) => {
                let json = serde_json::to_string(&info).map_err(|e| self.error(e))?;
                meta.insert(KEY_COPY, json.as_str()).map(|_| ())
            }
            None => meta.remove(KEY_COPY).map(|_| ()),
        }
        .map_err(|e| self.error(e))
    }

    /// Stores `record` as JSON under `key` unless it is already stored so; removes the row for
    /// `None`.
    fn write_row<T: Serialize>(
        &self,
        table: &mut redb::Table<&str, &str>,
        key: &str,
        record: Option<&T>,
    ) -> Result<(), StateError> {
        let Some(record) = record else {
            table.remove(key).map_err(|e| self.error(e))?;
            return Ok(());
        };
        let json = serde_json::to_string(record).map_err(|e| self.error(e))?;
        let stored = table.get(key).map_err(|e| self.error(e))?;
        if stored.is_some_and(|v| v.value() == json) {
            return Ok(());
        }
        table
            .insert(key, json.as_str())
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Forgets everything synced (used when the API key now belongs to another organization).
    pub fn reset_for_organization(&self, organization_id: &str) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut members = txn.open_table(MEMBERS).map_err(|e| self.error(e))?;
            members.retain(|_, _| false).map_err(|e| self.error(e))?;
            let mut groups = txn.open_table(GROUPS).map_err(|e| self.error(e))?;
            groups.retain(|_, _| false).map_err(|e| self.error(e))?;
            let mut held = txn.open_table(HELD).map_err(|e| self.error(e))?;
            held.retain(|_, _| false).map_err(|e| self.error(e))?;
            self.forget_sync_cache(&txn)?;
            let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
            meta.insert(KEY_ORGANIZATION, organization_id)
                .map_err(|e| self.error(e))?;
        }
        txn.commit().map_err(|e| self.error(e))
    }
}

impl State {
    /// Whether the daemon polls. On by default; Start/Stop Sync persist it.
    pub fn polling(&self) -> Result<bool, StateError> {
        Ok(self.meta(KEY_POLLING)?.as_deref() != Some("off"))
    }

    pub fn set_polling(&self, on: bool) -> Result<(), StateError> {
        self.set_meta(&[(KEY_POLLING, Some(if on { "on" } else { "off" }))])
    }

    /// The id for the next run: one more than the newest in the history.
    pub fn next_run_id(&self) -> Result<u64, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let runs = txn.open_table(RUNS).map_err(|e| self.error(e))?;
        let last = runs.last().map_err(|e| self.error(e))?;
        Ok(last.map(|(id, _)| id.value() + 1).unwrap_or(1))
    }

    /// Appends a run to the history (JSON of `RunRecord`), dropping the oldest beyond the limit.
    pub fn record_run(&self, id: u64, record_json: &str) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut runs = txn.open_table(RUNS).map_err(|e| self.error(e))?;
            runs.insert(id, record_json).map_err(|e| self.error(e))?;
            let count = runs.len().map_err(|e| self.error(e))? as usize;
            if count > HISTORY_LIMIT {
                let cutoff = id.saturating_sub(HISTORY_LIMIT as u64);
                runs.retain(|run_id, _| run_id > cutoff)
                    .map_err(|e| self.error(e))?;
            }
        }
        txn.commit().map_err(|e| self.error(e))
    }

    /// The newest `limit` runs (JSON), newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<String>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let runs = txn.open_table(RUNS).map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        for row in runs.iter().map_err(|e| self.error(e))?.rev().take(limit) {
            let (_, json) = row.map_err(|e| self.error(e))?;
            out.push(json.value().to_string());
        }
        Ok(out)
    }
}

/// The data directory holds secrets (in file mode) and the state: keep it private to the user.
fn restrict_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SyncedState {
        let mut state = SyncedState::default();
        state.members.insert("u1".into(), "a@x.com".into());
        state.groups.insert(
            "g1".into(),
            SyncedGroup {
                name: "G".into(),
                members: vec!["u1".into()],
            },
        );
        state
    }

    fn copy() -> (Entries, CopyInfo) {
        let user = |id: &str| UserRecord {
            user: crate::directory::DirectoryUser {
                reference: format!("uid={id},dc=x"),
                external_id: id.into(),
                email: Some(format!("{id}@x")),
                disabled: false,
                deleted: false,
            },
            aliases: vec![format!("uid={id},dc=x")],
        };
        let mut entries = Entries::default();
        entries.users.insert("k1".into(), user("u1"));
        entries.users.insert("k2".into(), user("u2"));
        entries.disabled.insert("k2".into());
        entries.groups.insert(
            "kg".into(),
            GroupRecord {
                reference: "cn=g,dc=x".into(),
                external_id: "g1".into(),
                name: "G".into(),
                alias: "cn=g,dc=x".into(),
                members: vec!["uid=u1,dc=x".into()],
            },
        );
        let info = CopyInfo {
            watermark: "w1".into(),
            fingerprint: "f".into(),
            users_read: 2,
            groups_read: 1,
        };
        (entries, info)
    }

    #[test]
    fn sync_is_recorded_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let times = SyncTimes {
            users: Some("2026-01-01T00:00:00Z".into()),
            groups: None,
            reconciled: Some("2026-01-01T00:00:00Z".into()),
        };
        let (entries, info) = copy();
        {
            let state = State::open(dir.path()).unwrap();
            let update = CopyUpdate::Replace {
                entries: &entries,
                info: Some(info.clone()),
            };
            state
                .record_sync("org", &sample(), "hash1", &times, update)
                .unwrap();
        }
        let state = State::open(dir.path()).unwrap();
        assert_eq!(state.synced().unwrap(), sample());
        assert_eq!(state.last_hash().unwrap().as_deref(), Some("hash1"));
        assert_eq!(state.sync_times().unwrap(), times);
        assert_eq!(state.copy_info().unwrap(), Some(info));
        assert_eq!(state.copy_entries().unwrap(), entries);
    }

    #[test]
    fn an_organization_is_taken_over_only_by_a_state_that_synced_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let mut adopted = sample();
        adopted.held = adopted.members.keys().cloned().collect();
        assert!(!state.has_held().unwrap());
        state.adopt("org", &adopted).unwrap();
        assert_eq!(state.synced().unwrap(), adopted);
        assert!(state.has_held().unwrap());
        assert_eq!(state.organization_id().unwrap().as_deref(), Some("org"));
        let again = state.adopt("org", &adopted).unwrap_err();
        assert!(again.to_string().contains("has synced before"), "{again}");
        state.reset_for_organization("other").unwrap();
        assert!(!state.has_held().unwrap());
    }

    #[test]
    fn incremental_changes_write_only_touched_entries() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let (mut entries, mut info) = copy();
        let update = CopyUpdate::Replace {
            entries: &entries,
            info: Some(info.clone()),
        };
        state
            .record_sync("org", &sample(), "h", &SyncTimes::default(), update)
            .unwrap();

        // k1 deleted, k2 no longer disabled; the group is untouched.
        entries.users.remove("k1");
        entries.disabled.clear();
        info.watermark = "w2".into();
        let touched = Touched {
            users: vec!["k1".into()],
            disabled: vec!["k2".into()],
            groups: Vec::new(),
        };
        let update = CopyUpdate::Apply {
            entries: &entries,
            touched: &touched,
            info: info.clone(),
        };
        state
            .record_unchanged(&SyncTimes::default(), update)
            .unwrap();
        assert_eq!(state.copy_entries().unwrap(), entries);
        assert_eq!(state.copy_info().unwrap().unwrap().watermark, "w2");
    }

    #[test]
    fn clear_cache_keeps_members_and_groups_but_drops_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let (entries, info) = copy();
        let update = CopyUpdate::Replace {
            entries: &entries,
            info: Some(info),
        };
        state
            .record_sync("org", &sample(), "hash1", &SyncTimes::default(), update)
            .unwrap();
        state.clear_cache().unwrap();
        assert_eq!(state.last_hash().unwrap(), None);
        assert_eq!(state.synced().unwrap(), sample());
        assert_eq!(state.copy_info().unwrap(), None);
        assert_eq!(state.copy_entries().unwrap(), Entries::default());
    }

    #[test]
    fn second_open_reports_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _first = State::open(dir.path()).unwrap();
        let err = State::open(dir.path()).err().unwrap();
        assert!(matches!(err, StateError::InUse { .. }), "{err}");
    }
}
