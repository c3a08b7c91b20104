//! An emulator of Google's OAuth token endpoint and the Admin SDK Directory API calls a
//! directory sync client makes, written from Google's documentation (the facts, with sources,
//! are in `shared/reference/cloud-directories.md` §2):
//!
//! - `POST /token`: the JWT bearer grant. The assertion must be RS256, signed by the service
//!   account's key (checked against its certificate), `iss` = the account, `aud` = this token
//!   URL, `exp` at most an hour after `iat` and not past, `sub` a user of the account, and
//!   every scope granted to the account under domain-wide delegation; else Google's answers
//!   (`invalid_grant` "Invalid JWT Signature." / "Invalid email or User ID" / the short-lived
//!   token one, `unauthorized_client`);
//! - `GET /admin/directory/v1/users`, `/groups`, `/groups/{key}/members`: `customer` or
//!   `domain`, `maxResults` (at most 500 / 200 / 200) clamped to small pages, page tokens bound
//!   to the rest of the query, `showDeleted` (only deleted users), a subset of `query`,
//!   `fields` partial responses, an empty result without its array, and a user that is no
//!   administrator answered 403 "Not Authorized to access this resource/api".
//!
//! Faults, latency and the request log are [`crate::emulator`]'s; an injected 403 is a
//! `userRateLimitExceeded` quota answer.
//!
//! **Invariant:** the server only ever listens on 127.0.0.1.

mod api;

pub use api::SCOPES;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
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

/// How to start a [`GoogleServer`].
#[derive(Clone, Debug)]
pub struct GoogleOptions {
    pub port: u16,
    /// The most items on a page, whatever `maxResults` asks.
    pub page_size: usize,
    pub client_email: String,
    /// The service account's numeric client ID.
    pub client_id: String,
    pub customer_id: String,
    pub domains: Vec<String>,
    /// The service account's certificate (PEM) and private key (PEM, PKCS#8).
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub token_lifetime: Duration,
    pub latency: Duration,
}

impl GoogleOptions {
    /// Options for a service account whose key pair is `certificate` and `private_key`.
    pub fn with_key(certificate: PathBuf, private_key: PathBuf) -> GoogleOptions {
        GoogleOptions {
            port: 0,
            page_size: 3,
            client_email: "orgsync@orgsync-test.iam.gserviceaccount.com".into(),
            client_id: "104826389112345678901".into(),
            customer_id: "C0emul8r".into(),
            domains: vec!["example.com".into()],
            certificate,
            private_key,
            token_lifetime: Duration::from_secs(3600),
            latency: Duration::ZERO,
        }
    }
}

/// A user as the Directory API describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub primary_email: String,
    pub suspended: bool,
    pub archived: bool,
    /// Recently deleted (listed only with `showDeleted=true`).
    pub deleted: bool,
    pub org_unit_path: String,
}

impl User {
    pub fn active(id: &str, email: &str) -> User {
        User {
            id: id.into(),
            primary_email: email.into(),
            suspended: false,
            archived: false,
            deleted: false,
            org_unit_path: "/".into(),
        }
    }
}

/// A member of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub email: Option<String>,
    /// `OWNER`, `MANAGER` or `MEMBER`.
    pub role: String,
    /// `USER`, `GROUP` or `CUSTOMER` (everyone in the account).
    pub kind: String,
    /// `ACTIVE`, `SUSPENDED`, …
    pub status: String,
}

impl Member {
    pub fn user(user: &User) -> Member {
        Member {
            id: user.id.clone(),
            email: Some(user.primary_email.clone()),
            role: "MEMBER".into(),
            kind: "USER".into(),
            status: "ACTIVE".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub id: String,
    pub email: String,
    pub name: String,
    pub members: Vec<Member>,
}

pub(crate) struct Inner {
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    /// Access token → (expiry, the user it acts for).
    pub tokens: HashMap<String, (Instant, String)>,
    /// Users (lower-cased emails) whose admin role can read users and groups.
    pub admins: BTreeSet<String>,
    /// The scopes granted to the service account under domain-wide delegation.
    pub delegated_scopes: BTreeSet<String>,
    /// Seconds Google's clock is ahead of this machine's (to emulate a skewed clock here).
    pub clock_offset: i64,
}

pub(crate) struct Server {
    pub options: GoogleOptions,
    pub base_url: String,
    /// The service account's certificate, to check assertions with.
    pub public_key: Vec<u8>,
    inner: Mutex<Inner>,
    traffic: Arc<Traffic>,
}

impl Server {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn token_uri(&self) -> String {
        format!("{}/token", self.base_url)
    }
}

/// A running emulator; dropping it stops it.
pub struct GoogleServer {
    server: Arc<Server>,
    /// The server task (none for the controls' handle on the same state).
    _served: Option<Served>,
}

impl GoogleServer {
    /// Starts the emulator on 127.0.0.1 with the three read-only scopes delegated and no
    /// administrator yet.
    ///
    /// # Panics
    /// When the port cannot be bound or the certificate cannot be read.
    pub async fn start(options: GoogleOptions) -> GoogleServer {
        let (listener, addr) = crate::emulator::bind(options.port).await;
        let traffic = Arc::new(Traffic::default());
        traffic.set_latency(options.latency);
        let server = Arc::new(Server {
            base_url: format!("http://{addr}"),
            public_key: std::fs::read(&options.certificate)
                .expect("read the account's certificate"),
            inner: Mutex::new(Inner {
                users: BTreeMap::new(),
                groups: BTreeMap::new(),
                tokens: HashMap::new(),
                admins: BTreeSet::new(),
                delegated_scopes: api::SCOPES.iter().map(|s| s.to_string()).collect(),
                clock_offset: 0,
            }),
            traffic: traffic.clone(),
            options,
        });
        let app = Router::new()
            .route("/token", post(api::token))
            .route("/admin/directory/v1/users", get(api::users))
            .route("/admin/directory/v1/groups", get(api::groups))
            .route(
                "/admin/directory/v1/groups/{key}/members",
                get(api::members),
            )
            .nest("/_test", control())
            .fallback(api::not_found)
            .layer(middleware::from_fn_with_state(
                Emulation {
                    traffic,
                    injected: injected_error,
                },
                crate::emulator::middleware,
            ))
            .with_state(server.clone());
        GoogleServer {
            server,
            _served: Some(Served::start(listener, app, "Google")),
        }
    }

    /// `http://127.0.0.1:PORT`, the Directory API's root (`google.api_url`).
    pub fn base_url(&self) -> String {
        self.server.base_url.clone()
    }

    pub fn options(&self) -> &GoogleOptions {
        &self.server.options
    }

    /// The service account's JSON key as the Cloud console downloads it, its `token_uri`
    /// pointing here.
    pub fn key_file_json(&self) -> String {
        let options = &self.server.options;
        let private_key = std::fs::read_to_string(&options.private_key).expect("read the key");
        serde_json::json!({
            "type": "service_account",
            "project_id": "orgsync-test",
            "private_key_id": "3f2a0c9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
            "private_key": private_key,
            "client_email": options.client_email,
            "client_id": options.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.server.token_uri(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        })
        .to_string()
    }

    pub fn upsert_user(&self, user: User) {
        self.server.lock().users.insert(user.id.clone(), user);
    }

    /// Changes a user in place.
    pub fn change_user(&self, id: &str, change: impl FnOnce(&mut User)) {
        if let Some(user) = self.server.lock().users.get_mut(id) {
            change(user);
        }
    }

    /// Makes the user with this email an administrator who can read the directory.
    pub fn make_admin(&self, email: &str) {
        self.server.lock().admins.insert(email.to_lowercase());
    }

    pub fn upsert_group(&self, id: &str, email: &str, name: &str) {
        let mut inner = self.server.lock();
        let members = inner
            .groups
            .get(id)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        inner.groups.insert(
            id.to_string(),
            Group {
                id: id.into(),
                email: email.into(),
                name: name.into(),
                members,
            },
        );
    }

    pub fn add_member(&self, group: &str, member: Member) {
        if let Some(group) = self.server.lock().groups.get_mut(group) {
            group.members.retain(|m| m.id != member.id);
            group.members.push(member);
        }
    }

    pub fn remove_member(&self, group: &str, member: &str) {
        if let Some(group) = self.server.lock().groups.get_mut(group) {
            group.members.retain(|m| m.id != member);
        }
    }

    /// Grants (or, with `false`, withdraws) the scopes under domain-wide delegation.
    pub fn set_delegation(&self, granted: bool) {
        let mut inner = self.server.lock();
        inner.delegated_scopes = match granted {
            true => api::SCOPES.iter().map(|s| s.to_string()).collect(),
            false => BTreeSet::new(),
        };
    }

    /// Makes Google's clock run `seconds` ahead of this machine's, as when this machine's is
    /// off.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.server.lock().clock_offset = seconds;
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

/// The test controls under `/_test/` (ours, not Google's; never recorded or failed):
/// `GET requests`; `POST users` (a [`User`]), `users/delete` `{id}` (marks it deleted),
/// `groups` `{id, email, name}`, `members` `{group, member}` (a [`Member`]),
/// `members/remove` `{group, id}`, `fault` (a [`Fault`]), `delegation` `{granted}`,
/// `expire-tokens`.
fn control() -> Router<Arc<Server>> {
    use axum::Json;
    use axum::extract::State;
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    #[derive(Deserialize)]
    struct NewGroup {
        id: String,
        email: String,
        name: String,
    }
    #[derive(Deserialize)]
    struct NewMember {
        group: String,
        member: Member,
    }
    #[derive(Deserialize)]
    struct OldMember {
        group: String,
        id: String,
    }
    #[derive(Deserialize)]
    struct Delegation {
        granted: bool,
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
                    s.lock().users.insert(user.id.clone(), user);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/users/delete",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Id>| async move {
                    match s.lock().users.get_mut(&body.id) {
                        Some(user) => {
                            user.deleted = true;
                            StatusCode::NO_CONTENT
                        }
                        None => StatusCode::NOT_FOUND,
                    }
                },
            ),
        )
        .route(
            "/groups",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<NewGroup>| async move {
                    let mut inner = s.lock();
                    let members = inner
                        .groups
                        .get(&body.id)
                        .map(|g| g.members.clone())
                        .unwrap_or_default();
                    inner.groups.insert(
                        body.id.clone(),
                        Group {
                            id: body.id,
                            email: body.email,
                            name: body.name,
                            members,
                        },
                    );
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/members",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<NewMember>| async move {
                    match s.lock().groups.get_mut(&body.group) {
                        Some(group) => {
                            group.members.retain(|m| m.id != body.member.id);
                            group.members.push(body.member);
                            StatusCode::NO_CONTENT
                        }
                        None => StatusCode::NOT_FOUND,
                    }
                },
            ),
        )
        .route(
            "/members/remove",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<OldMember>| async move {
                    match s.lock().groups.get_mut(&body.group) {
                        Some(group) => {
                            group.members.retain(|m| m.id != body.id);
                            StatusCode::NO_CONTENT
                        }
                        None => StatusCode::NOT_FOUND,
                    }
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
            "/delegation",
            post(
                |State(s): State<Arc<Server>>, Json(body): Json<Delegation>| async move {
                    s.lock().delegated_scopes = match body.granted {
                        true => api::SCOPES.iter().map(|s| s.to_string()).collect(),
                        false => BTreeSet::new(),
                    };
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

/// Google's answer for an injected status: quota (403 and 429), backend errors, or others.
fn injected_error(fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (reason, domain, message) = match fault.status {
        403 => (
            "userRateLimitExceeded",
            "usageLimits",
            "User Rate Limit Exceeded",
        ),
        429 => ("rateLimitExceeded", "usageLimits", "Rate Limit Exceeded"),
        500 | 503 => ("backendError", "global", "Backend Error"),
        401 => ("authError", "global", "Invalid Credentials"),
        _ => ("badRequest", "global", "Bad Request"),
    };
    api::google_error(status, reason, domain, message)
}
