//! The router: the emulated endpoints behind the latency, fault-injection and recording
//! middleware, and the test-control endpoints under `/_test/` (ours, not Graph's; never
//! recorded, delayed or failed):
//!
//! - `GET  /_test/requests`: the request log.
//! - `POST /_test/users` (a [`User`] as JSON, snake_case), `POST /_test/users/delete` `{id}`
//!   (soft delete), `POST /_test/users/purge` `{id}`.
//! - `POST /_test/groups` `{id, name}`, `POST /_test/groups/delete` `{id}`.
//! - `POST /_test/members` `{group, member, kind}` (kind `user`, `group`, `device`, …),
//!   `POST /_test/members/remove` `{group, member}`.
//! - `POST /_test/fault` (a [`Fault`]), `POST /_test/expire-delta-links`,
//!   `POST /_test/expire-tokens`, `POST /_test/consent` `{consented}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::Server;
use super::api::{self, Collection, DeltaOf};
use super::state::{Kind, User};
use crate::emulator::{self, Emulation, Fault, Recorded as GraphRequest};

pub(crate) fn router(server: Arc<Server>) -> Router {
    let control = Router::new()
        .route("/requests", get(requests))
        .route("/users", post(upsert_user))
        .route("/users/delete", post(delete_user))
        .route("/users/purge", post(purge_user))
        .route("/groups", post(upsert_group))
        .route("/groups/delete", post(delete_group))
        .route("/members", post(add_member))
        .route("/members/remove", post(remove_member))
        .route("/fault", post(fault))
        .route("/expire-delta-links", post(expire_delta_links))
        .route("/expire-tokens", post(expire_tokens))
        .route("/consent", post(consent));
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(api::token))
        .route("/v1.0/users", collection(Collection::Users))
        .route("/v1.0/users/delta", delta(DeltaOf::Users))
        .route("/v1.0/groups", collection(Collection::Groups))
        .route("/v1.0/groups/delta", delta(DeltaOf::Groups))
        .route(
            "/v1.0/groups/{id}/members",
            collection_of(Collection::Members),
        )
        .route(
            "/v1.0/groups/{id}/transitiveMembers",
            collection_of(Collection::TransitiveMembers),
        )
        .route(
            "/v1.0/directory/administrativeUnits/{id}/members",
            collection_of(Collection::UnitMembers),
        )
        .route(
            "/v1.0/directory/deletedItems/microsoft.graph.user",
            collection(Collection::DeletedUsers),
        )
        .nest("/_test", control)
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(
            Emulation {
                traffic: server.traffic.clone(),
                injected: injected_error,
            },
            emulator::middleware,
        ))
        .with_state(server)
}

type Params = Query<HashMap<String, String>>;

/// The handler of a collection without an id in its path.
fn collection(which: Collection) -> axum::routing::MethodRouter<Arc<Server>> {
    get(
        move |State(s): State<Arc<Server>>,
              h: HeaderMap,
              Query(q): Params,
              RawQuery(r): RawQuery| { api::list(s, which.clone(), h, q, r) },
    )
}

/// The handler of a collection of the object whose id is in the path.
fn collection_of(which: fn(String) -> Collection) -> axum::routing::MethodRouter<Arc<Server>> {
    get(
        move |State(s): State<Arc<Server>>,
              Path(id): Path<String>,
              h: HeaderMap,
              Query(q): Params,
              RawQuery(r): RawQuery| { api::list(s, which(id), h, q, r) },
    )
}

fn delta(of: DeltaOf) -> axum::routing::MethodRouter<Arc<Server>> {
    get(
        move |State(s): State<Arc<Server>>,
              h: HeaderMap,
              Query(q): Params,
              RawQuery(r): RawQuery| { api::delta(s, of, h, q, r) },
    )
}

/// Graph's answer for an injected status: throttling, a transient failure, or another error.
fn injected_error(fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match fault.status {
        429 => ("TooManyRequests", "Too many requests."),
        503 => (
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ),
        504 => ("UnknownError", "The gateway timed out."),
        500 => ("generalException", "An unspecified error has occurred."),
        401 => (
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        ),
        _ => (
            "Request_BadRequest",
            "The request was refused by the emulator.",
        ),
    };
    let mut response = api::graph_error(status, code, message);
    if let Some(seconds) = fault.retry_after_secs {
        response.headers_mut().insert("retry-after", seconds.into());
    }
    if fault.status == 429 {
        response.headers_mut().insert(
            "x-ms-throttle-information",
            "ResourceUnitLimitExceeded".parse().expect("a header value"),
        );
    }
    response
}

async fn requests(State(server): State<Arc<Server>>) -> Json<Vec<GraphRequest>> {
    Json(server.traffic.requests())
}

async fn upsert_user(State(server): State<Arc<Server>>, Json(user): Json<User>) -> StatusCode {
    server.shared.lock().tenant.upsert_user(user);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct IdBody {
    id: String,
}

fn done(found: bool) -> StatusCode {
    match found {
        true => StatusCode::NO_CONTENT,
        false => StatusCode::NOT_FOUND,
    }
}

async fn delete_user(State(server): State<Arc<Server>>, Json(body): Json<IdBody>) -> StatusCode {
    done(server.shared.lock().tenant.delete_user(&body.id))
}

async fn purge_user(State(server): State<Arc<Server>>, Json(body): Json<IdBody>) -> StatusCode {
    done(server.shared.lock().tenant.purge_user(&body.id))
}

#[derive(Deserialize)]
struct GroupBody {
    id: String,
    name: String,
}

async fn upsert_group(
    State(server): State<Arc<Server>>,
    Json(body): Json<GroupBody>,
) -> StatusCode {
    server
        .shared
        .lock()
        .tenant
        .upsert_group(&body.id, &body.name);
    StatusCode::NO_CONTENT
}

async fn delete_group(State(server): State<Arc<Server>>, Json(body): Json<IdBody>) -> StatusCode {
    done(server.shared.lock().tenant.delete_group(&body.id))
}

#[derive(Deserialize)]
struct MemberBody {
    group: String,
    member: String,
    #[serde(default = "user_kind")]
    kind: Kind,
}

fn user_kind() -> Kind {
    Kind::User
}

async fn add_member(State(server): State<Arc<Server>>, Json(body): Json<MemberBody>) -> StatusCode {
    done(
        server
            .shared
            .lock()
            .tenant
            .add_member(&body.group, &body.member, body.kind),
    )
}

async fn remove_member(
    State(server): State<Arc<Server>>,
    Json(body): Json<MemberBody>,
) -> StatusCode {
    done(
        server
            .shared
            .lock()
            .tenant
            .remove_member(&body.group, &body.member),
    )
}

async fn fault(State(server): State<Arc<Server>>, Json(fault): Json<Fault>) -> StatusCode {
    server.traffic.inject(fault);
    StatusCode::NO_CONTENT
}

async fn expire_delta_links(State(server): State<Arc<Server>>) -> StatusCode {
    server.shared.lock().tenant.generation += 1;
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(server): State<Arc<Server>>) -> StatusCode {
    server.shared.lock().tokens.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct ConsentBody {
    consented: bool,
}

async fn consent(State(server): State<Arc<Server>>, Json(body): Json<ConsentBody>) -> StatusCode {
    server.shared.lock().consented = body.consented;
    StatusCode::NO_CONTENT
}
