//! The emulated endpoints: the Entra token endpoint and the Graph v1.0 collections orgsync
//! reads, with Graph's paging (small pages, an empty first page that still links on, opaque
//! `$skiptoken`s in absolute next links), `$select`, delta queries and error bodies.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Server;
use super::state::{Changed, Kind, User};

/// Graph's default `$top` where the client gives none.
const DEFAULT_TOP: usize = 100;

/// `{"error": {"code", "message", "innerError"}}` with the given status.
pub fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "request-id": uuid::Uuid::new_v4().to_string(),
                "client-request-id": uuid::Uuid::new_v4().to_string(),
            }
        }
    });
    (status, Json(body)).into_response()
}

/// A token endpoint refusal as Entra words it.
fn token_error(status: StatusCode, error: &str, code: u64, message: &str) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {now}"),
        "error_codes": [code],
        "timestamp": now,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

/// `POST /{tenant}/oauth2/v2.0/token`: client credentials with a secret (in the form or as
/// Basic auth) or a certificate assertion.
pub async fn token(
    State(server): State<Arc<Server>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let options = &server.options;
    if !tenant.eq_ignore_ascii_case(&options.tenant_id)
        && !tenant.eq_ignore_ascii_case(&options.tenant_domain)
    {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let basic = basic_auth(&headers);
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .unwrap_or_default();
    if client_id != options.client_id {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    }
    let scope = form.get("scope").cloned().unwrap_or_default();
    if scope != format!("{}/.default", server.base_url) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        );
    }
    let secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic.map(|(_, secret)| secret));
    let assertion = form.get("client_assertion");
    let proven = match (secret, assertion) {
        (Some(secret), _) => {
            if secret != server.shared.lock().client_secret {
                return token_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
                );
            }
            true
        }
        (None, Some(assertion)) => {
            let url = format!("{}/{tenant}/oauth2/v2.0/token", server.base_url);
            match verify_assertion(&server, assertion, &url) {
                Ok(()) => true,
                Err(message) => {
                    return token_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        700027,
                        &message,
                    );
                }
            }
        }
        (None, None) => false,
    };
    if !proven {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let token = format!("eyJ0eXAi.{}", uuid::Uuid::new_v4().simple());
    let lifetime = options.token_lifetime;
    server
        .shared
        .lock()
        .tokens
        .insert(token.clone(), Instant::now() + lifetime);
    Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": token,
    }))
    .into_response()
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

#[derive(Deserialize)]
struct AssertionClaims {
    jti: String,
}

/// Checks a certificate assertion: RS256 or PS256, the registered certificate's `x5t#S256`,
/// its signature, `aud` = the token URL, `iss` = `sub` = the client id, not expired.
fn verify_assertion(server: &Server, assertion: &str, url: &str) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let Some(certificate) = &server.certificate else {
        return Err("No certificate is registered for the application.".into());
    };
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| format!("Client assertion is not a valid JWT: {e}"))?;
    if header.x5t_s256.as_deref() != Some(certificate.thumbprint.as_str()) {
        return Err("Client assertion contains an invalid signature. The key was not found (x5t#S256 matches no registered certificate).".into());
    }
    let key = DecodingKey::from_rsa_pem(&certificate.pem)
        .map_err(|e| format!("the registered certificate is unusable: {e}"))?;
    let mut validation = Validation::new(Algorithm::PS256);
    validation.algorithms = vec![Algorithm::RS256, Algorithm::PS256];
    validation.set_audience(&[url]);
    validation.set_issuer(&[server.options.client_id.as_str()]);
    validation.sub = Some(server.options.client_id.clone());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub", "nbf"]);
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|e| format!("Client assertion failed validation: {e}"))?;
    if claims.claims.jti.is_empty() {
        return Err("Client assertion has no jti.".into());
    }
    Ok(())
}

/// The bearer token check every data call makes, and the consent check.
fn authorize(server: &Server, headers: &HeaderMap) -> Result<(), Early> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let inner = server.shared.lock();
    let valid = inner
        .tokens
        .get(token)
        .is_some_and(|expires| Instant::now() < *expires);
    if !valid {
        let mut response = graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            if inner.tokens.contains_key(token) {
                "Lifetime validation failed, the token is expired."
            } else {
                "Access token is empty or invalid."
            },
        );
        response.headers_mut().insert(
            "www-authenticate",
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""
                .parse()
                .expect("a header value"),
        );
        return Err(Box::new(response));
    }
    if !inner.consented {
        return Err(Box::new(graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )));
    }
    Ok(())
}

/// Where a page continues, inside a `$skiptoken`.
#[derive(Serialize, Deserialize, Default)]
struct Skip {
    offset: usize,
    /// The empty first page was served.
    started: bool,
    /// For delta pages: the changes (since, upto] and the selected properties.
    since: Option<u64>,
    upto: Option<u64>,
    select: Option<String>,
    generation: u64,
}

fn encode<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serialisable"))
}

fn decode<T: for<'de> Deserialize<'de>>(token: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).ok()?).ok()
}

/// The delta state inside a `$deltatoken`.
#[derive(Serialize, Deserialize)]
struct DeltaToken {
    since: u64,
    select: Option<String>,
    generation: u64,
}

/// The query of a collection request, decoded.
struct Listing {
    params: HashMap<String, String>,
    raw: String,
}

impl Listing {
    fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    fn select(&self) -> Option<BTreeSet<String>> {
        self.get("$select").map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
    }

    /// The raw query without `$skiptoken`, for next links.
    fn kept(&self) -> Vec<&str> {
        self.raw
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| !p.starts_with("$skiptoken=") && !p.starts_with("%24skiptoken="))
            .collect()
    }
}

fn listing(params: HashMap<String, String>, raw: Option<String>) -> Listing {
    Listing {
        params,
        raw: raw.unwrap_or_default(),
    }
}

/// The page size: `$top` (1–999; Graph refuses more) clamped to the emulator's page size.
fn page_size(server: &Server, listing: &Listing) -> Result<usize, Early> {
    let top = match listing.get("$top") {
        None => DEFAULT_TOP,
        Some(top) => match top.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return Err(Box::new(graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    &format!(
                        "Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."
                    ),
                )));
            }
        },
    };
    Ok(top.min(server.options.page_size))
}

/// One page of `items` as Graph answers it; `done` adds what the last page carries.
/// Items that a page takes a window of: only the window is ever turned into JSON (a listing of
/// 50,000 users is 50 pages, not 50 copies of everyone).
pub struct Items<'a> {
    total: usize,
    window: Box<dyn FnOnce(std::ops::Range<usize>) -> Vec<Value> + 'a>,
}

impl<'a> Items<'a> {
    fn of(items: Vec<Value>) -> Items<'a> {
        Items {
            total: items.len(),
            window: Box::new(move |range| {
                items.get(range).map(<[Value]>::to_vec).unwrap_or_default()
            }),
        }
    }

    fn lazy(
        total: usize,
        window: impl FnOnce(std::ops::Range<usize>) -> Vec<Value> + 'a,
    ) -> Items<'a> {
        Items {
            total,
            window: Box::new(window),
        }
    }
}

fn page(
    server: &Server,
    path: &str,
    listing: &Listing,
    items: Items<'_>,
    size: usize,
    mut skip: Skip,
    last: Map<String, Value>,
) -> Response {
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/v1.0/$metadata#{}",
            server.base_url,
            path.trim_start_matches("/v1.0/")
        )),
    );
    let next_link = |skip: &Skip| {
        let mut query: Vec<String> = listing.kept().into_iter().map(str::to_string).collect();
        query.push(format!("$skiptoken={}", encode(skip)));
        format!("{}{path}?{}", server.base_url, query.join("&"))
    };
    if server.options.empty_first_page && !skip.started {
        // Graph may answer a page with no items that still links on.
        skip.started = true;
        body.insert("value".into(), json!([]));
        body.insert("@odata.nextLink".into(), json!(next_link(&skip)));
        return Json(Value::Object(body)).into_response();
    }
    let end = (skip.offset + size).min(items.total);
    let value = (items.window)(skip.offset.min(end)..end);
    body.insert("value".into(), Value::Array(value));
    if end < items.total {
        skip.offset = end;
        body.insert("@odata.nextLink".into(), json!(next_link(&skip)));
    } else {
        body.extend(last);
    }
    Json(Value::Object(body)).into_response()
}

fn skip_of(listing: &Listing) -> Result<Skip, Early> {
    match listing.get("$skiptoken") {
        None => Ok(Skip::default()),
        Some(token) => decode(token).ok_or_else(|| {
            Box::new(graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "The specified page token value has expired or is invalid.",
            ))
        }),
    }
}

/// An answer that ends a request early (boxed: responses are large).
type Early = Box<Response>;

/// What every collection request checks first: the token, `$top` and the `$skiptoken`.
fn start(
    server: &Server,
    headers: &HeaderMap,
    params: HashMap<String, String>,
    raw: Option<String>,
) -> Result<(Listing, usize, Skip), Early> {
    authorize(server, headers)?;
    let listing = listing(params, raw);
    let size = page_size(server, &listing)?;
    let skip = skip_of(&listing)?;
    Ok((listing, size, skip))
}

/// Keeps the selected properties (and `id`, and `@`-annotations, always).
fn selected(
    mut object: Map<String, Value>,
    select: Option<&BTreeSet<String>>,
    default: &[&str],
) -> Value {
    object.retain(|key, _| {
        key == "id"
            || key.starts_with('@')
            || match select {
                Some(select) => select.contains(key),
                None => default.contains(&key.as_str()),
            }
    });
    Value::Object(object)
}

/// Graph's default user properties: `accountEnabled` and `userType` are not among them.
const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

fn user_json(user: &User, upn: &str) -> Map<String, Value> {
    let value = json!({
        "id": user.id,
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": null,
        "jobTitle": null,
        "mail": user.mail,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": null,
        "surname": null,
        "userPrincipalName": upn,
        "accountEnabled": user.account_enabled,
        "userType": user.user_type,
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

const GROUP_DEFAULT: &[&str] = &[
    "displayName",
    "mail",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
    "description",
];

fn group_json(id: &str, name: &str) -> Map<String, Value> {
    let value = json!({
        "id": id,
        "displayName": name,
        "description": null,
        "mail": null,
        "mailEnabled": false,
        "securityEnabled": true,
        "groupTypes": [],
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn object_json(server: &Server, id: &str, kind: Kind) -> Map<String, Value> {
    let inner = server.shared.lock();
    let tenant = &inner.tenant;
    let mut object = match kind {
        Kind::User => tenant
            .users
            .get(id)
            .map(|u| user_json(u, &u.user_principal_name))
            .unwrap_or_default(),
        Kind::Group => tenant
            .groups
            .get(id)
            .map(|name| group_json(id, name))
            .unwrap_or_default(),
        _ => {
            let mut map = Map::new();
            map.insert("displayName".into(), json!(format!("{kind:?} {id}")));
            map
        }
    };
    object.insert("id".into(), json!(id));
    object.insert("@odata.type".into(), json!(kind.odata_type()));
    object
}

/// A collection `GET` lists.
#[derive(Clone, Debug)]
pub enum Collection {
    /// `/v1.0/users`.
    Users,
    /// `/v1.0/directory/deletedItems/microsoft.graph.user`: soft-deleted users, their principal
    /// names prefixed by their id as Entra rewrites them.
    DeletedUsers,
    /// `/v1.0/groups`.
    Groups,
    /// `/v1.0/groups/{id}/members`.
    Members(String),
    /// `/v1.0/groups/{id}/transitiveMembers`: every member reachable through nesting.
    TransitiveMembers(String),
    /// `/v1.0/directory/administrativeUnits/{id}/members`.
    UnitMembers(String),
}

impl Collection {
    fn path(&self) -> String {
        match self {
            Collection::Users => "/v1.0/users".into(),
            Collection::DeletedUsers => "/v1.0/directory/deletedItems/microsoft.graph.user".into(),
            Collection::Groups => "/v1.0/groups".into(),
            Collection::Members(id) => format!("/v1.0/groups/{id}/members"),
            Collection::TransitiveMembers(id) => format!("/v1.0/groups/{id}/transitiveMembers"),
            Collection::UnitMembers(id) => {
                format!("/v1.0/directory/administrativeUnits/{id}/members")
            }
        }
    }

    /// The collection's items with the selected properties, or Graph's refusal of the id.
    fn items<'a>(
        &self,
        server: &'a Server,
        select: Option<BTreeSet<String>>,
    ) -> Result<Items<'a>, Early> {
        let object = |id: &String| {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(Box::new(graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    &format!("Invalid object identifier '{id}'."),
                )));
            }
            Ok(id.clone())
        };
        let inner = server.shared.lock();
        let tenant = &inner.tenant;
        let members = match self {
            Collection::Users => {
                let total = tenant.users.len();
                drop(inner);
                return Ok(Items::lazy(total, move |range| {
                    let inner = server.shared.lock();
                    inner
                        .tenant
                        .users
                        .values()
                        .skip(range.start)
                        .take(range.len())
                        .map(|u| {
                            selected(
                                user_json(u, &u.user_principal_name),
                                select.as_ref(),
                                USER_DEFAULT,
                            )
                        })
                        .collect()
                }));
            }
            Collection::DeletedUsers => {
                return Ok(Items::of(
                    tenant
                        .deleted_users
                        .values()
                        .map(|u| {
                            let upn = format!("{}{}", u.id.replace('-', ""), u.user_principal_name);
                            selected(user_json(u, &upn), select.as_ref(), USER_DEFAULT)
                        })
                        .collect(),
                ));
            }
            Collection::Groups => {
                return Ok(Items::of(
                    tenant
                        .groups
                        .iter()
                        .map(|(id, name)| {
                            selected(group_json(id, name), select.as_ref(), GROUP_DEFAULT)
                        })
                        .collect(),
                ));
            }
            Collection::Members(id) => tenant.members.get(&object(id)?).cloned(),
            Collection::TransitiveMembers(id) => {
                let id = object(id)?;
                tenant
                    .groups
                    .contains_key(&id)
                    .then(|| tenant.transitive_members(&id))
            }
            Collection::UnitMembers(id) => tenant.units.get(&object(id)?).cloned(),
        };
        drop(inner);
        let Some(members) = members else {
            let id = match self {
                Collection::Members(id)
                | Collection::TransitiveMembers(id)
                | Collection::UnitMembers(id) => id.as_str(),
                _ => "",
            };
            return Err(Box::new(graph_error(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                ),
            )));
        };
        Ok(Items::of(
            members
                .iter()
                .map(|(member, kind)| {
                    selected(
                        object_json(server, member, *kind),
                        select.as_ref(),
                        &["displayName"],
                    )
                })
                .collect(),
        ))
    }
}

/// `GET` of a collection: small pages of its items, with `$select` and `$top`.
pub async fn list(
    server: Arc<Server>,
    collection: Collection,
    headers: HeaderMap,
    params: HashMap<String, String>,
    raw: Option<String>,
) -> Response {
    let (listing, size, skip) = match start(&server, &headers, params, raw) {
        Ok(started) => started,
        Err(response) => return *response,
    };
    match collection.items(&server, listing.select()) {
        Ok(items) => page(
            &server,
            &collection.path(),
            &listing,
            items,
            size,
            skip,
            Map::new(),
        ),
        Err(response) => *response,
    }
}

/// Which delta collection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DeltaOf {
    Users,
    Groups,
}

/// `GET /v1.0/users/delta` and `/v1.0/groups/delta`.
pub async fn delta(
    server: Arc<Server>,
    of: DeltaOf,
    headers: HeaderMap,
    params: HashMap<String, String>,
    raw: Option<String>,
) -> Response {
    if let Err(response) = authorize(&server, &headers) {
        return *response;
    }
    let listing = listing(params, raw);
    if listing.get("$top").is_some() || listing.get("$orderby").is_some() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported query option: delta queries do not support $top or $orderby.",
        );
    }
    let path = match of {
        DeltaOf::Users => "/v1.0/users/delta",
        DeltaOf::Groups => "/v1.0/groups/delta",
    };
    let (seq, generation) = {
        let inner = server.shared.lock();
        (inner.tenant.seq(), inner.tenant.generation)
    };
    let mut skip = match skip_of(&listing) {
        Ok(skip) => skip,
        Err(response) => return *response,
    };
    let delta_link = |since: u64, select: Option<String>| {
        format!(
            "{}{path}?$deltatoken={}",
            server.base_url,
            encode(&DeltaToken {
                since,
                select,
                generation
            })
        )
    };
    // Where this round of pages stands: from the token, or from the skiptoken of a page.
    if listing.get("$skiptoken").is_none() {
        match listing.get("$deltatoken") {
            Some("latest") => {
                let mut body = Map::new();
                body.insert("value".into(), json!([]));
                body.insert(
                    "@odata.deltaLink".into(),
                    json!(delta_link(seq, listing.get("$select").map(str::to_string))),
                );
                return Json(Value::Object(body)).into_response();
            }
            Some(token) => {
                let Some(token) = decode::<DeltaToken>(token) else {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        "Request_BadRequest",
                        "The delta token is invalid.",
                    );
                };
                if token.generation != generation {
                    return expired(&server, path, token.select);
                }
                skip.since = Some(token.since);
                skip.select = token.select;
            }
            None => skip.select = listing.get("$select").map(str::to_string),
        }
        skip.upto = Some(seq);
        skip.generation = generation;
        // Delta rounds page from the first item; only collection listings start empty.
        skip.started = true;
    } else if skip.generation != generation {
        return expired(&server, path, skip.select.clone());
    }
    let select: Option<BTreeSet<String>> = skip
        .select
        .as_deref()
        .map(|s| s.split(',').map(|p| p.trim().to_string()).collect());
    let items = match of {
        DeltaOf::Users => user_changes(&server, skip.since, select.as_ref()),
        DeltaOf::Groups => group_changes(
            &server,
            skip.since,
            skip.upto.unwrap_or(seq),
            select.as_ref(),
        ),
    };
    let upto = skip.upto.unwrap_or(seq);
    let mut last = Map::new();
    last.insert(
        "@odata.deltaLink".into(),
        json!(delta_link(upto, skip.select.clone())),
    );
    // Next links of a delta round carry only the skiptoken, as Graph's do.
    let round = Listing {
        params: HashMap::new(),
        raw: String::new(),
    };
    page(
        &server,
        path,
        &round,
        Items::of(items),
        server.options.page_size,
        skip,
        last,
    )
}

/// An expired delta link: `410 Gone` with a fresh start in `Location`, or 400
/// `resyncRequired`, as the emulator is set.
fn expired(server: &Server, path: &str, select: Option<String>) -> Response {
    let restart = match &select {
        Some(select) => format!("{}{path}?$select={select}", server.base_url),
        None => format!("{}{path}", server.base_url),
    };
    if server.options.expired_delta_status == 410 {
        let mut response = graph_error(
            StatusCode::GONE,
            "syncStateNotFound",
            "The sync state generation is not found. Please restart the sync with a fresh delta link.",
        );
        response
            .headers_mut()
            .insert("location", restart.parse().expect("a header value"));
        response
    } else {
        graph_error(
            StatusCode::BAD_REQUEST,
            "resyncRequired",
            "A resync is required because the delta token is no longer valid.",
        )
    }
}

/// Users changed after `since` (all live users without it).
fn user_changes(
    server: &Server,
    since: Option<u64>,
    select: Option<&BTreeSet<String>>,
) -> Vec<Value> {
    let inner = server.shared.lock();
    let tenant = &inner.tenant;
    let ids: Vec<String> = match since {
        None => tenant.users.keys().cloned().collect(),
        Some(since) => {
            let mut seen = BTreeSet::new();
            tenant.log[since as usize..]
                .iter()
                .filter_map(|c| match c {
                    Changed::User(id) => Some(id.clone()),
                    _ => None,
                })
                .filter(|id| seen.insert(id.clone()))
                .collect()
        }
    };
    ids.iter()
        .map(|id| match tenant.users.get(id) {
            Some(user) => selected(
                user_json(user, &user.user_principal_name),
                select,
                USER_DEFAULT,
            ),
            None => {
                let reason = match tenant.deleted_users.contains_key(id) {
                    true => "changed",
                    false => "deleted",
                };
                json!({"id": id, "@removed": {"reason": reason}})
            }
        })
        .collect()
}

/// Groups changed after `since` up to `upto`, with `members@delta` when members are selected;
/// a group with more member changes than a page holds comes as several consecutive items,
/// each with a slice of them.
fn group_changes(
    server: &Server,
    since: Option<u64>,
    upto: u64,
    select: Option<&BTreeSet<String>>,
) -> Vec<Value> {
    let inner = server.shared.lock();
    let tenant = &inner.tenant;
    let with_members = select.is_some_and(|s| s.contains("members"));
    // Group id → member id → (kind, present at the end).
    let mut order: Vec<String> = Vec::new();
    let mut changes: HashMap<String, Vec<(String, Kind, bool)>> = HashMap::new();
    let touch = |group: &str, order: &mut Vec<String>| {
        if !order.iter().any(|g| g == group) {
            order.push(group.to_string());
        }
    };
    match since {
        None => {
            for (group, members) in &tenant.members {
                touch(group, &mut order);
                changes
                    .entry(group.clone())
                    .or_default()
                    .extend(members.iter().map(|(id, kind)| (id.clone(), *kind, true)));
            }
        }
        Some(since) => {
            for change in &tenant.log[since as usize..upto as usize] {
                match change {
                    Changed::Group(id) => touch(id, &mut order),
                    Changed::Membership {
                        group,
                        member,
                        kind,
                        added,
                    } => {
                        touch(group, &mut order);
                        let list = changes.entry(group.clone()).or_default();
                        list.retain(|(m, _, _)| m != member);
                        list.push((member.clone(), *kind, *added));
                    }
                    Changed::User(_) => {}
                }
            }
        }
    }
    let slice = server.options.page_size.max(1);
    let mut items = Vec::new();
    for id in order {
        let Some(name) = tenant.groups.get(&id) else {
            if tenant.removed_groups.contains(&id) {
                items.push(json!({"id": id, "@removed": {"reason": "changed"}}));
            }
            continue;
        };
        let object = selected(group_json(&id, name), select, GROUP_DEFAULT);
        let member_changes = changes.remove(&id).unwrap_or_default();
        if !with_members || member_changes.is_empty() {
            items.push(object);
            continue;
        }
        for chunk in member_changes.chunks(slice) {
            let mut item = object.clone();
            let delta: Vec<Value> = chunk
                .iter()
                .map(|(member, kind, present)| match present {
                    true => json!({"@odata.type": kind.odata_type(), "id": member}),
                    false => json!({"@odata.type": kind.odata_type(), "id": member, "@removed": {"reason": "deleted"}}),
                })
                .collect();
            if let Value::Object(map) = &mut item {
                map.insert("members@delta".into(), Value::Array(delta));
            }
            items.push(item);
        }
    }
    items
}

/// A path Graph does not have.
pub async fn not_found() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "Resource not found for the segment.",
    )
}
