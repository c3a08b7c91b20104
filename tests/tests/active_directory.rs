//! Active Directory mode against a real Samba AD domain controller, through the `orgsync` binary:
//! objectGUID as external id, userAccountControl for disabled users, nested groups, deleted
//! objects (tombstones), incremental reads by uSNChanged, paged results and LDAPS with a CA the
//! harness made.

use testkit::cli::{Installation, emails};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::samba::{SambaDc, SambaOptions};

/// `(email, reason)` of each removal in a report's diff.
fn removals_of(report: &serde_json::Value) -> Vec<(&str, &str)> {
    report["diff"]["remove"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["email"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect()
}

fn ad_installation(dc: &SambaDc, server: &OrgServer) -> Installation {
    let inst = Installation::new();
    inst.set("ldap.host", &dc.host());
    inst.set("ldap.active_directory", "true");
    inst.set("ldap.encryption", "ldaps");
    inst.set("ldap.ca_file", &dc.ca_pem().display().to_string());
    inst.set("ldap.bind_dn", &dc.admin_upn());
    inst.set("ldap.root_path", &dc.base_dn());
    inst.set("ldap.page_size", "200");
    inst.set("sync.group_path", "OU=Groups");
    inst.set_secret("ldap.bind_password", &dc.admin_bind().1);
    inst.login_to(server);
    inst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_directory_users_groups_disabled_and_deleted() {
    let dc = SambaDc::start(SambaOptions::default());
    dc.add_ou("Groups");
    for (sam, given) in [
        ("alice", "Alice"),
        ("bob", "Bob"),
        ("carol", "Carol"),
        ("dave", "Dave"),
    ] {
        dc.add_user(sam, given, Some(&format!("{sam}@test.lan")), None);
    }
    dc.add_group("Engineering", Some("Groups"));
    dc.add_group("Backend", Some("Groups"));
    dc.add_group_members("Backend", &["bob", "carol"]);
    dc.add_group_members("Engineering", &["alice", "Backend"]);
    dc.disable_user("carol");

    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = ad_installation(&dc, &server);

    let report = inst.run(&["test", "--json"]).ok().json();
    let enabled = emails(&report["users"]["enabled"]);
    assert_eq!(enabled, ["alice@test.lan", "bob@test.lan", "dave@test.lan"]);
    assert_eq!(report["users"]["disabled"][0]["email"], "carol@test.lan");
    assert_eq!(
        report["users"]["enabled"][0]["externalId"],
        dc.object_guid("alice"),
        "AD users are identified by objectGUID"
    );
    // Built-in accounts in CN=Users have no mail: reported, not sent.
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reference"].as_str().unwrap())
        .collect();
    assert!(
        skipped.iter().any(|r| r.starts_with("CN=Administrator,")),
        "{skipped:?}"
    );

    inst.run(&["sync"]).ok();
    // Disabled users stay members unless remove_disabled is on.
    assert_eq!(
        server.managed_emails(),
        [
            "alice@test.lan",
            "bob@test.lan",
            "carol@test.lan",
            "dave@test.lan"
        ]
        .map(String::from)
        .into()
    );
    let engineering = server
        .groups()
        .into_iter()
        .find(|g| g.name == "Engineering")
        .unwrap();
    assert_eq!(engineering.external_id, dc.object_guid("Engineering"));
    assert_eq!(
        engineering.member_emails,
        ["alice@test.lan", "bob@test.lan", "carol@test.lan"]
            .map(String::from)
            .into()
    );

    // Remove disabled users; delete dave (a tombstone keeps his objectGUID, not his mail).
    inst.set("sync.remove_disabled", "true");
    dc.delete_user("dave");
    let report = inst.run(&["test", "--json"]).ok().json();
    let removals = removals_of(&report);
    assert_eq!(
        removals,
        [("carol@test.lan", "disabled"), ("dave@test.lan", "deleted")]
    );
    inst.run(&["sync"]).ok();
    assert_eq!(
        server.managed_emails(),
        ["alice@test.lan", "bob@test.lan"].map(String::from).into()
    );
    assert_eq!(
        server.group_emails("Engineering"),
        ["alice@test.lan", "bob@test.lan"].map(String::from).into()
    );

    // Later syncs read only what changed since (uSNChanged on this DC), and say so.
    let unchanged = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(unchanged["outcome"], "unchanged", "{unchanged}");
    assert_eq!(unchanged["read"]["mode"], "incremental");
    assert_eq!(unchanged["read"]["entriesChanged"], 0);

    dc.add_user("erin", "Erin", Some("erin@test.lan"), None);
    dc.add_group_members("Backend", &["erin"]);
    dc.disable_user("bob");
    dc.delete_user("alice");
    let report = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(report["outcome"], "synced", "{report}");
    assert_eq!(report["read"]["mode"], "incremental", "{report}");
    let invited = emails(&report["diff"]["invite"]);
    assert_eq!(invited, ["erin@test.lan"]);
    let removals = removals_of(&report);
    assert_eq!(
        removals,
        [("alice@test.lan", "deleted"), ("bob@test.lan", "disabled")]
    );
    assert_eq!(
        server.managed_emails(),
        ["erin@test.lan"].map(String::from).into()
    );
    assert_eq!(
        server.group_emails("Engineering"),
        ["erin@test.lan"].map(String::from).into()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_directory_paged_reads_get_every_user() {
    let dc = SambaDc::start(SambaOptions::default());
    dc.bulk_users(1100, "bulk");
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = ad_installation(&dc, &server);
    inst.set("sync.groups", "false");
    // 1100 of 1100 is far over the removal limits only if something went wrong; a first sync
    // removes nobody.
    let report = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(report["outcome"], "synced");
    assert_eq!(report["diff"]["invite"].as_array().unwrap().len(), 1100);
    assert_eq!(server.managed_emails().len(), 1100);
}
