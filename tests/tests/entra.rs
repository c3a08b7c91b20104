//! Microsoft Entra ID end to end: the real `orgsync` (and `orgsyncd`) against the Graph
//! emulator and the organization server emulator. Assertions are on what an admin checks: the
//! CLI's output and exit code, the organization's members and groups, and the requests Graph
//! received.

use std::collections::BTreeSet;

use testkit::cli::{Installation, emails};
use testkit::graph::{Fault, GraphOptions, GraphServer, Kind, User, id};
use testkit::orgserver::{OrgServer, OrgServerOptions};

const DOMAIN: &str = "contoso.example";

fn email(name: &str) -> String {
    format!("{name}@{DOMAIN}")
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| email(n)).collect()
}

/// ann, bob, cy, dee (disabled), a guest with only an #EXT# name; Engineering = {ann, bob,
/// Platform, a laptop}; Platform = {cy}; Sales = {dee}.
async fn tenant(options: GraphOptions) -> GraphServer {
    let graph = GraphServer::start(options).await;
    for name in ["ann", "bob", "cy"] {
        graph.upsert_user(User::member(&id(name), name, DOMAIN));
    }
    graph.upsert_user(User {
        account_enabled: false,
        ..User::member(&id("dee"), "dee", DOMAIN)
    });
    graph.upsert_user(User {
        user_principal_name: "gus_partner.example#EXT#@contoso.onmicrosoft.com".into(),
        mail: None,
        user_type: "Guest".into(),
        ..User::member(&id("gus"), "gus", DOMAIN)
    });
    for (group, name) in [
        ("engineering", "Engineering"),
        ("platform", "Platform"),
        ("sales", "Sales"),
    ] {
        graph.upsert_group(&id(group), name);
    }
    graph.add_member(&id("engineering"), &id("ann"), Kind::User);
    graph.add_member(&id("engineering"), &id("bob"), Kind::User);
    graph.add_member(&id("engineering"), &id("platform"), Kind::Group);
    graph.add_member(&id("engineering"), &id("laptop"), Kind::Device);
    graph.add_member(&id("platform"), &id("cy"), Kind::User);
    graph.add_member(&id("sales"), &id("dee"), Kind::User);
    graph
}

async fn setup() -> (GraphServer, OrgServer, Installation) {
    setup_with(GraphOptions::default()).await
}

/// The tenant above in an emulator started with `options`, an organization, and an
/// installation pointed at both and logged in.
async fn setup_with(options: GraphOptions) -> (GraphServer, OrgServer, Installation) {
    let graph = tenant(options).await;
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    inst.use_entra(&graph);
    inst.login_to(&org);
    (graph, org, inst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sync_unchanged_then_changes_follow_by_delta() {
    let (graph, org, inst) = setup().await;

    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(
        emails(&report["users"]["enabled"]),
        [email("ann"), email("bob"), email("cy")]
    );
    assert_eq!(emails(&report["users"]["disabled"]), [email("dee")]);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("devices, contacts or service principals"),
        "{warnings}"
    );
    // The guest has no address but its #EXT# name: skipped, and said so.
    assert!(
        report["skipped"]
            .to_string()
            .contains("gus_partner.example#EXT#"),
        "{report}"
    );
    // Users are read with $select and pages of 999, never one call per user.
    let requests = graph.requests();
    let users = requests
        .iter()
        .find(|r| r.path == "/v1.0/users")
        .expect("users listed");
    assert!(
        users
            .query
            .contains("$select=id,mail,userPrincipalName,displayName,accountEnabled,userType"),
        "{}",
        users.query
    );
    assert!(users.query.contains("$top=999"), "{}", users.query);

    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails(), set(&["ann", "bob", "cy", "dee"]));
    assert_eq!(org.group_emails("Engineering"), set(&["ann", "bob", "cy"]));
    assert_eq!(org.group_emails("Sales"), set(&["dee"]));

    // Nothing changed: two delta calls, nothing sent.
    graph.clear_requests();
    let unchanged = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(unchanged["outcome"], "unchanged", "{unchanged}");
    assert_eq!(unchanged["read"]["mode"], "incremental", "{unchanged}");
    let paths: Vec<String> = graph.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.len() <= 3, "{paths:?}");
    assert!(
        paths
            .iter()
            .all(|p| p.ends_with("/delta") || p.ends_with("/token")),
        "{paths:?}"
    );

    // Changes: a new hire, a leaver (soft-deleted), a membership change, a rename.
    graph.upsert_user(User::member(&id("eve"), "eve", DOMAIN));
    graph.add_member(&id("sales"), &id("eve"), Kind::User);
    graph.delete_user(&id("bob"));
    graph.remove_member(&id("platform"), &id("cy"));
    graph.upsert_group(&id("sales"), "Sales EMEA");
    let test = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(emails(&test["diff"]["invite"]), [email("eve")]);
    assert_eq!(emails(&test["diff"]["remove"]), [email("bob")]);
    inst.assert_incremental_sync_matches_a_full_read("users and groups changed in Entra");
    assert_eq!(org.managed_emails(), set(&["ann", "cy", "dee", "eve"]));
    assert_eq!(org.group_emails("Engineering"), set(&["ann"]));
    assert_eq!(org.group_emails("Sales EMEA"), set(&["dee", "eve"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sign_in_problem_has_its_own_message_and_exit_code_1() {
    let (graph, org, inst) = setup().await;

    graph.set_client_secret("a rotated secret");
    let out = inst.run(&["test"]).expect_code(1);
    assert!(out.stderr.contains("AADSTS7000215"), "{}", out.stderr);
    assert!(out.stderr.contains("entra.client_secret"), "{}", out.stderr);
    assert!(
        !out.stderr.contains(&graph.options().client_secret),
        "the secret is never shown"
    );
    graph.set_client_secret(&graph.options().client_secret);

    inst.set("entra.tenant", "fabrikam.onmicrosoft.com");
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(out.stderr.contains("AADSTS90002"), "{}", out.stderr);
    assert!(out.stderr.contains("entra.tenant"), "{}", out.stderr);
    inst.set("entra.tenant", &graph.options().tenant_id);

    inst.set("entra.client_id", "11111111-2222-4333-8444-555555555555");
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("AADSTS700016") && out.stderr.contains("entra.client_id"),
        "{}",
        out.stderr
    );
    inst.set("entra.client_id", &graph.options().client_id);

    graph.set_consent(false);
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(
        out.stderr.contains("Authorization_RequestDenied"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("User.Read.All") && out.stderr.contains("admin consent"),
        "{}",
        out.stderr
    );
    graph.set_consent(true);

    // A secret is no config key.
    inst.run(&["config", "set", "entra.client_secret", "x"])
        .expect_code(2);
    assert_eq!(org.import_count(), 0, "nothing reached the organization");
    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails(), set(&["ann", "bob", "cy", "dee"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_dropped_pages_mid_read_recover_and_never_remove_anyone() {
    let (graph, org, inst) = setup().await;
    inst.run(&["sync"]).ok();
    let before = org.managed_emails();

    inst.set("sync.full_read_hours", "0");
    for (path, status) in [
        ("/members", 429),
        ("/v1.0/users?", 503),
        ("/v1.0/groups?", 0),
    ] {
        graph.inject(Fault {
            path_contains: path.into(),
            skip: 1,
            status,
            retry_after_secs: Some(1),
            remaining: 2,
        });
    }
    let report = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(report["read"]["mode"], "full", "{report}");
    assert!(
        report["diff"]["remove"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{report}"
    );
    assert_eq!(org.managed_emails(), before);
    let injected = graph.requests().iter().filter(|r| r.injected).count();
    assert_eq!(injected, 6, "every fault was met and outlasted");

    // A member listing that keeps failing fails the sync: nobody is removed.
    graph.inject(Fault {
        path_contains: format!("/groups/{}/members", id("sales")),
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
    assert_eq!(org.group_emails("Sales"), set(&["dee"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_choose_users_by_email_and_group_and_groups_by_name_and_unit() {
    let (graph, _org, inst) = setup().await;
    let enabled = |inst: &Installation| {
        let report = inst.run(&["test", "--json"]).ok().json();
        let mut users: Vec<String> = emails(&report["users"]["enabled"])
            .into_iter()
            .chain(emails(&report["users"]["disabled"]))
            .map(str::to_string)
            .collect();
        users.sort();
        let groups: Vec<String> = report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect();
        (users, groups)
    };

    inst.set("entra.user_filter", "exclude:BOB@contoso.example");
    assert_eq!(enabled(&inst).0, [email("ann"), email("cy"), email("dee")]);

    // Transitive: cy is in Platform, which is in Engineering; the laptop is no user.
    inst.set(
        "entra.user_filter",
        &format!(
            "includeGroup:{}|exclude:ann@contoso.example",
            id("engineering")
        ),
    );
    assert_eq!(enabled(&inst).0, [email("bob"), email("cy")]);

    // A filter Directory Connector would ignore is refused, naming the problem.
    let out = inst
        .run(&["config", "set", "entra.user_filter", "includeGroups:x"])
        .expect_code(2);
    assert!(
        out.stderr
            .contains("\"includeGroups\" is not a filter keyword"),
        "{}",
        out.stderr
    );
    inst.run(&["config", "unset", "entra.user_filter"]).ok();

    // A group filter keeps its groups, and then only their members are users.
    inst.set("entra.group_filter", "include:sales");
    assert_eq!(
        enabled(&inst),
        (vec![email("dee")], vec!["Sales".to_string()])
    );

    graph.add_to_unit(&id("unit-west"), &id("platform"));
    inst.set(
        "entra.group_filter",
        &format!("includeAdministrativeUnit:{}", id("unit-west")),
    );
    assert_eq!(
        enabled(&inst),
        (vec![email("cy")], vec!["Platform".to_string()])
    );

    inst.run(&["config", "unset", "entra.group_filter"]).ok();
    inst.set("entra.include_guests", "true");
    assert!(
        enabled(&inst)
            .0
            .contains(&"gus@partner.example".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_link_is_followed_by_a_full_read_that_says_why() {
    for status in [410, 400] {
        let (graph, org, inst) = setup_with(GraphOptions {
            expired_delta_status: status,
            ..GraphOptions::default()
        })
        .await;
        inst.run(&["sync"]).ok();

        graph.expire_delta_links();
        graph.upsert_user(User::member(&id("eve"), "eve", DOMAIN));
        let report = inst.run(&["sync", "--json"]).ok().json();
        assert_eq!(report["read"]["mode"], "full", "{status}: {report}");
        assert!(
            report["read"]["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("can no longer send changes"),
            "{status}: {report}"
        );
        assert!(org.managed_emails().contains(&email("eve")));
        // And the new links work.
        let next = inst.run(&["sync", "--json"]).ok().json();
        assert_eq!(next["read"]["mode"], "incremental", "{status}: {next}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_signs_in_instead_of_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let ca = testkit::tls::TestCa::create(dir.path());
    let cert = ca.issue_client("orgsync-app");
    let (graph, org, inst) = setup_with(GraphOptions {
        certificate: Some(cert.cert.clone()),
        ..GraphOptions::default()
    })
    .await;
    // The stored secret no longer works: only the certificate can sign in.
    graph.set_client_secret("not what orgsync has");
    inst.set("entra.certificate_file", cert.cert.to_str().unwrap());
    inst.set("entra.certificate_key_file", cert.key.to_str().unwrap());
    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails(), set(&["ann", "bob", "cy", "dee"]));

    // Another key than the registered certificate's is refused as such.
    let other = ca.issue_client("someone-else");
    inst.set("entra.certificate_key_file", other.key.to_str().unwrap());
    let out = inst.run(&["test"]).expect_code(1);
    assert!(out.stderr.contains("AADSTS700027"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_follows_changes_with_delta_polls() {
    let (graph, org, inst) = setup().await;
    testkit::daemon::prepare_quiet_daemon(&inst);
    inst.set("sync.schedule", "* * * * * *");
    let _daemon = testkit::daemon::Daemon::start(&inst);
    let until = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    until("the first sync", &|| {
        org.managed_emails() == set(&["ann", "bob", "cy", "dee"])
    });
    graph.clear_requests();
    graph.upsert_user(User::member(&id("eve"), "eve", DOMAIN));
    until("the new hire", &|| {
        org.managed_emails().contains(&email("eve"))
    });
    let requests = graph.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/v1.0/users/delta" && r.query.contains("$deltatoken=")),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.path == "/v1.0/users"),
        "no full read: {requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_errors_name_the_entra_secret_until_it_is_set() {
    let graph = tenant(GraphOptions::default()).await;
    let inst = Installation::new();
    inst.set("directory.type", "entra");
    let out = inst.run(&["test"]).expect_code(2);
    assert!(
        out.stderr.contains("entra.tenant") && out.stderr.contains("entra.client_id"),
        "{}",
        out.stderr
    );
    inst.set("entra.tenant", &graph.options().tenant_id);
    inst.set("entra.client_id", &graph.options().client_id);
    inst.set("entra.login_url", &graph.base_url());
    inst.set("entra.graph_url", &graph.base_url());

    let status = inst.run(&["status", "--json"]).ok().json();
    assert_eq!(status["directoryType"], "entra");
    assert_eq!(
        status["directorySecrets"],
        serde_json::json!([{"key": "entra.client_secret", "set": false}])
    );
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("entra.client_secret is not set"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("orgsync config set-secret entra.client_secret"),
        "{}",
        out.stderr
    );

    inst.set_secret("entra.client_secret", &graph.options().client_secret);
    let status = inst.run(&["status"]).ok();
    assert!(
        status.stdout.contains("Directory type:   entra"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("entra.client_secret set"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("Microsoft Entra ID tenant"),
        "{}",
        status.stdout
    );
    let show = inst.run(&["config", "show"]).ok();
    assert!(
        show.stdout.contains("entra.client_secret: set"),
        "{}",
        show.stdout
    );
    assert!(!show.stdout.contains(&graph.options().client_secret));
    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["users"]["enabled"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["source"]["type"], "entra", "{report}");
    let test = inst.run(&["test"]).ok();
    assert!(
        test.stdout
            .starts_with("Source:    Microsoft Entra ID tenant 0b5c4b8e"),
        "{}",
        test.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_the_configured_proxy_or_the_environments() {
    let (graph, org, mut inst) = setup().await;
    let proxy = testkit::proxy::Proxy::start().await;
    inst.set("http.proxy", &proxy.url());
    inst.run(&["sync"]).ok();
    assert_eq!(org.managed_emails(), set(&["ann", "bob", "cy", "dee"]));
    let seen = proxy.seen();
    for target in [
        format!("{}/v1.0/users", graph.base_url()),
        format!(
            "{}/{}/oauth2/v2.0/token",
            graph.base_url(),
            graph.options().tenant_id
        ),
        format!("{}/api/public/organization/import", org.base_url()),
    ] {
        assert!(
            seen.iter().any(|s| s.starts_with(&target)),
            "{target} not in {seen:?}"
        );
    }

    // Hosts in no_proxy are reached directly.
    inst.set("http.no_proxy", "127.0.0.1");
    let before = proxy.seen().len();
    inst.run(&["test"]).ok();
    assert_eq!(proxy.seen().len(), before, "{:?}", proxy.seen());

    // Without the setting, HTTP_PROXY applies.
    inst.run(&["config", "unset", "http.proxy"]).ok();
    inst.run(&["config", "unset", "http.no_proxy"]).ok();
    inst.set_env("HTTP_PROXY", &proxy.url());
    inst.run(&["test"]).ok();
    assert!(proxy.seen().len() > before, "{:?}", proxy.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_mid_read_is_renewed_once_and_kept_between_runs() {
    let (graph, org, inst) = setup().await;
    inst.run(&["sync"]).ok();
    let token_requests = |graph: &GraphServer| {
        graph
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
            .count()
    };
    // The next sync uses the token the last one kept.
    graph.clear_requests();
    inst.run(&["sync"]).ok();
    assert_eq!(token_requests(&graph), 0, "{:?}", graph.requests());

    // Graph refuses the token half-way through the users (as when it expired early): one new
    // sign-in, and the read goes on from that page.
    inst.set("sync.full_read_hours", "0");
    graph.clear_requests();
    graph.inject(Fault {
        path_contains: "/v1.0/users?".into(),
        skip: 1,
        status: 401,
        retry_after_secs: None,
        remaining: 1,
    });
    let report = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(report["read"]["mode"], "full", "{report}");
    assert_eq!(token_requests(&graph), 1, "{:?}", graph.requests());
    assert_eq!(org.managed_emails(), set(&["ann", "bob", "cy", "dee"]));

    // Refused again after the renewal: the credentials are wrong, and nobody is removed.
    graph.inject(Fault {
        path_contains: "/v1.0/users?".into(),
        skip: 0,
        status: 401,
        retry_after_secs: None,
        remaining: 2,
    });
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(
        out.stderr.contains("InvalidAuthenticationToken"),
        "{}",
        out.stderr
    );
    assert_eq!(org.managed_emails(), set(&["ann", "bob", "cy", "dee"]));

    // A dry run always signs in, so it checks the credentials as they are now.
    graph.set_client_secret("rotated");
    let out = inst.run(&["test"]).expect_code(1);
    assert!(out.stderr.contains("AADSTS7000215"), "{}", out.stderr);
}
