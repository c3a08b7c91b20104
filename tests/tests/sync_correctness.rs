//! A sync ends where a full, valid read of the directory says it should, whatever the directory
//! or the organization's admins did in between: entries the server would reject, members
//! removed by hand, email changes, and duplicates a dry run must warn about. Through the real
//! `orgsync` binary, a private slapd and the emulated organization server in each flavour.

use std::collections::BTreeSet;

use testkit::cli::{Installation, emails};
use testkit::orgserver::{Flavour, MemberStatus, OrgServer, OrgServerOptions};
use testkit::slapd::{Slapd, SlapdOptions};

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn org(flavour: Flavour) -> OrgServer {
    OrgServer::start(OrgServerOptions {
        flavour,
        ..OrgServerOptions::default()
    })
    .await
}

fn slapd() -> Slapd {
    Slapd::start(SlapdOptions {
        tls: false,
        ..SlapdOptions::default()
    })
}

/// alice, bob (mail `<uid>@example.org`) and `engineering` = {alice, bob}.
fn seed(slapd: &Slapd) {
    let l = slapd.ldif();
    let mut ldif = l.base();
    for uid in ["alice", "bob"] {
        ldif += &l.person(
            uid,
            &uid.to_uppercase(),
            Some(&format!("{uid}@example.org")),
        );
    }
    ldif += &l.group_of_names("engineering", &[&l.person_dn("alice"), &l.person_dn("bob")]);
    slapd.add_ldif(&ldif);
}

fn installation(slapd: &Slapd, server: &OrgServer) -> Installation {
    let inst = Installation::new();
    inst.use_slapd(slapd);
    inst.login_to(server);
    inst
}

/// Import requests the server answered with an error.
fn rejected_imports(server: &OrgServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/organization/import") && r.status >= 400)
        .map(|r| format!("{} {}", r.status, r.body))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_the_server_would_reject_are_skipped_and_everyone_else_syncs() {
    let slapd = slapd();
    seed(&slapd);
    let l = slapd.ldif();
    let long_name = "Quality assurance and release engineering and the people who keep the lights on in every single office we have";
    assert!(long_name.chars().count() > 100);
    slapd.add_ldif(&format!(
        "{}{}",
        l.person("typo", "TYPO", Some("not an email")),
        l.group_of_names(long_name, &[&l.person_dn("alice")]),
    ));
    // Bitwarden validates every member and group of the request (the cloud and self-hosted).
    let server = org(Flavour::BitwardenCloud).await;
    let inst = installation(&slapd, &server);

    let report = inst.run(&["test", "--json"]).ok().json();
    let skipped: Vec<(String, String, String)> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_string(),
                s["reference"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("user".into(), l.person_dn("typo"), "invalidEmail".into()),
            (
                "group".into(),
                l.group_dn(long_name),
                "groupNameTooLong".into()
            ),
        ],
        "{report}"
    );
    let invited = emails(&report["diff"]["invite"]);
    assert_eq!(invited, ["alice@example.org", "bob@example.org"]);
    let human = inst.run(&["test"]).ok().stdout;
    assert!(
        human.contains("uid=typo,ou=people") && human.contains("not a valid email address"),
        "{human}"
    );
    assert!(human.contains("group name longer than the 100"), "{human}");

    let out = inst.run(&["sync"]).ok();
    assert!(
        out.stdout.contains("not a valid email address"),
        "{}",
        out.stdout
    );
    assert_eq!(rejected_imports(&server), Vec::<String>::new());
    assert_eq!(
        server.managed_emails(),
        set(&["alice@example.org", "bob@example.org"])
    );
    assert_eq!(
        server.group_emails("engineering"),
        set(&["alice@example.org", "bob@example.org"])
    );

    // Fixed in the directory: the entry joins at the next sync.
    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: modify\nreplace: mail\nmail: typo@example.org\n\n",
        l.person_dn("typo")
    ));
    inst.run(&["sync"]).ok();
    assert!(server.managed_emails().contains("typo@example.org"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_reconciliation_restores_a_member_removed_by_hand() {
    for flavour in [Flavour::BitwardenSelfHosted, Flavour::Vaultwarden] {
        let slapd = slapd();
        seed(&slapd);
        let server = org(flavour).await;
        let inst = installation(&slapd, &server);
        inst.run(&["sync"]).ok();
        assert!(server.remove_member("bob@example.org"));
        assert_eq!(server.managed_emails(), set(&["alice@example.org"]));

        // Within sync.full_read_hours an unchanged directory sends nothing...
        let out = inst.run(&["sync", "--json"]).ok().json();
        assert_eq!(out["outcome"], "unchanged", "{flavour:?}: {out}");

        // ...and when the reconciliation is due (0: at every sync), the organization is sent
        // everything it must hold.
        inst.set("sync.full_read_hours", "0");
        let out = inst.run(&["sync", "--json"]).ok().json();
        assert_eq!(out["outcome"], "synced", "{flavour:?}: {out}");
        assert!(
            out["sentBecause"]
                .as_str()
                .unwrap()
                .contains("reconciliation"),
            "{out}"
        );
        assert_eq!(
            server.managed_emails(),
            set(&["alice@example.org", "bob@example.org"]),
            "{flavour:?}"
        );
        assert_eq!(
            server.group_emails("engineering"),
            set(&["alice@example.org", "bob@example.org"]),
            "{flavour:?}"
        );
        let human = inst.run(&["sync"]).ok().stdout;
        assert!(
            human.contains("No member or group changed; sent because the periodic reconciliation"),
            "{human}"
        );
    }
}

/// After alice's mail changes, the organization holds one membership for her, under the new
/// email, in her groups; whether the server matches members by externalId (Bitwarden) or by
/// email (Vaultwarden), and whether the sync read incrementally or in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_moves_the_membership_to_the_new_email() {
    for (flavour, incremental) in [
        (Flavour::BitwardenSelfHosted, true),
        (Flavour::Vaultwarden, true),
        (Flavour::BitwardenCloud, false),
        (Flavour::Vaultwarden, false),
    ] {
        let case = format!("{flavour:?}, incremental {incremental}");
        let slapd = slapd();
        seed(&slapd);
        let server = org(flavour).await;
        let inst = installation(&slapd, &server);
        inst.set("ldap.incremental", &incremental.to_string());
        inst.run(&["sync"]).ok();
        let alice_id = server
            .members()
            .into_iter()
            .find(|m| m.email == "alice@example.org")
            .and_then(|m| m.external_id)
            .expect("alice synced");

        let l = slapd.ldif();
        slapd.modify_ldif(&format!(
            "dn: {}\nchangetype: modify\nreplace: mail\nmail: Alice.Smith@example.org\n\n",
            l.person_dn("alice")
        ));
        let report = inst.run(&["test", "--json"]).ok().json();
        let changed = &report["diff"]["emailChanged"];
        assert_eq!(changed[0]["from"], "alice@example.org", "{case}: {report}");
        assert_eq!(changed[0]["to"], "alice.smith@example.org", "{case}");
        assert!(report["diff"]["invite"].as_array().unwrap().is_empty());
        let human = inst.run(&["test"]).ok().stdout;
        assert!(
            human.contains("email changed 1:")
                && human.contains("alice@example.org → alice.smith@example.org"),
            "{case}: {human}"
        );

        let out = inst.run(&["sync", "--json"]).ok().json();
        assert_eq!(out["outcome"], "synced", "{case}: {out}");
        assert_eq!(rejected_imports(&server), Vec::<String>::new(), "{case}");
        let holding_alice: Vec<_> = server
            .members()
            .into_iter()
            .filter(|m| m.external_id.as_deref() == Some(alice_id.as_str()))
            .collect();
        assert_eq!(holding_alice.len(), 1, "{case}: {holding_alice:?}");
        assert_eq!(holding_alice[0].email, "alice.smith@example.org", "{case}");
        assert_ne!(holding_alice[0].status, MemberStatus::Revoked, "{case}");
        assert_eq!(
            server.managed_emails(),
            set(&["alice.smith@example.org", "bob@example.org"]),
            "{case}"
        );
        assert_eq!(
            server.group_emails("engineering"),
            set(&["alice.smith@example.org", "bob@example.org"]),
            "{case}"
        );
        // Vaultwarden revokes rather than removes: the old address may stay, but revoked.
        for member in server.members() {
            if member.email == "alice@example.org" {
                assert_eq!(member.status, MemberStatus::Revoked, "{case}");
            }
        }
        let again = inst.run(&["sync", "--json"]).ok().json();
        assert_eq!(again["outcome"], "unchanged", "{case}: {again}");
        let report = inst.run(&["test", "--json"]).ok().json();
        assert!(
            report["diff"]["emailChanged"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_says_when_the_sync_would_fail_and_exits_1() {
    let slapd = slapd();
    seed(&slapd);
    let l = slapd.ldif();
    slapd.add_ldif(&l.person("alice2", "ALICE TWO", Some("Alice@example.org")));
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);

    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stdout
            .contains("A sync would FAIL: emails must be unique"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&l.person_dn("alice2")),
        "{}",
        out.stdout
    );
    let report = inst.run(&["test", "--json"]).expect_code(1).json();
    assert!(
        report["failure"]
            .as_str()
            .unwrap()
            .contains("alice@example.org"),
        "{report}"
    );
    // The sync it previewed fails the same way, and sends nothing.
    let sync = inst.run(&["sync"]).expect_code(1);
    assert!(
        sync.stderr.contains("emails must be unique"),
        "{}",
        sync.stderr
    );
    assert_eq!(server.import_count(), 0);

    // Resolved in the directory: the dry run passes again.
    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: delete\n\n",
        l.person_dn("alice2")
    ));
    let report = inst.run(&["test", "--json"]).ok().json();
    assert!(report.get("failure").is_none(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_kept_for_directory_connector_say_they_do_nothing() {
    let slapd = slapd();
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);

    let out = inst
        .run(&[
            "config",
            "set",
            "ldap.revision_date_attribute",
            "whenChanged",
        ])
        .ok();
    assert!(
        out.stderr.contains("ldap.revision_date_attribute")
            && out.stderr.contains("does nothing")
            && out.stderr.contains("ldap.incremental"),
        "{}",
        out.stderr
    );
    let has_warning = |report: &serde_json::Value| {
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("revision_date_attribute"))
    };
    for _ in 0..2 {
        let test = inst.run(&["test", "--json"]).ok().json();
        assert!(has_warning(&test), "{test}");
        // Every run says it while the key is set, unchanged syncs included.
        let sync = inst.run(&["sync", "--json"]).ok().json();
        assert!(has_warning(&sync), "{sync}");
    }
    assert!(
        inst.run(&["test"])
            .ok()
            .stdout
            .contains("warning: ldap.revision_date_attribute = \"whenChanged\" does nothing")
    );

    inst.run(&["config", "unset", "ldap.revision_date_attribute"])
        .ok();
    assert!(!has_warning(&inst.run(&["test", "--json"]).ok().json()));
}

/// After removals were allowed once, the next sync of the same directory sends nothing, and a
/// sync that sends with nothing changed says why (never a cache clear that did not happen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_allowed_removals_the_next_sync_is_unchanged() {
    let slapd = slapd();
    let l = slapd.ldif();
    let mut ldif = l.base();
    for i in 0..10 {
        ldif += &l.person(
            &format!("u{i}"),
            &format!("U{i}"),
            Some(&format!("u{i}@example.org")),
        );
    }
    slapd.add_ldif(&ldif);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);
    inst.set("ldap.incremental", "false");
    inst.set("sync.groups", "false");
    inst.run(&["sync"]).ok();
    let mut deletes = String::new();
    for i in 0..6 {
        deletes += &format!(
            "dn: {}\nchangetype: delete\n\n",
            l.person_dn(&format!("u{i}"))
        );
    }
    slapd.modify_ldif(&deletes);
    inst.run(&["sync"]).expect_code(1);
    inst.run(&["sync", "--allow-removals"]).ok();
    assert_eq!(server.managed_emails().len(), 4);
    let imports = server.import_count();

    let next = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(next["outcome"], "unchanged", "{next}");
    assert_eq!(server.import_count(), imports);

    // A cleared cache does send again, and says so.
    inst.run(&["clear-cache"]).ok();
    let out = inst.run(&["sync"]).ok().stdout;
    assert!(
        out.contains("No member or group changed; sent because"),
        "{out}"
    );
    assert!(out.contains("the cache was cleared"), "{out}");
}

/// The README's OpenLDAP setup marks locked accounts disabled; with `remove_disabled` off (the
/// reference's default) they are still invited, and `test` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_users_invited_anyway_are_explained() {
    let slapd = slapd();
    seed(&slapd);
    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n\n",
        slapd.ldif().person_dn("bob")
    ));
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);
    inst.set("ldap.disabled_filter", "(pwdAccountLockedTime=*)");
    let out = inst.run(&["test"]).ok().stdout;
    assert!(
        out.contains("1 disabled user(s) are invited anyway, because sync.remove_disabled is off: bob@example.org"),
        "{out}"
    );
    inst.set("sync.remove_disabled", "true");
    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(emails(&report["diff"]["invite"]), ["alice@example.org"]);
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{report}"
    );
}
