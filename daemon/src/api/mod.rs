//! The control API (axum): `/v1/...` over the `orgsync_proto::api` types, for the CLI and the tray.
//!
//! Every request passes [`guard`] first: the `Host` must be a loopback name and a present `Origin`
//! must be local too (so a web page cannot reach the API through DNS rebinding or a cross-site
//! request), and `Authorization: Bearer <token>` must carry the token from the data directory.
//! Handlers only call the [`Service`].

use std::convert::Infallible;
use std::path::Path;

use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use orgsync_proto::InstallationStatus;
use orgsync_proto::api::*;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};
use utoipa::OpenApi;

use crate::engine::RunError;
use crate::service::{Service, ServiceError};

mod serve;
pub use serve::{HEADER_TIMEOUT, MAX_CONNECTIONS, serve};

/// The error answer of every endpoint: a status and an [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code,
                message: message.into(),
                run_id: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let message = error.to_string();
        let (status, code, run_id) = match &error {
            ServiceError::RunInProgress(id) | ServiceError::StillInProgress(id, _) => {
                (StatusCode::CONFLICT, ErrorCode::RunInProgress, Some(*id))
            }
            ServiceError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ShuttingDown,
                None,
            ),
            ServiceError::Config(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidConfig,
                None,
            ),
            ServiceError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, None)
            }
            ServiceError::Run { run_id, error } => {
                let (status, code) = match error {
                    RunError::Config(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidConfig)
                    }
                    RunError::Usage(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
                    RunError::NotLoggedIn => (StatusCode::CONFLICT, ErrorCode::NotLoggedIn),
                    RunError::DuplicateEmails(_) => (StatusCode::CONFLICT, ErrorCode::Refused),
                    _ => (StatusCode::BAD_GATEWAY, ErrorCode::RunFailed),
                };
                (status, code, *run_id)
            }
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("internal error: {message}");
        }
        ApiError {
            status,
            body: ErrorBody {
                code,
                message,
                run_id,
            },
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Everything the handlers share.
#[derive(Clone)]
struct ApiState {
    service: Service,
    token: String,
    /// The port the API listens on, which the hello's proof is bound to.
    port: u16,
    /// Turns true when the daemon stops, ending the event streams so shutdown is not held open.
    shutdown: watch::Receiver<bool>,
}

/// The router, with the guard in front of every route.
pub fn router(
    service: Service,
    token: String,
    port: u16,
    shutdown: watch::Receiver<bool>,
) -> Router {
    let state = ApiState {
        service,
        token,
        port,
        shutdown,
    };
    Router::new()
        .route(paths::HELLO, get(hello))
        .route(paths::STATUS, get(status))
        .route(paths::TEST, post(test))
        .route(paths::SYNC, post(sync))
        .route(paths::POLLING_START, post(start_polling))
        .route(paths::POLLING_STOP, post(stop_polling))
        .route(paths::CLEAR_CACHE, post(clear_cache))
        .route(paths::HISTORY, get(history))
        .route(paths::EVENTS, get(events))
        .route(paths::CONFIG, get(config).put(update_config))
        .route(paths::LOGIN, post(login))
        .route(paths::LOGOUT, post(logout))
        .route(paths::OPENAPI, get(openapi))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn(error_bodies))
        .with_state(state)
}

/// Every rejection in the documented `{code, message}` shape, also those axum makes itself
/// (a wrong method, a body too large or not JSON, a bad query) in plain text.
async fn error_bodies(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    };
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let message = match (status, text.is_empty()) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            "this path does not take that method; see /v1/openapi.json".to_string()
        }
        (_, true) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string(),
        (_, false) => text,
    };
    let mut response = ApiError::new(status, code, message).into_response();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body is never read, so the connection cannot carry another request:
        // say so, or a client reuses it and its next request dies with the connection.
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Loopback host names a browser or client may use for the API.
fn is_local_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default() // [::1]:port
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses foreign `Host`/`Origin` headers and requests without the right token.
async fn guard(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !is_local_host(host) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "Host {host:?} is not local; the API answers only to 127.0.0.1, ::1 and localhost"
            ),
        )
        .into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let local = origin
            .strip_prefix("http://")
            .is_some_and(|rest| is_local_host(rest.trim_end_matches('/')));
        if !local {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                format!("requests from origin {origin:?} are not allowed"),
            )
            .into_response();
        }
    }
    // The hello is how a client checks who it talks to before it sends the token.
    if request.uri().path() != paths::HELLO && !bearer_matches(headers, &state.token) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            format!(
                "missing or wrong bearer token; it is in {}",
                state.service.paths().data_dir.join(TOKEN_FILE).display()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a JSON body; an empty body means the defaults.
fn body<T: DeserializeOwned + Default>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    required_body(bytes)
}

/// Parses a JSON body that must be there. Unknown fields are errors (a typo must not be
/// silently ignored).
fn required_body<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("invalid request body: {e}"),
        )
    })
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
struct HelloQuery {
    /// A random value of the client's (hex, at most 64 characters).
    nonce: String,
}

#[utoipa::path(get, path = "/v1/hello", params(HelloQuery), security(), responses(
    (status = 200, description = "the daemon's proof that it holds the API token; needs no token", body = Hello),
    (status = 400, body = ErrorBody)))]
async fn hello(
    State(state): State<ApiState>,
    Query(query): Query<HelloQuery>,
) -> ApiResult<Json<Hello>> {
    let nonce = query.nonce;
    if nonce.is_empty() || nonce.len() > 64 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "nonce: give 1 to 64 hex digits",
        ));
    }
    Ok(Json(Hello {
        proof: daemon_proof(&state.token, state.port, &nonce),
        pid: std::process::id(),
    }))
}

#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = DaemonStatus)))]
async fn status(State(state): State<ApiState>) -> ApiResult<Json<DaemonStatus>> {
    Ok(Json(state.service.status()?))
}

#[utoipa::path(post, path = "/v1/test", responses(
    (status = 200, body = TestDone), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn test(State(state): State<ApiState>) -> ApiResult<Json<TestDone>> {
    let (run_id, report) = state.service.test(RunTrigger::Manual).await?;
    Ok(Json(TestDone { run_id, report }))
}

#[utoipa::path(post, path = "/v1/sync", request_body = SyncRequest, responses(
    (status = 200, description = "with `wait`: the finished run", body = SyncDone),
    (status = 202, description = "without `wait`: the run started", body = RunStarted),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn sync(State(state): State<ApiState>, bytes: Bytes) -> ApiResult<Response> {
    let request: SyncRequest = body(&bytes)?;
    if request.wait {
        let (run_id, report) = state
            .service
            .sync(RunTrigger::Manual, request.allow_removals)
            .await?;
        Ok(Json(SyncDone { run_id, report }).into_response())
    } else {
        let run_id = state
            .service
            .start_sync(RunTrigger::Manual, request.allow_removals)?;
        Ok((StatusCode::ACCEPTED, Json(RunStarted { run_id })).into_response())
    }
}

#[utoipa::path(post, path = "/v1/polling/start", responses((status = 200, body = PollingState)))]
async fn start_polling(State(state): State<ApiState>) -> ApiResult<Json<PollingState>> {
    Ok(Json(PollingState {
        polling: state.service.set_polling(true)?,
    }))
}

#[utoipa::path(post, path = "/v1/polling/stop", responses((status = 200, body = PollingState)))]
async fn stop_polling(State(state): State<ApiState>) -> ApiResult<Json<PollingState>> {
    Ok(Json(PollingState {
        polling: state.service.set_polling(false)?,
    }))
}

#[utoipa::path(post, path = "/v1/clear-cache", responses((status = 200, body = InstallationStatus)))]
async fn clear_cache(State(state): State<ApiState>) -> ApiResult<Json<InstallationStatus>> {
    Ok(Json(state.service.clear_cache()?))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
struct HistoryQuery {
    /// How many runs, newest first (default 20, at most 500).
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/history", params(HistoryQuery), responses((status = 200, body = History)))]
async fn history(
    State(state): State<ApiState>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<History>> {
    let limit = query.limit.unwrap_or(20).min(500);
    Ok(Json(History {
        runs: state.service.history(limit)?,
    }))
}

#[utoipa::path(get, path = "/v1/events", responses(
    (status = 200, description = "Server-Sent Events; each `data:` is an Event, the SSE event name its `type`", body = Event, content_type = "text/event-stream")))]
async fn events(
    State(state): State<ApiState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = state.service.subscribe();
    let stream = futures_util::stream::unfold(
        (receiver, state.shutdown.clone(), false),
        |(mut receiver, mut shutdown, stopping)| async move {
            if stopping {
                // The daemon is stopping: hand out what is already queued (the end of the last
                // run), then end the stream so shutdown is not held open.
                let event = receiver.try_recv().ok()?;
                return Some((Some(event), (receiver, shutdown, true)));
            }
            let next = tokio::select! {
                // Events first: one that is ready is never lost to a simultaneous stop.
                biased;
                received = receiver.recv() => Some(received),
                _ = shutdown.wait_for(|stop| *stop) => None,
            };
            match next {
                Some(Ok(event)) => Some((Some(event), (receiver, shutdown, false))),
                // A slow reader that lagged just misses events; `status` catches it up.
                Some(Err(broadcast::error::RecvError::Lagged(_))) => {
                    Some((None, (receiver, shutdown, false)))
                }
                Some(Err(broadcast::error::RecvError::Closed)) => None,
                None => Some((None, (receiver, shutdown, true))),
            }
        },
    )
    .filter_map(|event| async move {
        let event = event?;
        SseEvent::default()
            .event(event.name())
            .json_data(&event)
            .ok()
            .map(Ok)
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn config_view(service: &Service) -> ConfigView {
    let config = service.config();
    ConfigView {
        file: service.paths().config_file.display().to_string(),
        toml: toml::to_string(&config).unwrap_or_default(),
        values: serde_json::to_value(&config).unwrap_or_default(),
        secrets: service
            .secret_sources()
            .into_iter()
            .map(|(key, source)| SecretState {
                key: key.name().to_string(),
                source,
            })
            .collect(),
        problem: config.resolve().err().map(|e| e.to_string()),
    }
}

#[utoipa::path(get, path = "/v1/config", responses((status = 200, body = ConfigView)))]
async fn config(State(state): State<ApiState>) -> Json<ConfigView> {
    Json(config_view(&state.service))
}

#[utoipa::path(put, path = "/v1/config", request_body = ConfigUpdate, responses(
    (status = 200, body = ConfigView), (status = 422, body = ErrorBody)))]
async fn update_config(State(state): State<ApiState>, bytes: Bytes) -> ApiResult<Json<ConfigView>> {
    let update: ConfigUpdate = body(&bytes)?;
    state.service.update_config(&update)?;
    Ok(Json(config_view(&state.service)))
}

#[utoipa::path(post, path = "/v1/login", request_body = LoginRequest, responses(
    (status = 200, body = LoginDone), (status = 502, body = ErrorBody)))]
async fn login(State(state): State<ApiState>, bytes: Bytes) -> ApiResult<Json<LoginDone>> {
    let request: LoginRequest = required_body(&bytes)?;
    let (organization_id, replaced_organization) = state
        .service
        .login(&request.client_id, &request.client_secret)
        .await?;
    Ok(Json(LoginDone {
        organization_id,
        secrets: state.service.secrets_description(),
        replaced_organization,
    }))
}

#[utoipa::path(post, path = "/v1/logout", responses((status = 200, body = InstallationStatus)))]
async fn logout(State(state): State<ApiState>) -> ApiResult<Json<InstallationStatus>> {
    Ok(Json(state.service.logout()?))
}

#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "this document")))]
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint; see /v1/openapi.json",
    )
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orgsyncd control API",
        description = "Local control API of the orgsync daemon. Every request needs `Authorization: Bearer <token>` (the token is the file `api-token` in the data directory)."
    ),
    paths(
        hello,
        status,
        test,
        sync,
        start_polling,
        stop_polling,
        clear_cache,
        history,
        events,
        config,
        update_config,
        login,
        logout,
        openapi
    ),
    components(schemas(ErrorBody, ErrorCode, Event))
)]
struct ApiDoc;

/// The OpenAPI document, generated from the handlers and the `proto` types. Checked in as
/// `docs/openapi.json`; a test keeps the two equal.
pub fn openapi_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.to_pretty_json()
        .expect("the OpenAPI document serialises")
}

/// Reads the API token from the data directory, creating it (256 random bits, mode 0600) on the
/// first start.
pub fn load_or_create_token(data_dir: &Path) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) if token.trim().len() >= 64 => return Ok(token.trim().to_string()),
        Ok(_) | Err(_) => {}
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir)?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in document is what the code generates. Regenerate it with
    /// `ORGSYNC_BLESS=1 cargo test -p orgsync --lib openapi`.
    #[test]
    fn openapi_document_is_checked_in() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let generated = openapi_json() + "\n";
        if std::env::var_os("ORGSYNC_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/openapi.json is out of date; regenerate it with ORGSYNC_BLESS=1 cargo test -p orgsync --lib openapi"
        );
        for path in [paths::STATUS, paths::SYNC, paths::EVENTS, paths::CONFIG] {
            assert!(generated.contains(&format!("\"{path}\"")), "{path} missing");
        }
    }

    #[test]
    fn only_loopback_hosts_are_local() {
        for host in [
            "127.0.0.1:47613",
            "localhost:47613",
            "[::1]:47613",
            "127.0.0.1",
            "LOCALHOST",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "evil.example:47613",
            "192.168.1.5:47613",
            "",
            "localhost.evil.example",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
    }
}
