//! `orgsync-sample-directory`: a private OpenLDAP server with a small sample company, for the
//! README demo. It listens on 127.0.0.1 only and runs until SIGINT or SIGTERM, then stops slapd
//! and deletes its files.
//!
//! The directory (suffix `dc=example,dc=org`): 12 people under `ou=people`, one of them without
//! mail and one locked (`pwdAccountLockedTime`), and groups under `ou=groups` with nesting:
//! engineering ⊃ {backend, frontend}, plus sales and support.

use std::path::PathBuf;

use clap::Parser;
use testkit::slapd::{Slapd, SlapdOptions};

/// Starts a sample LDAP directory on 127.0.0.1 for trying orgsync.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Write {url, ldaps_url, ca_file, bind_dn, bind_password, root_path} as JSON to this file
    /// (mode 0600), so that a script can configure orgsync.
    #[arg(long, value_name = "FILE")]
    write_info: Option<PathBuf>,
}

const PEOPLE: [(&str, &str, Option<&str>); 12] = [
    ("ada", "Ada Lovelace", Some("ada@example.org")),
    ("alan", "Alan Turing", Some("alan@example.org")),
    ("grace", "Grace Hopper", Some("grace@example.org")),
    ("linus", "Linus Torvalds", Some("linus@example.org")),
    (
        "margaret",
        "Margaret Hamilton",
        Some("margaret@example.org"),
    ),
    ("dennis", "Dennis Ritchie", Some("dennis@example.org")),
    ("barbara", "Barbara Liskov", Some("barbara@example.org")),
    ("ken", "Ken Thompson", Some("ken@example.org")),
    ("frances", "Frances Allen", Some("frances@example.org")),
    ("john", "John Backus", Some("john@example.org")),
    ("edsger", "Edsger Dijkstra", Some("edsger@example.org")),
    ("printer", "Lobby Printer", None),
];

fn main() {
    let args = Args::parse();
    let slapd = Slapd::start(SlapdOptions::default());
    let l = slapd.ldif();
    let mut ldif = l.base();
    for (uid, name, mail) in PEOPLE {
        ldif += &l.person(uid, name, mail);
    }
    let dns = |uids: &[&str]| -> Vec<String> { uids.iter().map(|u| l.person_dn(u)).collect() };
    let mut engineering = dns(&["ada", "margaret"]);
    engineering.push(l.group_dn("backend"));
    engineering.push(l.group_dn("frontend"));
    for (cn, members) in [
        ("backend", dns(&["alan", "linus", "dennis", "ken"])),
        ("frontend", dns(&["grace", "barbara"])),
        ("engineering", engineering),
        ("sales", dns(&["frances", "john"])),
        ("support", dns(&["edsger", "john"])),
    ] {
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        ldif += &l.group_of_names(cn, &members);
    }
    slapd.add_ldif(&ldif);
    // Ken's account is locked, as OpenLDAP's password policy does it.
    slapd.modify_ldif(&format!(
        "dn: {}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n\n",
        l.person_dn("ken")
    ));

    if let Some(path) = &args.write_info {
        let info = serde_json::json!({
            "url": slapd.url(),
            "ldaps_url": slapd.ldaps_url(),
            "host": slapd.host(),
            "port": slapd.port(),
            "ldaps_port": slapd.ldaps_port(),
            "ca_file": slapd.ca_pem(),
            "bind_dn": slapd.admin_dn(),
            "bind_password": slapd.admin_password(),
            "root_path": slapd.suffix(),
        });
        write_private(path, &serde_json::to_string_pretty(&info).expect("json"));
    }
    println!("orgsync-sample-directory listening on {}", slapd.url());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("start the async runtime");
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("listen for SIGTERM");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    drop(slapd);
}

fn write_private(path: &std::path::Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    file.write_all(text.as_bytes())
        .expect("write the info file");
}
