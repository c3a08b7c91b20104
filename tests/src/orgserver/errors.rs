//! The error responses of each emulated server, in one place so their shapes stay consistent.
//!
//! Sources: Bitwarden's public API wraps errors in its public `ErrorResponseModel`
//! (`object`, `message`, `errors`); its identity server (Duende IdentityServer) answers OAuth
//! errors as `{"error": "<code>"}`; Vaultwarden answers `err!(...)` with a Bitwarden-compatible
//! body whose `message` is the text (vaultwarden-import.md shows `"Incorrect client_secret"`);
//! failures of Vaultwarden's request guards and body parsing reach Rocket's default catcher.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Bitwarden's message for exceptions it did not anticipate (a 500).
pub(crate) const BW_UNHANDLED: &str = "An unhandled server error has occurred.";

/// Bitwarden public API error: `{"object":"error","message":...,"errors":null}`.
pub(crate) fn bitwarden(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"object": "error", "message": message, "errors": Value::Null})),
    )
        .into_response()
}

/// Bitwarden's answer to an exception its code did not handle (e.g. a null collection).
pub(crate) fn bitwarden_unhandled() -> Response {
    bitwarden(StatusCode::INTERNAL_SERVER_ERROR, BW_UNHANDLED)
}

/// Bitwarden public API model-state failure: 400 with one list of messages per field. Keys
/// are ASP.NET's (`OverwriteExisting`, `Members[0].ExternalId`, or a JSON path such as
/// `$.members[0].deleted` when the body could not be converted).
pub(crate) fn bitwarden_model_state(errors: &BTreeMap<String, Vec<String>>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "object": "error",
            "message": "The request's model state is invalid.",
            "errors": errors,
        })),
    )
        .into_response()
}

/// ASP.NET's answer to a body that is not JSON: 415 with an RFC 9457 problem document.
pub(crate) fn bitwarden_unsupported_media_type() -> Response {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(CONTENT_TYPE, "application/problem+json; charset=utf-8")],
        json!({
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.16",
            "title": "Unsupported Media Type",
            "status": 415,
            "traceId": format!("00-{}-{}-00", &trace[..32], &trace[..16]),
        })
        .to_string(),
    )
        .into_response()
}

/// ASP.NET JWT bearer rejection: 401, empty body, the reason only in `WWW-Authenticate`.
pub(crate) fn bitwarden_unauthorized(www_authenticate: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, HeaderValue::from_static(www_authenticate))],
    )
        .into_response()
}

/// Duende IdentityServer token-endpoint error: 400 `{"error":"<code>"}` (no description for
/// client authentication failures), never cached.
pub(crate) fn oauth(error: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [
            (CACHE_CONTROL, "no-store, no-cache, max-age=0"),
            (PRAGMA, "no-cache"),
        ],
        Json(json!({"error": error})),
    )
        .into_response()
}

/// Vaultwarden's `err!(message)` body (400 unless said otherwise).
pub(crate) fn vaultwarden(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "error": "",
            "error_description": "",
            "validationErrors": {"": [message]},
            "errorModel": {"message": message, "object": "error"},
            "exceptionMessage": Value::Null,
            "exceptionStackTrace": Value::Null,
            "innerExceptionMessage": Value::Null,
            "object": "error",
        })),
    )
        .into_response()
}

/// Rocket's default catcher (Vaultwarden's answer when a request guard or the body parser
/// fails): JSON when the client accepts JSON, else a small HTML page.
pub(crate) fn rocket_catcher(status: StatusCode, request_headers: &HeaderMap) -> Response {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    let description = match code {
        400 => "The request could not be understood by the server due to malformed syntax.",
        401 => "The request requires user authentication.",
        404 => "The requested resource could not be found.",
        422 => "The request was well-formed but was unable to be followed due to semantic errors.",
        _ => "An error occurred while processing the request.",
    };
    let wants_json = request_headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if wants_json {
        (
            status,
            Json(json!({"error": {"code": code, "reason": reason, "description": description}})),
        )
            .into_response()
    } else {
        let page = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{code} {reason}</title>\n</head>\n<body align=\"center\">\n\
             <div role=\"main\" align=\"center\">\n<h1>{code}: {reason}</h1>\n<p>{description}</p>\n\
             <hr />\n</div>\n<div role=\"contentinfo\" align=\"center\">\n<small>Rocket</small>\n\
             </div>\n</body>\n</html>"
        );
        (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
    }
}

/// The answer to a failure injected with `fail_next`: a JSON `message` (what Directory
/// Connector prints) and, when asked for, a `Retry-After` header in seconds.
pub(crate) fn injected(status: StatusCode, retry_after_secs: Option<u64>) -> Response {
    let message = match status.as_u16() {
        429 => "Too many requests",
        500 => BW_UNHANDLED,
        _ => status.canonical_reason().unwrap_or("Injected failure"),
    };
    let mut response =
        (status, Json(json!({"message": message, "object": "error"}))).into_response();
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
