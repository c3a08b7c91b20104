//! The Graph emulator itself: what orgsync's Entra tests rely on must be what Microsoft
//! documents (`shared/reference/cloud-directories.md` §1): token error bodies, paging with
//! opaque absolute next links (and an empty page that still links on), `$select`, `$top`
//! limits, delta rounds and their expiry, and the standalone binary.

use reqwest::StatusCode;
use serde_json::Value;
use testkit::graph::{GraphOptions, GraphServer, Kind, User, id};
use testkit::standalone::Spawned;

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn token(graph: &GraphServer) -> String {
    let options = graph.options();
    let body: Value = http()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            graph.base_url(),
            options.tenant_domain
        ))
        .form(&[
            ("client_id", options.client_id.as_str()),
            ("client_secret", options.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", &format!("{}/.default", graph.base_url())),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(
        body["expires_in"].is_u64() && body["ext_expires_in"].is_u64(),
        "{body}"
    );
    body["access_token"].as_str().unwrap().to_string()
}

async fn get(url: &str, token: &str) -> (StatusCode, Value) {
    let response = http().get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn seeded() -> GraphServer {
    let graph = GraphServer::start(GraphOptions::default()).await;
    for name in ["ann", "bob", "cy", "dee", "eve"] {
        graph.upsert_user(User::member(&id(name), name, "x.example"));
    }
    graph.upsert_group(&id("g"), "G");
    for name in ["ann", "bob", "cy", "dee"] {
        graph.add_member(&id("g"), &id(name), Kind::User);
    }
    graph
}

#[tokio::test]
async fn token_errors_carry_entras_body() {
    let graph = seeded().await;
    let options = graph.options();
    let response = http()
        .post(format!(
            "{}/nope.example/oauth2/v2.0/token",
            graph.base_url()
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_tenant");
    assert_eq!(body["error_codes"], serde_json::json!([90002]));
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with("AADSTS90002: ") && description.contains("\r\nTrace ID: "));
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[field].is_string(), "{field}: {body}");
    }

    let response = http()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            graph.base_url(),
            options.tenant_id
        ))
        .basic_auth(&options.client_id, Some("wrong"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", &format!("{}/.default", graph.base_url())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["error_codes"][0].as_u64()),
        (Some("invalid_client"), Some(7000215))
    );
}

#[tokio::test]
async fn pages_are_small_linked_absolutely_and_select_what_was_asked() {
    let graph = seeded().await;
    let token = token(&graph).await;
    let (status, body) = get(&format!("{}/v1.0/users", graph.base_url()), "nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

    // The first page is empty and links on; then pages of three.
    let mut url = format!(
        "{}/v1.0/users?$select=id,accountEnabled&$top=999",
        graph.base_url()
    );
    let mut pages = Vec::new();
    loop {
        let (status, body) = get(&url, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages.push(body["value"].as_array().unwrap().len());
        for user in body["value"].as_array().unwrap() {
            let keys: Vec<&str> = user
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, ["accountEnabled", "id"], "only what was selected");
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&graph.base_url()) && next.contains("$skiptoken="),
                    "{next}"
                );
                assert!(
                    next.contains("$select=id,accountEnabled"),
                    "query options carried: {next}"
                );
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, [0, 3, 2]);

    // Without $select, Graph's default set: no accountEnabled, no userType.
    let (_, body) = get(&format!("{}/v1.0/users?$top=1", graph.base_url()), &token).await;
    let next = body["@odata.nextLink"].as_str().unwrap().to_string();
    let (_, body) = get(&next, &token).await;
    let user = &body["value"][0];
    assert!(
        user.get("userPrincipalName").is_some() && user.get("accountEnabled").is_none(),
        "{user}"
    );

    let (status, body) = get(
        &format!("{}/v1.0/users?$top=1000", graph.base_url()),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Request_BadRequest"))
    );
    let (status, _) = get(
        &format!("{}/v1.0/users?$skiptoken=tampered", graph.base_url()),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = get(
        &format!("{}/v1.0/groups/{}/members", graph.base_url(), id("none")),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("Request_ResourceNotFound"))
    );
}

/// Follows a delta round from `url`; returns its items and the delta link.
async fn round(url: &str, token: &str) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut url = url.to_string();
    loop {
        let (status, body) = get(&url, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        items.extend(body["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = body["@odata.nextLink"].as_str() {
            url = next.to_string();
        } else {
            return (
                items,
                body["@odata.deltaLink"]
                    .as_str()
                    .expect("a delta link")
                    .to_string(),
            );
        }
    }
}

#[tokio::test]
async fn delta_rounds_report_changes_removals_and_sliced_member_changes_then_expire() {
    let graph = seeded().await;
    let token = token(&graph).await;
    let base = graph.base_url();
    let (users, users_link) =
        round(&format!("{base}/v1.0/users/delta?$select=id,mail"), &token).await;
    assert_eq!(users.len(), 5);
    let (none, groups_link) = round(
        &format!("{base}/v1.0/groups/delta?$select=displayName,members&$deltatoken=latest"),
        &token,
    )
    .await;
    assert!(none.is_empty());

    graph.delete_user(&id("bob"));
    graph.upsert_user(User::member(&id("fay"), "fay", "x.example"));
    for name in ["eve", "fay"] {
        graph.add_member(&id("g"), &id(name), Kind::User);
    }
    graph.add_member(&id("g"), &id("laptop"), Kind::Device);
    let (changed, _) = round(&users_link, &token).await;
    let removed: Vec<&Value> = changed
        .iter()
        .filter(|u| u.get("@removed").is_some())
        .collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["@removed"]["reason"], "changed", "soft-deleted");
    assert!(changed.iter().any(|u| u["mail"] == "fay@x.example"));

    // bob left g when deleted; eve, fay and the laptop joined: 4 member changes, pages of 3, so
    // the group comes twice, each time with a slice.
    let (groups, _) = round(&groups_link, &token).await;
    assert_eq!(groups.len(), 2, "{groups:?}");
    let slices: Vec<usize> = groups
        .iter()
        .map(|g| g["members@delta"].as_array().unwrap().len())
        .collect();
    assert_eq!(slices, [3, 1]);
    let all: Vec<&Value> = groups
        .iter()
        .flat_map(|g| g["members@delta"].as_array().unwrap())
        .collect();
    assert!(
        all.iter()
            .any(|m| m["id"] == id("bob") && m["@removed"]["reason"] == "deleted")
    );
    assert!(
        all.iter()
            .any(|m| m["@odata.type"] == "#microsoft.graph.device")
    );

    graph.expire_delta_links();
    let response = http()
        .get(&users_link)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{base}/v1.0/users/delta")),
        "{location}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn the_binary_serves_a_sample_tenant_until_sigterm() {
    let (mut server, base) = Spawned::start(
        env!("CARGO_BIN_EXE_orgsync-test-graph"),
        &["--port", "0", "--page-size", "2"].map(std::ffi::OsStr::new),
    )
    .await;
    let tenant = server.next_line().await;
    assert!(tenant.starts_with("tenant "), "{tenant}");
    let defaults = GraphOptions::default();
    let response = http()
        .post(format!("{base}/{}/oauth2/v2.0/token", defaults.tenant_id))
        .form(&[
            ("client_id", defaults.client_id.as_str()),
            ("client_secret", defaults.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", &format!("{base}/.default")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}
