//! An in-process directory for the engine's unit tests: entries a test changes at will, a
//! watermark that moves with every change, reads it can make fail, and a log of the reads.

use std::sync::{Arc, Mutex, PoisonError};

use super::{
    Changes, Delta, Directory, DirectoryError, Entries, Failure, FullRead, Progress, ReadOptions,
    UserRecord,
};

/// Which read the engine asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    Full,
    Changes,
}

#[derive(Clone, Default)]
pub struct FakeDirectory {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    entries: Entries,
    /// Moves on with every change: the watermark.
    version: u64,
    tracks_changes: bool,
    /// The next read fails like this.
    fail_next: Option<Failure>,
    /// Watermarks before this version are no longer known to the directory.
    forgotten_before: u64,
    reads: Vec<ReadKind>,
}

/// Debug shows no content: the engine's fingerprint of the settings must not change with it.
impl std::fmt::Debug for FakeDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeDirectory")
    }
}

impl FakeDirectory {
    pub fn new(tracks_changes: bool) -> FakeDirectory {
        let fake = FakeDirectory::default();
        fake.lock().tracks_changes = tracks_changes;
        fake
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_user(&self, key: &str, record: UserRecord) {
        let mut inner = self.lock();
        inner.entries.users.insert(key.into(), record);
        inner.version += 1;
    }

    pub fn remove_user(&self, key: &str) {
        let mut inner = self.lock();
        inner.entries.users.remove(key);
        inner.version += 1;
    }

    pub fn fail_next_read(&self, failure: Failure) {
        self.lock().fail_next = Some(failure);
    }

    /// Makes every watermark handed out so far unknown (an expired delta token).
    pub fn forget_watermarks(&self) {
        let mut inner = self.lock();
        inner.version += 1;
        inner.forgotten_before = inner.version;
    }

    /// The reads so far, in order, and forgets them.
    pub fn take_reads(&self) -> Vec<ReadKind> {
        std::mem::take(&mut self.lock().reads)
    }

    pub fn tracks_changes(&self) -> bool {
        self.lock().tracks_changes
    }

    fn begin(&self, kind: ReadKind) -> Result<std::sync::MutexGuard<'_, Inner>, DirectoryError> {
        let mut inner = self.lock();
        inner.reads.push(kind);
        match inner.fail_next.take() {
            Some(failure) => Err(DirectoryError::new(failure, "the fake directory failed")),
            None => Ok(inner),
        }
    }
}

impl Directory for FakeDirectory {
    async fn read(
        &self,
        _options: ReadOptions,
        _progress: &dyn Progress,
    ) -> Result<FullRead, DirectoryError> {
        let inner = self.begin(ReadKind::Full)?;
        Ok(FullRead {
            entries: inner.entries.clone(),
            watermark: inner.tracks_changes.then(|| inner.version.to_string()),
            warnings: Vec::new(),
        })
    }

    /// Changes are sent as a listing of everything (like a delta that names no deletions), or
    /// nothing when the watermark is current.
    async fn read_changes(
        &self,
        watermark: &str,
        _progress: &dyn Progress,
    ) -> Result<Option<Changes>, DirectoryError> {
        let inner = self.begin(ReadKind::Changes)?;
        let since: u64 = watermark.parse().unwrap_or_default();
        if since < inner.forgotten_before {
            return Ok(None);
        }
        let mut changes = Changes {
            watermark: inner.version.to_string(),
            ..Changes::default()
        };
        if since != inner.version {
            let entries = &inner.entries;
            let listing = |keys: Vec<String>| Some(keys.into_iter().collect());
            changes.users = Delta {
                upserts: entries.users.clone().into_iter().collect(),
                deletes: Vec::new(),
                present: listing(entries.users.keys().cloned().collect()),
            };
            changes.groups = Delta {
                upserts: entries.groups.clone().into_iter().collect(),
                deletes: Vec::new(),
                present: listing(entries.groups.keys().cloned().collect()),
            };
        }
        Ok(Some(changes))
    }

    async fn follow(&self, _on_change: &(dyn Fn() + Send + Sync)) -> Result<bool, DirectoryError> {
        Ok(false)
    }
}
