//! `POST {base}/api/public/organization/import`: authentication, body decoding and validation
//! per flavour, then [`super::import`] applies it.
//!
//! Order, as on both servers: the bearer token is checked before the body is read.
//!
//! Bitwarden (ASP.NET Core, System.Text.Json): property names are case-insensitive; a body
//! that is not JSON content is 415; a body that does not convert (bad syntax, wrong types) or
//! fails the model's validation attributes is 400 with the public `ErrorResponseModel`
//! (`"The request's model state is invalid."` and `errors` by field). `externalId` and
//! `memberExternalIds` entries may be numbers (Bitwarden's permissive string converter).
//! Required: `overwriteExisting`; each group's `name` (≤ 100) and `externalId` (≤ 300); each
//! member's `externalId` (≤ 300) and, unless `deleted`, `email` (a valid address, ≤ 256).
//!
//! Vaultwarden (Rocket, serde): property names are exact camelCase; `groups`, `members`,
//! `overwriteExisting`, each member's `email`, `externalId` (string) and `deleted`, each
//! group's `name`, `externalId` and `memberExternalIds` (strings) are required, unknown fields
//! are ignored. A body with the wrong shape is 422, malformed JSON 400, both with Rocket's
//! default catcher body; the content type is not checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Flavour;
use super::errors;
use super::import::{
    self, ImportFailure, ImportGroup, ImportMember, ImportRequest, apply_bitwarden,
};
use super::state::{Shared, TokenCheck};

pub(crate) async fn import(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let checked = authorize(&shared, &headers).and_then(|()| {
        if shared.flavour.is_bitwarden() {
            decode_bitwarden(&headers, &body)
        } else {
            decode_vaultwarden(&body)
        }
    });
    let request = match checked {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(&headers),
    };

    let mut inner = shared.lock();
    let outcome = match shared.flavour {
        Flavour::Vaultwarden => {
            import::apply_vaultwarden(&mut inner.org, &request);
            Ok(())
        }
        Flavour::BitwardenCloud => apply_bitwarden(&mut inner.org, &request, true),
        Flavour::BitwardenSelfHosted => apply_bitwarden(&mut inner.org, &request, false),
    };
    match outcome {
        Ok(()) => {
            inner.import_count += 1;
            inner.import_time += started.elapsed();
            StatusCode::OK.into_response()
        }
        Err(ImportFailure::BadRequest(message)) => {
            errors::bitwarden(StatusCode::BAD_REQUEST, message)
        }
        Err(ImportFailure::Unhandled) => errors::bitwarden_unhandled(),
    }
}

/// Why a request is refused before the import is applied.
enum Refusal {
    /// No bearer token, or one this server did not issue, or one that expired. Bitwarden's
    /// `WWW-Authenticate` says which; Vaultwarden does not.
    Unauthorized {
        flavour: Flavour,
        check: Option<TokenCheck>,
    },
    /// Vaultwarden: Rocket's default catcher with this status.
    Rocket(StatusCode),
    /// Bitwarden: the body is not JSON content (415).
    UnsupportedMediaType,
    /// Bitwarden: the body does not bind or fails validation (400).
    ModelState(ModelErrors),
    /// Bitwarden: the controller would throw (500).
    Unhandled,
}

impl Refusal {
    fn into_response(self, headers: &HeaderMap) -> Response {
        match self {
            Refusal::Unauthorized {
                flavour: Flavour::Vaultwarden,
                ..
            } => errors::rocket_catcher(StatusCode::UNAUTHORIZED, headers),
            Refusal::Unauthorized { check, .. } => match check {
                None => errors::bitwarden_unauthorized("Bearer"),
                Some(TokenCheck::Expired) => errors::bitwarden_unauthorized(
                    "Bearer error=\"invalid_token\", error_description=\"The token expired\"",
                ),
                Some(_) => errors::bitwarden_unauthorized("Bearer error=\"invalid_token\""),
            },
            Refusal::Rocket(status) => errors::rocket_catcher(status, headers),
            Refusal::UnsupportedMediaType => errors::bitwarden_unsupported_media_type(),
            Refusal::ModelState(problems) => errors::bitwarden_model_state(&problems),
            Refusal::Unhandled => errors::bitwarden_unhandled(),
        }
    }

    fn model_state(key: &str, message: String) -> Refusal {
        Refusal::ModelState(ModelErrors::from([(key.to_string(), vec![message])]))
    }
}

/// Checks `Authorization: Bearer <token>` against the tokens this server issued.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let check = token.map(|t| shared.lock().check_token(t));
    if matches!(check, Some(TokenCheck::Valid)) {
        return Ok(());
    }
    Err(Refusal::Unauthorized {
        flavour: shared.flavour,
        check,
    })
}

// ---- Vaultwarden -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VwImport {
    groups: Vec<VwGroup>,
    members: Vec<VwMember>,
    overwrite_existing: bool,
    large_import: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VwGroup {
    name: String,
    external_id: String,
    member_external_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VwMember {
    email: String,
    external_id: String,
    deleted: bool,
}

fn decode_vaultwarden(body: &[u8]) -> Result<ImportRequest, Refusal> {
    let parsed: VwImport = serde_json::from_slice(body).map_err(|e| {
        // Rocket's JSON guard: a well-formed body of the wrong shape is 422, anything else 400.
        let status = match e.classify() {
            serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal::Rocket(status)
    })?;
    Ok(ImportRequest {
        groups: Some(
            parsed
                .groups
                .into_iter()
                .map(|g| ImportGroup {
                    name: g.name,
                    external_id: g.external_id,
                    member_external_ids: Some(g.member_external_ids),
                })
                .collect(),
        ),
        members: Some(
            parsed
                .members
                .into_iter()
                .map(|m| ImportMember {
                    email: Some(m.email.to_lowercase()),
                    external_id: m.external_id,
                    deleted: m.deleted,
                })
                .collect(),
        ),
        overwrite_existing: parsed.overwrite_existing,
        large_import: parsed.large_import.unwrap_or(false),
    })
}

// ---- Bitwarden ---------------------------------------------------------------------------

/// Model-state errors by key, as ASP.NET collects them.
type ModelErrors = BTreeMap<String, Vec<String>>;

fn decode_bitwarden(headers: &HeaderMap, body: &[u8]) -> Result<ImportRequest, Refusal> {
    if !is_json_content_type(headers) {
        return Err(Refusal::UnsupportedMediaType);
    }
    let single = Refusal::model_state;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(single("", "A non-empty request body is required.".into()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| single("$", format!("{e}")))?;
    let converted = match &value {
        Value::Null => return Err(single("", "A non-empty request body is required.".into())),
        _ => convert_bitwarden(&value),
    };
    let converted = converted.map_err(|(path, target)| {
        single(
            &path,
            format!("The JSON value could not be converted to {target}. Path: {path}."),
        )
    })?;
    let problems = validate_bitwarden(&converted);
    if !problems.is_empty() {
        return Err(Refusal::ModelState(problems));
    }
    if converted.null_entries {
        return Err(Refusal::Unhandled);
    }
    Ok(converted.request)
}

/// `application/json`, `text/json` or `application/*+json`, any parameters.
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence == "text/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A conversion failure: the JSON path and the .NET type it could not become.
type ConvertError = (String, &'static str);

const MODEL: &str = "Bit.Api.AdminConsole.Public.Models.Request.OrganizationImportRequestModel";
const GROUP_MODEL: &str = "Bit.Api.AdminConsole.Public.Models.Request.OrganizationImportRequestModel+OrganizationImportGroupRequestModel";
const MEMBER_MODEL: &str = "Bit.Api.AdminConsole.Public.Models.Request.OrganizationImportRequestModel+OrganizationImportMemberRequestModel";
const STRING: &str = "System.String";
const BOOLEAN: &str = "System.Boolean";

/// A body bound to the model, with what validation and the controller still need to know.
struct Converted {
    request: ImportRequest,
    /// `overwriteExisting` is `[Required]`: missing or null fails validation.
    overwrite_missing: bool,
    /// A `null` group or member passes validation and then throws in the controller.
    null_entries: bool,
}

/// Converts the body the way System.Text.Json would bind it (case-insensitive names, unknown
/// names ignored), stopping at the first value of the wrong type.
fn convert_bitwarden(value: &Value) -> Result<Converted, ConvertError> {
    let root = value.as_object().ok_or_else(|| ("$".to_string(), MODEL))?;
    let mut null_entries = false;

    let groups = match property(root, "groups") {
        None | Some((_, Value::Null)) => None,
        Some((key, Value::Array(items))) => {
            let mut groups = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("$.{key}[{i}]");
                match item {
                    Value::Null => null_entries = true,
                    Value::Object(obj) => groups.push(convert_group(obj, &path)?),
                    _ => return Err((path, GROUP_MODEL)),
                }
            }
            Some(groups)
        }
        Some((key, _)) => {
            return Err((
                format!("$.{key}"),
                "System.Collections.Generic.IEnumerable`1[OrganizationImportGroupRequestModel]",
            ));
        }
    };
    let members = match property(root, "members") {
        None | Some((_, Value::Null)) => None,
        Some((key, Value::Array(items))) => {
            let mut members = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("$.{key}[{i}]");
                match item {
                    Value::Null => null_entries = true,
                    Value::Object(obj) => members.push(convert_member(obj, &path)?),
                    _ => return Err((path, MEMBER_MODEL)),
                }
            }
            Some(members)
        }
        Some((key, _)) => {
            return Err((
                format!("$.{key}"),
                "System.Collections.Generic.IEnumerable`1[OrganizationImportMemberRequestModel]",
            ));
        }
    };
    let overwrite = match property(root, "overwriteExisting") {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::Bool(b))) => Some(*b),
        Some((key, _)) => return Err((format!("$.{key}"), "System.Nullable`1[System.Boolean]")),
    };
    let large_import = match property(root, "largeImport") {
        None => false,
        Some((_, Value::Bool(b))) => *b,
        Some((key, _)) => return Err((format!("$.{key}"), BOOLEAN)),
    };
    Ok(Converted {
        request: ImportRequest {
            groups,
            members,
            overwrite_existing: overwrite.unwrap_or(false),
            large_import,
        },
        overwrite_missing: overwrite.is_none(),
        null_entries,
    })
}

fn convert_group(obj: &Map<String, Value>, path: &str) -> Result<ImportGroup, ConvertError> {
    let name = match property(obj, "name") {
        None | Some((_, Value::Null)) => String::new(),
        Some((_, Value::String(s))) => s.clone(),
        Some((key, _)) => return Err((format!("{path}.{key}"), STRING)),
    };
    let external_id = permissive_string(obj, "externalId", path)?.unwrap_or_default();
    let member_external_ids = match property(obj, "memberExternalIds") {
        None | Some((_, Value::Null)) => None,
        Some((key, Value::Array(items))) => {
            let mut ids = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => ids.push(s.clone()),
                    Value::Number(n) => ids.push(n.to_string()),
                    _ => return Err((format!("{path}.{key}[{i}]"), STRING)),
                }
            }
            Some(ids)
        }
        Some((key, _)) => {
            return Err((
                format!("{path}.{key}"),
                "System.Collections.Generic.IEnumerable`1[System.String]",
            ));
        }
    };
    Ok(ImportGroup {
        name,
        external_id,
        member_external_ids,
    })
}

fn convert_member(obj: &Map<String, Value>, path: &str) -> Result<ImportMember, ConvertError> {
    let email = match property(obj, "email") {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::String(s))) => Some(s.to_lowercase()),
        Some((key, _)) => return Err((format!("{path}.{key}"), STRING)),
    };
    let external_id = permissive_string(obj, "externalId", path)?.unwrap_or_default();
    let deleted = match property(obj, "deleted") {
        None => false,
        Some((_, Value::Bool(b))) => *b,
        Some((key, _)) => return Err((format!("{path}.{key}"), BOOLEAN)),
    };
    Ok(ImportMember {
        email,
        external_id,
        deleted,
    })
}

/// A string that may also be sent as a number (Bitwarden's `PermissiveStringConverter`).
fn permissive_string(
    obj: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<String>, ConvertError> {
    match property(obj, name) {
        None | Some((_, Value::Null)) => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s.clone())),
        Some((_, Value::Number(n))) => Ok(Some(n.to_string())),
        Some((key, _)) => Err((format!("{path}.{key}"), STRING)),
    }
}

/// Looks a property up case-insensitively, returning the name as sent (for error paths).
fn property<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<(&'a str, &'a Value)> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(k, v)| (k.as_str(), v))
}

/// The model's validation attributes and its `IValidatableObject` rule, with ASP.NET's
/// messages and keys.
fn validate_bitwarden(converted: &Converted) -> ModelErrors {
    let req = &converted.request;
    let mut errors = ModelErrors::new();
    let mut add = |key: String, message: String| errors.entry(key).or_default().push(message);
    if converted.overwrite_missing {
        add(
            "OverwriteExisting".into(),
            "The OverwriteExisting field is required.".into(),
        );
    }
    for (i, group) in req.groups.iter().flatten().enumerate() {
        check_required(
            &mut add,
            &format!("Groups[{i}].Name"),
            "Name",
            &group.name,
            100,
        );
        check_required(
            &mut add,
            &format!("Groups[{i}].ExternalId"),
            "ExternalId",
            &group.external_id,
            300,
        );
    }
    for (i, member) in req.members.iter().flatten().enumerate() {
        let mut member_ok = true;
        if let Some(email) = &member.email {
            if !is_dotnet_email(email) {
                add(
                    format!("Members[{i}].Email"),
                    "The Email field is not a valid e-mail address.".into(),
                );
                member_ok = false;
            } else if email.chars().count() > 256 {
                add(
                    format!("Members[{i}].Email"),
                    "The field Email must be a string with a maximum length of 256.".into(),
                );
                member_ok = false;
            }
        }
        member_ok &= check_required(
            &mut add,
            &format!("Members[{i}].ExternalId"),
            "ExternalId",
            &member.external_id,
            300,
        );
        // IValidatableObject runs only when the attributes passed.
        let email_blank = member.email.as_deref().is_none_or(|e| e.trim().is_empty());
        if member_ok && email_blank && !member.deleted {
            add(
                format!("Members[{i}].Email"),
                "Email is required for enabled members.".into(),
            );
        }
    }
    errors
}

/// `[Required]` (no null, empty or blank string) plus `[StringLength(max)]`; true when valid.
fn check_required(
    add: &mut impl FnMut(String, String),
    key: &str,
    field: &str,
    value: &str,
    max: usize,
) -> bool {
    if value.trim().is_empty() {
        add(key.to_string(), format!("The {field} field is required."));
        false
    } else if value.chars().count() > max {
        add(
            key.to_string(),
            format!("The field {field} must be a string with a maximum length of {max}."),
        );
        false
    } else {
        true
    }
}

/// .NET's `EmailAddressAttribute`: exactly one `@`, neither first nor last, no line breaks.
fn is_dotnet_email(email: &str) -> bool {
    let Some(at) = email.find('@') else {
        return false;
    };
    at > 0 && at != email.len() - 1 && email.rfind('@') == Some(at) && !email.contains(['\r', '\n'])
}

// ---- The public members and groups API (Bitwarden only) -------------------------------------

/// A GUID for an emulator id, as Bitwarden's ids look.
fn guid(id: u64) -> String {
    format!("00000000-0000-4000-8000-{id:012x}")
}

/// The public API's answers need a Bitwarden server and a valid token; Vaultwarden has no such
/// endpoints (its catch-all 404).
fn public_api(shared: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if !shared.flavour.is_bitwarden() {
        return Err(Box::new(errors::rocket_catcher(
            StatusCode::NOT_FOUND,
            headers,
        )));
    }
    authorize(shared, headers).map_err(|refusal| Box::new(refusal.into_response(headers)))
}

/// `GET /api/public/members`: `{"object": "list", "data": [MemberResponseModel…],
/// "continuationToken": null}`.
pub(crate) async fn members(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(response) = public_api(&shared, &headers) {
        return *response;
    }
    let inner = shared.lock();
    let data: Vec<Value> = inner.org.members.iter().map(member_json).collect();
    axum::Json(serde_json::json!({"object": "list", "data": data, "continuationToken": null}))
        .into_response()
}

/// `GET /api/public/groups`.
pub(crate) async fn groups(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(response) = public_api(&shared, &headers) {
        return *response;
    }
    let inner = shared.lock();
    let data: Vec<Value> = inner.org.groups.iter().map(group_json).collect();
    axum::Json(serde_json::json!({"object": "list", "data": data, "continuationToken": null}))
        .into_response()
}

/// `GET /api/public/groups/{id}/member-ids`: the members' GUIDs; 404 for an unknown group.
pub(crate) async fn group_member_ids(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = public_api(&shared, &headers) {
        return *response;
    }
    let inner = shared.lock();
    match inner.org.groups.iter().find(|g| guid(g.id) == id) {
        Some(group) => {
            let ids: Vec<String> = group.members.iter().map(|m| guid(*m)).collect();
            axum::Json(ids).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A member as the public API shows it (`MemberResponseModel`).
fn member_json(m: &super::state::MemberRec) -> Value {
    serde_json::json!({
        "object": "member",
        "id": guid(m.id),
        "userId": null,
        "name": null,
        "email": m.email,
        "twoFactorEnabled": false,
        "status": match m.public_status() {
            super::MemberStatus::Invited => 0,
            super::MemberStatus::Accepted => 1,
            super::MemberStatus::Confirmed => 2,
            super::MemberStatus::Revoked => -1,
        },
        "collections": m.collections,
        "type": match m.kind {
            super::MemberType::Owner => 0,
            super::MemberType::Admin => 1,
            super::MemberType::User => 2,
        },
        "externalId": m.external_id,
        "resetPasswordEnrolled": false,
        "ssoExternalId": null,
    })
}

/// `GET /api/public/members/{id}`.
pub(crate) async fn member(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = public_api(&shared, &headers) {
        return *response;
    }
    let inner = shared.lock();
    match inner.org.members.iter().find(|m| guid(m.id) == id) {
        Some(m) => axum::Json(member_json(m)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /api/public/members/{id}/group-ids`.
pub(crate) async fn member_group_ids(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = public_api(&shared, &headers) {
        return *response;
    }
    let inner = shared.lock();
    let Some(member) = inner.org.members.iter().find(|m| guid(m.id) == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let ids: Vec<String> = inner
        .org
        .groups
        .iter()
        .filter(|g| g.members.contains(&member.id))
        .map(|g| guid(g.id))
        .collect();
    axum::Json(ids).into_response()
}

/// The JSON body of an update, once the caller may make it and `field` (`Model` in Bitwarden's
/// field errors) is there.
fn update_body(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    field: &str,
    model: &str,
) -> Result<Value, Box<Response>> {
    public_api(shared, headers)?;
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(errors::bitwarden(
            StatusCode::BAD_REQUEST,
            "The request's model state is invalid.",
        )));
    };
    if body.get(field).is_none_or(Value::is_null) {
        let mut errors = BTreeMap::new();
        errors.insert(
            model.to_string(),
            vec![format!("The {model} field is required.")],
        );
        return Err(Box::new(errors::bitwarden_model_state(&errors)));
    }
    Ok(body)
}

/// `PUT /api/public/members/{id}` (`MemberUpdateRequestModel`): `type` is required; what is
/// left out is reset, as on Bitwarden: no `collections` clears them, no `groups` leaves every
/// group, no `externalId` clears it.
pub(crate) async fn update_member(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match update_body(&shared, &headers, &body, "type", "Type") {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let Some(kind) = body["type"].as_i64() else {
        return errors::bitwarden(
            StatusCode::BAD_REQUEST,
            "The request's model state is invalid.",
        );
    };
    let mut inner = shared.lock();
    let org = &mut inner.org;
    let Some(member_id) = org.members.iter().find(|m| guid(m.id) == id).map(|m| m.id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let groups: Vec<String> = body
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for group in &mut org.groups {
        match groups.contains(&guid(group.id)) {
            true => group.members.insert(member_id),
            false => group.members.remove(&member_id),
        };
    }
    let Some(member) = org.members.iter_mut().find(|m| m.id == member_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    member.kind = match kind {
        0 => super::MemberType::Owner,
        1 => super::MemberType::Admin,
        _ => super::MemberType::User,
    };
    member.external_id = body
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    member.collections = body
        .get("collections")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    axum::Json(member_json(member)).into_response()
}

fn group_json(g: &super::state::GroupRec) -> Value {
    serde_json::json!({
        "object": "group",
        "id": guid(g.id),
        "name": g.name,
        "externalId": g.external_id,
        "collections": g.collections,
    })
}

/// `GET /api/public/groups/{id}`.
pub(crate) async fn group(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = public_api(&shared, &headers) {
        return *response;
    }
    let inner = shared.lock();
    match inner.org.groups.iter().find(|g| guid(g.id) == id) {
        Some(g) => axum::Json(group_json(g)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `PUT /api/public/groups/{id}` (`GroupCreateUpdateRequestModel`): `name` is required; left
/// out `collections` or `externalId` are reset; the members stay.
pub(crate) async fn update_group(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match update_body(&shared, &headers, &body, "name", "Name") {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let name = body["name"].as_str().unwrap_or_default();
    let mut inner = shared.lock();
    let Some(group) = inner.org.groups.iter_mut().find(|g| guid(g.id) == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    group.name = name.to_string();
    group.external_id = body
        .get("externalId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    group.collections = body
        .get("collections")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    axum::Json(group_json(group)).into_response()
}
