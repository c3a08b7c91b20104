//! End to end through the `orgsync` binary: a private slapd, the emulated organization server,
//! and the commands an admin types. Assertions are on what the admin would check: the CLI's
//! output and exit code, and the organization's resulting members and groups.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use testkit::cli::{Installation, emails};
use testkit::orgserver::{Flavour, MemberStatus, OrgServer, OrgServerOptions};
use testkit::slapd::{Slapd, SlapdOptions};

/// People and groups most tests start from:
/// - alice, bob, carol, dave with mail; erin without mail (uid erin);
/// - engineering = {alice, backend}; backend = {bob, platform}; platform = {carol, backend}
///   (a cycle); sales = {dave}.
fn seed(slapd: &Slapd) {
    let l = slapd.ldif();
    let mut ldif = l.base();
    for (uid, name) in [
        ("alice", "Alice A"),
        ("bob", "Bob B"),
        ("carol", "Carol C"),
        ("dave", "Dave D"),
    ] {
        ldif += &l.person(uid, name, Some(&format!("{uid}@example.org")));
    }
    ldif += &l.person("erin", "Erin E", None);
    ldif += &l.group_of_names(
        "engineering",
        &[&l.person_dn("alice"), &l.group_dn("backend")],
    );
    ldif += &l.group_of_names("backend", &[&l.person_dn("bob"), &l.group_dn("platform")]);
    ldif += &l.group_of_names("platform", &[&l.person_dn("carol"), &l.group_dn("backend")]);
    ldif += &l.group_of_names("sales", &[&l.person_dn("dave")]);
    slapd.add_ldif(&ldif);
}

async fn org(flavour: Flavour) -> OrgServer {
    OrgServer::start(OrgServerOptions {
        flavour,
        ..OrgServerOptions::default()
    })
    .await
}

/// An installation pointed at `slapd` and logged in to `server`.
fn installation(slapd: &Slapd, server: &OrgServer) -> Installation {
    let inst = Installation::new();
    inst.use_slapd(slapd);
    inst.login_to(server);
    inst
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_then_sync_then_unchanged_then_changes_then_clear_cache() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);

    // Dry run: the directory and the diff, nothing sent.
    let report = inst.run(&["test", "--json"]).ok().json();
    let enabled = emails(&report["users"]["enabled"]);
    assert_eq!(
        enabled,
        [
            "alice@example.org",
            "bob@example.org",
            "carol@example.org",
            "dave@example.org"
        ]
    );
    assert_eq!(report["skipped"][0]["reason"], "noEmail");
    assert!(
        report["skipped"][0]["reference"]
            .as_str()
            .unwrap()
            .starts_with("uid=erin,")
    );
    assert_eq!(report["diff"]["invite"].as_array().unwrap().len(), 4);
    let engineering = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "engineering")
        .unwrap();
    assert_eq!(
        engineering["memberExternalIds"].as_array().unwrap().len(),
        3
    );
    assert_eq!(server.import_count(), 0, "test must not import");

    // First sync: everyone invited, nested groups flattened (cycle included).
    let out = inst.run(&["sync"]).ok();
    assert!(out.stdout.contains("Synced"), "{}", out.stdout);
    assert_eq!(
        server.managed_emails(),
        set(&[
            "alice@example.org",
            "bob@example.org",
            "carol@example.org",
            "dave@example.org"
        ])
    );
    assert_eq!(
        server.group_emails("engineering"),
        set(&["alice@example.org", "bob@example.org", "carol@example.org"])
    );
    assert_eq!(
        server.group_emails("platform"),
        set(&["bob@example.org", "carol@example.org"])
    );
    assert_eq!(server.group_emails("sales"), set(&["dave@example.org"]));
    assert_eq!(server.import_count(), 1);
    assert!(inst.last_sync("users").is_some());

    // Unchanged directory: nothing posted.
    let out = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(out["outcome"], "unchanged");
    assert_eq!(server.import_count(), 1);

    // Change the directory: frank joins sales, dave leaves it, carol is deleted.
    let l = slapd.ldif();
    slapd.add_ldif(&l.person("frank", "Frank F", Some("Frank@Example.org")));
    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n-\ndelete: member\nmember: {}\n\ndn: {}\nchangetype: delete\n\n",
        l.group_dn("sales"),
        l.person_dn("frank"),
        l.person_dn("dave"),
        l.person_dn("carol"),
    ));
    let report = inst.run(&["test", "--json"]).ok().json();
    let diff = &report["diff"];
    assert_eq!(diff["invite"][0]["email"], "frank@example.org");
    assert_eq!(diff["remove"][0]["email"], "carol@example.org");
    assert_eq!(diff["remove"][0]["reason"], "missing");
    let sales = diff["groupsUpdated"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "sales")
        .expect("sales changed");
    assert_eq!(strings(&sales["added"]), ["frank@example.org"]);
    assert_eq!(strings(&sales["removed"]), ["dave@example.org"]);
    let human = inst.run(&["test"]).ok().stdout;
    assert!(human.contains("invite 1: frank@example.org"), "{human}");
    assert!(
        human.contains("carol@example.org (no longer in the directory)"),
        "{human}"
    );

    inst.run(&["sync"]).ok();
    assert_eq!(
        server.managed_emails(),
        set(&[
            "alice@example.org",
            "bob@example.org",
            "dave@example.org",
            "frank@example.org"
        ])
    );
    assert_eq!(server.group_emails("sales"), set(&["frank@example.org"]));
    assert_eq!(
        server.group_emails("engineering"),
        set(&["alice@example.org", "bob@example.org"])
    );
    assert_eq!(server.import_count(), 2);

    // The removal is done: the next sync is unchanged again.
    assert_eq!(
        inst.run(&["sync", "--json"]).ok().json()["outcome"],
        "unchanged"
    );
    assert_eq!(server.import_count(), 2);

    // Clear the cache: the next sync sends everything again, and removes nobody.
    inst.run(&["clear-cache"]).ok();
    assert!(inst.last_sync("users").is_none());
    let out = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(out["outcome"], "synced");
    assert!(out["diff"]["remove"].as_array().unwrap().is_empty());
    assert_eq!(server.import_count(), 3);
    assert_eq!(server.managed_emails().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_guard_refuses_until_allowed_and_empty_reads_always() {
    let slapd = Slapd::start(SlapdOptions::default());
    let l = slapd.ldif();
    let mut ldif = l.base();
    for i in 0..20 {
        ldif += &l.person(
            &format!("u{i:02}"),
            &format!("User {i}"),
            Some(&format!("u{i:02}@example.org")),
        );
    }
    slapd.add_ldif(&ldif);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);
    inst.set("sync.groups", "false");
    inst.run(&["sync"]).ok();
    assert_eq!(server.managed_emails().len(), 20);

    // Delete 6 of 20 (30%): over both limits (5 and 10%).
    let mut deletes = String::new();
    for i in 0..6 {
        deletes += &format!(
            "dn: {}\nchangetype: delete\n\n",
            l.person_dn(&format!("u{i:02}"))
        );
    }
    slapd.modify_ldif(&deletes);
    let test = inst.run(&["test", "--json"]).expect_code(1).json();
    assert_eq!(test["refusal"]["removals"], 6);
    let refused = inst.run(&["sync"]).expect_code(1);
    assert!(
        refused.stdout.contains("would remove 6 of 20"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stdout.contains("u00@example.org"),
        "{}",
        refused.stdout
    );
    assert!(refused.stderr.contains("refused"), "{}", refused.stderr);
    assert_eq!(
        server.managed_emails().len(),
        20,
        "a refused sync changes nothing"
    );
    let status = inst.run(&["status", "--json"]).ok().json();
    assert!(
        status["lastRefusal"]
            .as_str()
            .unwrap()
            .contains("would remove 6")
    );

    inst.run(&["sync", "--allow-removals"]).ok();
    assert_eq!(server.managed_emails().len(), 14);
    assert!(
        inst.run(&["status", "--json"])
            .ok()
            .json()
            .get("lastRefusal")
            .is_none()
    );

    // A filter that matches nobody looks like an empty directory: always refused.
    inst.set("ldap.user_filter", "(uid=nobody-has-this)");
    let refused = inst.run(&["sync", "--allow-removals"]).expect_code(1);
    assert!(
        refused.stdout.contains("returned no users"),
        "{}",
        refused.stdout
    );
    assert_eq!(server.managed_emails().len(), 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posix_groups_unique_members_and_synthesised_emails() {
    let slapd = Slapd::start(SlapdOptions::default());
    let l = slapd.ldif();
    let mut ldif = l.base();
    ldif += &l.person("ann", "Ann A", None);
    ldif += &l.person("ben", "Ben B", None);
    ldif += &l.person("cy", "Cy C", Some("cy@corp.example"));
    ldif += &l.posix_group("devs", 5000, &["ann", "BEN", "ghost"]);
    ldif += &l.group_of_unique_names("leads", &[&l.person_dn("cy")]);
    slapd.add_ldif(&ldif);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);
    inst.set("ldap.use_email_prefix_suffix", "true");
    inst.set("ldap.email_suffix", "@corp.example");

    // posixGroup with memberUid.
    inst.set("ldap.group_object_class", "posixGroup");
    inst.set("ldap.member_attribute", "memberUid");
    let report = inst.run(&["test", "--json"]).ok().json();
    assert!(report["skipped"].as_array().unwrap().is_empty());
    let devs = &report["groups"][0];
    assert_eq!(devs["name"], "devs");
    assert_eq!(devs["memberExternalIds"].as_array().unwrap().len(), 2);
    assert!(report["warnings"][0].as_str().unwrap().contains("ghost"));
    inst.run(&["sync"]).ok();
    assert_eq!(
        server.managed_emails(),
        set(&["ann@corp.example", "ben@corp.example", "cy@corp.example"])
    );
    assert_eq!(
        server.group_emails("devs"),
        set(&["ann@corp.example", "ben@corp.example"])
    );

    // groupOfUniqueNames with uniqueMember.
    inst.set("ldap.group_object_class", "groupOfUniqueNames");
    inst.set("ldap.member_attribute", "uniqueMember");
    inst.run(&["sync"]).ok();
    assert_eq!(server.group_emails("leads"), set(&["cy@corp.example"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_accounts_are_disabled_by_the_configured_filter_and_removed() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);
    inst.set("ldap.disabled_filter", "(pwdAccountLockedTime=*)");
    inst.run(&["sync"]).ok();
    assert!(server.managed_emails().contains("bob@example.org"));

    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n\n",
        slapd.ldif().person_dn("bob")
    ));
    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["users"]["disabled"][0]["email"], "bob@example.org");
    assert!(
        report["diff"]["remove"].as_array().unwrap().is_empty(),
        "remove_disabled is off"
    );

    inst.set("sync.remove_disabled", "true");
    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["diff"]["remove"][0]["reason"], "disabled");
    inst.run(&["sync"]).ok();
    assert!(!server.managed_emails().contains("bob@example.org"));
    assert!(!server.group_emails("backend").contains("bob@example.org"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_path_and_filter_scope_the_sync() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let l = slapd.ldif();
    slapd.add_ldif(&(l.ou("contractors")
        + &format!(
            "dn: uid=zed,ou=contractors,{}\nobjectClass: inetOrgPerson\nuid: zed\ncn: Zed\nsn: Zed\nmail: zed@example.org\n\n",
            slapd.suffix()
        )));
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);

    let report = inst.run(&["test", "--json"]).ok().json();
    let all = report["users"]["enabled"].as_array().unwrap().len();
    assert_eq!(all, 4, "zed lives outside ou=people");

    inst.run(&["config", "unset", "ldap.user_path"]).ok();
    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["users"]["enabled"].as_array().unwrap().len(), 5);

    inst.set("ldap.user_filter", "(|(uid=alice)(uid=zed))");
    let report = inst.run(&["test", "--json"]).ok().json();
    let enabled = emails(&report["users"]["enabled"]);
    assert_eq!(enabled, ["alice@example.org", "zed@example.org"]);
    // Group members outside the filter are left out and reported.
    assert!(
        report["warnings"][0]
            .as_str()
            .unwrap()
            .contains("match no synced user")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_and_starttls_verify_the_server_with_the_configured_ca() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);
    let ca = slapd.ca_pem().display().to_string();

    // LDAPS without our CA: refused, and the message says what to set.
    inst.set("ldap.encryption", "ldaps");
    inst.set("ldap.port", &slapd.ldaps_port().to_string());
    let out = inst.run(&["test"]).expect_code(1);
    assert!(out.stderr.contains("ldap.ca_file"), "{}", out.stderr);

    // skip_verify connects anyway, and says loudly what that costs.
    inst.set("ldap.skip_verify", "true");
    let out = inst.run(&["test", "--json"]).ok();
    assert!(out.stderr.contains("NOT verified"), "{}", out.stderr);
    inst.run(&["config", "unset", "ldap.skip_verify"]).ok();

    inst.set("ldap.ca_file", &ca);
    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["users"]["enabled"].as_array().unwrap().len(), 4);

    // StartTLS on the plain port.
    inst.set("ldap.encryption", "starttls");
    inst.set("ldap.port", &slapd.port().to_string());
    inst.run(&["sync"]).ok();
    assert_eq!(server.managed_emails().len(), 4);

    // A CA file that does not exist is refused, naming the key; the config stays as it was.
    let out = inst
        .run(&["config", "set", "ldap.ca_file", "/nonexistent/ca.pem"])
        .expect_code(2);
    assert!(out.stderr.contains("ldap.ca_file"), "{}", out.stderr);
    inst.run(&["test"]).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bind_password_and_unreachable_server_fail_clearly() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);

    inst.set_secret("ldap.bind_password", "not-the-password");
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(out.stderr.contains("invalid credentials"), "{}", out.stderr);
    assert!(out.stderr.contains(&slapd.admin_dn()), "{}", out.stderr);
    assert!(
        !out.stderr.contains("not-the-password"),
        "secret leaked: {}",
        out.stderr
    );
    assert_eq!(server.import_count(), 0);

    // A server that accepts the connection but never answers: fails within the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    inst.set(
        "ldap.port",
        &silent.local_addr().unwrap().port().to_string(),
    );
    inst.set("ldap.timeout_seconds", "2");
    let started = Instant::now();
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        out.stderr.contains("did not answer within 2 s"),
        "{}",
        out.stderr
    );

    // Nothing listening at all.
    drop(silent);
    let out = inst.run(&["test"]).expect_code(1);
    assert!(
        out.stderr.contains("cannot connect to ldap://127.0.0.1:"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_errors_expired_tokens_and_rate_limits() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = Installation::new();
    inst.use_slapd(&slapd);
    inst.set("server.url", &server.base_url());

    let out = inst.run(&["sync"]).expect_code(1);
    assert!(out.stderr.contains("not logged in"), "{}", out.stderr);
    let out = inst
        .run(&["login", &server.client_id(), "wrong-secret"])
        .expect_code(1);
    assert!(out.stderr.contains("refused the API key"), "{}", out.stderr);
    let out = inst.run(&["login", "user.123", "x"]).expect_code(2);
    assert!(out.stderr.contains("organization.<uuid>"), "{}", out.stderr);
    inst.run(&["login", &server.client_id(), &server.client_secret()])
        .ok();

    // The server forgets all tokens: orgsync logs in again with the stored key, once.
    server.expire_tokens();
    inst.run(&["sync"]).ok();
    assert_eq!(server.managed_emails().len(), 4);

    // 429 with Retry-After, twice: the sync waits and succeeds.
    inst.run(&["clear-cache"]).ok();
    server.fail_next("/organization/import", 429, Some(1), 2);
    let started = Instant::now();
    inst.run(&["sync"]).ok();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was not honoured"
    );
    assert_eq!(server.import_count(), 2);

    // A persistent 500: the sync fails, and the state does not advance (the next one retries).
    inst.run(&["clear-cache"]).ok();
    server.fail_next("/organization/import", 500, Some(0), 5);
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(out.stderr.contains("HTTP 500"), "{}", out.stderr);
    assert_eq!(
        inst.run(&["sync", "--json"]).ok().json()["outcome"],
        "synced"
    );

    // Logout forgets the key.
    inst.run(&["logout"]).ok();
    inst.run(&["sync"]).expect_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vaultwarden_revokes_removed_members() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let server = org(Flavour::Vaultwarden).await;
    let inst = installation(&slapd, &server);
    inst.run(&["sync"]).ok();
    assert_eq!(server.managed_emails().len(), 4);
    // The login carried the device fields Vaultwarden insists on.
    let login = server
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/connect/token"))
        .unwrap();
    for field in [
        "deviceIdentifier=",
        "deviceName=linux",
        "deviceType=8",
        "scope=api.organization",
    ] {
        assert!(
            login.body.contains(field),
            "{field} missing from {}",
            login.body
        );
    }

    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: delete\n\n",
        slapd.ldif().person_dn("dave")
    ));
    inst.run(&["sync"]).ok();
    let dave = server
        .members()
        .into_iter()
        .find(|m| m.email == "dave@example.org")
        .unwrap();
    assert_eq!(dave.status, MemberStatus::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_name_the_key_and_secrets_stay_out_of_files_and_output() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);

    let out = inst
        .run(&["config", "set", "ldap.port", "lots"])
        .expect_code(2);
    assert!(
        out.stderr.contains("ldap.port") && out.stderr.contains("lots"),
        "{}",
        out.stderr
    );
    let out = inst
        .run(&["config", "set", "ldap.hostname", "x"])
        .expect_code(2);
    assert!(out.stderr.contains("hostname"), "{}", out.stderr);
    let out = inst
        .run(&["config", "set", "ldap.bind_password", "x"])
        .expect_code(2);
    assert!(out.stderr.contains("set-secret"), "{}", out.stderr);
    let out = inst
        .run(&["config", "set", "ldap.user_filter", "uid=alice"])
        .expect_code(2);
    assert!(out.stderr.contains("parenthesised"), "{}", out.stderr);

    // A hand-edited unknown key is an error for every command that reads the config.
    let text = std::fs::read_to_string(inst.config_file()).unwrap();
    std::fs::write(inst.config_file(), format!("{text}\n[extra]\nkey = 1\n")).unwrap();
    let out = inst.run(&["test"]).expect_code(2);
    assert!(
        out.stderr.contains("unknown field `extra`"),
        "{}",
        out.stderr
    );
    std::fs::write(inst.config_file(), &text).unwrap();

    // Secrets: never in the config file, `config show`, status or verbose logs.
    let secret = server.client_secret();
    let password = slapd.admin_password().to_string();
    let shown = inst.run(&["config", "show"]).ok().stdout;
    assert!(shown.contains("ldap.bind_password: set"), "{shown}");
    let verbose = inst.run(&["-vv", "sync"]).ok();
    let status = inst.run(&["status", "--json"]).ok().stdout;
    for text in [&text, &shown, &verbose.stdout, &verbose.stderr, &status] {
        assert!(!text.contains(&secret), "client secret leaked: {text}");
        assert!(!text.contains(&password), "bind password leaked: {text}");
    }
    // The secrets file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(inst.data_dir().join("secrets.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// `n` people `p00000`… with mail, and the base entries.
fn many_people(slapd: &Slapd, n: usize) {
    let l = slapd.ldif();
    let mut ldif = l.base();
    for i in 0..n {
        ldif += &l.person(
            &format!("p{i:05}"),
            &format!("Person {i}"),
            Some(&format!("p{i:05}@example.org")),
        );
    }
    slapd.add_ldif(&ldif);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_imports_are_batched_for_the_cloud_limit() {
    let slapd = Slapd::start(SlapdOptions::default());
    many_people(&slapd, 2100);
    let server = org(Flavour::BitwardenCloud).await;
    let inst = installation(&slapd, &server);
    inst.set("sync.groups", "false");

    // Without large_import the cloud refuses, and its message reaches the admin verbatim.
    let out = inst.run(&["sync"]).expect_code(1);
    assert!(
        out.stderr
            .contains("You cannot import this much data at once."),
        "{}",
        out.stderr
    );
    assert_eq!(server.import_count(), 0);

    inst.set("sync.large_import", "true");
    let report = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(report["requestsSent"], 2);
    assert_eq!(server.managed_emails().len(), 2100);
    let bodies: Vec<serde_json::Value> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/organization/import") && r.status == 200)
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(bodies[0]["members"].as_array().unwrap().len(), 2000);
    assert_eq!(bodies[1]["members"].as_array().unwrap().len(), 100);
    assert!(bodies.iter().all(|b| b["largeImport"] == true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_search_reads_past_the_servers_size_limit() {
    let slapd = Slapd::start(SlapdOptions::default());
    many_people(&slapd, 600);
    slapd.add_ldif(&slapd.ldif().service_account("reader", "reader-secret"));
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);
    inst.set("ldap.bind_dn", &format!("cn=reader,{}", slapd.suffix()));
    inst.set_secret("ldap.bind_password", "reader-secret");
    inst.set("ldap.page_size", "100");

    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(report["users"]["enabled"].as_array().unwrap().len(), 600);

    // Without paging, the server stops at 500 entries: that is an error, never a short read.
    inst.set("ldap.paged_search", "false");
    let out = inst.run(&["test"]).expect_code(1);
    assert!(out.stderr.contains("size limit"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_existing_removes_unlisted_directory_members_only() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    server.add_member(
        "stranger@example.org",
        Some("from-an-old-sync"),
        testkit::orgserver::MemberType::User,
        MemberStatus::Confirmed,
    );
    server.add_member(
        "manual@example.org",
        None,
        testkit::orgserver::MemberType::User,
        MemberStatus::Confirmed,
    );
    let inst = installation(&slapd, &server);
    inst.set("sync.overwrite_existing", "true");
    let report = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(report["outcome"], "synced");
    let all: BTreeSet<String> = server.members().into_iter().map(|m| m.email).collect();
    assert!(
        !all.contains("stranger@example.org"),
        "overwrite removes unlisted external members"
    );
    assert!(
        all.contains("manual@example.org"),
        "members without externalId stay"
    );
    assert_eq!(server.managed_emails().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_configured_client_certificate() {
    let slapd = Slapd::start(SlapdOptions {
        require_client_cert: true,
        ..SlapdOptions::default()
    });
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = installation(&slapd, &server);
    inst.set("ldap.encryption", "ldaps");
    inst.set("ldap.port", &slapd.ldaps_port().to_string());
    inst.set("ldap.ca_file", &slapd.ca_pem().display().to_string());

    // The server demands a client certificate: without one the handshake fails.
    let out = inst.run(&["test"]).expect_code(1);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);

    let client = slapd.client_cert().expect("a client certificate");
    inst.set("ldap.client_cert_file", &client.cert.display().to_string());
    inst.set("ldap.client_key_file", &client.key.display().to_string());
    let report = inst.run(&["test", "--json"]).ok().json();
    assert_eq!(emails(&report["users"]["enabled"]).len(), 4);

    // The same over StartTLS.
    inst.set("ldap.encryption", "starttls");
    inst.set("ldap.port", &slapd.port().to_string());
    inst.run(&["sync"]).ok();
    assert_eq!(server.managed_emails().len(), 4);
}

/// A config file as the previous release wrote it (`directory = "ldap"`, the LDAP paths and
/// filters under `[sync]`) syncs as before, says on every run where each key went, and the
/// next `config set` rewrites it in the current layout without changing what it means.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_of_the_previous_release_still_syncs() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let server = org(Flavour::BitwardenSelfHosted).await;
    let inst = Installation::new();
    inst.login_to(&server);
    let current = std::fs::read_to_string(inst.config_file()).unwrap();
    let old = format!(
        "directory = \"ldap\"\n{current}\n[ldap]\nhost = \"127.0.0.1\"\nport = {}\nbind_dn = \"{}\"\nroot_path = \"{}\"\n\n[sync]\ninterval_minutes = 7\n# where people are\nuser_path = \"ou=people\"\ngroup_path = \"ou=groups\"\nuser_filter = \"(|(uid=alice)(uid=bob))\"\n",
        slapd.port(),
        slapd.admin_dn(),
        slapd.suffix()
    );
    std::fs::write(inst.config_file(), &old).unwrap();
    inst.set_secret("ldap.bind_password", slapd.admin_password());

    let sync = inst.run(&["sync"]).ok();
    for (from, to) in [
        ("sync.user_path", "ldap.user_path"),
        ("sync.group_path", "ldap.group_path"),
        ("sync.user_filter", "ldap.user_filter"),
        ("directory", "directory.type"),
    ] {
        assert!(
            sync.stdout
                .contains(&format!("warning: {from} is now {to}")),
            "{from}: {}",
            sync.stdout
        );
    }
    assert_eq!(
        server.managed_emails(),
        set(&["alice@example.org", "bob@example.org"])
    );
    let groups: BTreeSet<String> = server.groups().into_iter().map(|g| g.name).collect();
    assert_eq!(
        groups,
        set(&["backend", "engineering", "platform", "sales"])
    );

    // Any `config set` moves the keys; the meaning and the comments stay.
    inst.set("sync.interval_minutes", "8");
    let text = std::fs::read_to_string(inst.config_file()).unwrap();
    assert_eq!(
        table_of(&text, "type").as_deref(),
        Some("directory"),
        "{text}"
    );
    assert_eq!(
        table_of(&text, "user_path").as_deref(),
        Some("ldap"),
        "{text}"
    );
    assert_eq!(
        table_of(&text, "interval_minutes").as_deref(),
        Some("sync"),
        "{text}"
    );
    assert!(text.contains("# where people are"), "{text}");
    let test = inst.run(&["test", "--json"]).ok();
    assert!(!test.stdout.contains(" is now "), "{}", test.stdout);
    let report = test.json();
    for part in ["invite", "remove", "groupsCreated", "groupsUpdated"] {
        let changes = report["diff"][part].as_array().map(Vec::len);
        assert_eq!(changes, Some(0), "{part}: {report}");
    }
}

/// The table a key of a TOML text is set in (`None` for the top level or when it is unset).
fn table_of(text: &str, key: &str) -> Option<String> {
    let mut table = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            table = Some(line.trim_matches(['[', ']']).to_string());
        } else if line.split('=').next().map(str::trim) == Some(key) {
            return table;
        }
    }
    None
}
