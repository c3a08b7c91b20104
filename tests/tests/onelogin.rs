//! OneLogin end to end: the real `orgsync` against the OneLogin emulator and the organization
//! server emulator. Assertions are on what an admin checks: the CLI's output and exit code, the
//! organization's members and groups, and the requests OneLogin received.

use std::collections::BTreeSet;

use testkit::cli::{Installation, emails};
use testkit::onelogin::{Fault, OneLoginOptions, OneLoginServer, User};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::standalone::Spawned;

fn email(name: &str) -> String {
    format!("{name}@example.com")
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| email(n)).collect()
}

/// ann, bob, fay, gus (active), cy (suspended, 2), lou (locked, 3: active as Directory
/// Connector has it), kim (no email, username kim); roles Engineering = {ann, bob},
/// Sales = {cy, fay}; groups Staff = {ann, fay}.
async fn account() -> OneLoginServer {
    let onelogin = OneLoginServer::start(OneLoginOptions::default()).await;
    for (id, name) in [
        (101, "ann"),
        (102, "bob"),
        (103, "fay"),
        (104, "gus"),
        (105, "cy"),
        (106, "lou"),
    ] {
        onelogin.upsert_user(User::active(id, &email(name)));
    }
    onelogin.change_user(105, |u| u.status = 2);
    onelogin.change_user(106, |u| u.status = 3);
    onelogin.upsert_user(User {
        email: None,
        ..User::active(107, "kim")
    });
    onelogin.upsert_role(201, "Engineering");
    onelogin.upsert_role(202, "Sales");
    for (role, user) in [(201, 101), (201, 102), (202, 105), (202, 103)] {
        onelogin.assign_role(role, user);
    }
    onelogin.upsert_group(301, "Staff");
    for user in [101, 103] {
        onelogin.change_user(user, |u| u.group_id = Some(301));
    }
    onelogin
}

async fn setup() -> (OneLoginServer, OrgServer, Installation) {
    let onelogin = account().await;
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    inst.use_onelogin(&onelogin);
    inst.login_to(&org);
    (onelogin, org, inst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sync_unchanged_then_changes_applied() {
    let (onelogin, org, inst) = setup().await;

    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["source"]["type"], "onelogin", "{report}");
    assert_eq!(
        emails(&report["users"]["enabled"]),
        [
            email("ann"),
            email("bob"),
            email("fay"),
            email("gus"),
            email("lou")
        ]
    );
    assert_eq!(emails(&report["users"]["disabled"]), [email("cy")]);
    // kim has neither an email nor a username that is one, and no suffix is set.
    assert!(report["skipped"].to_string().contains("kim"), "{report}");
    // v2 everywhere, pages of 100, every cursor followed (pages of 2 here).
    let requests = onelogin.requests();
    let users: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/api/2/users")
        .collect();
    assert!(
        users.iter().all(|r| r.query.contains("limit=100")),
        "{users:?}"
    );
    assert_eq!(users.len(), 4, "7 users in pages of 2: {users:?}");
    assert!(requests.iter().any(|r| r.path == "/api/2/roles/201/users"));

    inst.set("onelogin.email_suffix", "@example.com");
    inst.run(&["sync"]).ok();
    assert_eq!(
        org.managed_emails(),
        set(&["ann", "bob", "cy", "fay", "gus", "kim", "lou"])
    );
    assert_eq!(org.group_emails("Engineering"), set(&["ann", "bob"]));
    assert_eq!(org.group_emails("Sales"), set(&["cy", "fay"]));
    // Ids are OneLogin's numbers, sent as strings.
    let ann = org
        .members()
        .into_iter()
        .find(|m| m.email == email("ann"))
        .unwrap();
    assert_eq!(ann.external_id.as_deref(), Some("101"));

    // Nothing changed: a full read, nothing sent.
    let before = org.import_count();
    let unchanged = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(unchanged["outcome"], "unchanged", "{unchanged}");
    assert_eq!(org.import_count(), before);

    // A hire with a role, a leaver deleted, a role change.
    onelogin.upsert_user(User::active(108, &email("eve")));
    onelogin.assign_role(202, 108);
    onelogin.delete_user(102);
    onelogin.unassign_role(202, 105);
    let test = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(emails(&test["diff"]["invite"]), [email("eve")]);
    assert_eq!(emails(&test["diff"]["remove"]), [email("bob")]);
    inst.run(&["sync"]).ok();
    assert_eq!(
        org.managed_emails(),
        set(&["ann", "cy", "eve", "fay", "gus", "kim", "lou"])
    );
    assert_eq!(org.group_emails("Sales"), set(&["eve", "fay"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sign_in_problem_has_its_own_message_and_exit_code_1() {
    let (onelogin, org, inst) = setup().await;
    inst.set_secret("onelogin.client_secret", "wrong");
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("Authentication Failure")
            && out.stderr.contains("onelogin.client_secret"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("wrong"),
        "the secret is never shown: {}",
        out.stderr
    );
    inst.set_secret("onelogin.client_secret", &onelogin.options().client_secret);

    onelogin.set_may_read(false);
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("HTTP 403") && out.stderr.contains("Read users"),
        "{}",
        out.stderr
    );
    onelogin.set_may_read(true);

    let fresh = Installation::new();
    fresh.set("directory.type", "onelogin");
    fresh.set("onelogin.client_id", "abc");
    let out = fresh
        .run(&["config", "set", "onelogin.region", "ap"])
        .expect_code(2);
    assert!(out.stderr.contains("us or eu"), "{}", out.stderr);
    // The regional host by default, as Directory Connector has it.
    let status = fresh.run(&["status", "--json"]).ok().json();
    assert!(
        status.to_string().contains("https://api.us.onelogin.com"),
        "{status}"
    );
    let out = fresh.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("onelogin.client_secret is not set"),
        "{}",
        out.stderr
    );
    assert_eq!(org.import_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_failing_half_way_removes_nobody_and_throttling_is_waited_out() {
    let (onelogin, org, inst) = setup().await;
    // Ten users: five pages of two.
    for id in 110..113 {
        onelogin.upsert_user(User::active(id, &email(&format!("u{id}"))));
    }
    inst.run(&["sync"]).ok();
    let before = org.managed_emails();
    assert_eq!(before.len(), 9);

    // Page 3 of 5 keeps failing: the sync fails, nobody is removed.
    onelogin.inject(Fault {
        path_contains: "/api/2/users?".into(),
        skip: 2,
        status: 500,
        retry_after_secs: Some(0),
        remaining: 100,
    });
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(
        out.stderr.contains("listing users failed"),
        "{}",
        out.stderr
    );
    assert_eq!(org.managed_emails(), before);
    let pages = onelogin
        .requests()
        .iter()
        .filter(|r| r.path == "/api/2/users" && !r.injected)
        .count();
    assert!(pages >= 2, "the first pages were read, then it stopped");

    // A 503 on page 3 and 429s on role listings: waited out, the read completes.
    onelogin.clear_faults();
    onelogin.clear_requests();
    onelogin.inject(Fault {
        path_contains: "/api/2/users?".into(),
        skip: 2,
        status: 503,
        retry_after_secs: Some(0),
        remaining: 1,
    });
    onelogin.inject(Fault {
        path_contains: "/api/2/roles/".into(),
        skip: 0,
        status: 429,
        retry_after_secs: None,
        remaining: 2,
    });
    inst.set("sync.full_read_hours", "0");
    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails(), before);
    assert_eq!(org.group_emails("Sales"), set(&["cy", "fay"]));
    assert_eq!(onelogin.requests().iter().filter(|r| r.injected).count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_choose_users_and_roles_and_groups_can_be_onelogin_groups() {
    let (onelogin, _org, inst) = setup().await;
    inst.set(
        "onelogin.user_filter",
        "exclude:ANN@example.com | email=*@example.com&firstname=a*",
    );
    assert_eq!(inst.users_and_groups().0, Vec::<String>::new());
    inst.set("onelogin.user_filter", "|firstname=f*");
    assert_eq!(inst.users_and_groups().0, [email("fay")]);
    assert!(
        onelogin
            .requests()
            .iter()
            .any(|r| r.query.contains("firstname=f*"))
    );
    inst.run(&["config", "unset", "onelogin.user_filter"]).ok();

    inst.set("onelogin.group_filter", "include:sales");
    assert_eq!(
        inst.users_and_groups(),
        (vec![email("cy"), email("fay")], vec!["Sales".to_string()])
    );
    inst.set("onelogin.group_filter", "|name=Eng*");
    let (users, groups) = inst.users_and_groups();
    assert_eq!(groups, ["Engineering"]);
    assert_eq!(users.len(), 6, "a native-only filter does not scope users");
    inst.run(&["config", "unset", "onelogin.group_filter"]).ok();

    inst.set("onelogin.groups_from", "groups");
    let report = inst.run(&["test", "--json"]).ok().json();
    let staff = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Staff")
        .cloned();
    assert!(staff.is_some(), "{report}");
    assert!(
        onelogin
            .requests()
            .iter()
            .any(|r| r.path == "/api/1/groups")
    );

    // A parameter OneLogin does not know names the setting.
    inst.set("onelogin.user_filter", "|department=Sales");
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("Invalid query parameter")
            && out.stderr.contains("onelogin.user_filter"),
        "{}",
        out.stderr
    );
    let out = inst
        .run(&["config", "set", "onelogin.user_filter", "|not a query"])
        .expect_code(2);
    assert!(out.stderr.contains("name=value"), "{}", out.stderr);
}

#[tokio::test]
async fn the_binary_serves_a_sample_account_with_cursor_paging() {
    let (server, base) = Spawned::start(env!("CARGO_BIN_EXE_orgsync-test-onelogin"), &[]).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let defaults = OneLoginOptions::default();
    let refused = client
        .post(format!("{base}/auth/oauth2/v2/token"))
        .basic_auth(&defaults.client_id, Some("wrong"))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["status"]["message"], "Authentication Failure");
    let token: serde_json::Value = client
        .post(format!("{base}/auth/oauth2/v2/token"))
        .basic_auth(&defaults.client_id, Some(&defaults.client_secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], 36000);
    let page = client
        .get(format!("{base}/api/2/users?limit=100"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    assert!(!page.headers()["after-cursor"].is_empty());
    assert!(page.headers().contains_key("x-ratelimit-remaining"));
    let users: Vec<serde_json::Value> = page.json().await.unwrap();
    assert_eq!(users.len(), 2);
    assert!(users[0]["id"].is_u64(), "ids are numbers: {users:?}");
    server.stop().await;
}
