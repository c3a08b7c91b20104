//! The small company most end-to-end tests of the daemon and the tray start from: people with
//! mail `<uid>@example.org` in a private slapd, an emulated organization server, and an
//! installation pointed at both and logged in, with the daemon on a free port.

use crate::cli::Installation;
use crate::daemon;
use crate::orgserver::{OrgServer, OrgServerOptions};
use crate::slapd::{Slapd, SlapdOptions};

/// Adds the base entries, `people` (cn = the uid in capitals, mail `<uid>@example.org`) and the
/// group `engineering` holding the first two of them.
pub fn seed_people(slapd: &Slapd, people: &[&str]) {
    let l = slapd.ldif();
    let mut ldif = l.base();
    for uid in people {
        ldif += &l.person(
            uid,
            &uid.to_uppercase(),
            Some(&format!("{uid}@example.org")),
        );
    }
    let engineers: Vec<String> = people.iter().take(2).map(|uid| l.person_dn(uid)).collect();
    let engineers: Vec<&str> = engineers.iter().map(String::as_str).collect();
    ldif += &l.group_of_names("engineering", &engineers);
    slapd.add_ldif(&ldif);
}

/// A slapd without TLS seeded with [`seed_people`], an organization server, and an installation
/// using both, logged in, with `daemon.port = 0` and `daemon.catch_up = false`. Polling keeps
/// its default schedule (every 5 minutes), so nothing runs until a test asks.
pub async fn company(people: &[&str]) -> (Slapd, OrgServer, Installation) {
    let slapd = Slapd::start(SlapdOptions {
        tls: false,
        ..SlapdOptions::default()
    });
    seed_people(&slapd, people);
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    daemon::prepare_quiet_daemon(&inst);
    inst.use_slapd(&slapd);
    inst.login_to(&server);
    (slapd, server, inst)
}
