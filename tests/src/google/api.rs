//! The emulated endpoints: Google's token endpoint (the JWT bearer grant of a service account
//! with domain-wide delegation) and the Directory API's users, groups and members lists, with
//! `maxResults` limits, page tokens bound to their query, `showDeleted`, a subset of `query`,
//! `fields` partial responses and Google's error bodies.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Server, User};

/// The scopes a service account must have been granted.
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// `{"error": {"code", "message", "errors": [{"message", "domain", "reason"}], "status"}}`.
pub fn google_error(status: StatusCode, reason: &str, domain: &str, message: &str) -> Response {
    let grpc = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": grpc,
        }
    });
    (status, Json(body)).into_response()
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    scope: String,
    iat: i64,
    exp: i64,
}

/// `POST /token`: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with an RS256
/// assertion signed by the service account's key, checked as Google documents it.
pub async fn token(
    State(server): State<Arc<Server>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type: ",
        );
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let Ok(key) = DecodingKey::from_rsa_pem(&server.public_key) else {
        return token_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_failure", "");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[server.token_uri()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    // Time is checked below, as Google does (an hour at most, a little skew).
    validation.validate_exp = false;
    let claims = match jsonwebtoken::decode::<Claims>(&assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind;
            let description = match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) => {
                    "Invalid JWT Signature."
                }
                ErrorKind::InvalidAudience => "Invalid JWT: Failed audience check.",
                _ => "Invalid JWT Signature.",
            };
            return token_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
        }
    };
    let now = chrono::Utc::now().timestamp() + server.lock().clock_offset;
    if claims.exp < claims.iat
        || claims.exp - claims.iat > 3600
        || claims.iat > now + 300
        || claims.exp < now
    {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    let options = &server.options;
    if claims.iss != options.client_email {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT Signature.",
        );
    }
    let inner = server.lock();
    let known = inner
        .users
        .values()
        .any(|u| u.primary_email.eq_ignore_ascii_case(&claims.sub));
    if !known {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid email or User ID",
        );
    }
    let asked: BTreeSet<&str> = claims.scope.split(' ').filter(|s| !s.is_empty()).collect();
    let granted = &inner.delegated_scopes;
    if asked.is_empty() || !asked.iter().all(|s| granted.contains(*s)) {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }
    drop(inner);
    let token = format!("ya29.{}", uuid::Uuid::new_v4().simple());
    let lifetime = options.token_lifetime;
    server.lock().tokens.insert(
        token.clone(),
        (Instant::now() + lifetime, claims.sub.to_lowercase()),
    );
    Json(json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}))
        .into_response()
}

/// The token check of a data call, and whether the user it acts for may read the directory.
fn authorize(server: &Server, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let inner = server.lock();
    let Some((expires, subject)) = inner.tokens.get(token) else {
        return Err(Box::new(unauthenticated()));
    };
    if Instant::now() >= *expires {
        return Err(Box::new(unauthenticated()));
    }
    if !inner.admins.contains(subject) {
        return Err(Box::new(google_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "global",
            "Not Authorized to access this resource/api",
        )));
    }
    Ok(())
}

fn unauthenticated() -> Response {
    google_error(
        StatusCode::UNAUTHORIZED,
        "authError",
        "global",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    )
}

/// A `fields` selector such as `nextPageToken,users(id,primaryEmail)`: the top-level fields
/// kept, and for the collection, the item fields kept.
struct Fields {
    top: BTreeSet<String>,
    items: Option<BTreeSet<String>>,
}

fn parse_fields(text: &str, collection: &str) -> Fields {
    let mut top = BTreeSet::new();
    let mut items = None;
    let mut depth = 0;
    let mut current = String::new();
    let mut parts = Vec::new();
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        match part.split_once('(') {
            Some((name, rest)) if name == collection => {
                top.insert(name.to_string());
                items = Some(
                    rest.trim_end_matches(')')
                        .split(',')
                        .map(|f| f.trim().to_string())
                        .collect(),
                );
            }
            _ => {
                top.insert(part.to_string());
            }
        }
    }
    Fields { top, items }
}

/// A page token: the offset, bound to the other parameters of the request.
fn page_token(offset: usize, binding: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{offset}:{binding}"))
}

fn read_token(token: &str, binding: &str) -> Option<usize> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (offset, bound) = text.split_once(':')?;
    (bound == binding).then(|| offset.parse().ok()).flatten()
}

/// One page as Google answers it, of `total` items of which `window` turns only the page's
/// into JSON (50 pages of 50,000 users are not 50 copies of everyone).
fn page(
    params: &HashMap<String, String>,
    (kind, collection): (&str, &str),
    total: usize,
    window: impl FnOnce(std::ops::Range<usize>) -> Vec<Value>,
    max: usize,
    limit: usize,
) -> Response {
    let size = match params.get("maxResults").map(|m| m.parse::<usize>()) {
        None => max.min(100),
        Some(Ok(n)) if (1..=max).contains(&n) => n,
        Some(_) => {
            return google_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "global",
                &format!("Invalid value for maxResults (1 to {max})"),
            );
        }
    };
    let size = size.min(limit);
    let mut binding: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "pageToken")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    binding.sort();
    let binding = URL_SAFE_NO_PAD.encode(binding.join("&"));
    let offset = match params.get("pageToken") {
        None => 0,
        Some(token) => match read_token(token, &binding) {
            Some(offset) => offset,
            None => {
                return google_error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "global",
                    "Invalid Value",
                );
            }
        },
    };
    let end = (offset + size).min(total);
    let slice = window(offset.min(end)..end);
    let mut body = Map::new();
    body.insert("kind".into(), json!(kind));
    body.insert(
        "etag".into(),
        json!(format!("\"{}\"", uuid::Uuid::new_v4().simple())),
    );
    // An empty result leaves the array out.
    let empty = slice.is_empty();
    if !empty {
        body.insert(collection.into(), Value::Array(slice));
    }
    if end < total {
        body.insert("nextPageToken".into(), json!(page_token(end, &binding)));
    }
    if let Some(fields) = params.get("fields") {
        let fields = parse_fields(fields, collection);
        body.retain(|key, _| fields.top.contains(key));
        if let (Some(keep), Some(Value::Array(items))) = (&fields.items, body.get_mut(collection)) {
            for item in items {
                if let Value::Object(map) = item {
                    map.retain(|key, _| keep.contains(key));
                }
            }
        }
    }
    Json(Value::Object(body)).into_response()
}

/// What a users or groups listing checks first: the token, and `customer` or `domain`;
/// returns the domain to keep to (if any) and the `query`.
fn listing(
    server: &Server,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(Option<String>, String), Box<Response>> {
    authorize(server, headers)?;
    let domain = scope_check(server, params)?;
    Ok((domain, params.get("query").cloned().unwrap_or_default()))
}

/// Whether an address is in `domain` (every address is without one).
fn in_domain(email: &str, domain: &Option<String>) -> bool {
    domain
        .as_ref()
        .is_none_or(|d| email.ends_with(&format!("@{d}")))
}

/// `customer` or `domain`, as the account knows them.
fn scope_check(
    server: &Server,
    params: &HashMap<String, String>,
) -> Result<Option<String>, Box<Response>> {
    let options = &server.options;
    let bad = || {
        Box::new(google_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "global",
            "Bad Request",
        ))
    };
    match (params.get("customer"), params.get("domain")) {
        (Some(customer), None) if customer == "my_customer" || *customer == options.customer_id => {
            Ok(None)
        }
        (None, Some(domain)) if options.domains.contains(domain) => Ok(Some(domain.clone())),
        (None, Some(_)) | (Some(_), None) => Err(Box::new(google_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "global",
            "Not Authorized to access this resource/api",
        ))),
        _ => Err(bad()),
    }
}

/// The subset of the user query syntax the tests use: `orgUnitPath='/X'`, `isSuspended=…`,
/// `email:prefix*`, joined by spaces.
fn user_matches(user: &User, query: &str) -> bool {
    split_query(query).iter().all(|term| {
        if let Some(path) = term.strip_prefix("orgUnitPath=") {
            user.org_unit_path == path.trim_matches('\'')
        } else if let Some(value) = term.strip_prefix("isSuspended=") {
            user.suspended.to_string() == value
        } else if let Some(prefix) = term.strip_prefix("email:") {
            prefix_match(&user.primary_email, prefix)
        } else {
            false
        }
    })
}

fn group_matches(name: &str, email: &str, query: &str) -> bool {
    split_query(query).iter().all(|term| {
        if let Some(prefix) = term.strip_prefix("name:") {
            prefix_match(name, prefix)
        } else if let Some(prefix) = term.strip_prefix("email:") {
            prefix_match(email, prefix)
        } else {
            false
        }
    })
}

/// Splits on spaces outside single quotes.
fn split_query(query: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in query.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                current.push(c);
            }
            ' ' if !quoted => terms.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    terms.push(current);
    terms.into_iter().filter(|t| !t.is_empty()).collect()
}

fn prefix_match(value: &str, pattern: &str) -> bool {
    let pattern = pattern.trim_matches('\'').to_lowercase();
    let value = value.to_lowercase();
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => value == pattern,
    }
}

fn user_json(user: &User) -> Value {
    json!({
        "kind": "admin#directory#user",
        "id": user.id,
        "etag": "\"e\"",
        "primaryEmail": user.primary_email,
        "name": {"fullName": user.primary_email},
        "isAdmin": false,
        "suspended": user.suspended,
        "archived": user.archived,
        "orgUnitPath": user.org_unit_path,
        "customerId": "C0emul8r",
    })
}

/// `GET /admin/directory/v1/users`.
pub async fn users(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (domain, query) = match listing(&server, &headers, &params) {
        Ok(started) => started,
        Err(response) => return *response,
    };
    let deleted = params.get("showDeleted").is_some_and(|v| v == "true");
    let inner = server.lock();
    let users: Vec<&User> = inner
        .users
        .values()
        .filter(|u| u.deleted == deleted)
        .filter(|u| in_domain(&u.primary_email, &domain))
        .filter(|u| query.is_empty() || user_matches(u, &query))
        .collect();
    page(
        &params,
        ("admin#directory#users", "users"),
        users.len(),
        |range| users[range].iter().map(|u| user_json(u)).collect(),
        500,
        server.options.page_size,
    )
}

/// `GET /admin/directory/v1/groups`.
pub async fn groups(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (domain, query) = match listing(&server, &headers, &params) {
        Ok(started) => started,
        Err(response) => return *response,
    };
    let items: Vec<Value> = server
        .lock()
        .groups
        .values()
        .filter(|g| in_domain(&g.email, &domain))
        .filter(|g| query.is_empty() || group_matches(&g.name, &g.email, &query))
        .map(|g| {
            json!({
                "kind": "admin#directory#group",
                "id": g.id,
                "etag": "\"e\"",
                "email": g.email,
                "name": g.name,
                "directMembersCount": g.members.len().to_string(),
                "description": "",
                "adminCreated": true,
            })
        })
        .collect();
    page(
        &params,
        ("admin#directory#groups", "groups"),
        items.len(),
        |range| items[range].to_vec(),
        200,
        server.options.page_size,
    )
}

/// `GET /admin/directory/v1/groups/{groupKey}/members` (the key: id or email).
pub async fn members(
    State(server): State<Arc<Server>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = authorize(&server, &headers) {
        return *response;
    }
    let items = {
        let inner = server.lock();
        let Some(group) = inner
            .groups
            .values()
            .find(|g| g.id == key || g.email.eq_ignore_ascii_case(&key))
        else {
            return google_error(
                StatusCode::NOT_FOUND,
                "notFound",
                "global",
                "Resource Not Found: groupKey",
            );
        };
        group
            .members
            .iter()
            .map(|m| {
                let mut member = json!({
                    "kind": "admin#directory#member",
                    "etag": "\"e\"",
                    "id": m.id,
                    "role": m.role,
                    "type": m.kind,
                    "status": m.status,
                });
                if let (Some(email), Value::Object(map)) = (&m.email, &mut member) {
                    map.insert("email".into(), json!(email));
                }
                member
            })
            .collect()
    };
    let items: Vec<Value> = items;
    page(
        &params,
        ("admin#directory#members", "members"),
        items.len(),
        |range| items[range].to_vec(),
        200,
        server.options.page_size,
    )
}

/// A path the Directory API does not have.
pub async fn not_found() -> Response {
    google_error(StatusCode::NOT_FOUND, "notFound", "global", "Not Found")
}
