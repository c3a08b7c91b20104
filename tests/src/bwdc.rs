//! Bitwarden Directory Connector as the import tests need it, written from
//! `shared/reference/directory-connector.md`: its `data.json` (§1.4, the v8 flat layout, and the
//! nested layout of versions 3 and 4, §1.7) and its import request (§5.4, §5.12), so that an
//! organization can be left exactly as the connector left it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::orgserver::OrgServer;

/// The placeholder the connector writes for a secret kept in the keyring.
pub const STORED_SECURELY: &str = "[STORED SECURELY]";

/// The sync options of a connector that syncs users and groups every 15 minutes.
pub fn sync_options() -> Value {
    json!({
        "users": true, "groups": true, "interval": 15, "removeDisabled": false,
        "overwriteExisting": false, "largeImport": false, "inviteUsersAfterProvisioning": false,
        "userFilter": null, "groupFilter": null, "userPath": null, "groupPath": null,
        "userObjectClass": null, "groupObjectClass": null, "userEmailAttribute": null,
        "groupNameAttribute": null, "memberAttribute": null, "useEmailPrefixSuffix": false,
        "emailPrefixAttribute": null, "emailSuffix": null,
        "creationDateAttribute": null, "revisionDateAttribute": null
    })
}

/// A v8 `data.json` for `directory_type` (0 LDAP … 4 OneLogin) with `config` as its directory
/// object, `sync` as its options, and the server at `org`'s URL. With `api_key`, the API key is
/// in the file (plaintext-secrets mode); otherwise the connector kept it in the keyring.
pub fn data_json(
    org: &OrgServer,
    directory_type: u8,
    config: Value,
    sync: Value,
    api_key: bool,
) -> Value {
    let key = ["Ldap", "Entra", "Gsuite", "Okta", "Onelogin"][usize::from(directory_type)];
    let mut data = json!({
        "stateVersion": 8,
        "appId": "5c1e1c9a-4f1e-4c39-9d0c-0f4f7d4c1a11",
        "installedVersion": "2026.6.1",
        "environmentUrls": {"base": org.base_url(), "api": null, "identity": null, "webVault": null},
        "entityId": org.org_id(),
        "organizationId": org.org_id(),
        "directoryType": directory_type,
        "sync": sync,
        "lastUserSync": "2026-11-30T10:00:00.123Z",
        "lastGroupSync": "2026-11-30T10:00:00.123Z",
        "lastSyncHash": "q1w2e3r4t5y6u7i8o9p0q1w2e3r4t5y6u7i8o9p0q1w=",
        "userDeltaToken": null,
        "groupDeltaToken": null,
        "syncingDir": false
    });
    data[format!("directory{key}")] = config;
    if api_key {
        data["apiKeyClientId"] = json!(org.client_id());
        data["apiKeyClientSecret"] = json!(org.client_secret());
    }
    data
}

/// Writes `data` as `<dir>/data.json` and returns its path.
pub fn write(dir: &Path, data: &Value) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the connector's folder");
    let path = dir.join("data.json");
    std::fs::write(&path, serde_json::to_string_pretty(data).expect("JSON"))
        .expect("write data.json");
    path
}

/// One member of the connector's import request.
pub struct Member<'a> {
    pub email: &'a str,
    pub external_id: &'a str,
}

/// One group of the connector's import request.
pub struct Group<'a> {
    pub name: &'a str,
    pub external_id: &'a str,
    pub members: Vec<&'a str>,
}

/// Logs in and posts an import as the connector does (form fields in its order, its headers,
/// its request body), as its last sync before the switch.
///
/// # Panics
/// When the server refuses.
pub async fn import_as_connector(org: &OrgServer, members: &[Member<'_>], groups: &[Group<'_>]) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let form = [
        ("scope", "api.organization".to_string()),
        ("client_id", org.client_id()),
        ("deviceType", "8".into()),
        (
            "deviceIdentifier",
            "5c1e1c9a-4f1e-4c39-9d0c-0f4f7d4c1a11".into(),
        ),
        ("deviceName", "linux".into()),
        ("grant_type", "client_credentials".into()),
        ("client_secret", org.client_secret()),
    ];
    let token: Value = http
        .post(format!("{}/identity/connect/token", org.base_url()))
        .header("Device-Type", "8")
        .header("Bitwarden-Client-Name", "connector")
        .form(&form)
        .send()
        .await
        .expect("the identity server answers")
        .json()
        .await
        .expect("a token response");
    let body = json!({
        "groups": groups.iter().map(|g| json!({
            "name": g.name, "externalId": g.external_id, "memberExternalIds": g.members,
        })).collect::<Vec<_>>(),
        "members": members.iter().map(|m| json!({
            "email": m.email, "externalId": m.external_id, "deleted": false,
        })).collect::<Vec<_>>(),
        "overwriteExisting": false,
        "largeImport": false,
        "inviteUsersAfterProvisioning": false,
    });
    let answer = http
        .post(format!("{}/api/public/organization/import", org.base_url()))
        .bearer_auth(token["access_token"].as_str().expect("an access token"))
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Device-Type", "8")
        .header("Bitwarden-Client-Name", "connector")
        .body(body.to_string())
        .send()
        .await
        .expect("the import reaches the server");
    assert!(
        answer.status().is_success(),
        "the connector's import was refused: {}",
        answer.status()
    );
}
