//! Okta end to end: the real `orgsync` against the Okta emulator and the organization server
//! emulator. Assertions are on what an admin checks: the CLI's output and exit code, the
//! organization's members and groups, and the requests Okta received.

use std::collections::BTreeSet;
use std::time::Duration;

use testkit::cli::{Installation, emails};
use testkit::okta::{Fault, OktaOptions, OktaServer, User};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::standalone::Spawned;
use testkit::tls::TestCa;

fn email(name: &str) -> String {
    format!("{name}@example.com")
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| email(n)).collect()
}

fn id(name: &str) -> String {
    format!("00u{name}1a2b3c4d5e6")
}

fn gid(name: &str) -> String {
    format!("00g{name}9z8y7x6w5")
}

/// ann, bob, fay, gus (active), cy (suspended), dee (deprovisioned); Engineering = {ann, bob},
/// Sales = {cy, fay}, Contractors (an app group) = {gus}.
async fn org_with(options: OktaOptions) -> OktaServer {
    let okta = OktaServer::start(options).await;
    for name in ["ann", "bob", "fay", "gus", "cy", "dee"] {
        let mut user = User::active(&id(name), &email(name));
        user.last_name = match name {
            "ann" | "bob" => "Engineer".into(),
            _ => "Seller".into(),
        };
        okta.upsert_user(user);
    }
    okta.set_status(&id("cy"), "SUSPENDED");
    okta.set_status(&id("dee"), "DEPROVISIONED");
    for (group, name) in [
        ("eng", "Engineering"),
        ("sales", "Sales"),
        ("contract", "Contractors"),
    ] {
        okta.upsert_group(&gid(group), name);
    }
    okta.set_group_type(&gid("contract"), "APP_GROUP");
    okta.add_member(&gid("eng"), &id("ann"));
    okta.add_member(&gid("eng"), &id("bob"));
    okta.add_member(&gid("sales"), &id("cy"));
    okta.add_member(&gid("sales"), &id("fay"));
    okta.add_member(&gid("contract"), &id("gus"));
    okta
}

async fn setup() -> (OktaServer, OrgServer, Installation) {
    let okta = org_with(OktaOptions::default()).await;
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    inst.use_okta(&okta);
    inst.login_to(&org);
    (okta, org, inst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sync_unchanged_then_changes_arrive_incrementally() {
    let (okta, org, inst) = setup().await;

    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["source"]["type"], "okta", "{report}");
    assert_eq!(
        emails(&report["users"]["enabled"]),
        [email("ann"), email("bob"), email("fay"), email("gus")]
    );
    assert_eq!(emails(&report["users"]["disabled"]), [email("cy")]);
    assert_eq!(emails(&report["users"]["deleted"]), [email("dee")]);
    // Pages of 200 asked for everywhere, deprovisioned users asked for explicitly, and every
    // next link followed (pages of 3 here).
    let requests = okta.requests();
    let users: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/api/v1/users")
        .collect();
    assert!(
        users.iter().all(|r| r.query.contains("limit=200")),
        "{users:?}"
    );
    assert!(
        users
            .iter()
            .any(|r| r.query.contains("filter=status%20eq%20%22DEPROVISIONED%22")),
        "{users:?}"
    );
    assert!(
        users.iter().any(|r| r.query.contains("after=")),
        "{users:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/api/v1/groups"))
            .all(|r| r.query.contains("limit=200")),
        "{requests:?}"
    );

    inst.run(&["sync"]).ok();
    assert_eq!(
        org.managed_emails(),
        set(&["ann", "bob", "cy", "fay", "gus"])
    );
    assert_eq!(org.group_emails("Engineering"), set(&["ann", "bob"]));
    assert_eq!(org.group_emails("Sales"), set(&["cy", "fay"]));

    // Nothing changed: an incremental read, nothing sent.
    let before = org.import_count();
    let unchanged = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(unchanged["outcome"], "unchanged", "{unchanged}");
    assert_eq!(unchanged["read"]["mode"], "incremental", "{unchanged}");
    assert_eq!(org.import_count(), before);

    // A membership-only change: only the group's lastMembershipUpdated moves.
    okta.clear_requests();
    okta.add_member(&gid("eng"), &id("gus"));
    inst.assert_incremental_sync_matches_a_full_read("gus joined Engineering");
    assert_eq!(org.group_emails("Engineering"), set(&["ann", "bob", "gus"]));
    let changed = okta
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/users")
        .find(|r| r.query.contains("lastUpdated%20gt"))
        .expect("users asked for by lastUpdated");
    assert!(changed.query.contains("limit=200"), "{}", changed.query);

    // A leaver: deprovisioned, which Okta leaves out of every listing but its own.
    okta.set_status(&id("bob"), "DEPROVISIONED");
    okta.clear_requests();
    inst.assert_incremental_sync_matches_a_full_read("bob was deprovisioned");
    assert_eq!(org.managed_emails(), set(&["ann", "cy", "fay", "gus"]));
    assert!(
        okta.requests()
            .iter()
            .any(|r| r.query.contains("lastUpdated%20gt") && r.query.contains("DEPROVISIONED")),
        "{:?}",
        okta.requests()
    );

    // A new hire, a renamed group and a deleted one.
    okta.upsert_user(User::active(&id("eve"), &email("eve")));
    okta.add_member(&gid("sales"), &id("eve"));
    okta.upsert_group(&gid("eng"), "Engineering EMEA");
    okta.delete_group(&gid("contract"));
    inst.assert_incremental_sync_matches_a_full_read("a hire, a rename, a deleted group");
    assert_eq!(org.group_emails("Sales"), set(&["cy", "eve", "fay"]));
    assert_eq!(org.group_emails("Engineering EMEA"), set(&["ann", "gus"]));
    let groups = inst.run(&["test", "--json"]).ok().json()["groups"].to_string();
    assert!(!groups.contains("Contractors"), "{groups}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sign_in_problem_has_its_own_message_and_exit_code_1() {
    let (okta, org, inst) = setup().await;

    okta.set_api_token_valid(false);
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("E0000011") && out.stderr.contains("okta.token"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(&okta.options().api_token),
        "the token is never shown: {}",
        out.stderr
    );
    okta.set_api_token_valid(true);

    okta.set_may_read(false);
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("E0000006") && out.stderr.contains("Read-only Administrator"),
        "{}",
        out.stderr
    );
    okta.set_may_read(true);

    let out = inst
        .run(&[
            "config",
            "set",
            "okta.org_url",
            "https://example-admin.okta.com",
        ])
        .expect_code(2);
    assert!(
        out.stderr.contains("https://example.okta.com"),
        "{}",
        out.stderr
    );
    // Any port, a trailing slash: taken as given.
    inst.set("okta.org_url", &format!("{}/", okta.base_url()));
    inst.run(&["test"]).ok();

    // No token at all.
    let fresh = Installation::new();
    fresh.set("directory.type", "okta");
    let out = fresh.run(&["test"]);
    assert!(out.stderr.contains("okta.org_url"), "{}", out.stderr);
    fresh.set("okta.org_url", &okta.base_url());
    let out = fresh.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("okta.token is not set")
            && out.stderr.contains("set-secret okta.token"),
        "{}",
        out.stderr
    );
    assert_eq!(org.import_count(), 0);
}

/// The service app's key pair, registered on the emulator's app.
fn app_key(dir: &std::path::Path) -> (testkit::tls::ServerCert, Vec<u8>) {
    let app = TestCa::create(dir).issue_client("okta-app");
    let public = std::fs::read(&app.cert).unwrap();
    (app, public)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_app_signs_in_with_its_key_and_dpop() {
    let keys = tempfile::tempdir().unwrap();
    let (app, public) = app_key(keys.path());
    let okta = org_with(OktaOptions {
        app_key: Some((public, "kid-1".into())),
        require_dpop: true,
        ..OktaOptions::default()
    })
    .await;
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    inst.set("directory.type", "okta");
    inst.set("okta.org_url", &okta.base_url());
    inst.set("okta.client_id", &okta.options().client_id);
    inst.set("okta.key_id", "kid-1");
    inst.login_to(&org);

    // No key yet: the secret that is missing is named.
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("okta.private_key is not set"),
        "{}",
        out.stderr
    );
    inst.set("okta.private_key_file", app.key.to_str().unwrap());
    let status = inst.run(&["status", "--json"]).ok().json();
    assert_eq!(
        status["directorySecrets"],
        serde_json::json!([]),
        "{status}"
    );

    inst.run(&["sync"]).ok();
    assert_eq!(
        org.managed_emails(),
        set(&["ann", "bob", "cy", "fay", "gus"])
    );
    // Without a proof, with one, with the server's nonce: then DPoP-bound calls.
    let tokens: Vec<u16> = okta
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth2/v1/token")
        .map(|r| r.status)
        .collect();
    assert_eq!(tokens, [400, 400, 200]);

    // Scopes not granted, and a key that is not the app's: each says what to fix.
    okta.grant(&["okta.users.read"]);
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("invalid_scope") && out.stderr.contains("Okta API Scopes"),
        "{}",
        out.stderr
    );
    okta.grant(&["okta.users.read", "okta.groups.read"]);
    let other = tempfile::tempdir().unwrap();
    let stranger = TestCa::create(other.path()).issue_client("stranger");
    inst.set("okta.private_key_file", stranger.key.to_str().unwrap());
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("invalid_client") && out.stderr.contains("okta.key_id"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("PRIVATE KEY"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_app_key_can_be_a_secret_and_its_token_is_kept_between_runs() {
    let keys = tempfile::tempdir().unwrap();
    let (app, public) = app_key(keys.path());
    let okta = org_with(OktaOptions {
        app_key: Some((public, "kid-1".into())),
        ..OktaOptions::default()
    })
    .await;
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    inst.set("directory.type", "okta");
    inst.set("okta.org_url", &okta.base_url());
    inst.set("okta.client_id", &okta.options().client_id);
    inst.login_to(&org);
    inst.run(&[
        "config",
        "set-secret",
        "okta.private_key",
        "--file",
        app.key.to_str().unwrap(),
    ])
    .ok();
    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails().len(), 5);
    okta.clear_requests();
    inst.run(&["sync"]).ok();
    assert!(
        okta.requests().iter().all(|r| r.path != "/oauth2/v1/token"),
        "the token of the first run is used: {:?}",
        okta.requests()
    );
    // Expired early: renewed once, and the read carries on.
    okta.expire_tokens();
    inst.set("sync.full_read_hours", "0");
    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_respected_and_a_429_storm_removes_nobody() {
    let okta = org_with(OktaOptions {
        rate_limit: Some(6),
        rate_window: Duration::from_secs(2),
        ..OktaOptions::default()
    })
    .await;
    // More groups than one window allows member listings for.
    for n in 0..10 {
        let group = gid(&format!("extra{n}"));
        okta.upsert_group(&group, &format!("Team {n}"));
        okta.add_member(&group, &id("ann"));
    }
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    inst.use_okta(&okta);
    inst.login_to(&org);
    inst.run(&["sync"]).ok();
    let requests = okta.requests();
    assert_eq!(
        requests.iter().filter(|r| r.status == 429).count(),
        0,
        "paced by the rate-limit headers, never over: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path.ends_with("/users") && r.path.starts_with("/api/v1/groups/"))
            .count()
            >= 13
    );
    assert_eq!(org.group_emails("Team 9"), set(&["ann"]));
    let before = org.managed_emails();

    // A storm of 429s (E0000047) mid-read: waited out until each reset, nothing lost.
    okta.set_rate_limit(None);
    inst.set("sync.full_read_hours", "0");
    for path in ["/api/v1/users?", "/api/v1/groups/"] {
        okta.inject(Fault {
            path_contains: path.into(),
            skip: 1,
            status: 429,
            retry_after_secs: None,
            remaining: 4,
        });
    }
    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails(), before);
    assert_eq!(org.group_emails("Sales"), set(&["cy", "fay"]));
    assert_eq!(okta.requests().iter().filter(|r| r.injected).count(), 8);

    // A listing that keeps failing fails the sync: nobody removed, no group emptied.
    okta.inject(Fault {
        path_contains: format!("/api/v1/groups/{}/users", gid("sales")),
        skip: 0,
        status: 500,
        retry_after_secs: Some(0),
        remaining: 100,
    });
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(
        out.stderr.contains("listing the members of group Sales"),
        "{}",
        out.stderr
    );
    assert_eq!(org.managed_emails(), before);
    assert_eq!(org.group_emails("Sales"), set(&["cy", "fay"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_choose_users_and_groups_by_set_and_native_filter() {
    let (okta, _org, inst) = setup().await;
    inst.set(
        "okta.user_filter",
        "exclude:ANN@example.com | profile.lastName eq \"Engineer\"",
    );
    assert_eq!(inst.users_and_groups().0, [email("bob")]);
    assert!(
        okta.requests().iter().any(|r| r
            .query
            .contains("filter=%28profile.lastName%20eq%20%22Engineer%22%29%20and%20status")),
        "{:?}",
        okta.requests()
    );
    inst.run(&["config", "unset", "okta.user_filter"]).ok();

    inst.set("okta.group_filter", "include:sales");
    assert_eq!(
        inst.users_and_groups(),
        (vec![email("cy"), email("fay")], vec!["Sales".to_string()])
    );
    inst.set("okta.group_filter", "| type eq \"APP_GROUP\"");
    let (users, groups) = inst.users_and_groups();
    assert_eq!(groups, ["Contractors"]);
    assert_eq!(users.len(), 5, "a native-only filter does not scope users");

    // A filter Okta rejects names the setting.
    inst.set("okta.group_filter", "| profile.name eq \"Sales\"");
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("E0000031") && out.stderr.contains("okta.group_filter"),
        "{}",
        out.stderr
    );
    let out = inst
        .run(&["config", "set", "okta.user_filter", "only:x@example.com"])
        .expect_code(2);
    assert!(out.stderr.contains("\"only\""), "{}", out.stderr);
}

#[tokio::test]
async fn the_binary_serves_a_sample_org_with_link_paging() {
    let (server, base) = Spawned::start(
        env!("CARGO_BIN_EXE_orgsync-test-okta"),
        &["--page-size".as_ref(), "2".as_ref()],
    )
    .await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let refused = client
        .get(format!("{base}/api/v1/users"))
        .header("Authorization", "SSWS wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["errorCode"], "E0000011");
    let page = client
        .get(format!("{base}/api/v1/users?limit=200"))
        .header(
            "Authorization",
            format!("SSWS {}", OktaOptions::default().api_token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let links: Vec<String> = page
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        links.len(),
        2,
        "self and next, as separate fields: {links:?}"
    );
    assert!(links[1].contains("after=") && links[1].ends_with("rel=\"next\""));
    assert!(page.headers().contains_key("x-rate-limit-remaining"));
    let users: Vec<serde_json::Value> = page.json().await.unwrap();
    assert_eq!(users.len(), 2);
    let added = client
        .post(format!("{base}/_test/users"))
        .json(&User::active("00uzoe", "zoe@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), reqwest::StatusCode::NO_CONTENT);
    server.stop().await;
}
