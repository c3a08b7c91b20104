//! The emulated endpoints: the v2 token endpoint, the v2 users, roles and role users listings
//! with cursor headers, the v1 groups listing, the account's rate limit, and OneLogin's three
//! error body shapes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::Server;

/// Shape 1, of v1 and the token endpoint: `{"status": {"error", "code", "type", "message"}}`.
pub fn v1_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"status": {"error": true, "code": status.as_u16(), "type": kind, "message": message}});
    (status, Json(body)).into_response()
}

/// Shape 2, of v2 resources: `{"statusCode", "name", "message"}`.
pub fn v2_error(status: StatusCode, name: &str, message: &str) -> Response {
    let body = json!({"statusCode": status.as_u16(), "name": name, "message": message});
    (status, Json(body)).into_response()
}

/// Shape 3, flat: `{"error", "code", "type", "message"}`.
pub fn flat_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": true, "code": status.as_u16(), "type": kind, "message": message});
    (status, Json(body)).into_response()
}

pub async fn not_found() -> Response {
    v2_error(StatusCode::NOT_FOUND, "NotFoundError", "Not Found")
}

/// Counts every request against the account's window, answers 429 once it is spent, and sends
/// the budget on every answer (the reset in seconds from now).
pub async fn rate_limit(
    State(server): State<Arc<Server>>,
    request: Request,
    next: Next,
) -> Response {
    let window = server.options.rate_window;
    let limit = server.options.rate_limit;
    let (remaining, reset, over) = {
        let mut inner = server.lock();
        let now = Instant::now();
        if now >= inner.window.0 + window {
            inner.window = (now, 0);
        }
        inner.window.1 += 1;
        let reset = (inner.window.0 + window)
            .saturating_duration_since(now)
            .as_secs()
            + 1;
        (
            limit.saturating_sub(inner.window.1),
            reset,
            inner.window.1 > limit,
        )
    };
    let mut response = match over {
        true => v2_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Rate limit exceeded",
        ),
        false => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", limit.into());
    headers.insert("x-ratelimit-remaining", remaining.into());
    headers.insert("x-ratelimit-reset", reset.into());
    response
}

/// `POST /auth/oauth2/v2/token`.
pub async fn token(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let options = &server.options;
    let refused = || {
        v1_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Authentication Failure",
        )
    };
    let credentials = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some((id, secret)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return refused();
    };
    if id != options.client_id || secret != options.client_secret {
        return refused();
    }
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let grant: Option<Value> = serde_json::from_str(&body).ok();
    if !json_body
        || grant.as_ref().and_then(|g| g["grant_type"].as_str()) != Some("client_credentials")
    {
        return v1_error(
            StatusCode::BAD_REQUEST,
            "bad request",
            "grant_type is required",
        );
    }
    let token = format!("{}", uuid::Uuid::new_v4().simple());
    server
        .lock()
        .tokens
        .insert(token.clone(), Instant::now() + options.token_lifetime);
    Json(json!({
        "access_token": token,
        "created_at": super::now(),
        "expires_in": options.token_lifetime.as_secs(),
        "refresh_token": uuid::Uuid::new_v4().simple().to_string(),
        "token_type": "bearer",
        "account_id": 123456,
    }))
    .into_response()
}

/// The token check: `Bearer <token>` (v2) or `bearer:<token>` (v1), and the credential's scope.
fn authorize(server: &Server, headers: &HeaderMap, v1: bool) -> Result<(), Box<Response>> {
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer:"))
        .unwrap_or_default()
        .trim();
    let unauthorized = || match v1 {
        true => Box::new(v1_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Authentication Failure",
        )),
        false => Box::new(v2_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Authentication Failure",
        )),
    };
    let inner = server.lock();
    match inner.tokens.get(token) {
        Some(expires) if Instant::now() < *expires => {}
        _ => return Err(unauthorized()),
    }
    if !inner.may_read {
        return Err(Box::new(v2_error(
            StatusCode::FORBIDDEN,
            "ForbiddenError",
            "The credential's scope does not allow this request",
        )));
    }
    Ok(())
}

/// A cursor: the offset, bound to the rest of the query.
fn cursor(offset: usize, binding: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{offset}:{binding}"))
}

fn read_cursor(cursor: &str, binding: &str) -> Option<usize> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (offset, bound) = text.split_once(':')?;
    (bound == binding).then(|| offset.parse().ok()).flatten()
}

/// One v2 page of the items `keys` name, with the paging headers; `render` turns only the
/// page's into JSON.
fn page(
    server: &Server,
    path: &str,
    params: &HashMap<String, String>,
    keys: Vec<u64>,
    render: impl FnOnce(&[u64]) -> Vec<Value>,
) -> Response {
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return v2_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UnprocessableEntityError",
                "limit must be 1 to 100",
            );
        }
    };
    let size = limit.min(server.options.page_size);
    let mut binding: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "cursor")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    binding.sort();
    let binding = binding.join("&");
    let offset = match params.get("cursor") {
        None => 0,
        Some(c) => match read_cursor(c, &binding) {
            Some(offset) => offset,
            None => return flat_error(StatusCode::BAD_REQUEST, "bad request", "Invalid cursor"),
        },
    };
    let total = keys.len();
    let end = (offset + size).min(total);
    let slice: Vec<Value> = render(&keys[offset.min(end)..end]);
    let pages = total.div_ceil(size).max(1);
    let mut response = Json(Value::Array(slice.clone())).into_response();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("total-count", total.to_string());
    set("total-pages", pages.to_string());
    set("current-page", (offset / size + 1).to_string());
    set("page-items", slice.len().to_string());
    set(
        "before-cursor",
        match offset {
            0 => String::new(),
            _ => cursor(offset.saturating_sub(size), &binding),
        },
    );
    let after = match end < total {
        true => cursor(end, &binding),
        false => String::new(),
    };
    if !after.is_empty() {
        set(
            "link",
            format!(
                "<{}{path}?{binding}&cursor={after}>; rel=\"next\"",
                server.base_url
            ),
        );
    }
    set("after-cursor", after);
    response
}

/// `*` wildcards, case-insensitive.
fn wildcard(pattern: &str, value: &str) -> bool {
    let (pattern, value) = (pattern.to_lowercase(), value.to_lowercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let mut rest = value.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

/// The users the attribute parameters select (`email`, `username`, `firstname`, `lastname`
/// with `*`, `directory_id`, `updated_since`), in id order.
fn selected_users(server: &Server, params: &HashMap<String, String>) -> Vec<u64> {
    const FILTERS: &[&str] = &[
        "email",
        "username",
        "firstname",
        "lastname",
        "directory_id",
        "updated_since",
    ];
    let inner = server.lock();
    // Most listings select everyone: no need to test 50,000 users against nothing.
    if !FILTERS.iter().any(|f| params.contains_key(*f)) {
        return inner.users.keys().copied().collect();
    }
    inner
        .users
        .values()
        .filter(|(u, updated)| {
            let text = |field: &str, value: Option<&str>| {
                params
                    .get(field)
                    .is_none_or(|p| value.is_some_and(|v| wildcard(p, v)))
            };
            text("email", u.email.as_deref())
                && text("username", u.username.as_deref())
                && text("firstname", Some(&u.firstname))
                && text("lastname", Some(&u.lastname))
                && params.get("directory_id").is_none_or(|d| {
                    u.directory_id.map(|x| x.to_string()).as_deref() == Some(d.as_str())
                })
                && params
                    .get("updated_since")
                    .is_none_or(|since| updated.as_str() > since.as_str())
        })
        .map(|(u, _)| u.id)
        .collect()
}

/// The first query parameter not in `known`, answered as `unknown` shapes it.
fn unknown_parameter(
    params: &HashMap<String, String>,
    known: &[&str],
    unknown: fn(StatusCode, &str, &str) -> Response,
) -> Option<Response> {
    let name = params.keys().find(|k| !known.contains(&k.as_str()))?;
    Some(unknown(
        StatusCode::BAD_REQUEST,
        "bad request",
        &format!("Invalid query parameter: {name}"),
    ))
}

const USER_PARAMETERS: &[&str] = &[
    "limit",
    "cursor",
    "email",
    "username",
    "firstname",
    "lastname",
    "directory_id",
    "updated_since",
    "fields",
];

/// A user as both API versions list it.
fn user_json(u: &super::User, updated: &str) -> Value {
    json!({
        "id": u.id, "email": u.email, "username": u.username,
        "firstname": u.firstname, "lastname": u.lastname,
        "status": u.status, "state": 1, "directory_id": u.directory_id,
        "group_id": u.group_id, "external_id": null, "samaccountname": null,
        "created_at": updated, "updated_at": updated, "last_login": null,
    })
}

/// `GET /api/2/users`.
pub async fn users(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = authorize(&server, &headers, false) {
        return *response;
    }
    if let Some(response) = unknown_parameter(&params, USER_PARAMETERS, flat_error) {
        return response;
    }
    let keys = selected_users(&server, &params);
    let render = |ids: &[u64]| {
        let inner = server.lock();
        ids.iter()
            .filter_map(|id| inner.users.get(id))
            .map(|(u, updated)| user_json(u, updated))
            .collect()
    };
    page(&server, "/api/2/users", &params, keys, render)
}

/// `GET /api/1/users`: the v1 envelope; each user carries `role_id`, the ids of its roles.
pub async fn users_v1(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = authorize(&server, &headers, true) {
        return *response;
    }
    let known: Vec<&str> = USER_PARAMETERS
        .iter()
        .copied()
        .filter(|p| *p != "cursor")
        .chain(["after_cursor"])
        .collect();
    if let Some(response) = unknown_parameter(&params, &known, v1_error) {
        return response;
    }
    let keys = selected_users(&server, &params);
    let render = |ids: &[u64]| {
        let inner = server.lock();
        ids.iter()
            .filter_map(|id| inner.users.get(id))
            .map(|(u, updated)| {
                let roles: Vec<u64> = inner
                    .roles
                    .iter()
                    .filter(|(_, (_, members))| members.contains(&u.id))
                    .map(|(role, _)| *role)
                    .collect();
                let mut user = user_json(u, updated);
                user["role_id"] = json!(roles);
                user
            })
            .collect()
    };
    v1_page(&server, "/api/1/users", &params, keys, render)
}

/// `GET /api/2/roles`.
pub async fn roles(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = authorize(&server, &headers, false) {
        return *response;
    }
    if let Some(response) =
        unknown_parameter(&params, &["limit", "cursor", "name", "fields"], flat_error)
    {
        return response;
    }
    let keys = selected_roles(&server, &params);
    page(&server, "/api/2/roles", &params, keys, |ids| {
        render_roles(&server, ids)
    })
}

/// `GET /api/1/roles`: the v1 envelope.
pub async fn roles_v1(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = authorize(&server, &headers, true) {
        return *response;
    }
    if let Some(response) = unknown_parameter(
        &params,
        &["limit", "after_cursor", "name", "fields"],
        v1_error,
    ) {
        return response;
    }
    let keys = selected_roles(&server, &params);
    v1_page(&server, "/api/1/roles", &params, keys, |ids| {
        render_roles(&server, ids)
    })
}

/// The roles whose name matches `name` (with `*`), in id order.
fn selected_roles(server: &Server, params: &HashMap<String, String>) -> Vec<u64> {
    server
        .lock()
        .roles
        .iter()
        .filter(|(_, (name, _))| params.get("name").is_none_or(|p| wildcard(p, name)))
        .map(|(id, _)| *id)
        .collect()
}

fn render_roles(server: &Server, ids: &[u64]) -> Vec<Value> {
    let inner = server.lock();
    ids.iter()
        .filter_map(|id| {
            inner
                .roles
                .get(id)
                .map(|(name, _)| json!({"id": id, "name": name}))
        })
        .collect()
}

/// `GET /api/2/roles/{id}/users`.
pub async fn role_users(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = authorize(&server, &headers, false) {
        return *response;
    }
    let keys: Option<Vec<u64>> = {
        let inner = server.lock();
        id.parse::<u64>()
            .ok()
            .and_then(|id| inner.roles.get(&id))
            .map(|(_, users)| {
                users
                    .iter()
                    .filter(|u| inner.users.contains_key(*u))
                    .copied()
                    .collect()
            })
    };
    let render = |ids: &[u64]| {
        let inner = server.lock();
        ids.iter()
            .filter_map(|id| inner.users.get(id))
            .map(|(u, _)| json!({"id": u.id, "username": u.username, "email": u.email}))
            .collect()
    };
    match keys {
        Some(keys) => page(
            &server,
            &format!("/api/2/roles/{id}/users"),
            &params,
            keys,
            render,
        ),
        None => v2_error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            &format!("Role {id} not found"),
        ),
    }
}

/// `GET /api/1/groups`: the v1 envelope.
pub async fn groups(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = authorize(&server, &headers, true) {
        return *response;
    }
    if let Some(response) = unknown_parameter(&params, &["limit", "after_cursor"], v1_error) {
        return response;
    }
    let keys: Vec<u64> = server.lock().groups.keys().copied().collect();
    v1_page(&server, "/api/1/groups", &params, keys, |ids| {
        let inner = server.lock();
        ids.iter()
            .filter_map(|id| inner.groups.get(id).map(|name| (id, name)))
            .map(|(id, name)| json!({"id": id, "name": name, "reference": null}))
            .collect()
    })
}

/// One v1 page (at most 50 items, or `limit`) of the items `keys` name in the envelope
/// `{status, pagination: {before_cursor, after_cursor, previous_link, next_link}, data}`,
/// `next_link` absolute and null on the last page; `render` turns only the page's into JSON.
fn v1_page(
    server: &Server,
    path: &str,
    params: &HashMap<String, String>,
    keys: Vec<u64>,
    render: impl FnOnce(&[u64]) -> Vec<Value>,
) -> Response {
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=50).contains(&n) => n,
        Some(_) => return v1_error(StatusCode::BAD_REQUEST, "bad request", "Invalid limit"),
    };
    let size = limit.min(server.options.page_size);
    let mut binding: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "after_cursor")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    binding.sort();
    let binding = binding.join("&");
    let offset = match params.get("after_cursor") {
        None => 0,
        Some(c) => match read_cursor(c, &format!("{path}?{binding}")) {
            Some(offset) => offset,
            None => return v1_error(StatusCode::BAD_REQUEST, "bad request", "Invalid cursor"),
        },
    };
    let end = (offset + size).min(keys.len());
    let before =
        (offset > 0).then(|| cursor(offset.saturating_sub(size), &format!("{path}?{binding}")));
    let after = (end < keys.len()).then(|| cursor(end, &format!("{path}?{binding}")));
    let link = |c: &Option<String>| {
        c.as_ref().map(|c| {
            let sep = if binding.is_empty() { "" } else { "&" };
            format!("{}{path}?{binding}{sep}after_cursor={c}", server.base_url)
        })
    };
    Json(json!({
        "status": {"error": false, "code": 200, "type": "success", "message": "Success"},
        "pagination": {
            "before_cursor": before,
            "after_cursor": after,
            "previous_link": link(&before),
            "next_link": link(&after),
        },
        "data": render(&keys[offset.min(end)..end]),
    }))
    .into_response()
}
