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
    inst.set("ldap.group_path", "OU=Groups");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_directory_incremental_reads_follow_renames_moves_and_recreation() {
    let dc = SambaDc::start(SambaOptions::default());
    // People in OU=People and OU=Elsewhere, both under the user path OU=Staff.
    dc.add_ou("Groups");
    dc.add_ou("Staff");
    let staff = format!("OU=Staff,{}", dc.base_dn());
    let people = format!("OU=People,{staff}");
    for (ou, dn) in [
        ("People", &people),
        ("Elsewhere", &format!("OU=Elsewhere,{staff}")),
    ] {
        dc.add_ldif(&format!(
            "dn: {dn}\nobjectClass: organizationalUnit\nou: {ou}\n\n"
        ));
    }
    for sam in ["alice", "bob", "carol", "dave"] {
        dc.add_user(sam, sam, Some(&format!("{sam}@test.lan")), Some(&people));
    }
    for group in ["Engineering", "Backend", "Sales"] {
        dc.add_group(group, Some("Groups"));
    }
    dc.add_group_members("Backend", &["bob"]);
    dc.add_group_members("Engineering", &["alice", "Backend"]);
    dc.add_group_members("Sales", &["carol"]);
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = ad_installation(&dc, &server);
    inst.set("ldap.user_path", "OU=Staff");
    inst.run(&["sync"]).ok();
    let set = |emails: &[&str]| -> std::collections::BTreeSet<String> {
        emails.iter().map(|e| e.to_string()).collect()
    };
    assert_eq!(
        server.group_emails("Engineering"),
        set(&["alice@test.lan", "bob@test.lan"])
    );

    // A user renamed: AD rewrites the group's member value without touching the group.
    dc.modify_ldif(&format!(
        "dn: {}\nchangetype: modrdn\nnewrdn: CN=Alice Liddell\ndeleteoldrdn: 1\n\n",
        dc.dn_of("alice")
    ));
    inst.assert_incremental_sync_matches_a_full_read("a user rename");
    assert!(
        server
            .group_emails("Engineering")
            .contains("alice@test.lan")
    );

    // A user moved to another OU.
    dc.modify_ldif(&format!(
        "dn: {}\nchangetype: modrdn\nnewrdn: CN=bob\ndeleteoldrdn: 1\nnewsuperior: OU=Elsewhere,{staff}\n\n",
        dc.dn_of("bob"),
    ));
    inst.assert_incremental_sync_matches_a_full_read("a user move");
    assert_eq!(
        server.group_emails("Backend"),
        set(&["bob@test.lan"]),
        "bob moved, but is still in Backend"
    );

    // A nested group renamed: its parent still holds its members.
    dc.modify_ldif(&format!(
        "dn: {}\nchangetype: modrdn\nnewrdn: CN=Backend Team\ndeleteoldrdn: 1\n\n",
        dc.dn_of("Backend")
    ));
    inst.assert_incremental_sync_matches_a_full_read("a nested group rename");
    assert_eq!(
        server.group_emails("Engineering"),
        set(&["alice@test.lan", "bob@test.lan"])
    );

    // Membership only.
    dc.add_group_members("Sales", &["dave"]);
    inst.assert_incremental_sync_matches_a_full_read("a membership change");
    assert_eq!(
        server.group_emails("Sales"),
        set(&["carol@test.lan", "dave@test.lan"])
    );

    // Carol deleted and someone new created at her DN: the newcomer is in no group.
    let carol_dn = dc.dn_of("carol");
    dc.delete_user("carol");
    dc.add_user("carol", "carol", Some("carol.new@test.lan"), Some(&people));
    assert_eq!(dc.dn_of("carol"), carol_dn);
    inst.assert_incremental_sync_matches_a_full_read("a delete and re-create at the same DN");
    assert_eq!(server.group_emails("Sales"), set(&["dave@test.lan"]));
    assert!(server.managed_emails().contains("carol.new@test.lan"));
    assert!(!server.managed_emails().contains("carol@test.lan"));

    // A user deleted outright leaves every group.
    dc.delete_user("dave");
    inst.assert_incremental_sync_matches_a_full_read("a delete");
    assert!(server.group_emails("Sales").is_empty());
}
