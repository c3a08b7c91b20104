//! Directory sources. Each source reads users and groups from one kind of directory and returns a
//! [`Snapshot`]; everything after that (normalising, flattening, diffing) is shared in
//! [`crate::plan`].
//!
//! **Invariant:** a source returns either a complete snapshot or an error. A read that stopped
//! half-way (a failed page, a size limit, a lost connection) is an error, never a short snapshot,
//! because the plan removes members that are missing from it.

pub mod ldap;

use std::future::Future;

/// A user as the directory describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryUser {
    /// Where the entry lives (LDAP: its DN). Used in reports.
    pub reference: String,
    /// The stable id sent to the organization.
    pub external_id: String,
    /// Lower-cased email, if the directory has (or orgsync could build) one.
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

/// Everything one read of the directory returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `None` when users are not synced.
    pub users: Option<Vec<DirectoryUser>>,
    /// `None` when groups are not synced.
    pub groups: Option<Vec<DirectoryGroup>>,
    /// Things the admin should know that do not stop the sync.
    pub warnings: Vec<String>,
}

/// What the caller wants from a read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// Also read deleted objects (AD tombstones) so they can be shown and removed.
    pub include_deleted: bool,
}

/// Receives progress while a source reads, for a progress indicator.
pub trait Progress: Send + Sync {
    /// `what` is "users" or "groups"; `count` entries of it have been read so far.
    fn entries_read(&self, what: &'static str, count: usize);
}

/// A progress sink that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn entries_read(&self, _what: &'static str, _count: usize) {}
}

/// The one trait every directory source implements.
pub trait Directory: Send + Sync {
    /// Reads the users and groups selected by the configuration.
    ///
    /// # Errors
    /// Any failure to connect, authenticate or read completely.
    fn read(
        &self,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<Snapshot, DirectoryError>> + Send;
}

/// Why a directory read failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error(
        "the directory rejected the bind as {bind_dn}: {message}; check ldap.bind_dn and the password (`orgsync config set-secret ldap.bind_password`)"
    )]
    Bind { bind_dn: String, message: String },
    #[error(
        "the directory did not answer within {seconds} s while {step}; raise ldap.timeout_seconds or check the server"
    )]
    Timeout { step: String, seconds: u64 },
    #[error("searching {base} for {filter} failed: {message}")]
    Search {
        base: String,
        filter: String,
        message: String,
    },
    #[error("{0}")]
    Config(String),
    #[error(
        "the password for {0} is not set; run `orgsync config set-secret ldap.bind_password` or set ORGSYNC_LDAP_BIND_PASSWORD"
    )]
    MissingPassword(String),
}
