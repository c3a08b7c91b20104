//! The emulated endpoints: the org authorization server's token endpoint (client credentials
//! with a private-key assertion, DPoP), the users, groups and group members listings with Link
//! paging and filters, the rate limits, and Okta's error bodies.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Issued, Server, StoredUser};

/// Okta's error body.
pub fn okta_error(status: StatusCode, code: &str, summary: &str) -> Response {
    let body = json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", &uuid::Uuid::new_v4().simple().to_string()[..19]),
        "errorCauses": [],
    });
    (status, Json(body)).into_response()
}

/// The error code and summary Okta gives a status.
pub fn summary_of(status: u16) -> (&'static str, &'static str) {
    match status {
        401 => ("E0000011", "Invalid token provided"),
        403 => (
            "E0000006",
            "You do not have permission to perform the requested action",
        ),
        404 => ("E0000007", "Not found: Resource not found"),
        400 => ("E0000031", "Invalid search criteria."),
        429 => (
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        ),
        _ => ("E0000009", "Internal Server Error"),
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub async fn not_found() -> Response {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000022",
        "The endpoint does not support the provided HTTP method",
    )
}

/// The rate-limit bucket of a path: the path with ids left out.
fn bucket(path: &str) -> String {
    path.split('/')
        .enumerate()
        .map(|(i, s)| if i == 4 { "{id}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Counts each request against its endpoint's window, answers 429 `E0000047` when the window
/// is spent, and sends the rate-limit headers and `Date` on every answer.
pub async fn rate_limit(
    State(server): State<Arc<Server>>,
    request: Request,
    next: Next,
) -> Response {
    let bucket = bucket(request.uri().path());
    let window = chrono::Duration::from_std(server.options.rate_window).unwrap_or_default();
    let (limit, remaining, reset, over) = {
        let mut inner = server.lock();
        let limit = inner.rate_limit;
        let now = chrono::Utc::now();
        let entry = inner.windows.entry(bucket).or_insert((now, 0));
        if now >= entry.0 + window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let reset = (entry.0 + window).timestamp() + 1;
        let shown = limit.unwrap_or(600);
        let over = limit.is_some_and(|l| entry.1 > l);
        (shown, shown.saturating_sub(entry.1), reset, over)
    };
    let mut response = match over {
        true => {
            let (code, summary) = summary_of(429);
            okta_error(StatusCode::TOO_MANY_REQUESTS, code, summary)
        }
        false => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert("x-rate-limit-limit", limit.into());
    headers.insert("x-rate-limit-remaining", remaining.into());
    headers.insert("x-rate-limit-reset", reset.into());
    if let Ok(date) =
        HeaderValue::from_str(&chrono::Utc::now().to_rfc2822().replace("+0000", "GMT"))
    {
        headers.insert("date", date);
    }
    response
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

#[derive(Deserialize)]
struct ProofClaims {
    htm: String,
    htu: String,
    iat: i64,
    jti: String,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    ath: Option<String>,
}

/// Verifies a DPoP proof: signed by the key in its header, for this method and URL, recent.
/// Returns the key's thumbprint and the claims.
fn check_proof(proof: &str, method: &str, url: &str) -> Result<(String, ProofClaims), String> {
    use jsonwebtoken::jwk::ThumbprintHash;
    use jsonwebtoken::{DecodingKey, Validation};
    let header = jsonwebtoken::decode_header(proof).map_err(|e| format!("malformed: {e}"))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err("the typ is not dpop+jwt".into());
    }
    let jwk = header.jwk.ok_or("the header has no jwk")?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable jwk: {e}"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_required_spec_claims::<&str>(&[]);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
        .map_err(|e| format!("invalid signature or claims: {e}"))?
        .claims;
    if claims.htm != method || claims.htu != url {
        return Err(format!(
            "htm/htu {} {} do not match the request",
            claims.htm, claims.htu
        ));
    }
    if claims.jti.is_empty() {
        return Err("the proof has no jti".into());
    }
    if (chrono::Utc::now().timestamp() - claims.iat).abs() > 300 {
        return Err("iat is not recent".into());
    }
    let thumbprint = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("thumbprint: {e}"))?;
    Ok((thumbprint, claims))
}

/// `POST /oauth2/v1/token`: the client credentials grant of the API service app.
pub async fn token(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let options = &server.options;
    let bad =
        |error: &str, description: &str| oauth_error(StatusCode::BAD_REQUEST, error, description);
    let unauthorized =
        |description: &str| oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return bad(
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return unauthorized(
            "Client authentication failed. Either the client or the client credentials are invalid.",
        );
    }
    let Some((public_key, kid)) = &options.app_key else {
        return unauthorized("The client_id is invalid.");
    };
    let assertion = form.get("client_assertion").cloned().unwrap_or_default();
    let Ok(header) = jsonwebtoken::decode_header(&assertion) else {
        return unauthorized("The client_assertion is not a valid JWT.");
    };
    if header.kid.as_deref().is_some_and(|k| k != kid) {
        return unauthorized("The client_assertion signature is invalid.");
    }
    let key = match header.alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            DecodingKey::from_rsa_pem(public_key)
        }
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(public_key),
        _ => return unauthorized("The client_assertion signature algorithm is not supported."),
    };
    let Ok(key) = key else {
        return unauthorized("The client_assertion signature is invalid.");
    };
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[server.token_url()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let claims = match jsonwebtoken::decode::<AssertionClaims>(&assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind;
            let description = match e.kind() {
                ErrorKind::ExpiredSignature => "The client_assertion token is expired.",
                ErrorKind::InvalidAudience => {
                    "The audience [aud] claim in the JWT token is invalid."
                }
                _ => "The client_assertion signature is invalid.",
            };
            return unauthorized(description);
        }
    };
    let now = chrono::Utc::now().timestamp();
    if claims.iss != options.client_id || claims.sub != options.client_id {
        return unauthorized("The client_id is invalid.");
    }
    if claims.exp > claims.iat.unwrap_or(now) + 3600 || claims.exp > now + 3600 + 60 {
        return unauthorized(
            "The client_assertion token has an expiration too far into the future.",
        );
    }
    {
        let mut inner = server.lock();
        if let Some(jti) = &claims.jti
            && !inner.used_jti.insert(jti.clone())
        {
            return unauthorized("The client_assertion token has already been used.");
        }
    }
    let asked: BTreeSet<String> = form
        .get("scope")
        .map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let granted_all = {
        let inner = server.lock();
        !asked.is_empty() && asked.iter().all(|s| inner.granted.contains(s))
    };
    if !granted_all {
        return bad(
            "invalid_scope",
            "The following scopes are not allowed: check the Okta API Scopes of the app.",
        );
    }
    let mut bound_to = None;
    if options.require_dpop {
        let Some(proof) = headers.get("dpop").and_then(|v| v.to_str().ok()) else {
            return bad(
                "invalid_dpop_proof",
                "The DPoP proof JWT header is missing.",
            );
        };
        let (thumbprint, proof_claims) = match check_proof(proof, "POST", &server.token_url()) {
            Ok(checked) => checked,
            Err(why) => {
                return bad(
                    "invalid_dpop_proof",
                    &format!("The DPoP proof is invalid: {why}."),
                );
            }
        };
        let nonce = server.lock().nonce.clone();
        if proof_claims.nonce.as_deref() != Some(nonce.as_str()) {
            let mut response = bad(
                "use_dpop_nonce",
                "Authorization server requires nonce in DPoP proof.",
            );
            if let Ok(value) = HeaderValue::from_str(&nonce) {
                response.headers_mut().insert("dpop-nonce", value);
            }
            return response;
        }
        bound_to = Some(thumbprint);
    }
    let token = format!("eyJraWQiOi{}", uuid::Uuid::new_v4().simple());
    let token_type = match bound_to.is_some() {
        true => "DPoP",
        false => "Bearer",
    };
    let lifetime = options.token_lifetime;
    server.lock().tokens.insert(
        token.clone(),
        Issued {
            expires: Instant::now() + lifetime,
            scopes: asked.clone(),
            bound_to,
        },
    );
    let scope = asked.into_iter().collect::<Vec<_>>().join(" ");
    Json(json!({
        "token_type": token_type,
        "expires_in": lifetime.as_secs(),
        "access_token": token,
        "scope": scope,
    }))
    .into_response()
}

/// The credentials check of a data call: an API token, a bearer token, or a DPoP token with
/// its proof; then the scope and the admin role.
fn authorize(
    server: &Server,
    headers: &HeaderMap,
    url: &str,
    scope: &str,
) -> Result<(), Box<Response>> {
    let invalid = || {
        let (code, summary) = summary_of(401);
        Box::new(okta_error(StatusCode::UNAUTHORIZED, code, summary))
    };
    let forbidden = || {
        let (code, summary) = summary_of(403);
        Box::new(okta_error(StatusCode::FORBIDDEN, code, summary))
    };
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let inner = server.lock();
    if let Some(token) = value.strip_prefix("SSWS ") {
        if !inner.api_token_valid || token != server.options.api_token {
            return Err(invalid());
        }
    } else {
        let (scheme, token) = value.split_once(' ').unwrap_or_default();
        let Some(issued) = inner.tokens.get(token) else {
            return Err(invalid());
        };
        if Instant::now() >= issued.expires {
            return Err(invalid());
        }
        match (&issued.bound_to, scheme) {
            (None, "Bearer") => {}
            (Some(thumbprint), "DPoP") => {
                let proof = headers
                    .get("dpop")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let Ok((key, claims)) = check_proof(proof, "GET", url) else {
                    return Err(invalid());
                };
                let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token));
                if &key != thumbprint || claims.ath.as_deref() != Some(ath.as_str()) {
                    return Err(invalid());
                }
            }
            _ => return Err(invalid()),
        }
        if !issued.scopes.contains(scope) {
            return Err(forbidden());
        }
    }
    if !inner.may_read {
        return Err(forbidden());
    }
    Ok(())
}

/// A filter expression: `attr op "value"`, `and`, `or`, parentheses.
#[derive(Debug)]
enum Filter {
    Compare(String, String, String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    fn parse(text: &str, attributes: &[&str]) -> Result<Filter, ()> {
        let tokens = tokenize(text)?;
        let mut at = 0;
        let filter = parse_or(&tokens, &mut at, attributes)?;
        match at == tokens.len() {
            true => Ok(filter),
            false => Err(()),
        }
    }

    fn names(&self, attribute: &str) -> bool {
        match self {
            Filter::Compare(a, _, _) => a == attribute,
            Filter::And(l, r) | Filter::Or(l, r) => l.names(attribute) || r.names(attribute),
        }
    }

    fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Filter::And(l, r) => l.matches(get) && r.matches(get),
            Filter::Or(l, r) => l.matches(get) || r.matches(get),
            Filter::Compare(attribute, op, value) => {
                let Some(actual) = get(attribute) else {
                    return false;
                };
                let time = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
                let order = match (time(&actual), time(value)) {
                    (Some(a), Some(b)) => a.cmp(&b),
                    _ => actual.to_lowercase().cmp(&value.to_lowercase()),
                };
                match op.as_str() {
                    "eq" => order.is_eq(),
                    "gt" => order.is_gt(),
                    "ge" => order.is_ge(),
                    "lt" => order.is_lt(),
                    "le" => order.is_le(),
                    "sw" => actual.to_lowercase().starts_with(&value.to_lowercase()),
                    _ => false,
                }
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, ()> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => value.push(chars.next().ok_or(())?),
                        Some(c) => value.push(c),
                        None => return Err(()),
                    }
                }
                tokens.push(Token::Text(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ' ' || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

fn is_word(token: Option<&Token>, word: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

fn parse_or(tokens: &[Token], at: &mut usize, attributes: &[&str]) -> Result<Filter, ()> {
    let mut left = parse_and(tokens, at, attributes)?;
    while is_word(tokens.get(*at), "or") {
        *at += 1;
        let right = parse_and(tokens, at, attributes)?;
        left = Filter::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_and(tokens: &[Token], at: &mut usize, attributes: &[&str]) -> Result<Filter, ()> {
    let mut left = parse_term(tokens, at, attributes)?;
    while is_word(tokens.get(*at), "and") {
        *at += 1;
        let right = parse_term(tokens, at, attributes)?;
        left = Filter::And(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_term(tokens: &[Token], at: &mut usize, attributes: &[&str]) -> Result<Filter, ()> {
    if tokens.get(*at) == Some(&Token::Open) {
        *at += 1;
        let inner = parse_or(tokens, at, attributes)?;
        if tokens.get(*at) != Some(&Token::Close) {
            return Err(());
        }
        *at += 1;
        return Ok(inner);
    }
    match (tokens.get(*at), tokens.get(*at + 1), tokens.get(*at + 2)) {
        (Some(Token::Word(attribute)), Some(Token::Word(op)), Some(Token::Text(value)))
            if attributes.contains(&attribute.as_str())
                && ["eq", "gt", "ge", "lt", "le", "sw"].contains(&op.to_lowercase().as_str()) =>
        {
            *at += 3;
            Ok(Filter::Compare(
                attribute.clone(),
                op.to_lowercase(),
                value.clone(),
            ))
        }
        _ => Err(()),
    }
}

const USER_ATTRIBUTES: &[&str] = &[
    "status",
    "lastUpdated",
    "id",
    "profile.login",
    "profile.email",
    "profile.firstName",
    "profile.lastName",
];

const GROUP_ATTRIBUTES: &[&str] = &["type", "id", "lastUpdated", "lastMembershipUpdated"];

fn user_attribute(user: &StoredUser, name: &str) -> Option<String> {
    let u = &user.user;
    Some(match name {
        "status" => u.status.clone(),
        "lastUpdated" => user.last_updated.clone(),
        "id" => u.id.clone(),
        "profile.login" => u.login.clone(),
        "profile.email" => u.email.clone()?,
        "profile.firstName" => u.first_name.clone(),
        "profile.lastName" => u.last_name.clone(),
        _ => return None,
    })
}

fn user_json(user: &StoredUser, base: &str) -> Value {
    let u = &user.user;
    json!({
        "id": u.id,
        "status": u.status,
        "created": user.created,
        "activated": null,
        "statusChanged": user.last_updated,
        "lastLogin": null,
        "lastUpdated": user.last_updated,
        "passwordChanged": null,
        "type": {"id": "oty1emulat0r"},
        "profile": {
            "firstName": u.first_name,
            "lastName": u.last_name,
            "mobilePhone": null,
            "secondEmail": null,
            "login": u.login,
            "email": u.email,
        },
        "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": format!("{base}/api/v1/users/{}", u.id)}},
    })
}

fn group_json(group: &super::Group, base: &str) -> Value {
    json!({
        "id": group.id,
        "created": group.created,
        "lastUpdated": group.last_updated,
        "lastMembershipUpdated": group.last_membership_updated,
        "objectClass": ["okta:user_group"],
        "type": group.kind,
        "profile": {"name": group.name, "description": null},
        "_links": {
            "users": {"href": format!("{base}/api/v1/groups/{}/users", group.id)},
        },
    })
}

fn render_users(server: &Server, ids: &[String]) -> Vec<Value> {
    let inner = server.lock();
    ids.iter()
        .filter_map(|id| inner.users.get(id))
        .map(|u| user_json(u, &server.base_url))
        .collect()
}

/// An opaque cursor: the id of the last item of the page.
fn cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("c:{id}"))
}

fn read_cursor(after: &str) -> Option<String> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(after).ok()?).ok()?;
    text.strip_prefix("c:").map(str::to_string)
}

/// One page of the items `keys` name (sorted ids) after the cursor, with Okta's two `Link`
/// header fields; `render` turns only the page's into JSON (200 of 50,000 users, not all).
fn page(
    server: &Server,
    path: &str,
    params: &HashMap<String, String>,
    keys: Vec<String>,
    render: impl FnOnce(&[String]) -> Vec<Value>,
    default_limit: usize,
) -> Response {
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => default_limit,
        Some(Ok(n)) if n >= 1 => n.min(200),
        Some(_) => {
            return okta_error(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: limit",
            );
        }
    };
    let size = limit.min(server.options.page_size);
    let after = match params.get("after") {
        None => None,
        Some(after) => match read_cursor(after) {
            Some(id) => Some(id),
            None => {
                return okta_error(
                    StatusCode::BAD_REQUEST,
                    "E0000001",
                    "Api validation failed: after",
                );
            }
        },
    };
    let start = after.map_or(0, |id| keys.partition_point(|key| *key <= id));
    let slice: Vec<String> = keys.into_iter().skip(start).take(size).collect();
    let mut query: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "after")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    query.sort();
    let encode = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let base = format!("{}{path}", server.base_url);
    let self_link = match query.is_empty() {
        true => base.clone(),
        false => format!("{base}?{}", encode(&query)),
    };
    let mut response = Json(Value::Array(render(&slice))).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("<{self_link}>; rel=\"self\"")) {
        headers.append("link", value);
    }
    // A full page has a next link, even when nothing follows (the last page is then empty).
    if slice.len() == size
        && let Some(last) = slice.last()
    {
        let mut next = query.clone();
        next.push(("after".into(), cursor(last)));
        if let Ok(value) =
            HeaderValue::from_str(&format!("<{base}?{}>; rel=\"next\"", encode(&next)))
        {
            headers.append("link", value);
        }
    }
    response
}

fn urlencode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn request_url(server: &Server, path: &str) -> String {
    format!("{}{path}", server.base_url)
}

fn invalid_filter() -> Response {
    let (code, summary) = summary_of(400);
    okta_error(StatusCode::BAD_REQUEST, code, summary)
}

/// `GET /api/v1/users`: every user but the deprovisioned unless the filter names a status.
pub async fn users(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let path = "/api/v1/users";
    if let Err(response) = authorize(
        &server,
        &headers,
        &request_url(&server, path),
        "okta.users.read",
    ) {
        return *response;
    }
    let filter = match params.get("filter").filter(|f| !f.trim().is_empty()) {
        Some(text) => match Filter::parse(text, USER_ATTRIBUTES) {
            Ok(filter) => Some(filter),
            Err(()) => return invalid_filter(),
        },
        None => None,
    };
    let keys: Vec<String> = {
        let inner = server.lock();
        inner
            .users
            .values()
            .filter(|u| match &filter {
                Some(f) => {
                    (f.names("status") || u.user.status != "DEPROVISIONED")
                        && f.matches(&|a| user_attribute(u, a))
                }
                None => u.user.status != "DEPROVISIONED",
            })
            .map(|u| u.user.id.clone())
            .collect()
    };
    let render = |ids: &[String]| render_users(&server, ids);
    // Okta answers a query without `limit` with small pages.
    let default_limit = match filter.is_some() || params.contains_key("q") {
        true => 10,
        false => 200,
    };
    page(&server, path, &params, keys, render, default_limit)
}

/// `GET /api/v1/groups`.
pub async fn groups(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let path = "/api/v1/groups";
    if let Err(response) = authorize(
        &server,
        &headers,
        &request_url(&server, path),
        "okta.groups.read",
    ) {
        return *response;
    }
    let filter = match params.get("filter").filter(|f| !f.trim().is_empty()) {
        Some(text) => match Filter::parse(text, GROUP_ATTRIBUTES) {
            Ok(filter) => Some(filter),
            Err(()) => return invalid_filter(),
        },
        None => None,
    };
    let prefix = params.get("q").map(|q| q.to_lowercase());
    let keys: Vec<String> = {
        let inner = server.lock();
        inner
            .groups
            .values()
            .filter(|g| {
                filter.as_ref().is_none_or(|f| {
                    f.matches(&|a| {
                        Some(match a {
                            "type" => g.kind.clone(),
                            "id" => g.id.clone(),
                            "lastUpdated" => g.last_updated.clone(),
                            "lastMembershipUpdated" => g.last_membership_updated.clone(),
                            _ => return None,
                        })
                    })
                }) && prefix
                    .as_ref()
                    .is_none_or(|p| g.name.to_lowercase().starts_with(p))
            })
            .map(|g| g.id.clone())
            .collect()
    };
    let render = |ids: &[String]| {
        let inner = server.lock();
        ids.iter()
            .filter_map(|id| inner.groups.get(id))
            .map(|g| group_json(g, &server.base_url))
            .collect()
    };
    page(&server, path, &params, keys, render, 10_000)
}

/// `GET /api/v1/groups/{id}/users`.
pub async fn members(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/api/v1/groups/{id}/users");
    if let Err(response) = authorize(
        &server,
        &headers,
        &request_url(&server, &path),
        "okta.groups.read",
    ) {
        return *response;
    }
    let keys: Option<Vec<String>> = {
        let inner = server.lock();
        inner.groups.get(&id).map(|group| {
            group
                .members
                .iter()
                .filter(|m| inner.users.contains_key(*m))
                .cloned()
                .collect()
        })
    };
    match keys {
        Some(keys) => page(
            &server,
            &path,
            &params,
            keys,
            |ids| render_users(&server, ids),
            1000,
        ),
        None => okta_error(
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {id} (UserGroup)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_match_as_okta_documents_them() {
        let f = Filter::parse(
            "(profile.lastName eq \"Smith\" or id eq \"00u2\") and lastUpdated gt \"2026-01-01T00:00:00.000Z\"",
            USER_ATTRIBUTES,
        )
        .unwrap();
        let get = |a: &str| {
            Some(match a {
                "profile.lastName" => "smith".to_string(),
                "id" => "00u1".into(),
                "lastUpdated" => "2026-02-01T00:00:00.000Z".into(),
                _ => return None,
            })
        };
        assert!(f.matches(&get));
        assert!(!f.names("status"));
        assert!(Filter::parse("profile.department eq \"x\"", USER_ATTRIBUTES).is_err());
        assert!(Filter::parse("status eq", USER_ATTRIBUTES).is_err());
    }
}
