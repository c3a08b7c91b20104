//! `POST {base}/identity/connect/token`: the organization API-key login
//! (directory-connector.md §5.12, vaultwarden-import.md "Token and import requests").
//!
//! Both flavours accept exactly one way in: `grant_type=client_credentials`,
//! `scope=api.organization`, `client_id=organization.<org id>` and the right `client_secret`.
//! Anything else is refused the way the emulated server refuses it:
//!
//! | problem | Bitwarden (Duende IdentityServer) | Vaultwarden |
//! |---|---|---|
//! | body not a form | 400 `{"error":"invalid_request"}` | 422 Rocket catcher |
//! | unknown/malformed `client_id`, wrong secret | 400 `{"error":"invalid_client"}` | 400 `"Malformed client_id"` / `"Invalid client_id"` / `"Incorrect client_secret"` |
//! | missing field | `invalid_client` (id/secret), `unsupported_grant_type`, `invalid_scope` | 400 `"<field> cannot be blank"`; no `grant_type` → 422 |
//! | other grant type | `unauthorized_client` (known types) / `unsupported_grant_type` | 400 `"Invalid type"` (`refresh_token` → `{"error":"invalid_grant"}`) |
//! | other scope | `invalid_scope` | `api` → `"Malformed client_id"`, else `"Scope not supported"` |
//! | no device fields | accepted (Bitwarden does not need them for this grant) | 400 `"device_identifier cannot be blank"` etc. |
//!
//! One deliberate strictness: real Duende grants all of a client's scopes when `scope` is
//! missing; here a missing scope is `invalid_scope`, because a sync client must send it.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::errors;
use super::state::Shared;

/// The form fields of a token request, as received.
type Fields = Vec<(String, String)>;

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    if shared.flavour.is_bitwarden() {
        bitwarden(&shared, form)
    } else {
        vaultwarden(&shared, &headers, form)
    }
}

fn bitwarden(shared: &Shared, form: Result<Form<Fields>, FormRejection>) -> Response {
    let Ok(Form(fields)) = form else {
        return errors::oauth("invalid_request");
    };
    // OAuth parameter names are exact in IdentityServer.
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    // Client authentication comes first in IdentityServer.
    let client_ok = field("client_id")
        .and_then(|id| id.strip_prefix("organization."))
        .is_some_and(|org| org.eq_ignore_ascii_case(&shared.org_id));
    if !client_ok || field("client_secret") != Some(shared.client_secret.as_str()) {
        return errors::oauth("invalid_client");
    }
    match field("grant_type") {
        Some("client_credentials") => {}
        Some("password" | "refresh_token" | "authorization_code") => {
            return errors::oauth("unauthorized_client");
        }
        _ => return errors::oauth("unsupported_grant_type"),
    }
    if field("scope") != Some("api.organization") {
        return errors::oauth("invalid_scope");
    }
    success(shared, true)
}

fn vaultwarden(
    shared: &Shared,
    headers: &HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let Ok(Form(fields)) = form else {
        return errors::rocket_catcher(StatusCode::UNPROCESSABLE_ENTITY, headers);
    };
    // Vaultwarden's form is `uncased` and knows each field as snake_case and as one word, so
    // `device_type`, `deviceType` and `DEVICETYPE` are all the same field.
    let field = |name: &str| {
        let wanted = normalise(name);
        fields
            .iter()
            .find(|(k, _)| normalise(k) == wanted)
            .map(|(_, v)| v.as_str())
    };
    let blank = |name: &str| {
        errors::vaultwarden(StatusCode::BAD_REQUEST, &format!("{name} cannot be blank"))
    };

    let Some(grant_type) = field("grant_type") else {
        // A required field of the Rocket form: the form guard fails before any handler code.
        return errors::rocket_catcher(StatusCode::UNPROCESSABLE_ENTITY, headers);
    };
    match grant_type {
        "client_credentials" => {}
        // This server issues no refresh tokens, so no refresh can succeed.
        "refresh_token" => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "invalid_grant"})),
            )
                .into_response();
        }
        _ => return errors::vaultwarden(StatusCode::BAD_REQUEST, "Invalid type"),
    }
    for required in [
        "client_id",
        "client_secret",
        "scope",
        "device_identifier",
        "device_name",
        "device_type",
    ] {
        if field(required).is_none() {
            return blank(required);
        }
    }
    let client_id = field("client_id").unwrap_or_default();
    let fail = |message: &str| errors::vaultwarden(StatusCode::BAD_REQUEST, message);
    match field("scope").unwrap_or_default() {
        "api.organization" => {}
        // A user API-key login: an organization client id is not `user.<uuid>`.
        "api" if client_id.starts_with("user.") => return fail("Invalid client_id"),
        "api" => return fail("Malformed client_id"),
        _ => return fail("Scope not supported"),
    }
    let Some(org) = client_id.strip_prefix("organization.") else {
        return fail("Malformed client_id");
    };
    if org != shared.org_id {
        return fail("Invalid client_id");
    }
    if field("client_secret") != Some(shared.client_secret.as_str()) {
        return fail("Incorrect client_secret");
    }
    success(shared, false)
}

/// The token response. Neither server returns a refresh token for this grant, so clients
/// log in again when the token runs out.
fn success(shared: &Shared, no_store: bool) -> Response {
    let body = axum::Json(json!({
        "access_token": shared.issue_token(),
        "expires_in": shared.token_lifetime.as_secs(),
        "token_type": "Bearer",
        "scope": "api.organization",
    }));
    if no_store {
        (
            [
                (CACHE_CONTROL, "no-store, no-cache, max-age=0"),
                (PRAGMA, "no-cache"),
            ],
            body,
        )
            .into_response()
    } else {
        body.into_response()
    }
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
