//! An in-process emulator of the parts of a Bitwarden-compatible server that an organization
//! directory sync client talks to: the organization API-key login
//! (`POST {base}/identity/connect/token`), the organization import
//! (`POST {base}/api/public/organization/import`) and, on Bitwarden only, the public API's
//! members and groups (`GET {base}/api/public/members`, `…/members/{id}`,
//! `…/members/{id}/group-ids`, `…/groups`, `…/groups/{id}`, `…/groups/{id}/member-ids`:
//! lists as `{"object": "list", "data": […], "continuationToken": null}`, GUID ids, numeric
//! `type` and `status`; `PUT …/members/{id}` and `…/groups/{id}` reset what they leave out),
//! which Vaultwarden does not have (404).
//!
//! It exists so that orgsync's end-to-end tests (and the README demo) can run against something
//! that answers exactly like the real servers do, including their differences: pick a
//! [`Flavour`] to get Bitwarden cloud, Bitwarden self-hosted or Vaultwarden semantics. The
//! sources for the behaviour are `directory-connector.md` §5.4–5.12 (Bitwarden) and
//! `vaultwarden-import.md` (Vaultwarden, observed on a real server).
//!
//! Tests drive and inspect the server in two ways:
//! - in process, through [`OrgServer`]'s methods ([`OrgServer::members`], [`OrgServer::fail_next`],
//!   ...);
//! - over HTTP, through the test-control endpoints under `/_test/` (used by the
//!   `orgsync-test-server` binary and shell scripts). Those are ours, not part of any real
//!   server, and they are never recorded, failed on purpose or authenticated.
//!
//! **Invariant:** the server only ever listens on 127.0.0.1.
//!
//! Module map: `state` holds the organization and the recorded traffic, `import` applies
//! an import per flavour, `identity` and `api` are the emulated endpoints, `errors` builds
//! each flavour's error bodies and `control` has the `/_test` endpoints and the recording and
//! fault-injection middleware.

mod api;
mod control;
mod errors;
mod identity;
mod import;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use state::Shared;

/// Which real server to behave like. The differences are listed on each variant; everything
/// not listed is common.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    /// Bitwarden's cloud: like [`Flavour::BitwardenSelfHosted`], plus the 2000-entry limit on
    /// an import without `largeImport: true`.
    BitwardenCloud,
    /// A self-hosted Bitwarden server: members matched by externalId, `deleted` members
    /// removed, groups renamed, model-state errors as 400.
    #[default]
    BitwardenSelfHosted,
    /// Vaultwarden: members matched by email, `deleted` members revoked (and restored later),
    /// group names never updated, device fields required at login, body errors as 422.
    Vaultwarden,
}

impl Flavour {
    /// Every flavour, in the order the binary lists them.
    pub const ALL: [Flavour; 3] = [
        Flavour::BitwardenCloud,
        Flavour::BitwardenSelfHosted,
        Flavour::Vaultwarden,
    ];

    /// The name used on the command line and in the `/_test/state` JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::BitwardenCloud => "bitwarden-cloud",
            Flavour::BitwardenSelfHosted => "bitwarden-self-hosted",
            Flavour::Vaultwarden => "vaultwarden",
        }
    }

    /// True for both Bitwarden flavours, which share the import semantics.
    pub fn is_bitwarden(self) -> bool {
        !matches!(self, Flavour::Vaultwarden)
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flavour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flavour::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Flavour::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown flavour {s:?}, expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// How to start an [`OrgServer`].
#[derive(Clone, Debug)]
pub struct OrgServerOptions {
    /// Which server to emulate.
    pub flavour: Flavour,
    /// TCP port on 127.0.0.1; 0 picks a free one (see [`OrgServer::base_url`]).
    pub port: u16,
    /// How long an access token is valid; reported as `expires_in` (whole seconds) and as the
    /// JWT `exp` claim. Default 3600 s, as both real servers use.
    pub token_lifetime: Duration,
    /// The organization's id (a UUID); default a random one.
    pub org_id: Option<String>,
    /// The API key's client secret; default a random 30-character one like Bitwarden's.
    pub client_secret: Option<String>,
    /// Whether the organization may use groups (Bitwarden `UseGroups`, Vaultwarden
    /// `ORG_GROUPS_ENABLED`). Default true.
    pub uses_groups: bool,
}

impl Default for OrgServerOptions {
    fn default() -> Self {
        OrgServerOptions {
            flavour: Flavour::default(),
            port: 0,
            token_lifetime: Duration::from_secs(3600),
            org_id: None,
            client_secret: None,
            uses_groups: true,
        }
    }
}

/// A membership's status as the real servers report it. `Revoked` is Vaultwarden's only: its
/// import revokes instead of removing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Invited,
    Accepted,
    Confirmed,
    Revoked,
}

/// A membership's role. Imports only ever create `User`s; owners are protected from removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberType {
    Owner,
    Admin,
    User,
}

/// A member of the organization, as tests see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Lower-cased, as both servers store it.
    pub email: String,
    /// `None` for members not managed by a directory (the owner, manual invites, and in
    /// Vaultwarden members imported with an empty externalId).
    pub external_id: Option<String>,
    pub status: MemberStatus,
    #[serde(rename = "type")]
    pub kind: MemberType,
}

/// A group of the organization, with its members resolved to emails for easy assertions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub external_id: String,
    pub member_emails: BTreeSet<String>,
}

/// One request to the emulated API (everything outside `/_test/`), as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query string, e.g. `/identity/connect/token`.
    pub path: String,
    /// Header names lower-cased; repeated headers joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    /// The status the server answered with.
    pub status: u16,
}

/// A running emulated server. Dropping it shuts the server down; [`OrgServer::shutdown`] does
/// the same and waits for it.
pub struct OrgServer {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl OrgServer {
    /// Starts a server on 127.0.0.1 in the current tokio runtime.
    ///
    /// # Panics
    /// If the port cannot be bound; use [`OrgServer::try_start`] to handle that.
    pub async fn start(opts: OrgServerOptions) -> OrgServer {
        let port = opts.port;
        match OrgServer::try_start(opts).await {
            Ok(server) => server,
            Err(e) => panic!("cannot start the test organization server on 127.0.0.1:{port}: {e}"),
        }
    }

    /// Starts a server on 127.0.0.1 in the current tokio runtime, or says why it could not.
    pub async fn try_start(opts: OrgServerOptions) -> std::io::Result<OrgServer> {
        let listener =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, opts.port))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(&opts, format!("http://{addr}")));
        let app = control::router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                // A dropped sender counts as a shutdown request too.
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("test organization server stopped: {e}");
            }
        });
        Ok(OrgServer {
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops the server and waits until it no longer accepts connections.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The self-hosted style *base* URL, `http://127.0.0.1:PORT`: identity is at
    /// `{base}/identity`, the API at `{base}/api` (directory-connector.md §5.11).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The flavour this server emulates.
    pub fn flavour(&self) -> Flavour {
        self.shared.flavour
    }

    /// The organization's id (a UUID).
    pub fn org_id(&self) -> String {
        self.shared.org_id.clone()
    }

    /// The API key's client id, `organization.<org id>`.
    pub fn client_id(&self) -> String {
        self.shared.client_id()
    }

    /// The API key's client secret.
    pub fn client_secret(&self) -> String {
        self.shared.client_secret.clone()
    }

    /// The organization's members, in the order they joined.
    pub fn members(&self) -> Vec<Member> {
        self.shared.lock().org.members()
    }

    /// Gives the member with `email` and the group with `external_id` access to a collection
    /// (an opaque `{id, readOnly, hidePasswords, manage}` here), to see it survive updates.
    pub fn grant_collection(
        &self,
        email: &str,
        group_external_id: &str,
        collection: serde_json::Value,
    ) {
        let mut inner = self.shared.lock();
        if let Some(m) = inner.org.members.iter_mut().find(|m| m.email == email) {
            m.collections.push(collection.clone());
        }
        if let Some(g) = inner
            .org
            .groups
            .iter_mut()
            .find(|g| g.external_id == group_external_id)
        {
            g.collections.push(collection);
        }
    }

    /// The collections of the member with `email` and of the group with `external_id`.
    pub fn collections(
        &self,
        email: &str,
        group_external_id: &str,
    ) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let inner = self.shared.lock();
        let member = inner
            .org
            .members
            .iter()
            .find(|m| m.email == email)
            .map(|m| m.collections.clone());
        let group = inner
            .org
            .groups
            .iter()
            .find(|g| g.external_id == group_external_id)
            .map(|g| g.collections.clone());
        (member.unwrap_or_default(), group.unwrap_or_default())
    }

    /// The organization's groups, in the order they were created.
    pub fn groups(&self) -> Vec<Group> {
        self.shared.lock().org.groups()
    }

    /// Adds a member as if by hand (an owner, an admin, a manually invited user). The email is
    /// lower-cased. A member with the same email is replaced.
    pub fn add_member(
        &self,
        email: &str,
        external_id: Option<&str>,
        kind: MemberType,
        status: MemberStatus,
    ) {
        self.shared
            .lock()
            .org
            .seed_member(email, external_id, kind, status);
    }

    /// Removes the member with this email as an admin would by hand in the Admin Console
    /// (the membership and its group links go); returns whether there was one.
    pub fn remove_member(&self, email: &str) -> bool {
        self.shared.lock().org.remove_member_by_email(email)
    }

    /// Emails of the directory-managed members (with an externalId) that are not revoked: what a
    /// sync should have made equal to the directory.
    pub fn managed_emails(&self) -> BTreeSet<String> {
        self.members()
            .into_iter()
            .filter(|m| m.external_id.is_some() && m.status != MemberStatus::Revoked)
            .map(|m| m.email)
            .collect()
    }

    /// The member emails of the group named `name`.
    ///
    /// # Panics
    /// When there is no such group.
    #[track_caller]
    pub fn group_emails(&self, name: &str) -> BTreeSet<String> {
        let groups = self.groups();
        groups
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("group {name} missing from {groups:?}"))
            .member_emails
            .clone()
    }

    /// Every request to the emulated API so far (not `/_test/`), oldest first, including the
    /// failed ones.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many imports were accepted (answered 200).
    pub fn import_count(&self) -> usize {
        self.shared.lock().import_count
    }

    /// Total time the server spent handling accepted imports (the benchmark subtracts it to
    /// find orgsync's own share of a sync).
    pub fn import_time(&self) -> Duration {
        self.shared.lock().import_time
    }

    /// Makes the next `times` requests whose path ends with `path_suffix` (e.g.
    /// `"/connect/token"` or `"/organization/import"`) fail with `status`, before any other
    /// processing, with a `Retry-After` header when `retry_after_secs` is given. Rules are
    /// consumed in the order they were added.
    pub fn fail_next(
        &self,
        path_suffix: &str,
        status: u16,
        retry_after_secs: Option<u64>,
        times: usize,
    ) {
        self.shared
            .lock()
            .add_failure(path_suffix, status, retry_after_secs, times);
    }

    /// Invalidates every access token issued so far: the next import with one gets a 401.
    pub fn expire_tokens(&self) {
        self.shared.lock().expire_tokens();
    }
}

impl Drop for OrgServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl fmt::Debug for OrgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client secret stays out of debug output.
        f.debug_struct("OrgServer")
            .field("base_url", &self.shared.base_url)
            .field("flavour", &self.shared.flavour)
            .field("org_id", &self.shared.org_id)
            .finish_non_exhaustive()
    }
}
