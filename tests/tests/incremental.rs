//! Incremental LDAP sync end to end: a private slapd with the `syncprov` overlay (RFC 4533), the
//! emulated organization server, and the `orgsync` binary. What an admin would check: how the
//! sync says it read the directory, what the server received, and that the organization ends
//! exactly as a full sync would leave it.

use std::collections::{BTreeMap, BTreeSet};

use std::time::{Duration, Instant};

use orgsync_proto::api::{Event, RunTrigger};
use testkit::cli::Installation;
use testkit::daemon::{self, Daemon};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::slapd::{Slapd, SlapdOptions};

/// 20 people `p01`..`p20` with mail; groups `all` (p01-p10), `ops` (p11-p15), `leads` (p01, p11).
fn seed(slapd: &Slapd) {
    let l = slapd.ldif();
    let mut ldif = l.base();
    for i in 1..=20 {
        let uid = format!("p{i:02}");
        ldif += &l.person(
            &uid,
            &uid.to_uppercase(),
            Some(&format!("{uid}@example.org")),
        );
    }
    let dns = |range: std::ops::RangeInclusive<u32>| -> Vec<String> {
        range.map(|i| l.person_dn(&format!("p{i:02}"))).collect()
    };
    let refs = |dns: &[String]| -> Vec<String> { dns.to_vec() };
    let all = refs(&dns(1..=10));
    let ops = refs(&dns(11..=15));
    let leads = vec![l.person_dn("p01"), l.person_dn("p11")];
    for (name, members) in [("all", all), ("ops", ops), ("leads", leads)] {
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        ldif += &l.group_of_names(name, &members);
    }
    slapd.add_ldif(&ldif);
}

fn seeded_slapd(syncprov: bool) -> Slapd {
    let slapd = Slapd::start(SlapdOptions {
        tls: false,
        syncprov,
        ..SlapdOptions::default()
    });
    seed(&slapd);
    slapd
}

fn syncprov_slapd() -> Slapd {
    seeded_slapd(true)
}

fn installation(slapd: &Slapd, server: &OrgServer) -> Installation {
    let inst = Installation::new();
    inst.use_slapd(slapd);
    inst.set("ldap.disabled_filter", "(pwdAccountLockedTime=*)");
    inst.set("sync.remove_disabled", "true");
    // The scenario removes 6 of 20 members on purpose.
    inst.set("safety.max_removals", "10");
    inst.login_to(server);
    inst
}

/// The bodies of the accepted import requests after the first `skip`.
fn imports_after(server: &OrgServer, skip: usize) -> Vec<serde_json::Value> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/organization/import") && r.status == 200)
        .skip(skip)
        .map(|r| serde_json::from_str(&r.body).expect("import body is JSON"))
        .collect()
}

fn accepted_imports(server: &OrgServer) -> usize {
    imports_after(server, 0).len()
}

/// The organization as an admin sees it: directory-managed members, and each group's members.
fn organization(server: &OrgServer) -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
    let groups = server
        .groups()
        .into_iter()
        .map(|g| (g.name.clone(), g.member_emails.clone()))
        .collect();
    (server.managed_emails(), groups)
}

fn member_emails(request: &serde_json::Value, deleted: bool) -> BTreeSet<String> {
    request["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["deleted"] == deleted)
        .map(|m| m["email"].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_syncprov_an_incremental_sync_sends_exactly_the_changes_and_ends_like_a_full_sync() {
    changes_are_sent_as_changes(true).await;
}

/// Without syncprov, changes are found by `modifyTimestamp` and a DN listing.
#[tokio::test(flavor = "multi_thread")]
async fn without_syncprov_an_incremental_sync_sends_exactly_the_changes_and_ends_like_a_full_sync()
{
    changes_are_sent_as_changes(false).await;
}

async fn changes_are_sent_as_changes(syncprov: bool) {
    let slapd = seeded_slapd(syncprov);
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = installation(&slapd, &server);
    let l = slapd.ldif();

    let first = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(first["outcome"], "synced");
    assert_eq!(first["read"]["mode"], "full");
    assert!(
        first["read"]["reason"]
            .as_str()
            .unwrap()
            .contains("first sync"),
        "{first}"
    );
    assert_eq!(server.managed_emails().len(), 20);

    // Nothing changed: only the changes are read, and there are none.
    let imports = accepted_imports(&server);
    let unchanged = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(unchanged["outcome"], "unchanged", "{unchanged}");
    assert_eq!(unchanged["read"]["mode"], "incremental");
    assert_eq!(unchanged["read"]["entriesChanged"], 0);
    assert_eq!(unchanged["usersRead"], 20);
    assert_eq!(accepted_imports(&server), imports);

    // 10 user changes: 4 hires, 3 leavers, 2 locked accounts, 1 moved out of ou=people.
    // 2 membership changes: p16 joins ops, p02 leaves all.
    let mut ldif = String::new();
    for uid in ["n1", "n2", "n3", "n4"] {
        ldif += &l.person(
            uid,
            &uid.to_uppercase(),
            Some(&format!("{uid}@example.org")),
        );
    }
    ldif += &l.ou("alumni");
    slapd.add_ldif(&ldif);
    let mut changes = String::new();
    for uid in ["p17", "p18", "p19"] {
        changes += &format!("dn: {}\nchangetype: delete\n\n", l.person_dn(uid));
    }
    for uid in ["p12", "p20"] {
        changes += &format!(
            "dn: {}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n\n",
            l.person_dn(uid)
        );
    }
    changes += &format!(
        "dn: {}\nchangetype: modrdn\nnewrdn: uid=p14\ndeleteoldrdn: 1\nnewsuperior: ou=alumni,{}\n\n",
        l.person_dn("p14"),
        slapd.suffix()
    );
    changes += &format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n\n",
        l.group_dn("ops"),
        l.person_dn("p16")
    );
    changes += &format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n\n",
        l.group_dn("all"),
        l.person_dn("p02")
    );
    slapd.modify_ldif(&changes);

    let imports = accepted_imports(&server);
    let report = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(report["outcome"], "synced", "{report}");
    assert_eq!(report["read"]["mode"], "incremental", "{report}");
    let sent = imports_after(&server, imports);
    assert_eq!(sent.len(), 1, "one import request");
    let request = &sent[0];
    assert_eq!(
        member_emails(request, false),
        set(&[
            "n1@example.org",
            "n2@example.org",
            "n3@example.org",
            "n4@example.org"
        ])
    );
    assert_eq!(
        member_emails(request, true),
        set(&[
            "p12@example.org",
            "p14@example.org",
            "p17@example.org",
            "p18@example.org",
            "p19@example.org",
            "p20@example.org"
        ])
    );
    // Only the changed groups, each with its whole membership: ops lost the locked p12 and the
    // moved p14 and gained p16; all lost p02.
    let groups: BTreeMap<String, usize> = request["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["memberExternalIds"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        BTreeMap::from([("all".to_string(), 9), ("ops".to_string(), 4)])
    );
    assert_eq!(
        server.group_emails("ops"),
        set(&[
            "p11@example.org",
            "p13@example.org",
            "p15@example.org",
            "p16@example.org"
        ])
    );

    // The same directory synced in full into a fresh organization gives the same result.
    let full_server = OrgServer::start(OrgServerOptions::default()).await;
    let full = installation(&slapd, &full_server);
    full.set("ldap.incremental", "false");
    let full_report = full.run(&["sync", "--json"]).ok().json();
    assert_eq!(full_report["read"]["mode"], "full");
    assert_eq!(organization(&server), organization(&full_server));

    // And the next poll is quiet again.
    let imports = accepted_imports(&server);
    let quiet = inst.run(&["sync", "--json"]).ok().json();
    assert_eq!(quiet["outcome"], "unchanged", "{quiet}");
    assert_eq!(quiet["read"]["entriesChanged"], 0);
    assert_eq!(accepted_imports(&server), imports);
}

#[tokio::test(flavor = "multi_thread")]
async fn cleared_cache_changed_settings_and_the_periodic_full_read_read_everything() {
    let slapd = syncprov_slapd();
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = installation(&slapd, &server);
    inst.run(&["sync"]).ok();

    let read = |inst: &Installation| inst.run(&["sync", "--json"]).ok().json()["read"].clone();
    assert_eq!(read(&inst)["mode"], "incremental");

    inst.run(&["clear-cache"]).ok();
    let after_clear = read(&inst);
    assert_eq!(after_clear["mode"], "full");
    assert!(
        after_clear["reason"]
            .as_str()
            .unwrap()
            .contains("cache was cleared")
    );
    assert_eq!(read(&inst)["mode"], "incremental");

    inst.set("ldap.group_filter", "(cn=*)");
    let after_edit = read(&inst);
    assert_eq!(after_edit["mode"], "full");
    assert!(
        after_edit["reason"]
            .as_str()
            .unwrap()
            .contains("settings changed")
    );

    inst.set("sync.full_read_hours", "0");
    let text = inst.run(&["sync"]).ok().stdout;
    assert!(
        text.contains("Read the whole directory: the periodic full read is due"),
        "{text}"
    );

    // Without change tracking every read is full and says nothing about it.
    inst.set("sync.full_read_hours", "24");
    inst.set("ldap.incremental", "false");
    let off = read(&inst);
    assert_eq!(off["mode"], "full");
    assert!(off.get("reason").is_none(), "{off}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_incremental_sync_is_refused_again_until_allowed() {
    let slapd = syncprov_slapd();
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = installation(&slapd, &server);
    inst.set("safety.max_removals", "2");
    inst.run(&["sync"]).ok();
    let l = slapd.ldif();

    let mut deletes = String::new();
    for uid in ["p01", "p02", "p03", "p04", "p05"] {
        deletes += &format!("dn: {}\nchangetype: delete\n\n", l.person_dn(uid));
    }
    slapd.modify_ldif(&deletes);

    // The guard refuses, and the changes are not forgotten: the next poll refuses again.
    for _ in 0..2 {
        let refused = inst.run(&["sync", "--json"]).expect_code(1).json();
        assert_eq!(refused["outcome"], "refused", "{refused}");
        assert_eq!(refused["read"]["mode"], "incremental");
        assert_eq!(refused["refusal"]["removals"], 5);
        assert!(server.managed_emails().contains("p01@example.org"));
    }
    let allowed = inst
        .run(&["sync", "--allow-removals", "--json"])
        .ok()
        .json();
    assert_eq!(allowed["outcome"], "synced");
    assert!(!server.managed_emails().contains("p01@example.org"));
    assert_eq!(server.managed_emails().len(), 15);
}

/// The daemon follows a syncprov directory (refreshAndPersist) and syncs within seconds of a
/// change, long before the next poll.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_syncs_a_pushed_change_within_seconds() {
    let slapd = syncprov_slapd();
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = installation(&slapd, &server);
    inst.set("sync.interval_minutes", "60");
    daemon::prepare_quiet_daemon(&inst);
    inst.run(&["sync"]).ok();

    let daemon = Daemon::start(&inst);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !daemon.log().contains("following directory changes") {
        assert!(Instant::now() < deadline, "{}", daemon.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Waits on the daemon's events, not on the organization: the member arrives before the run
    // that sent it has ended.
    let (finished_tx, mut finished) = tokio::sync::mpsc::unbounded_channel();
    let client = daemon.client();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        let _ = client
            .follow_events(|event| {
                if let Some(tx) = subscribed_tx.take() {
                    let _ = tx.send(());
                }
                match event {
                    Event::RunFinished { record } | Event::RunFailed { record } => {
                        finished_tx.send(record).is_ok()
                    }
                    _ => true,
                }
            })
            .await;
    });
    // An event proves the stream is open (keep-alive comments do not count): start manual
    // runs until one is seen.
    let mut subscribed = subscribed;
    let opened = Instant::now();
    loop {
        let _ = daemon.client().start_sync(false).await;
        if tokio::time::timeout(Duration::from_secs(2), &mut subscribed)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            opened.elapsed() < Duration::from_secs(60),
            "no event reached the stream\n{}",
            daemon.log_tail(30)
        );
    }

    let l = slapd.ldif();
    slapd.add_ldif(&l.person("hire", "HIRE", Some("hire@example.org")));
    let changed = Instant::now();
    let run = loop {
        let record = tokio::time::timeout(Duration::from_secs(60), finished.recv())
            .await
            .unwrap_or_else(|_| panic!("no run ended within 60 s\n{}", daemon.log_tail(30)))
            .unwrap();
        if record.trigger == RunTrigger::DirectoryChange {
            break record;
        }
    };
    assert_eq!(run.summary.invited, 1, "{run:#?}");
    assert!(server.managed_emails().contains("hire@example.org"));
    // Pushed, not polled (the poll is an hour away); a generous bound for a loaded machine.
    assert!(
        changed.elapsed() < Duration::from_secs(30),
        "took {:?}",
        changed.elapsed()
    );
    let runs = daemon.client().history(10).await.unwrap().runs;
    assert!(runs.iter().any(|r| r.id == run.id), "{runs:#?}");
}

/// Renames, moves, deletes, re-creation at the same DN, a nested group's rename and a
/// membership change, on OpenLDAP with content sync or by modifyTimestamp, and with each way
/// the server may (or may not) keep group members pointing at renamed and deleted entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_reads_end_where_a_full_read_would_on_openldap() {
    for (syncprov, memberof, refint) in [
        (true, true, false),
        (true, false, false),
        (true, false, true),
        (false, true, false),
        (false, false, false),
        (false, false, true),
    ] {
        let case = format!("syncprov {syncprov}, memberof {memberof}, refint {refint}");
        let slapd = Slapd::start(SlapdOptions {
            tls: false,
            syncprov,
            memberof,
            refint,
            ..SlapdOptions::default()
        });
        let l = slapd.ldif();
        let mut ldif = l.base() + &l.ou("staff");
        for uid in ["alice", "bob", "carol", "dave"] {
            ldif += &l.person(
                uid,
                &uid.to_uppercase(),
                Some(&format!("{uid}@example.org")),
            );
        }
        ldif += &l.group_of_names("backend", &[&l.person_dn("bob")]);
        ldif += &l.group_of_names(
            "engineering",
            &[&l.person_dn("alice"), &l.group_dn("backend")],
        );
        ldif += &l.group_of_names("sales", &[&l.person_dn("carol")]);
        slapd.add_ldif(&ldif);
        let server = OrgServer::start(OrgServerOptions::default()).await;
        let inst = Installation::new();
        inst.use_slapd(&slapd);
        inst.login_to(&server);
        inst.run(&["sync"]).ok();

        // The refint overlay rewrites groups in a thread of its own after the change is done:
        // wait until no group names the old DN, as an admin would see it.
        let settled = |old_dn: &str| {
            if !refint {
                return;
            }
            let filter = format!("(member={})", testkit::ldif::escape_filter_value(old_dn));
            let deadline = Instant::now() + Duration::from_secs(30);
            while testkit::ldif::dns(&slapd.search(slapd.suffix(), &filter, &["1.1"]))
                .iter()
                .any(|dn| dn.contains("ou=groups"))
            {
                assert!(
                    Instant::now() < deadline,
                    "{case}: refint never rewrote {old_dn}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let modrdn = |dn: String, rdn: &str, superior: Option<String>| {
            let mut text =
                format!("dn: {dn}\nchangetype: modrdn\nnewrdn: {rdn}\ndeleteoldrdn: 1\n");
            if let Some(superior) = superior {
                text += &format!("newsuperior: {superior}\n");
            }
            slapd.modify_ldif(&(text + "\n"));
            settled(&dn);
        };
        modrdn(l.person_dn("alice"), "uid=alice.liddell", None);
        inst.assert_incremental_sync_matches_a_full_read(&format!("{case}: a user rename"));
        modrdn(
            l.person_dn("bob"),
            "uid=bob",
            Some(format!("ou=staff,{}", slapd.suffix())),
        );
        inst.assert_incremental_sync_matches_a_full_read(&format!("{case}: a user move"));
        modrdn(l.group_dn("backend"), "cn=backend team", None);
        inst.assert_incremental_sync_matches_a_full_read(&format!("{case}: a nested group rename"));
        slapd.modify_ldif(&format!(
            "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n-\n\n",
            l.group_dn("sales"),
            l.person_dn("dave")
        ));
        inst.assert_incremental_sync_matches_a_full_read(&format!("{case}: a membership change"));
        slapd.modify_ldif(&format!(
            "dn: {}\nchangetype: delete\n\n",
            l.person_dn("carol")
        ));
        settled(&l.person_dn("carol"));
        slapd.add_ldif(&l.person("carol", "CAROL NEW", Some("carol.new@example.org")));
        inst.assert_incremental_sync_matches_a_full_read(&format!(
            "{case}: a delete and re-create at the same DN"
        ));
        slapd.modify_ldif(&format!(
            "dn: {}\nchangetype: delete\n\n",
            l.person_dn("dave")
        ));
        settled(&l.person_dn("dave"));
        inst.assert_incremental_sync_matches_a_full_read(&format!("{case}: a delete"));

        // Where the server keeps member values in step (memberof-refint, refint), the groups
        // follow every change; without, a renamed member's old DN is nobody, for a full read too.
        let keeps_links = memberof || refint;
        let engineering = server.group_emails("engineering");
        assert_eq!(
            engineering.contains("alice@example.org"),
            keeps_links,
            "{case}: {engineering:?}"
        );
        let sales = server.group_emails("sales");
        assert_eq!(
            sales.contains("carol.new@example.org"),
            !keeps_links,
            "{case}: a stale DN names whoever has it now: {sales:?}"
        );
    }
}
