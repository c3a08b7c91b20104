//! An emulator of the OneLogin API calls a directory sync client makes, written from OneLogin's
//! documentation and SDKs (the facts, with sources, are in
//! `shared/reference/cloud-directories.md` §4):
//!
//! - `POST /auth/oauth2/v2/token`: HTTP Basic client credentials and a JSON body
//!   `{"grant_type":"client_credentials"}`; a 10-hour token; wrong credentials answer 401
//!   `{"status": {…, "message": "Authentication Failure"}}`.
//! - `GET /api/2/users`, `/api/2/roles`, `/api/2/roles/{id}/users`: bare JSON arrays, small
//!   pages (`limit` at most 100, clamped to `page_size`), cursors bound to their query in
//!   `After-Cursor` (empty on the last page) with `Before-Cursor`, `Total-Count`,
//!   `Total-Pages`, `Current-Page`, `Page-Items` and `Link`; filters by `email`, `username`,
//!   `firstname`, `lastname` (with `*`), `directory_id`, `updated_since`, and role `name`;
//!   an unknown parameter answers 400 in the flat error shape, an unknown role 404 in the v2
//!   shape.
//! - `GET /api/1/users` (each with `role_id`), `/api/1/roles`, `/api/1/groups`: the v1
//!   envelope with `pagination.next_link`, pages of at most 50, `bearer:<token>`.
//! - The account's budget (`X-RateLimit-Limit/Remaining/Reset`, the reset in seconds) on every
//!   answer, 429 once it is spent.
//!
//! Faults, latency and the request log are [`crate::emulator`]'s.
//!
//! **Invariant:** the server only ever listens on 127.0.0.1.

mod api;

use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// How to start a [`OneLoginServer`].
#[derive(Clone, Debug)]
pub struct OneLoginOptions {
    pub port: u16,
    /// The most items on a page, whatever `limit` asks.
    pub page_size: usize,
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime: Duration,
    /// Requests per window for the account.
    pub rate_limit: u64,
    pub rate_window: Duration,
    pub latency: Duration,
}

impl Default for OneLoginOptions {
    fn default() -> Self {
        OneLoginOptions {
            port: 0,
            page_size: 2,
            client_id: "4f1c2e3d5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d".into(),
            client_secret: "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
                .into(),
            token_lifetime: Duration::from_secs(36_000),
            rate_limit: 5000,
            rate_window: Duration::from_secs(3600),
            latency: Duration::ZERO,
        }
    }
}

/// A user as OneLogin describes it (the fields orgsync and the filters use).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub email: Option<String>,
    pub username: Option<String>,
    pub firstname: String,
    pub lastname: String,
    /// 0 unactivated, 1 active, 2 suspended, 3 locked, 4 password expired, 5 awaiting reset.
    pub status: i64,
    pub directory_id: Option<u64>,
    /// The user's one OneLogin group.
    pub group_id: Option<u64>,
}

impl User {
    pub fn active(id: u64, email: &str) -> User {
        let name = email.split('@').next().unwrap_or_default();
        User {
            id,
            email: Some(email.into()),
            username: Some(name.into()),
            firstname: name.into(),
            lastname: "Tester".into(),
            status: 1,
            directory_id: None,
            group_id: None,
        }
    }
}

pub(crate) struct Inner {
    pub users: BTreeMap<u64, (User, String)>,
    pub roles: BTreeMap<u64, (String, BTreeSet<u64>)>,
    pub groups: BTreeMap<u64, String>,
    pub tokens: HashMap<String, Instant>,
    /// The credential may read users (not "Authentication Only").
    pub may_read: bool,
    /// When the account's window started and how many requests it counted.
    pub window: (Instant, u64),
}

pub(crate) struct Server {
    pub options: OneLoginOptions,
    pub base_url: String,
    inner: Mutex<Inner>,
    traffic: Arc<Traffic>,
}

impl Server {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A running emulator; dropping it stops it.
pub struct OneLoginServer {
    server: Arc<Server>,
    /// The server task (none for the controls' handle on the same state).
    _served: Option<Served>,
}

impl OneLoginServer {
    /// Starts the emulator on 127.0.0.1.
    ///
    /// # Panics
    /// When the port cannot be bound.
    pub async fn start(options: OneLoginOptions) -> OneLoginServer {
        let (listener, addr) = crate::emulator::bind(options.port).await;
        let traffic = Arc::new(Traffic::default());
        traffic.set_latency(options.latency);
        let server = Arc::new(Server {
            base_url: format!("http://{addr}"),
            inner: Mutex::new(Inner {
                users: BTreeMap::new(),
                roles: BTreeMap::new(),
                groups: BTreeMap::new(),
                tokens: HashMap::new(),
                may_read: true,
                window: (Instant::now(), 0),
            }),
            traffic: traffic.clone(),
            options,
        });
        let app = Router::new()
            .route("/auth/oauth2/v2/token", post(api::token))
            .route("/api/2/users", get(api::users))
            .route("/api/2/roles", get(api::roles))
            .route("/api/2/roles/{id}/users", get(api::role_users))
            .route("/api/1/users", get(api::users_v1))
            .route("/api/1/roles", get(api::roles_v1))
            .route("/api/1/groups", get(api::groups))
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
        OneLoginServer {
            server,
            _served: Some(Served::start(listener, app, "OneLogin")),
        }
    }

    /// `http://127.0.0.1:PORT` (`onelogin.api_url`).
    pub fn base_url(&self) -> String {
        self.server.base_url.clone()
    }

    pub fn options(&self) -> &OneLoginOptions {
        &self.server.options
    }

    pub fn upsert_user(&self, user: User) {
        self.server.lock().users.insert(user.id, (user, now()));
    }

    pub fn change_user(&self, id: u64, change: impl FnOnce(&mut User)) {
        if let Some((user, updated)) = self.server.lock().users.get_mut(&id) {
            change(user);
            *updated = now();
        }
    }

    pub fn delete_user(&self, id: u64) {
        let mut inner = self.server.lock();
        inner.users.remove(&id);
        for (_, users) in inner.roles.values_mut() {
            users.remove(&id);
        }
    }

    pub fn upsert_role(&self, id: u64, name: &str) {
        let mut inner = self.server.lock();
        let users = inner.roles.remove(&id).map(|(_, u)| u).unwrap_or_default();
        inner.roles.insert(id, (name.into(), users));
    }

    pub fn assign_role(&self, role: u64, user: u64) {
        if let Some((_, users)) = self.server.lock().roles.get_mut(&role) {
            users.insert(user);
        }
    }

    pub fn unassign_role(&self, role: u64, user: u64) {
        if let Some((_, users)) = self.server.lock().roles.get_mut(&role) {
            users.remove(&user);
        }
    }

    pub fn upsert_group(&self, id: u64, name: &str) {
        self.server.lock().groups.insert(id, name.into());
    }

    /// Starts the account's rate-limit window afresh.
    pub fn fresh_window(&self) {
        self.server.lock().window = (Instant::now(), 0);
    }

    /// Whether the credential may read users ("Read users" or more, not "Authentication Only").
    pub fn set_may_read(&self, may: bool) {
        self.server.lock().may_read = may;
    }

    pub fn expire_tokens(&self) {
        self.server.lock().tokens.clear();
    }

    pub fn inject(&self, fault: Fault) {
        self.server.traffic.inject(fault);
    }

    pub fn clear_faults(&self) {
        self.server.traffic.clear_faults();
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

/// The test controls under `/_test/` (ours, not OneLogin's; never recorded, failed or
/// limited): `GET requests`; `POST users` (a [`User`]), `users/delete` `{id}`, `roles`
/// `{id, name}`, `roles/assign` `{role, user}`, `roles/unassign` `{role, user}`, `fault` (a
/// [`Fault`]), `expire-tokens`.
fn control() -> Router<Arc<Server>> {
    use axum::Json;
    use axum::extract::State;
    #[derive(Deserialize)]
    struct Id {
        id: u64,
    }
    #[derive(Deserialize)]
    struct Role {
        id: u64,
        name: String,
    }
    #[derive(Deserialize)]
    struct Assignment {
        role: u64,
        user: u64,
    }
    fn emulator(s: &Arc<Server>) -> OneLoginServer {
        OneLoginServer {
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
            "/users/delete",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Id>| async move {
                    emulator(&s).delete_user(body.id);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/roles",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Role>| async move {
                    emulator(&s).upsert_role(body.id, &body.name);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/roles/assign",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Assignment>| async move {
                    emulator(&s).assign_role(body.role, body.user);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/roles/unassign",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Assignment>| async move {
                    emulator(&s).unassign_role(body.role, body.user);
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
            "/expire-tokens",
            post(|State(s): State<Arc<Server>>| async move {
                s.lock().tokens.clear();
                StatusCode::NO_CONTENT
            }),
        )
}

/// OneLogin's answer for an injected status (the v2 shape); a 429 says when the budget resets.
fn injected_error(fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let name = match fault.status {
        401 => "Unauthorized",
        404 => "NotFoundError",
        429 => "TooManyRequests",
        _ => "InternalServerError",
    };
    let mut response = api::v2_error(status, name, status.canonical_reason().unwrap_or("Error"));
    if fault.status == 429 {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", 5000.into());
        headers.insert("x-ratelimit-remaining", 0.into());
        headers.insert("x-ratelimit-reset", 1.into());
    }
    response
}
