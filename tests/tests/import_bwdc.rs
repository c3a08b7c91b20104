//! `orgsync import-bwdc` end to end: an organization Directory Connector kept in step (populated
//! with the connector's own import requests), its `data.json`, then the real `orgsync`: the
//! import, a `test` that shows nothing to do, a directory change that syncs exactly that
//! change, and who left before the switch removed only when the admin says so.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use testkit::bwdc::{self, Group, Member};
use testkit::cli::{Installation, Run, emails};
use testkit::fixture::seed_people;
use testkit::okta::{OktaOptions, OktaServer, User};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::slapd::{Slapd, SlapdOptions};

/// The connector's LDAP configuration for `slapd` (OpenLDAP, not AD), with the bind password
/// inline (plaintext-secrets mode) or in the keyring.
fn ldap_config(slapd: &Slapd, password: &str) -> Value {
    json!({
        "id": "7b6f3c1e-2d4a-4b8c-9e0f-1a2b3c4d5e6f",
        "ssl": false, "startTls": false, "sslAllowUnauthorized": false,
        "hostname": "127.0.0.1", "port": slapd.port(), "rootPath": slapd.suffix(),
        "currentUser": false, "username": slapd.admin_dn(), "password": password,
        "ad": false, "pagedSearch": true
    })
}

fn ldap_sync() -> Value {
    let mut sync = bwdc::sync_options();
    for (field, value) in [
        ("userPath", "ou=people"),
        ("groupPath", "ou=groups"),
        ("userObjectClass", "inetOrgPerson"),
        ("groupObjectClass", "groupOfNames"),
        ("userEmailAttribute", "mail"),
        ("groupNameAttribute", "cn"),
        ("memberAttribute", "member"),
        ("revisionDateAttribute", "modifyTimestamp"),
    ] {
        sync[field] = json!(value);
    }
    sync
}

fn managed(org: &OrgServer) -> BTreeSet<String> {
    org.managed_emails()
}

fn set(emails: &[&str]) -> BTreeSet<String> {
    emails.iter().map(|e| e.to_string()).collect()
}

/// alice, bob and carol in slapd (engineering = alice, bob); the organization as the connector
/// left it: those three and dave, who has left the directory since, all with the DNs the
/// connector sent as externalIds.
async fn ldap_company() -> (Slapd, OrgServer, tempfile::TempDir) {
    let slapd = Slapd::start(SlapdOptions {
        tls: false,
        ..SlapdOptions::default()
    });
    seed_people(&slapd, &["alice", "bob", "carol"]);
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let l = slapd.ldif();
    let dns: Vec<String> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|uid| l.person_dn(uid))
        .collect();
    let emails: Vec<String> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|uid| format!("{uid}@example.org"))
        .collect();
    let members: Vec<Member> = emails
        .iter()
        .zip(&dns)
        .map(|(email, dn)| Member {
            email,
            external_id: dn,
        })
        .collect();
    let group_dn = l.group_dn("engineering");
    bwdc::import_as_connector(
        &org,
        &members,
        &[Group {
            name: "engineering",
            external_id: &group_dn,
            members: vec![&dns[0], &dns[1]],
        }],
    )
    .await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = ldap_config(&slapd, slapd.admin_password());
    bwdc::write(
        dir.path(),
        &bwdc::data_json(&org, 0, config, ldap_sync(), true),
    );
    (slapd, org, dir)
}

fn import(inst: &Installation, dir: &std::path::Path) -> Run {
    inst.run(&["import-bwdc", dir.to_str().expect("a UTF-8 path")])
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ldap_organization_continues_without_a_reinvite_and_keeps_earlier_leavers_until_asked() {
    let (slapd, org, dir) = ldap_company().await;
    let inst = Installation::new();
    let before = org.members();
    let imported = import(&inst, dir.path()).ok();
    assert!(
        imported
            .stdout
            .contains("took over its 4 directory-managed member(s) and 1 group(s)"),
        "{}",
        imported.stdout
    );
    assert!(
        !imported.stdout.contains(slapd.admin_password()),
        "a secret was printed: {}",
        imported.stdout
    );
    let config = std::fs::read_to_string(inst.config_file()).expect("the config file");
    assert!(
        config.contains("external_id_attribute = \"dn\""),
        "{config}"
    );
    assert!(!config.contains(slapd.admin_password()), "{config}");

    // The first test after the switch: nothing to invite, nobody to remove, dave shown.
    let test = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(test["diff"]["invite"], json!([]), "{test:#}");
    assert_eq!(test["diff"]["remove"], json!([]), "{test:#}");
    assert_eq!(test["diff"]["groupsCreated"], json!([]), "{test:#}");
    assert_eq!(test["diff"]["groupsUpdated"], json!([]), "{test:#}");
    let warnings = test["warnings"].to_string();
    assert!(
        warnings.contains("left the directory before the switch")
            && warnings.contains("dave@example.org"),
        "{warnings}"
    );

    // The first sync changes nobody's membership.
    inst.run(&["sync"]).ok();
    assert_eq!(
        org.members(),
        before,
        "the first sync changed the organization"
    );

    // A directory change syncs exactly that change.
    let l = slapd.ldif();
    slapd.add_ldif(&l.person("erin", "ERIN", Some("erin@example.org")));
    let synced = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(
        emails(&synced["diff"]["invite"]),
        vec!["erin@example.org"],
        "{synced:#}"
    );
    assert_eq!(synced["diff"]["remove"], json!([]), "{synced:#}");
    assert_eq!(
        managed(&org),
        set(&[
            "alice@example.org",
            "bob@example.org",
            "carol@example.org",
            "dave@example.org",
            "erin@example.org"
        ])
    );

    // The admin removes who left before the switch.
    let removed = inst
        .run(&["sync", "--allow-removals", "--json"])
        .ok()
        .json();
    assert_eq!(
        emails(&removed["diff"]["remove"]),
        vec!["dave@example.org"],
        "{removed:#}"
    );
    assert!(!managed(&org).contains("dave@example.org"));
    let after = inst.run(&["test", "--json"]).ok().json();
    assert!(
        !after["warnings"].to_string().contains("before the switch"),
        "{after:#}"
    );
}

/// ann and bob in Okta (Engineering = ann, bob); the organization as the connector left it.
#[tokio::test(flavor = "multi_thread")]
async fn an_okta_organization_continues_and_a_new_hire_is_the_only_change() {
    let okta = OktaServer::start(OktaOptions::default()).await;
    let id = |name: &str| format!("00u{name}1a2b3c4d5e6");
    for name in ["ann", "bob"] {
        okta.upsert_user(User::active(&id(name), &format!("{name}@example.com")));
    }
    okta.upsert_group("00gEng9z8y7x6w5", "Engineering");
    okta.add_member("00gEng9z8y7x6w5", &id("ann"));
    okta.add_member("00gEng9z8y7x6w5", &id("bob"));
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let (ann, bob) = (id("ann"), id("bob"));
    bwdc::import_as_connector(
        &org,
        &[
            Member {
                email: "ann@example.com",
                external_id: &ann,
            },
            Member {
                email: "bob@example.com",
                external_id: &bob,
            },
        ],
        &[Group {
            name: "Engineering",
            external_id: "00gEng9z8y7x6w5",
            members: vec![&ann, &bob],
        }],
    )
    .await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = json!({
        "id": "3a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        // The connector's GUI example has the trailing slash.
        "orgUrl": format!("{}/", okta.base_url()),
        "token": okta.options().api_token,
    });
    bwdc::write(
        dir.path(),
        &bwdc::data_json(&org, 3, config, bwdc::sync_options(), true),
    );
    let inst = Installation::new();
    import(&inst, dir.path()).ok();
    let test = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(test["diff"]["invite"], json!([]), "{test:#}");
    assert_eq!(test["diff"]["remove"], json!([]), "{test:#}");
    assert_eq!(test["diff"]["groupsUpdated"], json!([]), "{test:#}");

    okta.upsert_user(User::active(&id("cat"), "cat@example.com"));
    okta.add_member("00gEng9z8y7x6w5", &id("cat"));
    let synced = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(
        emails(&synced["diff"]["invite"]),
        vec!["cat@example.com"],
        "{synced:#}"
    );
    assert_eq!(synced["diff"]["remove"], json!([]), "{synced:#}");
    assert_eq!(
        org.group_emails("Engineering"),
        set(&["ann@example.com", "bob@example.com", "cat@example.com"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_prints_the_config_and_what_was_not_carried_over_and_writes_nothing() {
    let (slapd, org, dir) = ldap_company().await;
    let mut data: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("data.json")).unwrap())
            .unwrap();
    data["sync"]["overwriteExisting"] = json!(true);
    data["directoryLdap"]["rootPath"] = json!(format!("ou=Staff,{}", slapd.suffix()));
    bwdc::write(dir.path(), &data);
    let inst = Installation::new();
    let run = inst
        .run(&["import-bwdc", dir.path().to_str().unwrap(), "--dry-run"])
        .ok();
    for expected in [
        "[ldap]",
        "host = \"127.0.0.1\"",
        &format!("root_path = \"{}\"", slapd.suffix()),
        "external_id_attribute = \"dn\"",
        "sync.overwriteExisting",
        "drops what comes before the first dc=",
        "ldap.bind_password: found (data.json (plaintext secrets)",
        "org.client_secret: found",
        "Nothing was written (--dry-run).",
    ] {
        assert!(
            run.stdout.contains(expected),
            "missing {expected:?} in:\n{}",
            run.stdout
        );
    }
    assert!(
        !run.stdout.contains(slapd.admin_password()),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(&org.client_secret()), "{}", run.stdout);
    assert!(
        !inst.config_file().exists(),
        "a dry run wrote the config file"
    );
    assert!(!inst.data_dir().join("secrets.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_clear_error_and_nothing_is_written() {
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let check = |what: &str, expected: &str| {
        let run = inst.run(&["import-bwdc", &path]).expect_code(2);
        assert!(
            run.stderr.contains(expected),
            "{what}: expected {expected:?} in: {}",
            run.stderr
        );
        assert!(
            !inst.config_file().exists(),
            "{what}: the config file was written"
        );
    };
    check("no file", "does not exist");
    std::fs::write(
        dir.path().join("data.json"),
        "{\"stateVersion\": 8, \"directoryType\": 0,",
    )
    .unwrap();
    check("corrupted", "is not valid JSON");
    let mut data = bwdc::data_json(
        &org,
        3,
        json!({"orgUrl": "https://x.okta.com"}),
        bwdc::sync_options(),
        true,
    );
    data["stateVersion"] = json!(9);
    bwdc::write(dir.path(), &data);
    check(
        "newer",
        "state version 9 is newer than this orgsync knows (8)",
    );
    data["stateVersion"] = json!(2);
    bwdc::write(dir.path(), &data);
    check(
        "older",
        "state version 2 is older than Directory Connector itself can migrate",
    );
    data["stateVersion"] = json!(8);
    data["directoryType"] = json!(7);
    bwdc::write(dir.path(), &data);
    check(
        "unknown directory",
        "directoryType 7 is not a directory orgsync supports",
    );
    std::fs::write(dir.path().join("data.json"), "{}").unwrap();
    check("never configured", "has no directory configured");

    // An existing config is kept unless --force.
    data["directoryType"] = json!(3);
    bwdc::write(dir.path(), &data);
    inst.set("sync.interval_minutes", "7");
    let before = std::fs::read_to_string(inst.config_file()).unwrap();
    let run = inst.run(&["import-bwdc", &path]).expect_code(2);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(inst.config_file()).unwrap(), before);
    inst.run(&["import-bwdc", &path, "--force"]).ok();
    let after = std::fs::read_to_string(inst.config_file()).unwrap();
    assert!(
        after.contains("org_url = \"https://x.okta.com\""),
        "{after}"
    );
}

#[test]
fn the_connectors_data_folder_is_found_where_it_keeps_it() {
    let mut inst = Installation::new();
    let home = tempfile::tempdir().unwrap();
    let folder = home.path().join(".config/Bitwarden Directory Connector");
    let data = json!({
        "stateVersion": 8, "directoryType": 4,
        "directoryOnelogin": {"id": "x", "clientId": "abc", "region": "eu", "clientSecret": "[STORED SECURELY]"},
        "sync": bwdc::sync_options(),
    });
    bwdc::write(&folder, &data);
    inst.set_env(
        "XDG_CONFIG_HOME",
        home.path().join(".config").to_str().unwrap(),
    );
    let run = inst.run(&["import-bwdc", "--dry-run"]).ok();
    assert!(run.stdout.contains("region = \"eu\""), "{}", run.stdout);
    // Without a keyring the secret cannot be read: the report says how to set it.
    assert!(
        run.stdout.contains("onelogin.client_secret: not found")
            && run
                .stdout
                .contains("orgsync config set-secret onelogin.client_secret"),
        "{}",
        run.stdout
    );
    let other = tempfile::tempdir().unwrap();
    bwdc::write(
        other.path(),
        &json!({"stateVersion": 8, "directoryType": 3, "directoryOkta": {"orgUrl": "https://env.okta.com"}}),
    );
    inst.set_env(
        "BITWARDENCLI_CONNECTOR_APPDATA_DIR",
        other.path().to_str().unwrap(),
    );
    let run = inst.run(&["import-bwdc", "--dry-run"]).ok();
    assert!(
        run.stdout.contains("https://env.okta.com"),
        "{}",
        run.stdout
    );
}

/// Vaultwarden has no public members API: the import says what that means, and the first sync
/// invites nobody twice (the server matches members by email).
#[tokio::test(flavor = "multi_thread")]
async fn on_vaultwarden_the_first_sync_matches_the_connectors_members_by_email() {
    let slapd = Slapd::start(SlapdOptions {
        tls: false,
        ..SlapdOptions::default()
    });
    seed_people(&slapd, &["alice", "bob"]);
    let org = OrgServer::start(OrgServerOptions {
        flavour: testkit::orgserver::Flavour::Vaultwarden,
        ..OrgServerOptions::default()
    })
    .await;
    let l = slapd.ldif();
    let (alice, bob) = (l.person_dn("alice"), l.person_dn("bob"));
    bwdc::import_as_connector(
        &org,
        &[
            Member {
                email: "alice@example.org",
                external_id: &alice,
            },
            Member {
                email: "bob@example.org",
                external_id: &bob,
            },
        ],
        &[],
    )
    .await;
    let before = org.members();
    let dir = tempfile::tempdir().unwrap();
    let config = ldap_config(&slapd, slapd.admin_password());
    bwdc::write(
        dir.path(),
        &bwdc::data_json(&org, 0, config, ldap_sync(), true),
    );
    let inst = Installation::new();
    let imported = import(&inst, dir.path()).ok();
    assert!(
        imported.stdout.contains("cannot list its members"),
        "{}",
        imported.stdout
    );
    inst.run(&["sync"]).ok();
    let after = org.members();
    assert_eq!(
        after.len(),
        before.len(),
        "nobody was added twice: {after:?}"
    );
    assert_eq!(
        managed(&org),
        set(&["alice@example.org", "bob@example.org"])
    );
}

/// After the switch, moving from the connector's DN ids to entryUUID: `rekey` gives every
/// member and group its new externalId on the server, keeping collections and groups, and
/// nobody is invited or removed.
#[tokio::test(flavor = "multi_thread")]
async fn moving_from_dn_ids_to_entry_uuid_reshuffles_nobody() {
    let (slapd, org, dir) = ldap_company().await;
    let group_dn = slapd.ldif().group_dn("engineering");
    let collection = json!({"id": "c0ffee00-0000-4000-8000-000000000001", "readOnly": false, "hidePasswords": false, "manage": false});
    org.grant_collection("alice@example.org", &group_dn, collection.clone());
    let inst = Installation::new();
    import(&inst, dir.path()).ok();
    inst.set("ldap.external_id_attribute", "entryUUID");
    let dry = inst.run(&["rekey", "--dry-run"]).ok();
    assert!(
        dry.stdout
            .contains("Would re-key 3 member(s) and 1 group(s)"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains(&format!("group engineering: {group_dn} → ")),
        "{}",
        dry.stdout
    );
    let before = org.members().len();
    let done = inst.run(&["rekey"]).ok();
    assert!(
        done.stdout.contains("Re-keyed 3 member(s) and 1 group(s)"),
        "{}",
        done.stdout
    );

    let alice = org
        .members()
        .into_iter()
        .find(|m| m.email == "alice@example.org")
        .unwrap();
    let new_id = alice.external_id.unwrap();
    assert!(!new_id.starts_with("uid="), "still the DN: {new_id}");
    let group = org
        .groups()
        .into_iter()
        .find(|g| g.name == "engineering")
        .unwrap();
    assert_ne!(group.external_id, group_dn);
    assert_eq!(
        group.member_emails,
        set(&["alice@example.org", "bob@example.org"]),
        "the group kept its members"
    );
    let (member_collections, group_collections) =
        org.collections("alice@example.org", &group.external_id);
    assert_eq!(
        member_collections,
        vec![collection.clone()],
        "alice kept her collection"
    );
    assert_eq!(
        group_collections,
        vec![collection],
        "the group kept its collection"
    );

    // Nothing to do for the directory; dave (never in the directory) is still held.
    let test = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(test["diff"]["invite"], json!([]), "{test:#}");
    assert_eq!(test["diff"]["remove"], json!([]), "{test:#}");
    assert_eq!(test["diff"]["groupsCreated"], json!([]), "{test:#}");
    assert!(
        test["warnings"].to_string().contains("dave@example.org"),
        "{test:#}"
    );
    inst.run(&["sync"]).ok();
    assert_eq!(org.members().len(), before, "nobody was added or removed");
    let again = inst.run(&["rekey"]).ok();
    assert!(
        again.stdout.contains("Nothing to re-key"),
        "{}",
        again.stdout
    );
}
