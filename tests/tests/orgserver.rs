//! The emulated organization server answers like the real ones: login, import semantics per
//! flavour, error bodies, injected failures, the `/_test` controls and the standalone binary.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::orgserver::{
    Flavour, Group, Member, MemberStatus, MemberType, OrgServer, OrgServerOptions,
};

async fn start(flavour: Flavour) -> OrgServer {
    OrgServer::start(OrgServerOptions {
        flavour,
        ..OrgServerOptions::default()
    })
    .await
}

/// The login form exactly as Directory Connector sends it (directory-connector.md §5.12).
fn login_form(server: &OrgServer, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("scope", "api.organization".into()),
        ("client_id", server.client_id()),
        ("deviceType", "8".into()),
        (
            "deviceIdentifier",
            "5a1d6d4e-8f1e-4e39-9d0c-0f4f7d4c1a11".into(),
        ),
        ("deviceName", "linux".into()),
        ("grant_type", "client_credentials".into()),
        ("client_secret", secret.into()),
    ]
}

async fn token_request(server: &OrgServer, form: &[(&str, String)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/identity/connect/token", server.base_url()))
        .form(form)
        .send()
        .await
        .expect("token request reaches the server")
}

async fn login(server: &OrgServer) -> String {
    let response = token_request(server, &login_form(server, &server.client_secret())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("token response is JSON");
    body["access_token"]
        .as_str()
        .expect("access_token is a string")
        .to_string()
}

async fn import_with(server: &OrgServer, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/api/public/organization/import",
            server.base_url()
        ))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("import request reaches the server")
}

/// Logs in and imports; returns the status and the body text.
async fn import(server: &OrgServer, body: Value) -> (StatusCode, String) {
    let token = login(server).await;
    let response = import_with(server, Some(&token), &body).await;
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

fn member(email: &str, external_id: &str, deleted: bool) -> Value {
    json!({"email": email, "externalId": external_id, "deleted": deleted})
}

fn group(name: &str, external_id: &str, members: &[&str]) -> Value {
    json!({"name": name, "externalId": external_id, "memberExternalIds": members})
}

fn payload(groups: Vec<Value>, members: Vec<Value>, overwrite: bool) -> Value {
    json!({
        "groups": groups,
        "members": members,
        "overwriteExisting": overwrite,
        "largeImport": false,
        "inviteUsersAfterProvisioning": false,
    })
}

fn find<'a>(members: &'a [Member], email: &str) -> Option<&'a Member> {
    members.iter().find(|m| m.email == email)
}

fn find_group<'a>(groups: &'a [Group], external_id: &str) -> &'a Group {
    groups
        .iter()
        .find(|g| g.external_id == external_id)
        .unwrap_or_else(|| panic!("group {external_id} exists in {groups:?}"))
}

fn emails(list: &[&str]) -> std::collections::BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("payload is base64url");
    serde_json::from_slice(&payload).expect("payload is JSON")
}

// ---- login ----------------------------------------------------------------------------------

#[tokio::test]
async fn login_returns_a_jwt_shaped_bearer_token_in_every_flavour() {
    for flavour in Flavour::ALL {
        let server = start(flavour).await;
        let response = token_request(&server, &login_form(&server, &server.client_secret())).await;
        assert_eq!(response.status(), StatusCode::OK, "{flavour}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer", "{flavour}");
        assert_eq!(body["expires_in"], 3600, "{flavour}");
        assert_eq!(body["scope"], "api.organization", "{flavour}");
        assert!(
            body.get("refresh_token").is_none(),
            "{flavour}: no refresh token"
        );
        let claims = claims(body["access_token"].as_str().unwrap());
        assert_eq!(claims["client_id"], server.client_id(), "{flavour}");
        assert!(claims["sub"].is_string(), "{flavour}");
        let exp = claims["exp"].as_u64().expect("exp is a number");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            (now + 3590..=now + 3610).contains(&exp),
            "{flavour}: exp {exp}"
        );

        // The device fields are recorded for clients' assertions.
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].path, "/identity/connect/token");
        assert!(
            requests[0].body.contains("deviceType=8"),
            "{:?}",
            requests[0].body
        );
        assert!(
            requests[0].headers["content-type"].starts_with("application/x-www-form-urlencoded"),
            "{:?}",
            requests[0].headers
        );
    }
}

#[tokio::test]
async fn login_accepts_a_charset_and_snake_case_device_fields() {
    let server = start(Flavour::Vaultwarden).await;
    let body = format!(
        "grant_type=client_credentials&scope=api.organization&client_id={}&client_secret={}\
         &device_identifier=abc&device_name=linux&device_type=8",
        server.client_id(),
        server.client_secret()
    );
    let response = reqwest::Client::new()
        .post(format!("{}/identity/connect/token", server.base_url()))
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_with_a_wrong_secret_is_refused_in_each_servers_words() {
    let server = start(Flavour::BitwardenSelfHosted).await;
    let response = token_request(&server, &login_form(&server, "wrong")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "invalid_client"}));

    let server = start(Flavour::Vaultwarden).await;
    let response = token_request(&server, &login_form(&server, "wrong")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Incorrect client_secret");
    assert_eq!(body["errorModel"]["message"], "Incorrect client_secret");
}

#[tokio::test]
async fn login_is_strict_about_grant_type_scope_and_client_id() {
    for flavour in [Flavour::BitwardenCloud, Flavour::Vaultwarden] {
        let server = start(flavour).await;
        let secret = server.client_secret();
        let mut wrong_scope = login_form(&server, &secret);
        wrong_scope[0].1 = "api".into();
        let mut wrong_grant = login_form(&server, &secret);
        wrong_grant[5].1 = "password".into();
        let mut wrong_client = login_form(&server, &secret);
        wrong_client[1].1 = format!("organization.{}", uuid::Uuid::new_v4());
        let mut no_scope = login_form(&server, &secret);
        no_scope.remove(0);
        for form in [wrong_scope, wrong_grant, wrong_client, no_scope] {
            let response = token_request(&server, &form).await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{flavour}: {form:?}"
            );
        }
    }
}

#[tokio::test]
async fn vaultwarden_requires_the_device_fields_and_bitwarden_does_not() {
    let server = start(Flavour::Vaultwarden).await;
    let mut form = login_form(&server, &server.client_secret());
    form.retain(|(k, _)| *k != "deviceIdentifier");
    let response = token_request(&server, &form).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["message"], "device_identifier cannot be blank");

    let server = start(Flavour::BitwardenSelfHosted).await;
    let mut form = login_form(&server, &server.client_secret());
    form.retain(|(k, _)| !k.starts_with("device"));
    let response = token_request(&server, &form).await;
    assert_eq!(response.status(), StatusCode::OK);
}

// ---- authentication of the import -----------------------------------------------------------

#[tokio::test]
async fn import_without_a_valid_token_is_401() {
    for flavour in Flavour::ALL {
        let server = start(flavour).await;
        let body = payload(vec![], vec![member("a@x.test", "a", false)], false);
        let response = import_with(&server, None, &body).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{flavour}");
        let response = import_with(&server, Some("not.a.token"), &body).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{flavour}");
        assert_eq!(server.import_count(), 0);
        assert_eq!(server.members().len(), 1, "{flavour}: nothing imported");
    }
}

#[tokio::test]
async fn import_with_an_expired_token_is_401() {
    let server = start(Flavour::BitwardenSelfHosted).await;
    let body = payload(vec![], vec![member("a@x.test", "a", false)], false);
    let token = login(&server).await;
    server.expire_tokens();
    let response = import_with(&server, Some(&token), &body).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // A fresh login works again.
    let token = login(&server).await;
    assert_eq!(
        import_with(&server, Some(&token), &body).await.status(),
        StatusCode::OK
    );

    // And tokens run out on their own.
    let server = OrgServer::start(OrgServerOptions {
        flavour: Flavour::Vaultwarden,
        token_lifetime: Duration::from_secs(1),
        ..OrgServerOptions::default()
    })
    .await;
    let token = login(&server).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = import_with(&server, Some(&token), &body).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

// ---- members --------------------------------------------------------------------------------

#[tokio::test]
async fn new_members_are_invited_as_users_with_their_external_id() {
    for flavour in Flavour::ALL {
        let server = start(flavour).await;
        let (status, body) = import(
            &server,
            payload(
                vec![],
                vec![
                    member("Alice@Example.TEST", "u1", false),
                    member("b@x.test", "u2", false),
                ],
                false,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{flavour}: {body}");
        assert_eq!(body, "", "{flavour}: success has an empty body");
        let members = server.members();
        assert_eq!(members.len(), 3, "{flavour}: {members:?}");
        let owner = find(&members, "owner@example.test").expect("the owner stays");
        assert_eq!(
            (owner.kind, owner.status),
            (MemberType::Owner, MemberStatus::Confirmed)
        );
        let alice = find(&members, "alice@example.test").expect("emails are lower-cased");
        assert_eq!(alice.external_id.as_deref(), Some("u1"));
        assert_eq!(
            (alice.kind, alice.status),
            (MemberType::User, MemberStatus::Invited)
        );
        assert_eq!(server.import_count(), 1);
    }
}

#[tokio::test]
async fn bitwarden_removes_deleted_members_but_never_owners() {
    let server = start(Flavour::BitwardenSelfHosted).await;
    server.add_member(
        "boss@x.test",
        Some("boss"),
        MemberType::Owner,
        MemberStatus::Confirmed,
    );
    let (status, _) = import(
        &server,
        payload(
            vec![],
            vec![
                member("a@x.test", "u1", false),
                member("b@x.test", "u2", false),
            ],
            false,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = import(
        &server,
        payload(
            vec![],
            vec![
                member("a@x.test", "u1", true),
                member("boss@x.test", "boss", true),
            ],
            false,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let members = server.members();
    assert!(
        find(&members, "a@x.test").is_none(),
        "deleted member removed: {members:?}"
    );
    assert!(find(&members, "b@x.test").is_some());
    assert!(
        find(&members, "boss@x.test").is_some(),
        "owners are never removed"
    );
}

#[tokio::test]
async fn bitwarden_gives_manual_members_their_external_id_by_email() {
    let server = start(Flavour::BitwardenCloud).await;
    server.add_member(
        "manual@x.test",
        None,
        MemberType::Admin,
        MemberStatus::Confirmed,
    );
    let (status, _) = import(
        &server,
        payload(vec![], vec![member("Manual@x.test", "m1", false)], false),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let members = server.members();
    assert_eq!(members.len(), 2, "no second membership: {members:?}");
    let manual = find(&members, "manual@x.test").unwrap();
    assert_eq!(manual.external_id.as_deref(), Some("m1"));
    assert_eq!(
        (manual.kind, manual.status),
        (MemberType::Admin, MemberStatus::Confirmed)
    );
}

#[tokio::test]
async fn vaultwarden_revokes_deleted_members_and_restores_them() {
    let server = start(Flavour::Vaultwarden).await;
    let (status, _) = import(
        &server,
        payload(vec![], vec![member("a@x.test", "u1", false)], false),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = import(
        &server,
        payload(
            vec![],
            vec![
                member("a@x.test", "u1", true),
                member("ghost@x.test", "g", true),
            ],
            false,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let members = server.members();
    assert_eq!(
        find(&members, "a@x.test").unwrap().status,
        MemberStatus::Revoked
    );
    assert!(
        find(&members, "ghost@x.test").is_none(),
        "no member is created for a deleted email"
    );

    let (status, _) = import(
        &server,
        payload(vec![], vec![member("a@x.test", "u1-new", false)], false),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let a = find(&server.members(), "a@x.test").cloned().unwrap();
    assert_eq!(
        a.status,
        MemberStatus::Invited,
        "restored to its previous status"
    );
    assert_eq!(
        a.external_id.as_deref(),
        Some("u1-new"),
        "matched by email, externalId overwritten"
    );
}

#[tokio::test]
async fn vaultwarden_stores_an_empty_external_id_as_none_and_never_revokes_the_last_owner() {
    let server = start(Flavour::Vaultwarden).await;
    let (status, _) = import(
        &server,
        payload(
            vec![],
            vec![
                member("e@x.test", "", false),
                member("owner@example.test", "owner-ext", true),
            ],
            false,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let members = server.members();
    assert_eq!(find(&members, "e@x.test").unwrap().external_id, None);
    let owner = find(&members, "owner@example.test").unwrap();
    assert_eq!(
        owner.status,
        MemberStatus::Confirmed,
        "the last owner is not revoked"
    );
    assert_eq!(
        owner.external_id.as_deref(),
        Some("owner-ext"),
        "but gets the externalId"
    );
}

// ---- groups ---------------------------------------------------------------------------------

#[tokio::test]
async fn groups_are_created_and_their_membership_replaced() {
    for flavour in Flavour::ALL {
        let server = start(flavour).await;
        let members = vec![
            member("a@x.test", "u1", false),
            member("b@x.test", "u2", false),
        ];
        let groups = vec![
            group("G", "g1", &["u1", "u2"]),
            group("Empty", "g2", &["nobody"]),
        ];
        let (status, body) = import(&server, payload(groups, members.clone(), false)).await;
        assert_eq!(status, StatusCode::OK, "{flavour}: {body}");
        let groups = server.groups();
        assert_eq!(
            find_group(&groups, "g1").member_emails,
            emails(&["a@x.test", "b@x.test"])
        );
        assert!(
            find_group(&groups, "g2").member_emails.is_empty(),
            "unknown ids are ignored"
        );

        let (status, _) = import(
            &server,
            payload(vec![group("G", "g1", &["u1"])], members, false),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let groups = server.groups();
        assert_eq!(
            groups.len(),
            2,
            "{flavour}: groups are never deleted by an import"
        );
        assert_eq!(
            find_group(&groups, "g1").member_emails,
            emails(&["a@x.test"]),
            "{flavour}"
        );
    }
}

#[tokio::test]
async fn bitwarden_renames_groups_and_vaultwarden_does_not() {
    for (flavour, expected) in [
        (Flavour::BitwardenSelfHosted, "G-renamed"),
        (Flavour::Vaultwarden, "G"),
    ] {
        let server = start(flavour).await;
        let (status, _) =
            import(&server, payload(vec![group("G", "g1", &[])], vec![], false)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = import(
            &server,
            payload(vec![group("G-renamed", "g1", &[])], vec![], false),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let groups = server.groups();
        assert_eq!(groups.len(), 1, "{flavour}");
        assert_eq!(groups[0].name, expected, "{flavour}");
    }
}

#[tokio::test]
async fn groups_need_an_organization_that_may_use_them() {
    let opts = |flavour| OrgServerOptions {
        flavour,
        uses_groups: false,
        ..OrgServerOptions::default()
    };
    let body = payload(
        vec![group("G", "g1", &["u1"])],
        vec![member("a@x.test", "u1", false)],
        false,
    );

    let server = OrgServer::start(opts(Flavour::BitwardenSelfHosted)).await;
    let (status, text) = import(&server, body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["message"], "Organization cannot use groups.");
    assert!(
        find(&server.members(), "a@x.test").is_some(),
        "members were applied before the failure"
    );

    let server = OrgServer::start(opts(Flavour::Vaultwarden)).await;
    let (status, _) = import(&server, body).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "Vaultwarden skips the groups silently"
    );
    assert!(server.groups().is_empty());
}

// ---- overwriteExisting ----------------------------------------------------------------------

#[tokio::test]
async fn overwrite_removes_unlisted_external_members_only() {
    for flavour in Flavour::ALL {
        let server = start(flavour).await;
        server.add_member(
            "manual@x.test",
            None,
            MemberType::User,
            MemberStatus::Accepted,
        );
        let three = vec![
            member("a@x.test", "u1", false),
            member("b@x.test", "u2", false),
            member("c@x.test", "u3", false),
        ];
        let (status, _) = import(
            &server,
            payload(vec![group("H", "h", &["u3"])], three, false),
        )
        .await;
        assert_eq!(status, StatusCode::OK);

        let (status, body) = import(
            &server,
            payload(vec![], vec![member("a@x.test", "u1", false)], true),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{flavour}: {body}");
        let members = server.members();
        let left: Vec<&str> = members.iter().map(|m| m.email.as_str()).collect();
        assert_eq!(
            left,
            ["owner@example.test", "manual@x.test", "a@x.test"],
            "{flavour}: the owner and members without externalId stay"
        );
        assert!(
            server.groups()[0].member_emails.is_empty(),
            "{flavour}: removed members leave groups"
        );
    }
}

// ---- the cloud's size limit -----------------------------------------------------------------

#[tokio::test]
async fn the_cloud_refuses_more_than_2000_members_without_large_import() {
    let many: Vec<Value> = (0..2001)
        .map(|i| member(&format!("user{i}@x.test"), &format!("u{i}"), false))
        .collect();

    let server = start(Flavour::BitwardenCloud).await;
    let (status, text) = import(&server, payload(vec![], many.clone(), false)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        error["message"],
        "You cannot import this much data at once."
    );
    assert_eq!(server.members().len(), 1, "nothing applied");

    let mut large = payload(vec![], many.clone(), false);
    large["largeImport"] = json!(true);
    let (status, _) = import(&server, large).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.members().len(), 2002);

    // Deleted members do not count, and self-hosted servers have no limit.
    let mut deleted = many.clone();
    deleted.push(member("extra@x.test", "extra", true));
    deleted[0]["deleted"] = json!(true);
    let server = start(Flavour::BitwardenCloud).await;
    assert_eq!(
        import(&server, payload(vec![], deleted, false)).await.0,
        StatusCode::OK
    );
    let server = start(Flavour::BitwardenSelfHosted).await;
    assert_eq!(
        import(&server, payload(vec![], many, false)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_cloud_refuses_more_than_2000_groups_without_large_import() {
    let groups: Vec<Value> = (0..2001)
        .map(|i| group(&format!("G{i}"), &format!("g{i}"), &[]))
        .collect();
    let server = start(Flavour::BitwardenCloud).await;
    assert_eq!(
        import(&server, payload(groups, vec![], false)).await.0,
        StatusCode::BAD_REQUEST
    );
    assert!(server.groups().is_empty());
}

// ---- body validation ------------------------------------------------------------------------

#[tokio::test]
async fn bitwarden_reports_model_state_errors_by_field() {
    let server = start(Flavour::BitwardenSelfHosted).await;
    let body = json!({
        "groups": [{"name": "", "externalId": "g1", "memberExternalIds": []}],
        "members": [{"email": "a@x.test", "deleted": false}, {"email": null, "externalId": "u2", "deleted": false}],
    });
    let (status, text) = import(&server, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["object"], "error");
    assert_eq!(error["message"], "The request's model state is invalid.");
    assert_eq!(
        error["errors"]["OverwriteExisting"][0],
        "The OverwriteExisting field is required."
    );
    assert_eq!(
        error["errors"]["Groups[0].Name"][0],
        "The Name field is required."
    );
    assert_eq!(
        error["errors"]["Members[0].ExternalId"][0],
        "The ExternalId field is required."
    );
    assert_eq!(
        error["errors"]["Members[1].Email"][0],
        "Email is required for enabled members."
    );
    assert_eq!(server.import_count(), 0);

    // Numeric ids are accepted (permissive converter) and property names are case-insensitive.
    let body = json!({
        "Groups": [{"Name": "G", "ExternalId": 7, "MemberExternalIds": [42]}],
        "Members": [{"Email": "n@x.test", "ExternalId": 42, "Deleted": false}],
        "OverwriteExisting": false,
    });
    let (status, text) = import(&server, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        find_group(&server.groups(), "7").member_emails,
        emails(&["n@x.test"])
    );
}

#[tokio::test]
async fn vaultwarden_answers_422_to_a_body_of_the_wrong_shape() {
    let server = start(Flavour::Vaultwarden).await;
    let bad = [
        json!({"groups": [], "members": [{"email": "a@x.test", "externalId": 1, "deleted": false}], "overwriteExisting": false}),
        json!({"groups": [], "members": [{"email": "a@x.test", "externalId": null, "deleted": false}], "overwriteExisting": false}),
        json!({"groups": [], "overwriteExisting": false}),
        json!({"Groups": [], "Members": [], "OverwriteExisting": false}),
    ];
    for body in bad {
        let (status, _) = import(&server, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    assert_eq!(server.import_count(), 0);
    let unknown_field =
        json!({"groups": [], "members": [], "overwriteExisting": false, "somethingNew": 1});
    assert_eq!(import(&server, unknown_field).await.0, StatusCode::OK);
}

// ---- injected failures ----------------------------------------------------------------------

#[tokio::test]
async fn fail_next_answers_429_with_retry_after_then_recovers() {
    let server = start(Flavour::BitwardenCloud).await;
    let token = login(&server).await;
    server.fail_next("/organization/import", 429, Some(7), 2);
    let body = payload(vec![], vec![member("a@x.test", "u1", false)], false);
    for _ in 0..2 {
        let response = import_with(&server, Some(&token), &body).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["message"], "Too many requests");
    }
    assert_eq!(server.members().len(), 1, "failed imports change nothing");
    assert_eq!(
        import_with(&server, Some(&token), &body).await.status(),
        StatusCode::OK
    );

    server.fail_next("/connect/token", 503, None, 1);
    let response = token_request(&server, &login_form(&server, &server.client_secret())).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 429, 429, 200, 503]);
    assert_eq!(server.import_count(), 1);
}

// ---- test controls over HTTP ----------------------------------------------------------------

#[tokio::test]
async fn the_test_controls_work_over_http() {
    let server = start(Flavour::Vaultwarden).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}/_test/{path}", server.base_url());

    let response = client
        .post(url("members"))
        .json(&json!({"email": "Seeded@x.test", "type": "admin", "status": "invited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = client
        .post(url("fail-next"))
        .json(&json!({"path_suffix": "/connect/token", "status": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let failed = token_request(&server, &login_form(&server, &server.client_secret())).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let token = login(&server).await;
    let response = client.post(url("expire-tokens")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let body = payload(vec![], vec![], false);
    assert_eq!(
        import_with(&server, Some(&token), &body).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let state: Value = client
        .get(url("state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["flavour"], "vaultwarden");
    assert_eq!(state["client_id"], server.client_id());
    assert_eq!(
        state["members"][1],
        json!({"email": "seeded@x.test", "external_id": null, "status": "invited", "type": "admin"})
    );
    assert!(
        !state.to_string().contains(&server.client_secret()),
        "the secret is not exposed"
    );

    let requests: Value = client
        .get(url("requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let requests = requests.as_array().unwrap();
    assert_eq!(
        requests.len(),
        3,
        "control calls are not recorded: {requests:?}"
    );
    assert!(
        requests[1]["body"]
            .as_str()
            .unwrap()
            .contains("client_secret=<redacted>")
    );
    assert!(
        !Value::Array(requests.clone())
            .to_string()
            .contains(&server.client_secret())
    );

    let bad = client
        .post(url("fail-next"))
        .json(&json!({"status": 429}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

// ---- the binary -----------------------------------------------------------------------------

#[tokio::test]
async fn the_binary_listens_on_loopback_and_writes_the_credentials_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let creds_path = dir.path().join("creds.json");
    let (mut server, base_url) = testkit::standalone::Spawned::start(
        env!("CARGO_BIN_EXE_orgsync-test-server"),
        &[
            "--port".as_ref(),
            "0".as_ref(),
            "--flavour".as_ref(),
            "vaultwarden".as_ref(),
            "--write-credentials".as_ref(),
            creds_path.as_os_str(),
        ],
    )
    .await;
    let client_id = server.next_line().await;
    assert!(client_id.starts_with("organization."), "{client_id}");

    let mode = std::fs::metadata(&creds_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let creds: Value = serde_json::from_slice(&std::fs::read(&creds_path).unwrap()).unwrap();
    assert_eq!(creds["base_url"], base_url);
    assert_eq!(creds["client_id"], client_id);
    let secret = creds["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 30);

    let response = reqwest::Client::new()
        .post(format!("{base_url}/identity/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "api.organization"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret),
            ("deviceType", "8"),
            ("deviceIdentifier", "d"),
            ("deviceName", "linux"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    server.stop().await;
}

#[tokio::test]
async fn the_binary_refuses_an_unknown_flavour() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_orgsync-test-server"))
        .args(["--flavour", "keycloak"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown flavour"));
}
