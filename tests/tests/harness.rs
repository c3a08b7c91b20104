//! Proves the test servers behave as the end-to-end tests assume: if one of these fails, the
//! other suites' failures say nothing about orgsync.
//!
//! The Samba tests need root (Samba's LDAP ports are below 1024) and the packages from
//! `scripts/setup.sh`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use testkit::ldif::{self, LdapCli, Ldif};
use testkit::ports::{self, LOOPBACK};
use testkit::samba::{SHOW_DELETED_CONTROL, SambaDc, SambaOptions};
use testkit::slapd::{Slapd, SlapdOptions};
use testkit::tls::TestCa;

const READER_PASSWORD: &str = "reader-secret";

/// Base entries, three people and one group of each kind.
fn seed(slapd: &Slapd) -> Ldif {
    let l = slapd.ldif();
    let mut text = l.base();
    text += &l.person("alice", "Alice Liddell", Some("alice@example.org"));
    text += &l.person("bob", "Bob", None);
    text += &l.person("carol", "Carol Jürgens", Some("carol@example.org"));
    text += &l.group_of_names("staff", &[&l.person_dn("alice"), &l.person_dn("bob")]);
    text += &l.group_of_names("empty", &[]);
    text += &l.group_of_unique_names("admins", &[&l.person_dn("carol")]);
    text += &l.posix_group("unix", 5000, &["alice", "carol"]);
    text += &l.service_account("reader", READER_PASSWORD);
    slapd.add_ldif(&text);
    l
}

fn listening(port: u16) -> bool {
    ports::is_listening(SocketAddr::new(LOOPBACK, port))
}

#[test]
fn slapd_loads_ldif_and_maintains_member_of() {
    let t = Instant::now();
    let slapd = Slapd::start(SlapdOptions::default());
    eprintln!("slapd (TLS) started in {:?}", t.elapsed());
    let l = seed(&slapd);

    let alice = slapd.search(
        &l.person_dn("alice"),
        "(objectClass=*)",
        &["mail", "memberOf", "entryUUID", "sn"],
    );
    assert_eq!(
        ldif::attribute_strings(&alice, "mail"),
        ["alice@example.org"]
    );
    assert_eq!(ldif::attribute_strings(&alice, "sn"), ["Liddell"]);
    assert_eq!(
        ldif::attribute_strings(&alice, "memberOf"),
        [l.group_dn("staff")],
        "memberof overlay: {alice}"
    );
    assert_eq!(ldif::attribute_strings(&alice, "entryUUID")[0].len(), 36);

    let bob = slapd.search(&l.person_dn("bob"), "(objectClass=*)", &["mail"]);
    assert!(ldif::attribute_strings(&bob, "mail").is_empty(), "{bob}");

    let carol = slapd.search(&l.person_dn("carol"), "(objectClass=*)", &["cn"]);
    assert_eq!(
        ldif::attribute_strings(&carol, "cn"),
        ["Carol Jürgens"],
        "non-ASCII survives base64"
    );

    let groups = slapd.search(
        &format!("ou=groups,{}", slapd.suffix()),
        "(objectClass=*)",
        &["member", "uniqueMember", "memberUid"],
    );
    assert_eq!(
        ldif::dns(&groups).len(),
        5,
        "ou=groups and four groups:\n{groups}"
    );
    let unix = slapd.search(
        &l.group_dn("unix"),
        "(objectClass=posixGroup)",
        &["memberUid", "gidNumber"],
    );
    assert_eq!(
        ldif::attribute_strings(&unix, "memberUid"),
        ["alice", "carol"]
    );
    let admins = slapd.search(
        &l.group_dn("admins"),
        "(objectClass=groupOfUniqueNames)",
        &["uniqueMember"],
    );
    assert_eq!(
        ldif::attribute_strings(&admins, "uniqueMember"),
        [l.person_dn("carol")]
    );

    // modify_ldif: removing bob from staff updates his memberOf.
    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n-\n",
        l.group_dn("staff"),
        l.person_dn("bob")
    ));
    let bob = slapd.search(&l.person_dn("bob"), "(objectClass=*)", &["memberOf"]);
    assert!(
        ldif::attribute_strings(&bob, "memberOf").is_empty(),
        "{bob}"
    );
}

#[test]
fn slapd_add_ldif_panics_with_the_server_message() {
    let slapd = Slapd::start(SlapdOptions {
        tls: false,
        ..Default::default()
    });
    let l = slapd.ldif();
    // No base entries: the parent does not exist.
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        slapd.add_ldif(&l.person("alice", "Alice", None));
    }))
    .expect_err("adding below a missing parent must fail");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("No such object (32)"), "{msg}");
}

#[test]
fn slapd_limits_unpaged_searches_to_500_and_pages_through_all() {
    const N: usize = 1200;
    let slapd = Slapd::start(SlapdOptions {
        tls: false,
        ..Default::default()
    });
    seed(&slapd);
    let l = slapd.ldif();
    let mut text = String::new();
    for i in 0..N {
        text += &l.person(
            &format!("user{i:05}"),
            &format!("User {i}"),
            Some(&format!("user{i:05}@example.org")),
        );
    }
    let t = Instant::now();
    slapd.add_ldif(&text);
    eprintln!("slapd: added {N} entries in {:?}", t.elapsed());

    let people = format!("ou=people,{}", slapd.suffix());
    let filter = "(uid=user*)";
    let reader =
        LdapCli::new(&slapd.url()).bind(&format!("cn=reader,{}", slapd.suffix()), READER_PASSWORD);
    let unpaged = reader.try_search(&[], &people, filter, &["uid"]);
    assert_eq!(
        unpaged.code, 4,
        "size limit exceeded expected: {}",
        unpaged.stderr
    );
    assert_eq!(unpaged.entries(), 500);

    let paged = reader.try_search(&["-E", "pr=100/noprompt"], &people, filter, &["uid"]);
    assert!(paged.success(), "{}", paged.stderr);
    assert_eq!(paged.entries(), N);
    assert_eq!(
        paged.stdout.matches("# pagedresults:").count(),
        N / 100,
        "one cookie per page"
    );

    // The rootdn has no limits.
    assert_eq!(ldif::dns(&slapd.search(&people, filter, &["1.1"])).len(), N);
}

#[test]
fn slapd_ldaps_works_with_the_ca_only() {
    let slapd = Slapd::start(SlapdOptions::default());
    let (dn, pw) = (slapd.admin_dn(), slapd.admin_password().to_string());
    let root_dse =
        |cli: &LdapCli| cli.try_search(&["-s", "base"], "", "(objectClass=*)", &["namingContexts"]);

    let trusted = root_dse(
        &LdapCli::new(&slapd.ldaps_url())
            .bind(&dn, &pw)
            .ca(&slapd.ca_pem()),
    );
    assert!(trusted.success(), "LDAPS with the CA: {}", trusted.stderr);
    assert!(
        trusted.stdout.contains(slapd.suffix()),
        "{}",
        trusted.stdout
    );

    let untrusted = root_dse(&LdapCli::new(&slapd.ldaps_url()).bind(&dn, &pw));
    assert!(
        !untrusted.success(),
        "LDAPS without the CA must fail:\n{}",
        untrusted.stdout
    );

    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::create(other_dir.path());
    let wrong = root_dse(&LdapCli::new(&slapd.ldaps_url()).ca(&other_ca.ca_pem()));
    assert!(!wrong.success(), "LDAPS trusting another CA must fail");
}

#[test]
fn slapd_starttls_works_on_the_plain_port() {
    let slapd = Slapd::start(SlapdOptions::default());
    seed(&slapd);
    let out = slapd
        .client()
        .starttls()
        .try_search(&[], slapd.suffix(), "(uid=alice)", &["mail"]);
    assert!(out.success(), "StartTLS with the CA: {}", out.stderr);
    assert_eq!(out.entries(), 1);

    let untrusted = LdapCli::new(&slapd.url()).starttls().try_search(
        &["-s", "base"],
        "",
        "(objectClass=*)",
        &[],
    );
    assert!(!untrusted.success(), "StartTLS without the CA must fail");

    let plain_only = Slapd::start(SlapdOptions {
        tls: false,
        ..Default::default()
    });
    let refused = LdapCli::new(&plain_only.url()).starttls().try_search(
        &["-s", "base"],
        "",
        "(objectClass=*)",
        &[],
    );
    assert!(!refused.success(), "a tls: false server offers no StartTLS");
}

#[test]
fn two_slapd_instances_run_side_by_side() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Slapd::start(SlapdOptions::default()));
        let b = s.spawn(|| {
            Slapd::start(SlapdOptions {
                suffix: "dc=other,dc=test".into(),
                ..Default::default()
            })
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    let ports_a = [a.port(), a.ldaps_port()];
    let ports_b = [b.port(), b.ldaps_port()];
    assert!(
        ports_a.iter().all(|p| !ports_b.contains(p)),
        "{ports_a:?} vs {ports_b:?}"
    );
    assert_ne!(a.dir(), b.dir());

    a.add_ldif(&a.ldif().base());
    b.add_ldif(&b.ldif().base());
    a.add_ldif(&a.ldif().person("only-in-a", "A", None));
    assert_eq!(
        ldif::dns(&a.search(a.suffix(), "(uid=only-in-a)", &["1.1"])).len(),
        1
    );
    assert!(ldif::dns(&b.search(b.suffix(), "(uid=only-in-a)", &["1.1"])).is_empty());
    let wrong = b
        .client()
        .try_search(&[], a.suffix(), "(objectClass=*)", &["1.1"]);
    assert!(!wrong.success(), "b does not hold a's suffix");
}

#[test]
fn dropping_slapd_stops_it_and_removes_its_directory() {
    let slapd = Slapd::start(SlapdOptions::default());
    let (pid, port, ldaps, dir) = (
        slapd.pid(),
        slapd.port(),
        slapd.ldaps_port(),
        slapd.dir().to_path_buf(),
    );
    assert!(ports::pid_alive(pid) && listening(port) && listening(ldaps) && dir.exists());
    let t = Instant::now();
    drop(slapd);
    eprintln!("slapd stopped in {:?}", t.elapsed());
    assert!(
        !ports::pid_alive(pid),
        "slapd {pid} still exists after drop"
    );
    assert!(
        !listening(port) && !listening(ldaps),
        "ports {port}/{ldaps} still open after drop"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn slapd_is_stopped_when_the_test_panics() {
    let pid = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let slapd = Slapd::start(SlapdOptions {
            tls: false,
            ..Default::default()
        });
        *pid.lock().unwrap() = Some((slapd.pid(), slapd.port()));
        panic!("a failing test");
    });
    assert!(result.is_err());
    let (pid, port) = pid.lock().unwrap().expect("slapd started");
    assert!(!ports::pid_alive(pid), "slapd {pid} survived the panic");
    assert!(!listening(port));
}

#[test]
fn slapd_stop_is_idempotent_and_clients_see_the_server_gone() {
    let mut slapd = Slapd::start(SlapdOptions {
        tls: false,
        ..Default::default()
    });
    let pid = slapd.pid();
    slapd.stop();
    slapd.stop();
    assert!(!ports::pid_alive(pid));
    let gone = slapd
        .client()
        .try_search(&["-s", "base"], "", "(objectClass=*)", &[]);
    assert_eq!(
        gone.code, 255,
        "can't contact LDAP server expected: {}",
        gone.stderr
    );
}

#[test]
fn slapd_ppolicy_lock_attribute_can_be_set_and_filtered() {
    let slapd = Slapd::start(SlapdOptions {
        tls: false,
        extra_schema: vec!["ppolicy", "misc"],
        ..Default::default()
    });
    let l = seed(&slapd);
    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n-\n",
        l.person_dn("bob")
    ));
    // As a non-root reader, as the product would search.
    let reader =
        LdapCli::new(&slapd.url()).bind(&format!("cn=reader,{}", slapd.suffix()), READER_PASSWORD);
    let locked = reader.search(
        slapd.suffix(),
        "(&(objectClass=inetOrgPerson)(pwdAccountLockedTime=*))",
        &["pwdAccountLockedTime"],
    );
    assert_eq!(ldif::dns(&locked), [l.person_dn("bob")]);
    assert_eq!(
        ldif::attribute_strings(&locked, "pwdAccountLockedTime"),
        ["000001010000Z"]
    );
    // Operational: not returned unless asked for.
    let all = reader.search(&l.person_dn("bob"), "(objectClass=*)", &["*"]);
    assert!(!all.contains("pwdAccountLockedTime"), "{all}");
}

#[test]
fn slapd_syncprov_answers_content_sync_only_when_enabled() {
    let sync = ["-E", "!sync=ro"];
    let plain = Slapd::start(SlapdOptions {
        tls: false,
        ..Default::default()
    });
    seed(&plain);
    let refused = plain
        .client()
        .try_search(&sync, plain.suffix(), "(uid=*)", &["uid"]);
    assert!(
        !refused.success(),
        "critical sync control without syncprov must fail"
    );

    let synced = Slapd::start(SlapdOptions {
        tls: false,
        syncprov: true,
        ..Default::default()
    });
    seed(&synced);
    let out = synced
        .client()
        .try_search(&sync, synced.suffix(), "(uid=*)", &["uid"]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.entries(), 3, "{}", out.stdout);
}

// ---------------------------------------------------------------- Samba AD

fn count_with(dc: &SambaDc, extra: &[&str], base: &str, filter: &str) -> usize {
    let out = dc.client().try_search(extra, base, filter, &["1.1"]);
    assert!(out.success(), "{}: {}", out.command, out.stderr);
    out.entries()
}

#[test]
fn samba_dc_users_groups_tombstones_and_tls() {
    let t = Instant::now();
    let dc = SambaDc::start(SambaOptions::default());
    eprintln!(
        "samba DC answering on {} after {:?}",
        dc.host(),
        t.elapsed()
    );
    let base = dc.base_dn();
    assert_eq!(base, "DC=test,DC=lan");

    dc.add_ou("People");
    dc.add_user("alice", "Alice", Some("alice@example.com"), Some("People"));
    dc.add_user("bob", "Bob", None, None);
    assert_eq!(dc.dn_of("alice"), format!("CN=alice,OU=People,{base}"));

    // objectGUID: the string form finds the same object through AD's <GUID=…> DN syntax, which
    // proves the byte order.
    let guid = dc.object_guid("alice");
    assert_eq!(guid.len(), 36);
    assert_eq!(guid, guid.to_lowercase());
    let by_guid = dc.client().try_search(
        &["-s", "base"],
        &format!("<GUID={guid}>"),
        "(objectClass=*)",
        &["sAMAccountName"],
    );
    assert_eq!(
        ldif::attribute_strings(&by_guid.ok(), "sAMAccountName"),
        ["alice"]
    );
    let alice = dc.search(
        &dc.dn_of("alice"),
        "(objectClass=*)",
        &[
            "mail",
            "givenName",
            "userPrincipalName",
            "userAccountControl",
        ],
    );
    assert_eq!(
        ldif::attribute_strings(&alice, "mail"),
        ["alice@example.com"]
    );
    assert_eq!(
        ldif::attribute_strings(&alice, "userPrincipalName"),
        ["alice@test.lan"]
    );
    assert_eq!(
        ldif::attribute_strings(&alice, "userAccountControl"),
        ["512"]
    );

    // Disabling sets bit 2; enabling clears it.
    let disabled = "(&(objectCategory=person)(userAccountControl:1.2.840.113556.1.4.803:=2))";
    let alice_disabled = format!("(&(sAMAccountName=alice){disabled})");
    assert_eq!(count_with(&dc, &[], &base, &alice_disabled), 0);
    dc.disable_user("alice");
    assert_eq!(count_with(&dc, &[], &base, &alice_disabled), 1);
    let uac = dc.search(
        &dc.dn_of("alice"),
        "(objectClass=*)",
        &["userAccountControl"],
    );
    assert_eq!(ldif::attribute_strings(&uac, "userAccountControl"), ["514"]);
    dc.enable_user("alice");
    assert_eq!(count_with(&dc, &[], &base, &alice_disabled), 0);

    // Nested groups: alice ∈ inner ∈ outer.
    dc.add_group("inner", Some("People"));
    dc.add_group("outer", None);
    dc.add_group_members("inner", &["alice", "bob"]);
    dc.add_group_members("outer", &["inner"]);
    let outer = dc.dn_of("outer");
    let in_chain = format!("(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:={outer}))");
    assert_eq!(count_with(&dc, &[], &base, &in_chain), 2);
    let direct = dc.search(&dc.dn_of("alice"), "(objectClass=*)", &["memberOf"]);
    assert_eq!(
        ldif::attribute_strings(&direct, "memberOf"),
        [dc.dn_of("inner")]
    );

    // Deleting leaves a tombstone with the same GUID, only visible with the show-deleted control.
    let bob_guid = dc.object_guid("bob");
    dc.delete_user("bob");
    assert_eq!(count_with(&dc, &[], &base, "(sAMAccountName=bob)"), 0);
    let deleted_objects = format!("CN=Deleted Objects,{base}");
    let show_deleted = format!("!{SHOW_DELETED_CONTROL}");
    let tombstone = dc
        .client()
        .try_search(
            &["-E", &show_deleted],
            &deleted_objects,
            "(sAMAccountName=bob)",
            &["isDeleted", "objectGUID"],
        )
        .ok();
    let tomb_dns = ldif::dns(&tombstone);
    assert_eq!(tomb_dns.len(), 1, "{tombstone}");
    assert!(tomb_dns[0].contains("DEL:"), "{}", tomb_dns[0]);
    assert_eq!(ldif::attribute_strings(&tombstone, "isDeleted"), ["TRUE"]);
    assert_eq!(dc.object_guid(&tomb_dns[0]), bob_guid);
    let without_control =
        dc.client()
            .try_search(&[], &deleted_objects, "(sAMAccountName=bob)", &["1.1"]);
    assert_eq!(
        without_control.entries(),
        0,
        "tombstones hidden without the control"
    );
    let inner_members = dc.search(&dc.dn_of("inner"), "(objectClass=*)", &["member"]);
    assert_eq!(
        ldif::attribute_strings(&inner_members, "member"),
        [dc.dn_of("alice")],
        "link removed"
    );

    // Bulk seeding and paged results.
    const N: usize = 250;
    let t = Instant::now();
    dc.bulk_users(N, "bulk");
    let took = t.elapsed();
    eprintln!(
        "samba: {N} bulk users in {took:?} ({:.0} users/s)",
        N as f64 / took.as_secs_f64()
    );
    let paged = dc.client().try_search(
        &["-E", "pr=100/noprompt"],
        &base,
        "(sAMAccountName=bulk*)",
        &["sAMAccountName"],
    );
    assert!(paged.success(), "{}", paged.stderr);
    assert_eq!(paged.entries(), N);
    assert_eq!(paged.stdout.matches("# pagedresults:").count(), 3);

    // LDAPS and StartTLS with the CA; LDAPS without it fails; the UPN bind form works.
    let (admin, password) = dc.admin_bind();
    let root_dse =
        |cli: LdapCli| cli.try_search(&["-s", "base"], "", "(objectClass=*)", &["dnsHostName"]);
    let ldaps = root_dse(
        LdapCli::new(&dc.ldaps_url())
            .bind(&admin, &password)
            .ca(&dc.ca_pem()),
    );
    assert!(ldaps.success(), "LDAPS with the CA: {}", ldaps.stderr);
    assert!(
        ldaps.stdout.to_lowercase().contains("dc1.test.lan"),
        "{}",
        ldaps.stdout
    );
    let starttls = root_dse(
        LdapCli::new(&dc.url())
            .bind(&dc.admin_upn(), &password)
            .ca(&dc.ca_pem())
            .starttls(),
    );
    assert!(
        starttls.success(),
        "StartTLS with the CA: {}",
        starttls.stderr
    );
    let untrusted = root_dse(LdapCli::new(&dc.ldaps_url()).bind(&admin, &password));
    assert!(!untrusted.success(), "LDAPS without the CA must fail");
}

#[test]
fn two_samba_dcs_run_side_by_side_and_stop_on_drop() {
    // Something else listening on the first addresses SambaDc tries (like another session's
    // server on 389) must be skipped. A bind that fails means a DC of another test holds the
    // address, which these DCs must avoid as well.
    let squatters: Vec<_> = ["127.0.0.10:389", "127.0.0.11:389"]
        .into_iter()
        .filter_map(|a| std::net::TcpListener::bind(a).ok())
        .collect();
    let squatted: Vec<String> = squatters
        .iter()
        .map(|l| l.local_addr().unwrap().ip().to_string())
        .collect();
    let t = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| SambaDc::start(SambaOptions::default()));
        let b = s.spawn(|| SambaDc::start(SambaOptions::default()));
        (a.join().unwrap(), b.join().unwrap())
    });
    eprintln!("two samba DCs answering after {:?}", t.elapsed());
    assert_ne!(a.host(), b.host());
    assert!(
        !squatted.contains(&a.host()) && !squatted.contains(&b.host()),
        "{squatted:?} are taken"
    );
    drop(squatters);
    a.add_user("only-a", "A", None, None);
    assert_eq!(
        count_with(&a, &[], &a.base_dn(), "(sAMAccountName=only-a)"),
        1
    );
    assert_eq!(
        count_with(&b, &[], &b.base_dn(), "(sAMAccountName=only-a)"),
        0
    );

    let stopped: Vec<(u32, String, std::path::PathBuf)> = [a, b]
        .into_iter()
        .map(|dc| {
            let info = (dc.pid(), dc.host(), dc.dir().to_path_buf());
            let t = Instant::now();
            drop(dc);
            eprintln!("samba DC stopped in {:?}", t.elapsed());
            info
        })
        .collect();
    for (pid, host, dir) in stopped {
        assert!(
            !ports::pid_alive(pid),
            "samba {pid} still exists after drop"
        );
        let ip: IpAddr = host.parse().unwrap();
        for port in [389, 636] {
            assert!(
                ports::wait_closed(SocketAddr::new(ip, port), Duration::from_secs(1)),
                "{host}:{port} still open after drop"
            );
        }
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
