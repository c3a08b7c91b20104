//! A private OpenLDAP server (slapd 2.5) per test, on free loopback ports, in a temporary directory.
//!
//! Every test gets its own server so tests can run in parallel and change directory content
//! without affecting each other. Starting one takes well under a second (most of it is making the
//! TLS certificates), so there is no reason to share.
//!
//! The configuration mimics what orgsync meets in the field:
//!
//! - schemas `core`, `cosine`, `inetorgperson` and `nis` (`posixGroup`/`memberUid`), plus any
//!   [`SlapdOptions::extra_schema`];
//! - the `memberof` overlay maintaining `memberOf` on members of `groupOfNames`;
//! - the `ppolicy` overlay, so a test can lock an account the way OpenLDAP admins do, by setting
//!   the operational attribute `pwdAccountLockedTime` (e.g. `000001010000Z`, "locked until an
//!   admin unlocks"); the rootdn may write it in slapd 2.5, and searches must name it or ask for
//!   `+` since it is operational;
//! - `sizelimit size.soft=500 size.hard=unlimited size.prtotal=unlimited`: a client that does
//!   not page gets at most 500 entries ("Size limit exceeded", result 4), as on real servers,
//!   while a paged search gets everything. The rootdn has no limits, so tests of that behaviour
//!   must bind as another account (see [`crate::ldif::Ldif::service_account`]);
//! - optionally `syncprov` (RFC 4533 content synchronisation);
//! - an LDAPS listener and StartTLS on the plain port with a certificate from a throw-away
//!   [`TestCa`], valid for `127.0.0.1`.
//!
//! The database uses `dbnosync`: without it every add waits for an fsync and loading 10,000
//! entries takes 50 s instead of 5 s.
//!
//! Set `ORGSYNC_SLAPD_LOGLEVEL` (e.g. `stats`) to have slapd log more to `slapd.log` in its
//! directory; panics quote the end of that log.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::ldif::{LdapCli, Ldif};
use crate::ports::{self, LOOPBACK, ServerProcess, keep_if_asked};
use crate::tls::{ServerCert, TestCa};

/// How the private slapd is configured. `SlapdOptions::default()` gives the usual test server.
#[derive(Clone, Debug)]
pub struct SlapdOptions {
    /// The database suffix. Default `dc=example,dc=org`.
    pub suffix: String,
    /// Listen on LDAPS too and offer StartTLS, with a certificate from a fresh test CA.
    /// Default true.
    pub tls: bool,
    /// Load the `syncprov` overlay (RFC 4533 sync, checkpointed contextCSN, a session log of
    /// 100,000 changes) and index `entryCSN`. Default false.
    pub syncprov: bool,
    /// More schemas: names of files in `/etc/ldap/schema` without `.schema` (e.g. `misc`,
    /// `dyngroup`, `msuser`) or absolute paths to `.schema` files. `ppolicy` is accepted and does
    /// nothing: its schema is built into the module, which is always loaded.
    pub extra_schema: Vec<&'static str>,
    /// An LDIF file loaded offline with `slapadd -q` before slapd starts: seconds instead of
    /// minutes for large benchmark directories. Overlays do not run (no `memberOf`). Default none.
    pub preload_ldif: Option<PathBuf>,
    /// With `tls`: demand a client certificate from the test CA on TLS connections
    /// (`TLSVerifyClient demand`), for mutual-TLS tests; see [`Slapd::client_cert`]. Default false.
    pub require_client_cert: bool,
    /// Load the `memberof` overlay (with `memberof-refint`, so renames and deletes of members
    /// rewrite the groups that hold them). Default true.
    pub memberof: bool,
    /// Load the `refint` overlay for `member` and `uniqueMember`: renames and deletes rewrite
    /// the groups that name the entry (in a thread of its own, shortly after the change), a
    /// group's last member becoming `cn=nobody,<suffix>`. Default false.
    pub refint: bool,
}

impl Default for SlapdOptions {
    fn default() -> Self {
        SlapdOptions {
            suffix: "dc=example,dc=org".to_string(),
            tls: true,
            syncprov: false,
            extra_schema: Vec::new(),
            preload_ldif: None,
            require_client_cert: false,
            memberof: true,
            refint: false,
        }
    }
}

/// The rootdn password of every test slapd.
const ADMIN_PASSWORD: &str = "admin-secret";

/// How long slapd may take to answer after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times to try new ports when another process took ours before slapd bound them.
const BIND_ATTEMPTS: usize = 5;

/// A running private slapd. Dropping it stops the server and deletes its directory.
pub struct Slapd {
    // Field order matters: `process` is dropped (server stopped) before `dir` is deleted.
    process: ServerProcess,
    suffix: String,
    port: u16,
    ldaps_port: Option<u16>,
    ca_pem: Option<PathBuf>,
    client_cert: Option<ServerCert>,
    dir: TempDir,
}

impl Slapd {
    /// Starts a slapd configured by `opts` and waits until it answers.
    ///
    /// # Panics
    /// When slapd is not installed (run `scripts/setup.sh`), the configuration is rejected, or the
    /// server does not answer within 10 s; the message quotes slapd's log.
    pub fn start(opts: SlapdOptions) -> Slapd {
        let dir = tempfile::Builder::new()
            .prefix("orgsync-slapd-")
            .tempdir()
            .expect("create a temp dir for slapd");
        let root = dir.path();
        for sub in ["db", "run"] {
            std::fs::create_dir(root.join(sub)).expect("create slapd dirs");
        }
        let tls = opts.tls.then(|| {
            let tls_dir = root.join("tls");
            std::fs::create_dir(&tls_dir).expect("create slapd tls dir");
            let ca = TestCa::create(&tls_dir);
            let cert = ca.issue_server("slapd", &["127.0.0.1"]);
            let client = opts.require_client_cert.then(|| ca.issue_client("orgsync"));
            (ca.ca_pem(), cert, client)
        });
        let client_cert = tls.as_ref().and_then(|(_, _, client)| client.clone());

        let conf = root.join("slapd.conf");
        let text = config(
            &opts,
            root,
            tls.as_ref().map(|(ca, cert, _)| (ca.as_path(), cert)),
        );
        std::fs::write(&conf, text).expect("write slapd.conf");
        let check = ports::run_command(
            Command::new("slaptest").args(["-u", "-f"]).arg(&conf),
            None,
            Duration::from_secs(30),
        );
        assert!(
            check.status.success(),
            "slaptest rejected {}:\n{}{}",
            conf.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );

        if let Some(ldif) = &opts.preload_ldif {
            let load = ports::run_command(
                Command::new("slapadd")
                    .args(["-q", "-f"])
                    .arg(&conf)
                    .arg("-l")
                    .arg(ldif),
                None,
                Duration::from_secs(1800),
            );
            assert!(
                load.status.success(),
                "slapadd -l {} failed:\n{}",
                ldif.display(),
                String::from_utf8_lossy(&load.stderr)
            );
        }

        let log = root.join("slapd.log");
        let level = std::env::var("ORGSYNC_SLAPD_LOGLEVEL").unwrap_or_else(|_| "none".to_string());
        for attempt in 1..=BIND_ATTEMPTS {
            // A fresh log per attempt: a failed start is diagnosed from it.
            let _ = std::fs::remove_file(&log);
            let port = ports::free_port();
            let ldaps_port = tls.is_some().then(ports::free_port);
            let mut urls = format!("ldap://127.0.0.1:{port}/");
            if let Some(p) = ldaps_port {
                let _ = write!(urls, " ldaps://127.0.0.1:{p}/");
            }
            let mut cmd = Command::new("slapd");
            // `-d` keeps slapd in the foreground as our child, so we can stop and reap it. Level
            // `none` still logs errors (bind failures, TLS setup); `-d 0` would log nothing at all.
            cmd.arg("-f").arg(&conf).args(["-h", &urls, "-d", &level]);
            let mut process = ServerProcess::spawn("slapd", cmd, &log, root).unwrap_or_else(|e| {
                panic!("cannot start slapd: {e} (install it with scripts/setup.sh)")
            });
            let probe = LdapCli::new(&format!("ldap://127.0.0.1:{port}"));
            let addr = SocketAddr::new(LOOPBACK, port);
            let started = Instant::now();
            let mut exited = None;
            let ready = ports::wait_until(READY_TIMEOUT, || {
                exited = process.exited();
                exited.is_some()
                    || (ports::is_listening(addr)
                        && probe
                            .try_search(&["-s", "base"], "", "(objectClass=*)", &["1.1"])
                            .success())
            });
            if let Some(status) = exited {
                let tail = process.log_tail(30);
                if tail.contains("Address already in use") && attempt < BIND_ATTEMPTS {
                    eprintln!(
                        "slapd lost port {port} or {ldaps_port:?} to another process; retrying"
                    );
                    continue;
                }
                panic!("slapd exited ({status}) during startup with {urls}\n{tail}");
            }
            if !ready {
                panic!(
                    "slapd (pid {}) did not answer on ldap://127.0.0.1:{port} within {READY_TIMEOUT:?}\n{}",
                    process.pid(),
                    process.log_tail(30)
                );
            }
            if std::env::var_os("ORGSYNC_TESTKIT_TIMINGS").is_some() {
                eprintln!("slapd ready on port {port} in {:?}", started.elapsed());
            }
            return Slapd {
                process,
                suffix: opts.suffix,
                port,
                ldaps_port,
                ca_pem: tls.map(|(ca, _, _)| ca),
                client_cert,
                dir,
            };
        }
        unreachable!("the loop returns or panics")
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS available when started with TLS).
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    ///
    /// # Panics
    /// When started with `tls: false`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port())
    }

    /// The host in the URLs: `127.0.0.1`, never `localhost` (see [`ports::LOOPBACK`]).
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The plain LDAP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The LDAPS port.
    ///
    /// # Panics
    /// When started with `tls: false`.
    pub fn ldaps_port(&self) -> u16 {
        self.ldaps_port
            .expect("this slapd was started with tls: false, so it has no LDAPS port")
    }

    /// The client certificate and key (from the same CA) that a slapd started with
    /// `require_client_cert` accepts.
    pub fn client_cert(&self) -> Option<&ServerCert> {
        self.client_cert.as_ref()
    }

    /// The CA certificate (PEM) to trust for LDAPS and StartTLS.
    ///
    /// # Panics
    /// When started with `tls: false`.
    pub fn ca_pem(&self) -> PathBuf {
        self.ca_pem
            .clone()
            .expect("this slapd was started with tls: false, so it has no CA")
    }

    /// The database suffix, e.g. `dc=example,dc=org`.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// The rootdn: `cn=admin,<suffix>`. It bypasses ACLs and size limits.
    pub fn admin_dn(&self) -> String {
        format!("cn=admin,{}", self.suffix)
    }

    /// The rootdn's password.
    pub fn admin_password(&self) -> &str {
        ADMIN_PASSWORD
    }

    /// An LDIF builder for this server's suffix.
    pub fn ldif(&self) -> Ldif {
        Ldif::new(&self.suffix)
    }

    /// ldap-utils bound as the rootdn over plain LDAP, trusting the CA (so `.starttls()` works).
    pub fn client(&self) -> LdapCli {
        let cli = LdapCli::new(&self.url()).bind(&self.admin_dn(), ADMIN_PASSWORD);
        match &self.ca_pem {
            Some(ca) => cli.ca(ca),
            None => cli,
        }
    }

    /// Adds the entries in `ldif` as the rootdn (`ldapadd`, stopping at the first error).
    ///
    /// # Panics
    /// With `ldapadd`'s diagnostics when any entry is rejected.
    #[track_caller]
    pub fn add_ldif(&self, ldif: &str) {
        let out = self.client().try_add(ldif);
        if !out.success() {
            // ldapadd prints `adding new entry "<dn>"` before each add: the last one failed.
            panic!(
                "`{}` failed with exit code {} at {}:\n{}\n{}",
                out.command,
                out.code,
                out.stdout.lines().last().unwrap_or("the first entry"),
                out.stderr.trim_end(),
                self.process.log_tail(10)
            );
        }
    }

    /// Applies `changetype` records as the rootdn (`ldapmodify`, stopping at the first error).
    ///
    /// # Panics
    /// With `ldapmodify`'s diagnostics when a change is rejected.
    #[track_caller]
    pub fn modify_ldif(&self, ldif: &str) {
        self.client().modify(ldif);
    }

    /// `ldapsearch -LLL` output (unwrapped lines) for `filter` in the subtree `base`, as the
    /// rootdn, for assertions. Operational attributes (`memberOf`, `entryUUID`,
    /// `pwdAccountLockedTime`, …) must be named in `attrs` or requested with `+`.
    ///
    /// # Panics
    /// When the search fails.
    #[track_caller]
    pub fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> String {
        self.client().search(base, filter, attrs)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and waits until it has exited. Its
    /// ports are closed afterwards; the directory stays until drop. Calling it again does
    /// nothing. Use it to test "the server went away".
    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(5));
    }

    /// slapd's process ID (to check that it is gone after [`Slapd::stop`] or drop).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's temporary directory (config, database, TLS files, `slapd.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `lines` lines of slapd's log, for messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
        keep_if_asked(&mut self.dir, "slapd");
    }
}

/// `slapd.conf` for `opts` with everything under `root`, and TLS with `tls` = (CA, server cert).
fn config(opts: &SlapdOptions, root: &Path, tls: Option<(&Path, &ServerCert)>) -> String {
    let mut schemas: Vec<String> = ["core", "cosine", "inetorgperson", "nis"]
        .iter()
        .map(|s| format!("/etc/ldap/schema/{s}.schema"))
        .collect();
    for name in &opts.extra_schema {
        if *name == "ppolicy" {
            continue;
        }
        let path = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/etc/ldap/schema/{name}.schema")
        };
        assert!(
            Path::new(&path).exists(),
            "extra_schema {name:?}: {path} does not exist (names are files in /etc/ldap/schema without .schema)"
        );
        schemas.push(path);
    }
    let mut c = String::new();
    for s in &schemas {
        let _ = writeln!(c, "include {s}");
    }
    let root = root.display();
    let suffix = &opts.suffix;
    let _ = write!(
        c,
        r#"
pidfile  {root}/run/slapd.pid
argsfile {root}/run/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload ppolicy
"#
    );
    if opts.syncprov {
        c += "moduleload syncprov\n";
    }
    if opts.refint {
        c += "moduleload refint\n";
    }
    if let Some((ca, cert)) = tls {
        // Global TLS settings: slapd uses them for LDAPS and for StartTLS on the plain port.
        let _ = write!(
            c,
            "TLSCACertificateFile  {}\nTLSCertificateFile    {}\nTLSCertificateKeyFile {}\n",
            ca.display(),
            cert.cert.display(),
            cert.key.display()
        );
        if opts.require_client_cert {
            c += "TLSVerifyClient demand\n";
        }
    }
    let _ = write!(
        c,
        r#"
database mdb
suffix   "{suffix}"
rootdn   "cn=admin,{suffix}"
rootpw   {ADMIN_PASSWORD}
directory {root}/db
maxsize  1073741824
dbnosync
sizelimit size.soft=500 size.hard=unlimited size.prtotal=unlimited
index objectClass eq
index uid,cn,mail eq,sub
index member,memberOf,uniqueMember,memberUid eq
index entryUUID eq
index modifyTimestamp eq
"#
    );
    if opts.syncprov {
        c += "index entryCSN eq\n";
    }
    if opts.memberof {
        c += r#"
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
"#;
    }
    if opts.refint {
        // A group's last member cannot be removed (groupOfNames requires one): refint puts this
        // placeholder in instead, as admins configure it.
        let _ = write!(
            c,
            "\noverlay refint\nrefint_attributes member uniqueMember\nrefint_nothing cn=nobody,{suffix}\n"
        );
    }
    c += "\noverlay ppolicy\n";
    if opts.syncprov {
        // The session log lets a refresh name deleted entries instead of listing every
        // unchanged one (the present phase).
        c += "\noverlay syncprov\nsyncprov-checkpoint 100 10\nsyncprov-sessionlog 100000\n";
    }
    c
}
