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
    for (group, name) in [("engineering", "Engineering"), ("platform", "Platform"), ("sales", "Sales")] {
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
    let graph = tenant(GraphOptions::default()).await;
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
    assert!(warnings.contains("devices, contacts or service principals"), "{warnings}");
    // The guest has no address but its #EXT# name: skipped, and said so.
    assert!(report["skipped"].to_string().contains("gus_partner.example#EXT#"), "{report}");
    // Users are read with $select and pages of 999, never one call per user.
    let requests = graph.requests();
    let users = requests.iter().find(|r| r.path == "/v1.0/users").expect("users listed");
    assert!(users.query.contains("$select=id,mail,userPrincipalName,displayName,accountEnabled,userType"), "{}", users.query);
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
    assert!(paths.iter().all(|p| p.ends_with("/delta") || p.ends_with("/token")), "{paths:?}");

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
