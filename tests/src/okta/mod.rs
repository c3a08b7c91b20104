//! An emulator of the Okta Management API calls a directory sync client makes, and the org
//! authorization server's token endpoint, written from Okta's documentation (the facts, with
//! sources, are in `shared/reference/cloud-directories.md` §3):
//!
//! - API tokens: `Authorization: SSWS <token>`; a wrong one answers 401 `E0000011`.
//! - `POST /oauth2/v1/token`: client credentials of an API service app with a `private_key_jwt`
//!   client assertion (RS256 or ES256, checked against the app's registered key and `kid`,
//!   `aud` = the token URL, `iss` = `sub` = the client id, `exp` at most an hour ahead, `jti`
//!   not seen before), scopes granted to the app, and, when the app requires DPoP, the nonce
//!   exchange (`invalid_dpop_proof`, then `use_dpop_nonce` with a `DPoP-Nonce` header) and
//!   `token_type: DPoP`; data calls with a DPoP token need `Authorization: DPoP` and a proof
//!   signed by the same key with `htm`, `htu` and `ath`.
//! - `GET /api/v1/users`, `/api/v1/groups`, `/api/v1/groups/{id}/users`: bare JSON arrays,
//!   small pages (`limit` clamped to `page_size`), two separate `Link` header fields (`self`,
//!   `next` with an opaque `after`), an empty last page after a full one, `filter` expressions
//!   (`eq`, `gt`, `lt`, `ge`, `le`, `sw`, `and`, `or`, parentheses on the documented
//!   attributes), DEPROVISIONED users left out unless the filter names a status,
//!   `lastUpdated` / `lastMembershipUpdated` kept as Okta keeps them (a membership change moves
//!   only the latter), and Okta's error bodies.
//! - Rate limits per endpoint: `X-Rate-Limit-Limit/Remaining/Reset` on every answer, a 429
//!   `E0000047` once a window's budget is spent, and `Date` on every answer.
//!
//! Faults, latency and the request log are [`crate::emulator`]'s; an injected 429 is Okta's
//! rate-limit answer.
//!
//! **Invariant:** the server only ever listens on 127.0.0.1.

mod api;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::emulator::{Emulation, Served, Traffic};
pub use crate::emulator::{Fault, Recorded};

/// The scopes a service app is granted by default.
pub const SCOPES: [&str; 2] = ["okta.users.read", "okta.groups.read"];

/// How to start an [`OktaServer`].
#[derive(Clone, Debug)]
pub struct OktaOptions {
    pub port: u16,
    /// The most items on a page, whatever `limit` asks.
    pub page_size: usize,
    /// The API token accepted with `SSWS`.
    pub api_token: String,
    /// The service app's client id.
    pub client_id: String,
    /// The service app's registered public key (PEM: a public key or a certificate) and its
    /// `kid`; `None`: no service app.
    pub app_key: Option<(Vec<u8>, String)>,
    /// The app requires DPoP.
    pub require_dpop: bool,
    pub token_lifetime: Duration,
    /// Requests per window per endpoint (`None`: no limit, headers still sent).
    pub rate_limit: Option<u64>,
    pub rate_window: Duration,
    pub latency: Duration,
}

impl Default for OktaOptions {
    fn default() -> Self {
        OktaOptions {
            port: 0,
            page_size: 3,
            api_token: "00aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789-_x".into(),
            client_id: "0oa1emulat0rS3rv1ce7".into(),
            app_key: None,
            require_dpop: false,
            token_lifetime: Duration::from_secs(3600),
            rate_limit: None,
            rate_window: Duration::from_secs(60),
            latency: Duration::ZERO,
        }
    }
}

/// A user as Okta describes it (the fields orgsync and the filters use).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// `STAGED`, `PROVISIONED`, `ACTIVE`, `RECOVERY`, `PASSWORD_EXPIRED`, `LOCKED_OUT`,
    /// `SUSPENDED` or `DEPROVISIONED`.
    pub status: String,
    pub login: String,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
}

impl User {
    pub fn active(id: &str, email: &str) -> User {
        let name = email.split('@').next().unwrap_or_default();
        User {
            id: id.into(),
            status: "ACTIVE".into(),
            login: email.into(),
            email: Some(email.into()),
            first_name: name.into(),
            last_name: "Tester".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct StoredUser {
    pub user: User,
    pub created: String,
    pub last_updated: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub id: String,
    pub name: String,
    /// `OKTA_GROUP`, `APP_GROUP` or `BUILT_IN`.
    pub kind: String,
    pub created: String,
    pub last_updated: String,
    pub last_membership_updated: String,
    pub members: BTreeSet<String>,
}

/// An access token the token endpoint issued.
pub(crate) struct Issued {
    pub expires: Instant,
    pub scopes: BTreeSet<String>,
    /// The DPoP key's thumbprint it is bound to.
    pub bound_to: Option<String>,
}

pub(crate) struct Inner {
    pub users: BTreeMap<String, StoredUser>,
    pub groups: BTreeMap<String, Group>,
    pub tokens: HashMap<String, Issued>,
    pub api_token_valid: bool,
    /// Scopes granted to the service app.
    pub granted: BTreeSet<String>,
    /// The token administrator's (or the app's) admin role can read users and groups.
    pub may_read: bool,
    pub used_jti: HashSet<String>,
    pub nonce: String,
    /// Per endpoint: when its window started and how many requests it counted.
    pub windows: HashMap<String, (chrono::DateTime<chrono::Utc>, u64)>,
    pub rate_limit: Option<u64>,
}

pub(crate) struct Server {
    pub options: OktaOptions,
    pub base_url: String,
    inner: Mutex<Inner>,
    traffic: Arc<Traffic>,
}

impl Server {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v1/token", self.base_url)
    }
}

/// Now, as Okta writes times: `2026-08-01T10:00:00.000Z`.
pub(crate) fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A running emulator; dropping it stops it.
pub struct OktaServer {
    server: Arc<Server>,
    /// The server task (none for the controls' handle on the same state).
    _served: Option<Served>,
}

impl OktaServer {
    /// Starts the emulator on 127.0.0.1 with the API token valid and the app granted
    /// [`SCOPES`].
    ///
    /// # Panics
    /// When the port cannot be bound.
    pub async fn start(options: OktaOptions) -> OktaServer {
        let (listener, addr) = crate::emulator::bind(options.port).await;
        let traffic = Arc::new(Traffic::default());
        traffic.set_latency(options.latency);
        let server = Arc::new(Server {
            base_url: format!("http://{addr}"),
            inner: Mutex::new(Inner {
                users: BTreeMap::new(),
                groups: BTreeMap::new(),
                tokens: HashMap::new(),
                api_token_valid: true,
                granted: SCOPES.iter().map(|s| s.to_string()).collect(),
                may_read: true,
                used_jti: HashSet::new(),
                nonce: uuid::Uuid::new_v4().simple().to_string(),
                windows: HashMap::new(),
                rate_limit: options.rate_limit,
            }),
            traffic: traffic.clone(),
            options,
        });
        let app = Router::new()
            .route("/oauth2/v1/token", post(api::token))
            .route("/api/v1/users", get(api::users))
            .route("/api/v1/groups", get(api::groups))
            .route("/api/v1/groups/{id}/users", get(api::members))
            .fallback(api::not_found)
            .layer(middleware::from_fn_with_state(
                server.clone(),
                api::rate_limit,
            ))
            .nest("/_test", control())
            .layer(middleware::from_fn_with_state(
                Emulation {
                    traffic,
                    injected: injected_error,
                },
                crate::emulator::middleware,
            ))
            .with_state(server.clone());
        OktaServer {
            server,
            _served: Some(Served::start(listener, app, "Okta")),
        }
    }

    /// `http://127.0.0.1:PORT`, the org URL (`okta.org_url`).
    pub fn base_url(&self) -> String {
        self.server.base_url.clone()
    }

    pub fn options(&self) -> &OktaOptions {
        &self.server.options
    }

    /// Adds or changes a user (its `lastUpdated` moves).
    pub fn upsert_user(&self, user: User) {
        let mut inner = self.server.lock();
        let at = now();
        let created = inner
            .users
            .get(&user.id)
            .map_or_else(|| at.clone(), |u| u.created.clone());
        inner.users.insert(
            user.id.clone(),
            StoredUser {
                user,
                created,
                last_updated: at,
            },
        );
    }

    /// Changes a user's status (deactivating makes it DEPROVISIONED), as a lifecycle call does.
    pub fn set_status(&self, id: &str, status: &str) {
        if let Some(user) = self.server.lock().users.get_mut(id) {
            user.user.status = status.into();
            user.last_updated = now();
        }
    }

    /// Deletes a user for good (only a deprovisioned one can be), and its memberships.
    pub fn delete_user(&self, id: &str) {
        let mut inner = self.server.lock();
        inner.users.remove(id);
        let at = now();
        for group in inner.groups.values_mut() {
            if group.members.remove(id) {
                group.last_membership_updated = at.clone();
            }
        }
    }

    /// Adds a group or renames one (its `lastUpdated` moves, its members stay).
    pub fn upsert_group(&self, id: &str, name: &str) {
        let mut inner = self.server.lock();
        let at = now();
        match inner.groups.get_mut(id) {
            Some(group) => {
                group.name = name.into();
                group.last_updated = at;
            }
            None => {
                inner.groups.insert(
                    id.into(),
                    Group {
                        id: id.into(),
                        name: name.into(),
                        kind: "OKTA_GROUP".into(),
                        created: at.clone(),
                        last_updated: at.clone(),
                        last_membership_updated: at,
                        members: BTreeSet::new(),
                    },
                );
            }
        }
    }

    /// Sets a group's type (`OKTA_GROUP`, `APP_GROUP`, `BUILT_IN`).
    pub fn set_group_type(&self, id: &str, kind: &str) {
        if let Some(group) = self.server.lock().groups.get_mut(id) {
            group.kind = kind.into();
        }
    }

    pub fn delete_group(&self, id: &str) {
        self.server.lock().groups.remove(id);
    }

    /// Adds a user to a group: only the group's `lastMembershipUpdated` moves.
    pub fn add_member(&self, group: &str, user: &str) {
        if let Some(group) = self.server.lock().groups.get_mut(group)
            && group.members.insert(user.into())
        {
            group.last_membership_updated = now();
        }
    }

    pub fn remove_member(&self, group: &str, user: &str) {
        if let Some(group) = self.server.lock().groups.get_mut(group)
            && group.members.remove(user)
        {
            group.last_membership_updated = now();
        }
    }

    /// Moves every timestamp `age` into the past, as for a directory untouched for that long.
    pub fn age(&self, age: Duration) {
        let shift = |stamp: &mut String| {
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(stamp) {
                let at = at.with_timezone(&chrono::Utc)
                    - chrono::Duration::from_std(age).unwrap_or_default();
                *stamp = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            }
        };
        let mut inner = self.server.lock();
        for user in inner.users.values_mut() {
            shift(&mut user.created);
            shift(&mut user.last_updated);
        }
        for group in inner.groups.values_mut() {
            shift(&mut group.created);
            shift(&mut group.last_updated);
            shift(&mut group.last_membership_updated);
        }
    }

    /// Revokes (or restores) the API token.
    pub fn set_api_token_valid(&self, valid: bool) {
        self.server.lock().api_token_valid = valid;
    }

    /// The scopes granted to the service app.
    pub fn grant(&self, scopes: &[&str]) {
        self.server.lock().granted = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// Whether the admin role behind the token or app can read users and groups.
    pub fn set_may_read(&self, may: bool) {
        self.server.lock().may_read = may;
    }

    /// Requests per window per endpoint from now on (`None`: no limit).
    pub fn set_rate_limit(&self, limit: Option<u64>) {
        let mut inner = self.server.lock();
        inner.rate_limit = limit;
        inner.windows.clear();
    }

    /// Invalidates every access token issued so far.
    pub fn expire_tokens(&self) {
        self.server.lock().tokens.clear();
    }

    pub fn inject(&self, fault: Fault) {
        self.server.traffic.inject(fault);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.server.traffic.set_latency(latency);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.traffic.requests()
    }

    pub fn clear_requests(&self) {
        self.server.traffic.clear_requests();
    }
}

/// The test controls under `/_test/` (ours, not Okta's; never recorded, failed or limited):
/// `GET requests`; `POST users` (a [`User`]), `users/status` `{id, status}`, `groups`
/// `{id, name}`, `members` `{group, user}`, `members/remove` `{group, user}`, `fault` (a
/// [`Fault`]), `rate-limit` `{limit}`, `expire-tokens`.
fn control() -> Router<Arc<Server>> {
    use axum::Json;
    use axum::extract::State;
    #[derive(Deserialize)]
    struct Status {
        id: String,
        status: String,
    }
    #[derive(Deserialize)]
    struct NewGroup {
        id: String,
        name: String,
    }
    #[derive(Deserialize)]
    struct Membership {
        group: String,
        user: String,
    }
    #[derive(Deserialize)]
    struct Limit {
        limit: Option<u64>,
    }
    fn emulator(s: &Arc<Server>) -> OktaServer {
        OktaServer {
            server: s.clone(),
            _served: None,
        }
    }
    Router::new()
        .route(
            "/requests",
            get(|State(s): State<Arc<Server>>| async move { Json(s.traffic.requests()) }),
        )
        .route(
            "/users",
            post(
                |State(s): State<Arc<Server>>, Json(user): Json<User>| async move {
                    emulator(&s).upsert_user(user);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/users/status",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Status>| async move {
                    emulator(&s).set_status(&body.id, &body.status);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/groups",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<NewGroup>| async move {
                    emulator(&s).upsert_group(&body.id, &body.name);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/members",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Membership>| async move {
                    emulator(&s).add_member(&body.group, &body.user);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/members/remove",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Membership>| async move {
                    emulator(&s).remove_member(&body.group, &body.user);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/fault",
            post(
                |State(s): State<Arc<Server>>, Json(fault): Json<Fault>| async move {
                    s.traffic.inject(fault);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/rate-limit",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Limit>| async move {
                    emulator(&s).set_rate_limit(body.limit);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/expire-tokens",
            post(|State(s): State<Arc<Server>>| async move {
                s.lock().tokens.clear();
                StatusCode::NO_CONTENT
            }),
        )
}

/// Okta's answer for an injected status; a 429 carries the rate-limit headers of a spent
/// window that resets in two seconds.
fn injected_error(fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, summary) = api::summary_of(fault.status);
    let mut response = api::okta_error(status, code, summary);
    if fault.status == 429 {
        let reset = chrono::Utc::now().timestamp() + 2;
        let headers = response.headers_mut();
        headers.insert("x-rate-limit-limit", 600.into());
        headers.insert("x-rate-limit-remaining", 0.into());
        headers.insert("x-rate-limit-reset", reset.into());
    }
    response
}
