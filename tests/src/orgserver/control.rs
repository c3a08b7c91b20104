//! The router: the emulated API behind the recording and fault-injection middleware, and the
//! test-control endpoints under `/_test/`, which the middleware leaves alone.
//!
//! Test-control endpoints (JSON, snake_case; ours, not any real server's):
//! - `GET  /_test/state`: `{flavour, base_url, org_id, client_id, uses_groups, import_count,
//!   members: [{email, external_id, status, type}], groups: [{name, external_id,
//!   member_emails}]}`. The client secret is not included.
//! - `GET  /_test/requests`: the recorded requests, `[{method, path, headers, body, status}]`,
//!   with `client_secret` values in bodies replaced by `<redacted>`.
//! - `POST /_test/fail-next` `{path_suffix, status, retry_after_secs?, times?}` (times default 1).
//! - `POST /_test/expire-tokens`.
//! - `POST /_test/members` `{email, external_id?, type?, status?}` (default `user`,
//!   `confirmed`): seeds a member as if added by hand.
//! - `POST /_test/members/remove` `{email}`: removes a member as if by hand in the Admin
//!   Console (404 when there is none).
//!
//! Each answers 204 on success (the GETs 200), and 400 `{"message": ...}` for a bad body.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::state::Shared;
use super::{MemberStatus, MemberType, RecordedRequest, api, errors, identity};

/// The largest body accepted: big enough for a batch of 2000 members or groups with long
/// externalIds (LDAP DNs), small enough to stop a runaway client.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let control = Router::new()
        .route("/state", get(state))
        .route("/requests", get(requests))
        .route("/fail-next", post(fail_next))
        .route("/expire-tokens", post(expire_tokens))
        .route("/members", post(add_member))
        .route("/members/remove", post(remove_member));
    Router::new()
        .route("/identity/connect/token", post(identity::token))
        .route("/api/public/organization/import", post(api::import))
        .route("/api/public/members", get(api::members))
        .route(
            "/api/public/members/{id}",
            get(api::member).put(api::update_member),
        )
        .route(
            "/api/public/members/{id}/group-ids",
            get(api::member_group_ids),
        )
        .route("/api/public/groups", get(api::groups))
        .route(
            "/api/public/groups/{id}",
            get(api::group).put(api::update_group),
        )
        .route(
            "/api/public/groups/{id}/member-ids",
            get(api::group_member_ids),
        )
        .nest("/_test", control)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            record_and_inject,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

fn is_control(path: &str) -> bool {
    path == "/_test" || path.starts_with("/_test/")
}

/// Records every request to the emulated API and answers it with an injected failure when
/// `fail_next` asked for one. The body is buffered so that it can be both recorded and handed
/// on.
async fn record_and_inject(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if is_control(&path) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut record = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status: 0,
    };

    let failure = shared.lock().take_failure(&path);
    let injected = failure.is_some();
    let response = match failure {
        Some(rule) => {
            let status =
                StatusCode::from_u16(rule.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            errors::injected(status, rule.retry_after_secs)
        }
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    };
    record.status = response.status().as_u16();
    tracing::info!(
        "{} {} -> {}{}",
        record.method,
        record.path,
        record.status,
        if injected { " (injected)" } else { "" }
    );
    shared.lock().requests.push(record);
    response
}

async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let inner = shared.lock();
    Json(json!({
        "flavour": shared.flavour,
        "base_url": shared.base_url,
        "org_id": shared.org_id,
        "client_id": shared.client_id(),
        "uses_groups": inner.org.uses_groups,
        "import_count": inner.import_count,
        "members": inner.org.members(),
        "groups": inner.org.groups(),
    }))
    .into_response()
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    let mut recorded = shared.lock().requests.clone();
    for request in &mut recorded {
        request.body = redact_client_secret(&request.body);
    }
    Json(recorded).into_response()
}

/// Replaces the value of every `client_secret` form field: the HTTP view may end up in logs.
fn redact_client_secret(body: &str) -> String {
    body.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _))
                if key.eq_ignore_ascii_case("client_secret")
                    || key.eq_ignore_ascii_case("clientsecret") =>
            {
                format!("{key}=<redacted>")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn bad_body(rejection: JsonRejection) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"message": rejection.body_text()})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct FailNext {
    path_suffix: String,
    status: u16,
    retry_after_secs: Option<u64>,
    times: Option<usize>,
}

async fn fail_next(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<FailNext>, JsonRejection>,
) -> Response {
    let Json(rule) = match body {
        Ok(rule) => rule,
        Err(rejection) => return bad_body(rejection),
    };
    if StatusCode::from_u16(rule.status).is_err() || rule.status < 400 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": format!("status {} is not an HTTP error status", rule.status)})),
        )
            .into_response();
    }
    shared.lock().add_failure(
        &rule.path_suffix,
        rule.status,
        rule.retry_after_secs,
        rule.times.unwrap_or(1),
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn expire_tokens(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().expire_tokens();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct NewMember {
    email: String,
    external_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<MemberType>,
    status: Option<MemberStatus>,
}

async fn add_member(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<NewMember>, JsonRejection>,
) -> Response {
    let Json(member) = match body {
        Ok(member) => member,
        Err(rejection) => return bad_body(rejection),
    };
    shared.lock().org.seed_member(
        &member.email,
        member.external_id.as_deref(),
        member.kind.unwrap_or(MemberType::User),
        member.status.unwrap_or(MemberStatus::Confirmed),
    );
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct RemovedMember {
    email: String,
}

async fn remove_member(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<RemovedMember>, JsonRejection>,
) -> Response {
    let Json(member) = match body {
        Ok(member) => member,
        Err(rejection) => return bad_body(rejection),
    };
    if shared.lock().org.remove_member_by_email(&member.email) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"message": format!("no member with email {}", member.email)})),
        )
            .into_response()
    }
}
