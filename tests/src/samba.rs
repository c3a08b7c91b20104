//! A private Samba Active Directory domain controller per test, on its own loopback address.
//!
//! orgsync must work against real AD: binary `objectGUID`, the `userAccountControl` disabled bit,
//! tombstones under `CN=Deleted Objects`, nested groups, paged results. Samba 4 is a real AD DC
//! that runs without a network or a VM, so the tests start one.
//!
//! Things that shape this module:
//!
//! - **Samba's LDAP ports are fixed** (389, 636, 3268, 3269), so each DC gets its own address
//!   127.0.0.N (N in 10..250), reserved with a lock file in `$TMPDIR/orgsync-testkit` so
//!   parallel tests and test binaries never pick the same one. This needs root (ports < 1024).
//! - **Provisioning takes 5–8 s.** The first DC for a realm/domain/Samba version provisions a
//!   template into `$TMPDIR/orgsync-testkit/samba-template-…` (under a lock, atomically renamed
//!   when complete); every DC copies it (about 0.1 s) and only rewrites `smb.conf`, the only
//!   file that holds absolute paths. Copies share the domain SID and built-in objects' GUIDs;
//!   objects the tests create get fresh GUIDs. Set `ORGSYNC_SAMBA_FRESH=1` to provision each DC
//!   from scratch instead.
//! - **Everything stays in the DC's temp dir**: the generated `smb.conf` points pid, log and
//!   socket directories at `/run/samba` and `/var/log/samba`, which would make a second DC
//!   refuse to start; they are overridden. Only the `ldap` service runs (no smbd, KDC, DNS).
//! - **Simple binds over plain LDAP are allowed** (`ldap server require strong auth = no`);
//!   real AD would require TLS or signing. LDAPS and StartTLS use a certificate from a
//!   [`TestCa`] with the DC's IP in its SAN (Samba's own certificate has no SAN).
//! - **Samba stops itself** after an hour (`--maximum-runtime`), on top of drop and the
//!   [`ServerProcess`] watchdog.
//!
//! Users made by [`SambaDc::add_user`] get `CN=<sAMAccountName>` in `CN=Users` or the given OU.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::ldif::{self, LdapCli, entry, escape_dn_value, escape_filter_value};
use crate::ports::{self, ServerProcess, keep_if_asked};
use crate::tls::TestCa;

/// The realm and NetBIOS domain of a test DC. `SambaOptions::default()` is `TEST.LAN`/`TEST`.
#[derive(Clone, Debug)]
pub struct SambaOptions {
    /// Kerberos realm, upper case; its lower-case form is the DNS domain and gives the base DN.
    pub realm: String,
    /// NetBIOS domain name (`DOMAIN\user`).
    pub domain: String,
}

impl Default for SambaOptions {
    fn default() -> Self {
        SambaOptions {
            realm: "TEST.LAN".to_string(),
            domain: "TEST".to_string(),
        }
    }
}

/// The Administrator password of every test DC (meets AD's complexity rules).
const ADMIN_PASSWORD: &str = "Passw0rd!Passw0rd";

/// The password [`SambaDc::add_user`] gives users.
pub const USER_PASSWORD: &str = "Us3rPassw0rd!";

/// LDAP_SERVER_SHOW_DELETED_OID: searches with it (critical) also return tombstones.
pub const SHOW_DELETED_CONTROL: &str = "1.2.840.113556.1.4.417";

/// `userAccountControl` bit ACCOUNTDISABLE.
pub const UAC_ACCOUNTDISABLE: u32 = 0x2;

/// How long a started DC may take to answer LDAP.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The DC stops itself after this many seconds, in case nothing else stops it.
const MAX_RUNTIME_SECS: u32 = 3600;

/// Bumped when the way templates are made changes, so stale templates are not reused.
const TEMPLATE_FORMAT: u32 = 2;

/// Samba's fixed LDAP ports: LDAP, LDAPS, global catalog, global catalog over TLS.
const SAMBA_PORTS: [u16; 4] = [389, 636, 3268, 3269];

/// A running private Samba AD DC. Dropping it stops Samba and deletes its directory.
pub struct SambaDc {
    // Field order matters: the process is stopped before the address is released and the
    // directory deleted.
    process: ServerProcess,
    _address_lock: File,
    ip: Ipv4Addr,
    realm: String,
    domain: String,
    base_dn: String,
    ca_pem: PathBuf,
    dir: TempDir,
}

impl SambaDc {
    /// Provisions (or copies the template of) a DC for `opts` on a free 127.0.0.N and waits until
    /// it answers LDAP.
    ///
    /// # Panics
    /// When Samba is not installed (run `scripts/setup.sh`), the process is not root, no address
    /// is free, or the DC does not answer within 60 s; the message quotes Samba's log.
    pub fn start(opts: SambaOptions) -> SambaDc {
        let timings = std::env::var_os("ORGSYNC_TESTKIT_TIMINGS").is_some();
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("orgsync-samba-")
            .tempdir()
            .expect("create a temp dir for samba");
        let root = dir.path().to_path_buf();
        let provisioned_as = if std::env::var_os("ORGSYNC_SAMBA_FRESH").is_some() {
            provision(&opts, &root.join("dc"));
            root.join("dc")
        } else {
            let (template, provisioned_as) = template(&opts);
            copy_tree(&template, &root.join("dc"));
            provisioned_as
        };
        let dc = root.join("dc");
        if timings {
            eprintln!("samba: provisioned/copied in {:?}", t0.elapsed());
        }
        std::fs::create_dir_all(dc.join("run")).expect("create samba run dir");
        let tls_dir = root.join("tls");
        std::fs::create_dir(&tls_dir).expect("create samba tls dir");
        let ca = TestCa::create(&tls_dir);

        let log = root.join("samba.log");
        let mut last_failure = String::new();
        // Addresses another process took: keep them reserved so the next attempt moves on.
        let mut lost = Vec::new();
        for _attempt in 0..3 {
            let (ip, lock) = reserve_address();
            // A fresh log per attempt: the address check below reads it.
            let _ = std::fs::remove_file(&log);
            let cert = ca.issue_server(&format!("dc-{ip}"), &[&ip.to_string()]);
            let conf = dc.join("etc/smb.conf");
            let generated = std::fs::read_to_string(&conf).expect("read the provisioned smb.conf");
            let overrides = [
                format!("interfaces = {ip}/8"),
                "bind interfaces only = yes".into(),
                "ldap server require strong auth = no".into(),
                "server services = ldap".into(),
                format!("log file = {}/log.%m", root.display()),
                "log level = 1".into(),
                format!("pid directory = {}/run", dc.display()),
                format!("ncalrpc dir = {}/run/ncalrpc", dc.display()),
                format!("winbindd socket directory = {}/run/winbindd", dc.display()),
                format!(
                    "ntp signd socket directory = {}/run/ntp_signd",
                    dc.display()
                ),
                "tls enabled = yes".into(),
                format!("tls keyfile = {}", cert.key.display()),
                format!("tls certfile = {}", cert.cert.display()),
                format!("tls cafile = {}", ca.ca_pem().display()),
            ];
            std::fs::write(
                &conf,
                patch_smb_conf(&generated, &provisioned_as, &dc, &overrides),
            )
            .expect("write smb.conf");

            let t1 = Instant::now();
            let mut cmd = Command::new("samba");
            cmd.arg("-s")
                .arg(&conf)
                .args(["-F", "--no-process-group", "--debug-stdout", "-M", "single"])
                .arg(format!("--maximum-runtime={MAX_RUNTIME_SECS}"));
            let mut process = ServerProcess::spawn("samba", cmd, &log, &root).unwrap_or_else(|e| {
                panic!("cannot start samba: {e} (install it with scripts/setup.sh)")
            });
            let probe = LdapCli::new(&format!("ldap://{ip}:389"));
            let mut exited = None;
            let ready = ports::wait_until(READY_TIMEOUT, || {
                exited = process.exited();
                exited.is_some()
                    || (ports::is_listening(SocketAddr::new(IpAddr::V4(ip), 389))
                        && probe
                            .try_search(&["-s", "base"], "", "(objectClass=*)", &["dnsHostName"])
                            .success())
            });
            // Another process bound one of the ports after reserve_address checked them: Samba
            // logs "ldapsrv failed to bind to …: NT_STATUS_ADDRESS_ALREADY_ASSOCIATED" and exits.
            if exited.is_some() && process.log_tail(30).contains("ADDRESS_ALREADY_ASSOCIATED") {
                last_failure = process.log_tail(30);
                eprintln!("samba could not bind {ip}; trying another address");
                lost.push(lock);
                continue;
            }
            if let Some(status) = exited {
                panic!(
                    "samba exited ({status}) during startup on {ip}\n{}",
                    process.log_tail(40)
                );
            }
            if !ready {
                panic!(
                    "samba (pid {}) did not answer on ldap://{ip}:389 within {READY_TIMEOUT:?}\n{}",
                    process.pid(),
                    process.log_tail(40)
                );
            }
            if timings {
                eprintln!(
                    "samba: answering on {ip} {:?} after start ({:?} in total)",
                    t1.elapsed(),
                    t0.elapsed()
                );
            }
            let dns_domain = opts.realm.to_lowercase();
            let base_dn = dns_domain
                .split('.')
                .map(|l| format!("DC={l}"))
                .collect::<Vec<_>>()
                .join(",");
            return SambaDc {
                process,
                _address_lock: lock,
                ip,
                realm: opts.realm,
                domain: opts.domain,
                base_dn,
                ca_pem: ca.ca_pem(),
                dir,
            };
        }
        panic!("samba could not bind any address it was given\n{last_failure}");
    }

    /// The DC's own loopback address, `127.0.0.N`.
    pub fn host(&self) -> String {
        self.ip.to_string()
    }

    /// `ldap://127.0.0.N:389` (StartTLS available).
    pub fn url(&self) -> String {
        format!("ldap://{}:389", self.ip)
    }

    /// `ldaps://127.0.0.N:636`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://{}:636", self.ip)
    }

    /// The CA certificate (PEM) to trust for LDAPS and StartTLS.
    pub fn ca_pem(&self) -> PathBuf {
        self.ca_pem.clone()
    }

    /// The domain's base DN, e.g. `DC=test,DC=lan`.
    pub fn base_dn(&self) -> String {
        self.base_dn.clone()
    }

    /// The Kerberos realm, e.g. `TEST.LAN`.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The NetBIOS domain, e.g. `TEST`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The Administrator's bind DN (`CN=Administrator,CN=Users,<base>`) and password. AD also
    /// accepts [`SambaDc::admin_upn`] and `DOMAIN\Administrator` as bind names.
    pub fn admin_bind(&self) -> (String, String) {
        (
            format!("CN=Administrator,CN=Users,{}", self.base_dn),
            ADMIN_PASSWORD.to_string(),
        )
    }

    /// `Administrator@<dns domain>`, the UPN form of the admin bind name.
    pub fn admin_upn(&self) -> String {
        format!("Administrator@{}", self.realm.to_lowercase())
    }

    /// ldap-utils bound as Administrator over plain LDAP, trusting the CA.
    pub fn client(&self) -> LdapCli {
        let (dn, password) = self.admin_bind();
        LdapCli::new(&self.url())
            .bind(&dn, &password)
            .ca(&self.ca_pem)
    }

    /// `ldapsearch -LLL` output (unwrapped) as Administrator, subtree below `base`.
    ///
    /// Searches from the domain root also print a continuation reference to the configuration
    /// partition (`# refldap://…`), as AD does; it is not followed.
    #[track_caller]
    pub fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> String {
        self.client().search(base, filter, attrs)
    }

    /// Adds `ldif` as Administrator, panicking with `ldapadd`'s diagnostics on failure.
    #[track_caller]
    pub fn add_ldif(&self, ldif: &str) {
        self.client().add(ldif);
    }

    /// Applies `changetype` records as Administrator, panicking on failure.
    #[track_caller]
    pub fn modify_ldif(&self, ldif: &str) {
        self.client().modify(ldif);
    }

    /// The DN of the live object whose `sAMAccountName` is `sam` (users and groups both have one).
    ///
    /// # Panics
    /// Unless exactly one object matches.
    #[track_caller]
    pub fn dn_of(&self, sam: &str) -> String {
        let out = self.search(
            &self.base_dn,
            &format!("(sAMAccountName={})", escape_filter_value(sam)),
            &["1.1"],
        );
        let dns = ldif::dns(&out);
        assert!(
            dns.len() == 1,
            "expected one object with sAMAccountName={sam}, found {dns:?}"
        );
        dns.into_iter().next().expect("one DN")
    }

    /// Creates `OU=<name>` directly under the domain root.
    #[track_caller]
    pub fn add_ou(&self, name: &str) {
        self.add_ldif(&entry(
            &format!("OU={},{}", escape_dn_value(name), self.base_dn),
            &[("objectClass", "organizationalUnit"), ("ou", name)],
        ));
    }

    /// Creates an enabled user (`userAccountControl: 512`, password [`USER_PASSWORD`]) with
    /// `CN=<sam>` in `CN=Users`, or in `OU=<ou>` (made by [`SambaDc::add_ou`]; a value containing
    /// `=` is taken as the full container DN). `given` becomes `givenName` and `displayName`; the
    /// UPN is `<sam>@<dns domain>`.
    #[track_caller]
    pub fn add_user(&self, sam: &str, given: &str, mail: Option<&str>, ou: Option<&str>) {
        let upn = format!("{sam}@{}", self.realm.to_lowercase());
        let dn = format!("CN={},{}", escape_dn_value(sam), self.container(ou));
        let mut text = ldif::line("dn", &dn);
        for (name, value) in [
            ("objectClass", "user"),
            ("sAMAccountName", sam),
            ("userPrincipalName", &upn),
            ("givenName", given),
            ("displayName", given),
        ] {
            text += &ldif::line(name, value);
        }
        if let Some(mail) = mail {
            text += &ldif::line("mail", mail);
        }
        text += &ldif::binary_line("unicodePwd", &unicode_pwd(USER_PASSWORD));
        text += "userAccountControl: 512\n\n";
        self.add_ldif(&text);
    }

    /// Sets the ACCOUNTDISABLE bit (2) in the user's `userAccountControl`.
    #[track_caller]
    pub fn disable_user(&self, sam: &str) {
        let (dn, uac) = self.user_account_control(sam);
        self.set_user_account_control(&dn, uac | UAC_ACCOUNTDISABLE);
    }

    /// Clears the ACCOUNTDISABLE bit (2) in the user's `userAccountControl`.
    #[track_caller]
    pub fn enable_user(&self, sam: &str) {
        let (dn, uac) = self.user_account_control(sam);
        self.set_user_account_control(&dn, uac & !UAC_ACCOUNTDISABLE);
    }

    /// Deletes the user. Without the Recycle Bin (left off: it breaks Samba's link handling) AD
    /// keeps a tombstone with the same `objectGUID` under `CN=Deleted Objects`, visible only with
    /// the [`SHOW_DELETED_CONTROL`]; group memberships are removed.
    #[track_caller]
    pub fn delete_user(&self, sam: &str) {
        let dn = self.dn_of(sam);
        self.client().delete(&dn);
    }

    /// Creates a global security group (`groupType -2147483646`) `CN=<name>` with
    /// `sAMAccountName <name>` in `CN=Users` or `OU=<ou>` (as for [`SambaDc::add_user`]).
    #[track_caller]
    pub fn add_group(&self, name: &str, ou: Option<&str>) {
        self.add_ldif(&entry(
            &format!("CN={},{}", escape_dn_value(name), self.container(ou)),
            &[
                ("objectClass", "group"),
                ("sAMAccountName", name),
                ("groupType", "-2147483646"),
            ],
        ));
    }

    /// Adds users or groups, named by `sAMAccountName`, to `group`'s `member` attribute. A group
    /// member makes a nested group.
    #[track_caller]
    pub fn add_group_members(&self, group: &str, members: &[&str]) {
        if members.is_empty() {
            return;
        }
        let mut text = ldif::line("dn", &self.dn_of(group));
        text += "changetype: modify\nadd: member\n";
        for member in members {
            text += &ldif::line("member", &self.dn_of(member));
        }
        text += "-\n\n";
        self.modify_ldif(&text);
    }

    /// Adds `n` enabled users `<prefix>0001`, `<prefix>0002`, … in `CN=Users` with one `ldapadd`
    /// (measured 50–180 users/s on 2 busy cores). For speed they have no password, so their
    /// `userAccountControl` is 544 (NORMAL_ACCOUNT | PASSWD_NOTREQD), not 512; they have
    /// `givenName` = name and `mail` `<name>@example.com`.
    #[track_caller]
    pub fn bulk_users(&self, n: usize, prefix: &str) {
        let users = self.container(None);
        let realm = self.realm.to_lowercase();
        let mut text = String::with_capacity(n * 300);
        for i in 1..=n {
            let sam = format!("{prefix}{i:04}");
            text += &entry(
                &format!("CN={},{users}", escape_dn_value(&sam)),
                &[
                    ("objectClass", "user"),
                    ("sAMAccountName", &sam),
                    ("userPrincipalName", &format!("{sam}@{realm}")),
                    ("givenName", &sam),
                    ("mail", &format!("{sam}@example.com")),
                    ("userAccountControl", "544"),
                ],
            );
        }
        self.add_ldif(&text);
    }

    /// The `objectGUID` of an object given by DN (tombstones included) or by `sAMAccountName`
    /// (live objects), as the lower-case string AD tools show (`<GUID=…>` form, the first three
    /// groups byte-swapped from the wire order).
    #[track_caller]
    pub fn object_guid(&self, dn_or_sam: &str) -> String {
        let out = if dn_or_sam.contains('=') {
            self.client()
                .try_search(
                    &["-s", "base", "-E", &format!("!{SHOW_DELETED_CONTROL}")],
                    dn_or_sam,
                    "(objectClass=*)",
                    &["objectGUID"],
                )
                .ok()
        } else {
            let dn = self.dn_of(dn_or_sam);
            self.client()
                .try_search(&["-s", "base"], &dn, "(objectClass=*)", &["objectGUID"])
                .ok()
        };
        let values = ldif::attribute_values(&out, "objectGUID");
        let bytes = values
            .first()
            .unwrap_or_else(|| panic!("{dn_or_sam} has no objectGUID:\n{out}"));
        guid_string(bytes)
    }

    /// Stops Samba (SIGTERM, then SIGKILL after 10 s) and waits until it has exited. Idempotent.
    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(10));
    }

    /// Samba's process ID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The DC's temp dir (`dc/` with smb.conf and the databases, `tls/`, `samba.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `lines` lines of Samba's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    fn container(&self, ou: Option<&str>) -> String {
        match ou {
            None => format!("CN=Users,{}", self.base_dn),
            Some(dn) if dn.contains('=') => dn.to_string(),
            Some(ou) => format!("OU={},{}", escape_dn_value(ou), self.base_dn),
        }
    }

    fn user_account_control(&self, sam: &str) -> (String, u32) {
        let dn = self.dn_of(sam);
        let out = self
            .client()
            .try_search(
                &["-s", "base"],
                &dn,
                "(objectClass=*)",
                &["userAccountControl"],
            )
            .ok();
        let uac = ldif::attribute_strings(&out, "userAccountControl")
            .first()
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("{dn} has no userAccountControl:\n{out}"));
        (dn, uac as u32)
    }

    fn set_user_account_control(&self, dn: &str, uac: u32) {
        let mut text = ldif::line("dn", dn);
        text += &format!(
            "changetype: modify\nreplace: userAccountControl\nuserAccountControl: {uac}\n-\n\n"
        );
        self.modify_ldif(&text);
    }
}

impl Drop for SambaDc {
    fn drop(&mut self) {
        self.stop();
        keep_if_asked(&mut self.dir, "samba");
    }
}

/// Formats a 16-byte `objectGUID` as AD does: the first three fields are little-endian on the
/// wire, the last two are bytes in order. `40da f71c 6667 6241 be15 …` is `1cf7da40-6766-4162-be15-…`.
///
/// # Panics
/// When `bytes` is not 16 bytes long.
pub fn guid_string(bytes: &[u8]) -> String {
    let b: &[u8; 16] = bytes
        .try_into()
        .unwrap_or_else(|_| panic!("a GUID has 16 bytes, got {}", bytes.len()));
    let hex = |s: &[u8]| s.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        hex(&[b[3], b[2], b[1], b[0]]),
        hex(&[b[5], b[4]]),
        hex(&[b[7], b[6]]),
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

/// AD's `unicodePwd` value: the password in double quotes, UTF-16LE.
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// Directory shared by all DCs of all test processes: templates and address locks.
fn kit_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("orgsync-testkit");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Reserves a 127.0.0.N whose Samba ports are free: an exclusive lock on a per-address file that
/// the returned `File` holds until it is dropped (or the process dies).
fn reserve_address() -> (Ipv4Addr, File) {
    let dir = kit_dir();
    for n in 10..250u8 {
        let ip = Ipv4Addr::new(127, 0, 0, n);
        let path = dir.join(format!("samba-{ip}.lock"));
        let lock = File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => continue,
            Err(std::fs::TryLockError::Error(e)) => panic!("lock {}: {e}", path.display()),
        }
        let free = SAMBA_PORTS.iter().all(|&port| match ports::can_bind(SocketAddr::new(IpAddr::V4(ip), port)) {
            Ok(free) => free,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => panic!(
                "cannot bind {ip}:{port}: {e}. Samba's LDAP ports are fixed below 1024, so the AD tests must run as root"
            ),
            Err(e) => panic!("cannot test {ip}:{port}: {e}"),
        });
        if free {
            return (ip, lock);
        }
    }
    panic!("no 127.0.0.N (N in 10..250) has ports 389/636/3268/3269 free and unreserved");
}

/// A provisioned DC for `opts` to copy, made once per realm/domain/Samba version and shared by
/// all test processes, and the directory it was provisioned in (its `smb.conf` names that one:
/// provisioning happens in a `.partial` directory that is renamed when complete).
fn template(opts: &SambaOptions) -> (PathBuf, PathBuf) {
    let version = ports::run_command(
        Command::new("samba").arg("-V"),
        None,
        Duration::from_secs(30),
    );
    assert!(
        version.status.success(),
        "samba -V failed (install Samba with scripts/setup.sh)"
    );
    let key = format!(
        "samba-template-v{TEMPLATE_FORMAT}-{}-{}-{}",
        String::from_utf8_lossy(&version.stdout).trim(),
        opts.realm,
        opts.domain
    )
    .replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.',
        "_",
    );
    let dir = kit_dir();
    let template = dir.join(&key);
    let marker = template.join(".orgsync-template-complete");
    let lock_path = dir.join(format!("{key}.lock"));
    let lock =
        File::create(&lock_path).unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
    // Another process may be provisioning the same template: wait for it.
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if let Ok(provisioned_as) = std::fs::read_to_string(&marker)
        && provisioned_as.starts_with('/')
    {
        return (template, PathBuf::from(provisioned_as));
    }
    // Not there, or left incomplete by a process that died while provisioning.
    let partial = dir.join(format!("{key}.partial"));
    for stale in [&template, &partial] {
        if stale.exists() {
            std::fs::remove_dir_all(stale)
                .unwrap_or_else(|e| panic!("remove {}: {e}", stale.display()));
        }
    }
    provision(opts, &partial);
    std::fs::rename(&partial, &template).expect("move the provisioned template into place");
    std::fs::write(&marker, partial.display().to_string()).expect("mark the template complete");
    (template, partial)
}

/// `samba-tool domain provision` into `target` (5–8 s).
fn provision(opts: &SambaOptions, target: &Path) {
    let t = Instant::now();
    let mut cmd = Command::new("samba-tool");
    cmd.args(["domain", "provision"])
        .arg(format!("--targetdir={}", target.display()))
        .arg(format!("--realm={}", opts.realm))
        .arg(format!("--domain={}", opts.domain))
        .args([
            "--server-role=dc",
            "--dns-backend=NONE",
            "--use-rfc2307",
            "--host-name=DC1",
        ])
        .arg(format!("--adminpass={ADMIN_PASSWORD}"))
        // samba-tool is Python and must use Debian's python3 with its own modules.
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME");
    let out = ports::run_command(&mut cmd, None, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "`{}` failed:\n{}{}",
        ports::show_command(&cmd),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var_os("ORGSYNC_TESTKIT_TIMINGS").is_some() {
        eprintln!(
            "samba: provisioned {} in {:?}",
            target.display(),
            t.elapsed()
        );
    }
}

/// Copies a directory tree with `cp -a`, keeping the xattrs (sysvol ACLs) and modes Samba set.
fn copy_tree(from: &Path, to: &Path) {
    let mut cmd = Command::new("cp");
    cmd.arg("-a").arg(from).arg(to);
    let out = ports::run_command(&mut cmd, None, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "`{}` failed: {}",
        ports::show_command(&cmd),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The provisioned `smb.conf` moved from `old_root` to `new_root`, with `overrides` replacing the
/// same parameters in `[global]`, and `panic action` (which would try to mail root) removed.
fn patch_smb_conf(text: &str, old_root: &Path, new_root: &Path, overrides: &[String]) -> String {
    let text = text.replace(
        &old_root.display().to_string(),
        &new_root.display().to_string(),
    );
    let overridden: Vec<&str> = overrides
        .iter()
        .map(|o| o.split('=').next().unwrap_or("").trim())
        .chain(["panic action"])
        .collect();
    let mut out = String::new();
    for line in text.lines() {
        let name = line.split('=').next().unwrap_or("").trim();
        if line.contains('=') && overridden.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            continue;
        }
        out += line;
        out.push('\n');
        if line.trim() == "[global]" {
            for o in overrides {
                out += "\t";
                out += o;
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_byte_order_matches_ad() {
        let wire = [
            0x40, 0xda, 0xf7, 0x1c, 0x66, 0x67, 0x62, 0x41, 0xbe, 0x15, 0x62, 0x9c, 0x88, 0x42,
            0xa0, 0x35,
        ];
        assert_eq!(guid_string(&wire), "1cf7da40-6766-4162-be15-629c8842a035");
    }

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        assert_eq!(unicode_pwd("ab"), vec![b'"', 0, b'a', 0, b'b', 0, b'"', 0]);
    }

    #[test]
    fn smb_conf_is_moved_and_overridden() {
        let conf = "[global]\n\tlog file = /var/log/samba/log.%m\n\tprivate dir = /t/private\n\tpanic action = x\n[sysvol]\n\tpath = /t/state/sysvol\n";
        let out = patch_smb_conf(
            conf,
            Path::new("/t"),
            Path::new("/new"),
            &["log file = /new/log".into()],
        );
        assert_eq!(
            out,
            "[global]\n\tlog file = /new/log\n\tprivate dir = /new/private\n[sysvol]\n\tpath = /new/state/sysvol\n"
        );
    }
}
