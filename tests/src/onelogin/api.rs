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

/// `GET /api/2/users`.
pub async fn users(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = authorize(&server, &headers, false) {
        return *response;
    }
    const KNOWN: &[&str] = &[
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
    if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return flat_error(
            StatusCode::BAD_REQUEST,
            "bad request",
            &format!("Invalid query parameter: {unknown}"),
        );
    }
    let keys: Vec<u64> = {
        let inner = server.lock();
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
    };
    let render = |ids: &[u64]| {
        let inner = server.lock();
        ids.iter()
            .filter_map(|id| inner.users.get(id))
            .map(|(u, updated)| {
                json!({
                    "id": u.id, "email": u.email, "username": u.username,
                    "firstname": u.firstname, "lastname": u.lastname,
                    "status": u.status, "state": 1, "directory_id": u.directory_id,
                    "group_id": u.group_id, "external_id": null, "samaccountname": null,
                    "created_at": updated, "updated_at": updated, "last_login": null,
                })
            })
            .collect()
    };
    page(&server, "/api/2/users", &params, keys, render)
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
    if let Some(unknown) = params
        .keys()
        .find(|k| !["limit", "cursor", "name", "fields"].contains(&k.as_str()))
    {
        return flat_error(
            StatusCode::BAD_REQUEST,
            "bad request",
            &format!("Invalid query parameter: {unknown}"),
        );
    }
    let keys: Vec<u64> = server
        .lock()
        .roles
        .iter()
        .filter(|(_, (name, _))| params.get("name").is_none_or(|p| wildcard(p, name)))
        .map(|(id, _)| *id)
        .collect();
    let render = |ids: &[u64]| {
        let inner = server.lock();
        ids.iter()
            .filter_map(|id| {
                inner
                    .roles
                    .get(id)
                    .map(|(name, _)| json!({"id": id, "name": name}))
            })
            .collect()
    };
    page(&server, "/api/2/roles", &params, keys, render)
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

/// `GET /api/1/groups`: the v1 envelope, `pagination.next_link` absolute.
pub async fn groups(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = authorize(&server, &headers, true) {
        return *response;
    }
    let size = server.options.page_size;
    let offset: usize = match params.get("after_cursor").map(|c| read_cursor(c, "groups")) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => return v1_error(StatusCode::BAD_REQUEST, "bad request", "Invalid cursor"),
    };
    let all: Vec<Value> = server
        .lock()
        .groups
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name, "reference": null}))
        .collect();
    let end = (offset + size).min(all.len());
    let next = (end < all.len()).then(|| cursor(end, "groups"));
    Json(json!({
        "status": {"error": false, "code": 200, "type": "success", "message": "Success"},
        "pagination": {
            "before_cursor": null,
            "after_cursor": next,
            "previous_link": null,
            "next_link": next.as_ref().map(|c| format!("{}/api/1/groups?after_cursor={c}", server.base_url)),
        },
        "data": all[offset.min(end)..end],
    }))
    .into_response()
}
