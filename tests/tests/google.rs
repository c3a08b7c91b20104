//! Google Workspace end to end: the real `orgsync` against the Admin SDK emulator and the
//! organization server emulator. Assertions are on what an admin checks: the CLI's output and
//! exit code, the organization's members and groups, and the requests Google received.

use std::collections::BTreeSet;

use testkit::cli::{Installation, emails};
use testkit::google::{Fault, GoogleOptions, GoogleServer, Member, User};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::standalone::Spawned;
use testkit::tls::TestCa;

const ADMIN: &str = "admin@example.com";

fn email(name: &str) -> String {
    format!("{name}@example.com")
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| email(n)).collect()
}

fn id(name: &str) -> String {
    // Google's user ids are long numbers.
    let n: u64 = name.bytes().fold(1_000_000_007, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    format!("1{:018}", n % 10u64.pow(18))
}

/// The account: an admin, ann, bob, cy (suspended), dee (archived), old (deleted); groups
/// Engineering = {ann, bob, Platform}, Platform = {cy}, Everyone = {CUSTOMER}.
struct Company {
    google: GoogleServer,
    _keys: tempfile::TempDir,
}

async fn company() -> Company {
    let keys = tempfile::tempdir().unwrap();
    let ca = TestCa::create(keys.path());
    let account = ca.issue_client("service-account");
    let google = GoogleServer::start(GoogleOptions::with_key(account.cert, account.key)).await;
    let mut admin = User::active(&id("admin"), ADMIN);
    admin.org_unit_path = "/IT".into();
    google.upsert_user(admin);
    google.make_admin(ADMIN);
    for name in ["ann", "bob"] {
        let mut user = User::active(&id(name), &email(name));
        user.org_unit_path = "/Engineering".into();
        google.upsert_user(user);
    }
    google.upsert_user(User {
        suspended: true,
        ..User::active(&id("cy"), &email("cy"))
    });
    google.upsert_user(User {
        archived: true,
        ..User::active(&id("dee"), &email("dee"))
    });
    google.upsert_user(User {
        deleted: true,
        ..User::active(&id("old"), &email("old"))
    });
    google.upsert_group(&id("eng"), "engineering@example.com", "Engineering");
    google.upsert_group(&id("platform"), "platform@example.com", "Platform");
    google.upsert_group(&id("everyone"), "everyone@example.com", "Everyone");
    for name in ["ann", "bob"] {
        google.add_member(
            &id("eng"),
            Member::user(&User::active(&id(name), &email(name))),
        );
    }
    google.add_member(
        &id("eng"),
        Member {
            id: id("platform"),
            email: Some("platform@example.com".into()),
            role: "MEMBER".into(),
            kind: "GROUP".into(),
            status: "ACTIVE".into(),
        },
    );
    google.add_member(
        &id("platform"),
        Member::user(&User::active(&id("cy"), &email("cy"))),
    );
    google.add_member(
        &id("everyone"),
        Member {
            id: "C0emul8r".into(),
            email: None,
            role: "MEMBER".into(),
            kind: "CUSTOMER".into(),
            status: "ACTIVE".into(),
        },
    );
    Company {
        google,
        _keys: keys,
    }
}

async fn setup() -> (Company, OrgServer, Installation) {
    let company = company().await;
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    inst.use_google(&company.google, ADMIN);
    inst.login_to(&org);
    (company, org, inst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sync_unchanged_then_changes_applied() {
    let (company, org, inst) = setup().await;
    let google = &company.google;

    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["source"]["type"], "google", "{report}");
    assert_eq!(
        emails(&report["users"]["enabled"]),
        [ADMIN.to_string(), email("ann"), email("bob")]
    );
    assert_eq!(
        emails(&report["users"]["disabled"]),
        [email("cy"), email("dee")]
    );
    assert_eq!(emails(&report["users"]["deleted"]), [email("old")]);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("Everyone") && warnings.contains("CUSTOMER"),
        "{warnings}"
    );
    // Only what is used, in the largest pages, and one member listing per group.
    let requests = google.requests();
    let users = requests
        .iter()
        .find(|r| r.path.ends_with("/users"))
        .unwrap();
    assert!(
        users.query.contains("maxResults=500") && users.query.contains("customer=my_customer"),
        "{}",
        users.query
    );
    assert!(
        users
            .query
            .contains("fields=nextPageToken%2Cusers%28id%2CprimaryEmail%2Csuspended%2Carchived%29"),
        "{}",
        users.query
    );
    assert!(
        !users.query.contains("domain="),
        "exactly one of customer and domain: {}",
        users.query
    );
    let listings = requests
        .iter()
        .filter(|r| r.path.ends_with("/members"))
        .count();
    assert!(listings >= 3, "{requests:?}");

    inst.run(&["sync"]).ok();
    assert_eq!(
        org.managed_emails(),
        set(&["admin", "ann", "bob", "cy", "dee"])
    );
    // Nested: Platform's cy is in Engineering too (a suspended user, still a member).
    assert_eq!(org.group_emails("Engineering"), set(&["ann", "bob", "cy"]));
    assert_eq!(
        org.group_emails("Everyone"),
        set(&["admin", "ann", "bob", "cy", "dee"])
    );

    // Nothing changed: a full read (Google has no delta), nothing sent.
    let before = org.import_count();
    let unchanged = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(unchanged["outcome"], "unchanged", "{unchanged}");
    assert_eq!(org.import_count(), before);

    google.upsert_user(User::active(&id("eve"), &email("eve")));
    google.add_member(
        &id("eng"),
        Member::user(&User::active(&id("eve"), &email("eve"))),
    );
    google.change_user(&id("bob"), |u| u.deleted = true);
    google.remove_member(&id("eng"), &id("bob"));
    let test = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(emails(&test["diff"]["invite"]), [email("eve")]);
    assert_eq!(emails(&test["diff"]["remove"]), [email("bob")]);
    inst.run(&["sync"]).ok();
    assert_eq!(
        org.managed_emails(),
        set(&["admin", "ann", "cy", "dee", "eve"])
    );
    assert_eq!(org.group_emails("Engineering"), set(&["ann", "cy", "eve"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sign_in_problem_says_what_to_fix_and_exits_1() {
    let (company, org, inst) = setup().await;
    let google = &company.google;

    google.set_delegation(false);
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("unauthorized_client") && out.stderr.contains("domain wide delegation"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&google.options().client_id),
        "names the client ID to authorise: {}",
        out.stderr
    );
    google.set_delegation(true);

    inst.set("google.admin_user", "nobody@example.com");
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("Invalid email or User ID") && out.stderr.contains("google.admin_user"),
        "{}",
        out.stderr
    );

    inst.set("google.admin_user", &email("ann"));
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr
            .contains("Not Authorized to access this resource/api"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("administrator"), "{}", out.stderr);
    inst.set("google.admin_user", ADMIN);

    // This machine's clock two hours behind Google's.
    google.set_clock_offset(2 * 3600);
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("short-lived token") && out.stderr.contains("clock"),
        "{}",
        out.stderr
    );
    google.set_clock_offset(0);

    // A key that is not the account's.
    let other = tempfile::tempdir().unwrap();
    let stranger = TestCa::create(other.path()).issue_client("stranger");
    let key = google.key_file_json().replace(
        &std::fs::read_to_string(&google.options().private_key)
            .unwrap()
            .replace('\n', "\\n"),
        &std::fs::read_to_string(&stranger.key)
            .unwrap()
            .replace('\n', "\\n"),
    );
    let path = other.path().join("key.json");
    std::fs::write(&path, key).unwrap();
    inst.set("google.key_file", path.to_str().unwrap());
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("Invalid JWT Signature") && out.stderr.contains("new JSON key"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("PRIVATE KEY"),
        "the key is never shown: {}",
        out.stderr
    );

    // Not a key at all.
    std::fs::write(&path, "{ this is not JSON").unwrap();
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("is not a service account's JSON key"),
        "{}",
        out.stderr
    );
    assert_eq!(org.import_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_can_be_a_secret_instead_of_a_file() {
    let (company, org, inst) = setup().await;
    // With a key file, no secret is missing.
    let status = inst.run(&["status", "--json"]).ok().json();
    assert_eq!(
        status["directorySecrets"],
        serde_json::json!([]),
        "{status}"
    );
    inst.run(&["config", "unset", "google.key_file"]).ok();
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("google.key is not set"),
        "{}",
        out.stderr
    );
    let key = inst.config_file().with_file_name("google-key.json");
    inst.run(&[
        "config",
        "set-secret",
        "google.key",
        "--file",
        key.to_str().unwrap(),
    ])
    .ok();
    std::fs::remove_file(&key).unwrap();
    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails().len(), 5);
    let status = inst.run(&["status", "--json"]).ok().json();
    assert_eq!(
        status["directorySecrets"],
        serde_json::json!([{"key": "google.key", "set": true}])
    );
    drop(company);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_errors_mid_read_recover_and_a_failing_member_listing_removes_nobody() {
    let (company, org, inst) = setup().await;
    let google = &company.google;
    inst.run(&["sync"]).ok();
    let before = org.managed_emails();

    inst.set("sync.full_read_hours", "0");
    // Each at the second request of its kind, except the groups' single page.
    for (path, status, skip) in [
        ("/users?", 403, 1),
        ("/members?", 429, 1),
        ("/groups?", 503, 0),
    ] {
        google.inject(Fault {
            path_contains: path.into(),
            skip,
            status,
            retry_after_secs: None,
            remaining: 2,
        });
    }
    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails(), before);
    assert_eq!(google.requests().iter().filter(|r| r.injected).count(), 6);

    google.inject(Fault {
        path_contains: format!("/groups/{}/members", id("eng")),
        skip: 0,
        status: 500,
        retry_after_secs: Some(0),
        remaining: 100,
    });
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(
        out.stderr
            .contains("listing the members of group Engineering"),
        "{}",
        out.stderr
    );
    assert_eq!(org.managed_emails(), before);
    assert_eq!(org.group_emails("Engineering"), set(&["ann", "bob", "cy"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_choose_users_and_groups_by_set_and_native_query() {
    let (company, _org, inst) = setup().await;
    inst.set(
        "google.user_filter",
        "exclude:ANN@example.com | orgUnitPath='/Engineering'",
    );
    assert_eq!(inst.users_and_groups().0, [email("bob")]);
    let requests = company.google.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.query.contains("query=orgUnitPath%3D%27%2FEngineering%27")),
        "{requests:?}"
    );
    inst.run(&["config", "unset", "google.user_filter"]).ok();

    inst.set("google.group_filter", "include:platform");
    assert_eq!(
        inst.users_and_groups(),
        (vec![email("cy")], vec!["Platform".to_string()])
    );
    inst.set("google.group_filter", "|name:Eng*");
    let (all, groups) = inst.users_and_groups();
    assert_eq!(groups, ["Engineering"]);
    assert_eq!(
        all.len(),
        5,
        "a native-only group filter does not scope users: {all:?}"
    );

    let out = inst
        .run(&["config", "set", "google.group_filter", "only:Sales"])
        .expect_code(2);
    assert!(
        out.stderr.contains("\"only\" is not a filter keyword"),
        "{}",
        out.stderr
    );
    inst.set("google.customer", "my_customer");
    let out = inst
        .run(&["config", "set", "google.domain", "example.com"])
        .expect_code(2);
    assert!(
        out.stderr.contains("google.domain") && out.stderr.contains("google.customer"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn the_binary_serves_a_sample_account_and_writes_its_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let account = TestCa::create(dir.path()).issue_client("service-account");
    let key = dir.path().join("key.json");
    let (server, base) = Spawned::start(
        env!("CARGO_BIN_EXE_orgsync-test-google"),
        &[
            "--certificate".as_ref(),
            account.cert.as_os_str(),
            "--private-key".as_ref(),
            account.key.as_os_str(),
            "--write-key".as_ref(),
            key.as_os_str(),
        ],
    )
    .await;
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
    assert_eq!(written["token_uri"], format!("{base}/token"));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "{base}/admin/directory/v1/users?customer=my_customer"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    // Runtime changes over HTTP, for scripts.
    let control = reqwest::Client::builder().no_proxy().build().unwrap();
    let added = control
        .post(format!("{base}/_test/users"))
        .json(&User::active("200", "zoe@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), reqwest::StatusCode::NO_CONTENT);
    let missing = control
        .post(format!("{base}/_test/members/remove"))
        .json(&serde_json::json!({"group": "nope", "id": "200"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
    server.stop().await;
}
