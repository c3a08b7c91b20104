//! The packaging for always-on use: the systemd units in `packaging/systemd/`, the sysusers.d and
//! tmpfiles.d entries, the default server config, the credentials drop-in, `scripts/install.sh`
//! and the `.deb` built by `packaging/deb/build.sh`.
//!
//! Everything installs into temp directories (no root, no running systemd needed). The checks
//! with `systemd-analyze`, `systemd-sysusers`, `systemd-tmpfiles` and `dpkg-deb` run when those
//! tools are on the machine and are skipped with a note otherwise, except under
//! `scripts/test.sh` (`ORGSYNC_REQUIRE_ALL_TESTS=1`), where a skip fails; the rest always runs.
//! Needs the workspace's binaries: `cargo build --workspace --bins`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;
use testkit::cli::{Installation, binary};

const SECRET_VARS: [&str; 3] = [
    "ORGSYNC_LDAP_BIND_PASSWORD",
    "ORGSYNC_CLIENT_ID",
    "ORGSYNC_CLIENT_SECRET",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

fn packaging(path: &str) -> PathBuf {
    repo().join("packaging").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("orgsync-packaging-")
        .tempdir()
        .expect("temp dir")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Panics with both streams unless `output` exited 0.
fn succeeded(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Whether `tool` can be run (it answers `--version`).
fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A check that cannot run here. Under `scripts/test.sh` (and so CI), which installs every
/// tool these checks need, that is a failure: a skipped check must not pass silently.
fn skip(what: &str) {
    if std::env::var_os("ORGSYNC_REQUIRE_ALL_TESTS").is_some_and(|v| v == "1") {
        panic!(
            "{what}; scripts/test.sh requires every packaging check to run (scripts/setup.sh installs the tools)"
        );
    }
    eprintln!("note: skipped {what}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether two files hold the same bytes (read in chunks: the debug binaries are large).
fn same_contents(a: &Path, b: &Path) -> bool {
    let open = |p: &Path| std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (mut fa, mut fb) = (open(a), open(b));
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// A systemd unit file: for each section, its assignments in order. Keys may repeat; an empty
/// assignment (`CapabilityBoundingSet=`) is kept as an empty value.
#[derive(Debug)]
struct Unit {
    path: PathBuf,
    sections: BTreeMap<String, Vec<(String, String)>>,
}

impl Unit {
    fn load(path: &Path) -> Unit {
        Unit::parse(path, &read(path))
    }

    fn parse(path: &Path, text: &str) -> Unit {
        let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut pending = String::new();
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            // A trailing backslash continues the line.
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let line = std::mem::take(&mut pending) + line;
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = Some(name.to_string());
                sections.entry(name.to_string()).or_default();
                continue;
            }
            let (key, value) = line.split_once('=').unwrap_or_else(|| {
                panic!("{}:{}: not KEY=VALUE: {raw}", path.display(), number + 1)
            });
            let section = current
                .as_ref()
                .unwrap_or_else(|| panic!("{}:{}: outside a section", path.display(), number + 1));
            sections
                .get_mut(section)
                .unwrap()
                .push((key.trim().to_string(), value.trim().to_string()));
        }
        Unit {
            path: path.to_path_buf(),
            sections,
        }
    }

    /// Every value of `key` in `section`, in order.
    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.sections
            .get(section)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The effective (last) value of `key`, which must be set.
    fn get(&self, section: &str, key: &str) -> &str {
        self.all(section, key)
            .last()
            .copied()
            .unwrap_or_else(|| panic!("{}: [{section}] {key}= is not set", self.path.display()))
    }

    fn has(&self, section: &str, key: &str) -> bool {
        !self.all(section, key).is_empty()
    }

    /// The words of every value of a list setting (`After=a b`, `After=c` -> a, b, c).
    fn words(&self, section: &str, key: &str) -> BTreeSet<&str> {
        self.all(section, key)
            .into_iter()
            .flat_map(str::split_whitespace)
            .collect()
    }

    /// `Environment=` assignments as a map.
    fn environment(&self) -> BTreeMap<&str, &str> {
        self.words("Service", "Environment")
            .into_iter()
            .map(|kv| {
                kv.split_once('=')
                    .unwrap_or_else(|| panic!("Environment entry without =: {kv}"))
            })
            .collect()
    }

    /// A time span setting (`45s`, `1min 30s`, `500ms`, a bare number of seconds).
    fn time_span(&self, section: &str, key: &str) -> Duration {
        parse_time_span(self.get(section, key))
            .unwrap_or_else(|| panic!("{}: {key}= is not a time span", self.path.display()))
    }
}

fn parse_time_span(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for word in text.split_whitespace() {
        let split = word
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(word.len());
        let (number, unit) = word.split_at(split);
        let n: u64 = number.parse().ok()?;
        total += match unit {
            "" | "s" | "sec" => Duration::from_secs(n),
            "ms" | "msec" => Duration::from_millis(n),
            "m" | "min" => Duration::from_secs(n * 60),
            "h" | "hr" => Duration::from_secs(n * 3600),
            _ => return None,
        };
    }
    Some(total)
}

/// Splits a line into words, keeping double-quoted words together (sysusers.d's GECOS).
fn fields(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The non-comment lines of a sysusers.d / tmpfiles.d file, split into fields.
fn entries(path: &Path) -> Vec<Vec<String>> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(fields)
        .collect()
}

/// A directory with tiny stand-ins for `orgsync` and `orgsyncd`, for installs that only check
/// where files go.
fn stub_binaries(dir: &Path) -> PathBuf {
    let bin = dir.join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["orgsync", "orgsyncd"] {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\necho {name} stub\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// Runs scripts/install.sh with `args`, a clean environment, HOME=`home` and `extra` variables:
/// no session bus or runtime directory, so it never reaches a systemd user manager.
fn install(home: &Path, args: &[&str], extra: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(repo().join("scripts/install.sh"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home);
    for (key, value) in extra {
        command.env(key, value);
    }
    command.output().expect("run scripts/install.sh")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// The lines of `actual` and `template` agree except the ExecStart lines.
fn same_apart_from_exec_start(actual: &str, template: &str) {
    let strip = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("ExecStart="))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        strip(actual),
        strip(template),
        "the installed unit differs from its template apart from ExecStart"
    );
}

// --- scripts/install.sh ------------------------------------------------------------------------

#[test]
fn user_install_copies_the_binaries_and_points_the_unit_at_them() {
    let orgsyncd = binary("orgsyncd");
    let from = orgsyncd.parent().unwrap().to_path_buf();
    assert!(binary("orgsync").is_file());
    let tmp = temp_dir();
    let home = tmp.path().join("home");
    let prefix = tmp.path().join("prefix");
    std::fs::create_dir_all(&home).unwrap();
    let args = [
        "--user",
        "--no-build",
        "--from",
        s(&from),
        "--prefix",
        s(&prefix),
    ];

    let first = install(&home, &args, &[]);
    succeeded("install.sh --user", &first);
    let out = stdout(&first);
    for hint in [
        "systemctl --user enable --now orgsyncd",
        "loginctl enable-linger",
        "secrets.backend file",
    ] {
        assert!(out.contains(hint), "no hint {hint:?} in:\n{out}");
    }

    for name in ["orgsync", "orgsyncd"] {
        let installed = prefix.join("bin").join(name);
        assert_eq!(mode(&installed), 0o755, "{}", installed.display());
        assert!(
            same_contents(&installed, &from.join(name)),
            "{} is not a copy of {}",
            installed.display(),
            from.join(name).display()
        );
    }
    let version = Command::new(prefix.join("bin/orgsyncd"))
        .arg("--version")
        .output()
        .unwrap();
    succeeded("the installed orgsyncd --version", &version);
    assert!(stdout(&version).starts_with("orgsyncd "));

    let unit_path = home.join(".config/systemd/user/orgsyncd.service");
    assert_eq!(mode(&unit_path), 0o644);
    let unit = Unit::load(&unit_path);
    assert_eq!(
        unit.get("Service", "ExecStart"),
        s(&prefix.join("bin/orgsyncd")),
        "the unit runs the installed orgsyncd"
    );
    same_apart_from_exec_start(
        &read(&unit_path),
        &read(&packaging("systemd/user/orgsyncd.service")),
    );

    // Again: idempotent, nothing rewritten.
    let second = install(&home, &args, &[]);
    succeeded("install.sh --user, again", &second);
    let out = stdout(&second);
    assert!(
        !out.contains("installed "),
        "second run rewrote files:\n{out}"
    );
    for path in [
        prefix.join("bin/orgsync"),
        prefix.join("bin/orgsyncd"),
        unit_path,
    ] {
        assert!(
            out.contains(&format!("unchanged {}", path.display())),
            "{} not reported unchanged:\n{out}",
            path.display()
        );
    }
}

#[test]
fn user_install_defaults_to_local_bin_and_the_home_specifier() {
    let tmp = temp_dir();
    let stubs = stub_binaries(tmp.path());
    let home = tmp.path().join("home");
    let xdg = tmp.path().join("xdg-config");
    std::fs::create_dir_all(&home).unwrap();
    let output = install(
        &home,
        &["--from", s(&stubs)],
        &[("XDG_CONFIG_HOME", xdg.as_path())],
    );
    succeeded("install.sh (defaults)", &output);
    for name in ["orgsync", "orgsyncd"] {
        assert_eq!(mode(&home.join(".local/bin").join(name)), 0o755);
    }
    let unit = Unit::load(&xdg.join("systemd/user/orgsyncd.service"));
    assert_eq!(
        unit.get("Service", "ExecStart"),
        "%h/.local/bin/orgsyncd",
        "the default location stays relative to the home directory"
    );
    assert!(
        stdout(&output).contains("no systemd user manager answers here"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn system_install_stages_everything_under_destdir() {
    let tmp = temp_dir();
    let stubs = stub_binaries(tmp.path());
    let dest = tmp.path().join("root");
    let home = tmp.path().join("home");
    let args = ["--system", "--destdir", s(&dest), "--from", s(&stubs)];
    let first = install(&home, &args, &[]);
    succeeded("install.sh --system --destdir", &first);

    let at = |p: &str| dest.join(p.trim_start_matches('/'));
    for (path, expected) in [
        ("/usr/local/bin/orgsync", 0o755),
        ("/usr/local/bin/orgsyncd", 0o755),
        ("/etc/systemd/system/orgsyncd.service", 0o644),
        (
            "/etc/systemd/system/orgsyncd.service.d/credentials.conf.example",
            0o644,
        ),
        ("/etc/sysusers.d/orgsync.conf", 0o644),
        ("/etc/tmpfiles.d/orgsync.conf", 0o644),
        ("/etc/orgsync", 0o770),
        ("/etc/orgsync/config.toml", 0o640),
        ("/var/lib/orgsync", 0o700),
    ] {
        assert_eq!(mode(&at(path)), expected, "mode of {path}");
    }
    assert_eq!(
        read(&at("/etc/orgsync/config.toml")),
        read(&packaging("config.toml"))
    );
    assert_eq!(
        read(&at("/etc/sysusers.d/orgsync.conf")),
        read(&packaging("systemd/system/orgsync.sysusers"))
    );
    assert_eq!(
        read(&at("/etc/tmpfiles.d/orgsync.conf")),
        read(&packaging("systemd/system/orgsync.tmpfiles"))
    );
    let unit_text = read(&at("/etc/systemd/system/orgsyncd.service"));
    let unit = Unit::parse(Path::new("orgsyncd.service"), &unit_text);
    assert_eq!(unit.get("Service", "ExecStart"), "/usr/local/bin/orgsyncd");
    same_apart_from_exec_start(
        &unit_text,
        &read(&packaging("systemd/system/orgsyncd.service")),
    );
    assert!(
        stdout(&first).contains("systemd-sysusers /etc/sysusers.d/orgsync.conf"),
        "staging says what is left to do on the target:\n{}",
        stdout(&first)
    );

    // An existing config is kept; everything else is unchanged.
    std::fs::write(at("/etc/orgsync/config.toml"), "[ldap]\nhost = \"kept\"\n").unwrap();
    let second = install(&home, &args, &[]);
    succeeded("install.sh --system --destdir, again", &second);
    let out = stdout(&second);
    assert!(out.contains("kept the existing"), "{out}");
    assert!(!out.contains("installed "), "{out}");
    assert_eq!(
        read(&at("/etc/orgsync/config.toml")),
        "[ldap]\nhost = \"kept\"\n"
    );

    // Another prefix: the unit and the credentials drop-in run orgsyncd from there.
    let dest2 = tmp.path().join("root2");
    let output = install(
        &home,
        &["--system", "--prefix", "/opt/orgsync", "--from", s(&stubs)],
        &[("DESTDIR", dest2.as_path())],
    );
    succeeded(
        "install.sh --system --prefix /opt/orgsync (DESTDIR)",
        &output,
    );
    assert_eq!(mode(&dest2.join("opt/orgsync/bin/orgsyncd")), 0o755);
    let unit = Unit::load(&dest2.join("etc/systemd/system/orgsyncd.service"));
    assert_eq!(
        unit.get("Service", "ExecStart"),
        "/opt/orgsync/bin/orgsyncd"
    );
    let dropin =
        read(&dest2.join("etc/systemd/system/orgsyncd.service.d/credentials.conf.example"));
    assert!(
        dropin.contains("exec /opt/orgsync/bin/orgsyncd'") && !dropin.contains("/usr/local/bin"),
        "{dropin}"
    );
}

#[test]
fn install_refuses_bad_arguments_clearly() {
    let tmp = temp_dir();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cases: [(&[&str], i32, &str); 5] = [
        (&["--frobnicate"], 2, "unknown argument: --frobnicate"),
        (&["--prefix", "relative/dir"], 2, "absolute path"),
        (&["--prefix", "/tmp/with space"], 2, "characters"),
        (&["--from"], 2, "--from needs a directory"),
        (
            &["--from", "/nonexistent/orgsync-build"],
            1,
            "/nonexistent/orgsync-build does not exist",
        ),
    ];
    for (args, code, message) in cases {
        let output = install(&home, args, &[]);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?}: expected {message:?} in:\n{}",
            stderr(&output)
        );
    }
    let help = install(&home, &["--help"], &[]);
    succeeded("install.sh --help", &help);
    assert!(stdout(&help).contains("--destdir DIR"));
    if !is_root() {
        let output = install(&home, &["--system", "--no-build"], &[]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains("run it as root"),
            "{}",
            stderr(&output)
        );
    }
}

// --- The unit files ---------------------------------------------------------------------------

/// What both units must say about running orgsyncd.
fn assert_service_basics(unit: &Unit) {
    let path = unit.path.display();
    assert!(
        matches!(unit.get("Service", "Type"), "exec" | "simple"),
        "{path}: Type"
    );
    assert!(
        unit.get("Service", "ExecStart").ends_with("/orgsyncd"),
        "{path}: ExecStart"
    );
    assert_eq!(unit.get("Service", "Restart"), "on-failure", "{path}");
    let restart_sec = unit.time_span("Service", "RestartSec");
    assert!(
        (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&restart_sec),
        "{path}: RestartSec {restart_sec:?}"
    );
    // orgsyncd waits up to 30 s for a run in progress after SIGTERM.
    let stop = unit.time_span("Service", "TimeoutStopSec");
    assert!(
        stop >= Duration::from_secs(35),
        "{path}: TimeoutStopSec {stop:?} leaves no room for the 30 s grace"
    );
    assert!(
        unit.words("Service", "RestartPreventExitStatus")
            .contains("2"),
        "{path}: a bad config (exit 2) must not restart in a loop"
    );
    assert_eq!(unit.get("Service", "UMask"), "0077", "{path}");
    assert_eq!(unit.get("Service", "NoNewPrivileges"), "yes", "{path}");
    // The journal is the log: nothing redirects stderr elsewhere.
    for key in ["StandardError", "StandardOutput"] {
        assert!(
            unit.all("Service", key)
                .iter()
                .all(|v| v.starts_with("journal") || *v == "inherit"),
            "{path}: {key}"
        );
    }
    assert!(
        unit.environment().keys().all(|k| !SECRET_VARS.contains(k)),
        "{path}: secrets must not be in Environment= (systemctl show prints them)"
    );
}

#[test]
fn the_user_unit_runs_orgsyncd_from_the_home_directory() {
    let unit = Unit::load(&packaging("systemd/user/orgsyncd.service"));
    assert_service_basics(&unit);
    assert_eq!(unit.get("Service", "ExecStart"), "%h/.local/bin/orgsyncd");
    assert_eq!(unit.get("Install", "WantedBy"), "default.target");
    assert!(!unit.has("Service", "User"), "a user unit runs as its user");
    // Settings that need a mount or user namespace make a user service fail to start where
    // unprivileged user namespaces are off; only seccomp/no_new_privs ones belong here.
    for key in [
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "PrivateUsers",
        "ReadWritePaths",
        "ProtectKernelTunables",
    ] {
        assert!(!unit.has("Service", key), "user unit sets {key}");
    }
    // No network-online.target in a user manager.
    assert!(!unit.has("Unit", "After") && !unit.has("Unit", "Wants"));
    assert_eq!(
        unit.words("Service", "RestrictAddressFamilies"),
        BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"]),
        "AF_UNIX stays for the desktop keyring (D-Bus)"
    );
    assert_eq!(unit.get("Service", "MemoryDenyWriteExecute"), "yes");
}

#[test]
fn the_system_unit_runs_as_orgsync_with_the_hardening() {
    let unit = Unit::load(&packaging("systemd/system/orgsyncd.service"));
    assert_service_basics(&unit);
    assert_eq!(unit.get("Service", "ExecStart"), "/usr/local/bin/orgsyncd");
    assert_eq!(unit.get("Service", "User"), "orgsync");
    assert_eq!(unit.get("Service", "Group"), "orgsync");
    assert_eq!(unit.get("Install", "WantedBy"), "multi-user.target");
    assert!(
        unit.words("Unit", "After")
            .contains("network-online.target")
    );
    assert!(
        unit.words("Unit", "Wants")
            .contains("network-online.target")
    );

    let env = unit.environment();
    assert_eq!(env.get("ORGSYNC_CONFIG"), Some(&"/etc/orgsync/config.toml"));
    assert_eq!(env.get("ORGSYNC_DATA_DIR"), Some(&"/var/lib/orgsync"));
    assert_eq!(unit.get("Service", "StateDirectory"), "orgsync");
    assert_eq!(
        format!("/var/lib/{}", unit.get("Service", "StateDirectory")),
        env["ORGSYNC_DATA_DIR"],
        "the data directory is the state directory"
    );
    assert_eq!(unit.get("Service", "StateDirectoryMode"), "0700");
    assert!(
        unit.words("Service", "ReadWritePaths")
            .contains("/etc/orgsync"),
        "the daemon rewrites config.toml when `orgsync config set` goes through it"
    );

    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("PrivateUsers", "yes"),
        ("PrivateMounts", "yes"),
        ("ProtectHostname", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectProc", "invisible"),
        ("ProcSubset", "pid"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RemoveIPC", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("SystemCallErrorNumber", "EPERM"),
        ("UMask", "0077"),
        // Empty: no capabilities at all.
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
    ] {
        assert_eq!(unit.get("Service", key), value, "[Service] {key}");
    }
    assert_eq!(
        unit.words("Service", "RestrictAddressFamilies"),
        BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"])
    );
    let filters = unit.all("Service", "SystemCallFilter");
    assert!(filters.contains(&"@system-service"), "{filters:?}");
    assert!(filters.contains(&"~@privileged @resources"), "{filters:?}");
}

#[test]
fn sysusers_and_tmpfiles_match_the_system_unit() {
    let unit = Unit::load(&packaging("systemd/system/orgsyncd.service"));
    let sysusers_path = packaging("systemd/system/orgsync.sysusers");
    let tmpfiles_path = packaging("systemd/system/orgsync.tmpfiles");

    let users = entries(&sysusers_path);
    assert_eq!(users.len(), 1, "{users:?}");
    let user = &users[0];
    assert_eq!(user[0], "u");
    assert_eq!(user[1], unit.get("Service", "User"));
    assert_eq!(user[4], "/var/lib/orgsync", "home is the state directory");
    assert!(user[5].ends_with("/nologin"), "{user:?}");

    let dirs: BTreeMap<String, Vec<String>> = entries(&tmpfiles_path)
        .into_iter()
        .map(|e| {
            assert_eq!(e[0], "d", "{e:?}");
            (e[1].clone(), e[2..5].to_vec())
        })
        .collect();
    assert_eq!(dirs["/etc/orgsync"], ["0770", "root", "orgsync"]);
    assert_eq!(dirs["/var/lib/orgsync"], ["0700", "orgsync", "orgsync"]);
    for path in unit.words("Service", "ReadWritePaths") {
        assert!(
            dirs.contains_key(path.trim_start_matches('-')),
            "{path} is not created"
        );
    }

    // Apply both to an empty root with the real tools.
    if !have("systemd-sysusers") {
        return skip("systemd-sysusers and systemd-tmpfiles checks: systemd-sysusers is missing");
    }
    let tmp = temp_dir();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), "").unwrap();
    std::fs::write(root.join("etc/group"), "").unwrap();
    let output = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.display()))
        .arg(&sysusers_path)
        .output()
        .unwrap();
    succeeded("systemd-sysusers --root", &output);
    let passwd = read(&root.join("etc/passwd"));
    let line = passwd
        .lines()
        .find(|l| l.starts_with("orgsync:"))
        .unwrap_or_else(|| panic!("no orgsync in passwd:\n{passwd}"));
    let fields: Vec<&str> = line.split(':').collect();
    assert_eq!(fields[5], "/var/lib/orgsync", "{line}");
    let gid = fields[3];
    assert!(read(&root.join("etc/group")).contains(&format!("orgsync:x:{gid}:")));

    if !is_root() || !have("systemd-tmpfiles") {
        return skip("systemd-tmpfiles --create check: needs root (chown) and systemd-tmpfiles");
    }
    let output = Command::new("systemd-tmpfiles")
        .arg("--create")
        .arg(format!("--root={}", root.display()))
        .arg(&tmpfiles_path)
        .output()
        .unwrap();
    succeeded("systemd-tmpfiles --create --root", &output);
    use std::os::unix::fs::MetadataExt;
    let etc = std::fs::metadata(root.join("etc/orgsync")).unwrap();
    assert_eq!(
        (etc.mode() & 0o7777, etc.uid(), etc.gid().to_string()),
        (0o770, 0, gid.to_string())
    );
    let state = std::fs::metadata(root.join("var/lib/orgsync")).unwrap();
    assert_eq!(state.mode() & 0o7777, 0o700);
    assert_eq!(state.uid().to_string(), fields[2]);
}

#[test]
fn the_default_server_config_is_valid_and_keeps_secrets_in_a_file() {
    let inst = Installation::new();
    std::fs::copy(packaging("config.toml"), inst.config_file()).unwrap();
    let shown = inst.run(&["config", "show"]).ok();
    assert!(
        shown.stdout.contains("[secrets]\nbackend = \"file\""),
        "{}",
        shown.stdout
    );
    // `config set` edits it in place and keeps the comments.
    inst.set("ldap.host", "ldap.example.com");
    let text = std::fs::read_to_string(inst.config_file()).unwrap();
    assert!(text.contains("host = \"ldap.example.com\""), "{text}");
    assert!(text.contains("# [server]"), "comments survive: {text}");
    let shown = inst.run(&["config", "show"]).ok();
    assert!(shown.stdout.contains("host = \"ldap.example.com\""));
}

#[test]
fn the_credentials_drop_in_exports_what_orgsyncd_reads() {
    let path = packaging("systemd/system/credentials.conf.example");
    let dropin = Unit::load(&path);
    let loads: BTreeMap<&str, &str> = dropin
        .all("Service", "LoadCredential")
        .into_iter()
        .map(|v| v.split_once(':').expect("LoadCredential=ID:PATH"))
        .collect();
    assert_eq!(
        loads.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(SECRET_VARS),
        "one credential per secret variable, named like it"
    );
    assert!(loads.values().all(|p| p.starts_with("/etc/credstore/")));

    // The first ExecStart= resets the unit's, the second wraps orgsyncd.
    let exec = dropin.all("Service", "ExecStart");
    assert_eq!(exec.len(), 2, "{exec:?}");
    assert_eq!(exec[0], "");
    let raw = exec[1]
        .strip_prefix("/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .expect("ExecStart=/bin/sh -c '...'");
    // With no %, \ or ' inside and every $ doubled, systemd's unescaping is exactly $$ -> $.
    assert!(
        !raw.contains(['%', '\\', '\'']),
        "{raw}: would need more unescaping"
    );
    assert!(
        !raw.replace("$$", "").contains('$'),
        "a single $ would be expanded by systemd: {raw}"
    );
    let script = raw.replace("$$", "$");
    assert!(script.ends_with("exec /usr/local/bin/orgsyncd"), "{script}");

    let tmp = temp_dir();
    let creds = tmp.path().join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let password = "bind pw with 'quotes', \"doubles\" and $dollar";
    std::fs::write(
        creds.join("ORGSYNC_LDAP_BIND_PASSWORD"),
        format!("{password}\n"),
    )
    .unwrap();
    std::fs::write(creds.join("ORGSYNC_CLIENT_ID"), "organization.1234").unwrap();
    std::fs::write(creds.join("ORGSYNC_ENTRA_CLIENT_SECRET"), "entra~secret\n").unwrap();

    // What the wrapper hands over, exactly (the trailing newline dropped, no secret missing).
    let inst = Installation::new();
    let output = inst
        .command("/bin/sh")
        .arg("-c")
        .arg(script.replace("/usr/local/bin/orgsyncd", "env"))
        .env("CREDENTIALS_DIRECTORY", &creds)
        .output()
        .unwrap();
    succeeded("the credentials wrapper (env)", &output);
    let env = stdout(&output);
    let lines: Vec<&str> = env.lines().collect();
    assert!(
        lines.contains(&format!("ORGSYNC_LDAP_BIND_PASSWORD={password}").as_str()),
        "{env}"
    );
    assert!(
        lines.contains(&"ORGSYNC_CLIENT_ID=organization.1234"),
        "{env}"
    );
    assert!(
        lines.contains(&"ORGSYNC_ENTRA_CLIENT_SECRET=entra~secret"),
        "{env}"
    );
    assert!(!env.contains("ORGSYNC_CLIENT_SECRET"), "{env}");

    // And orgsync reads them from there.
    let output = inst
        .command("/bin/sh")
        .arg("-c")
        .arg(script.replace(
            "/usr/local/bin/orgsyncd",
            &format!("{} config show", binary("orgsync").display()),
        ))
        .env("CREDENTIALS_DIRECTORY", &creds)
        .output()
        .unwrap();
    succeeded("the credentials wrapper (orgsync config show)", &output);
    let shown = stdout(&output);
    assert!(
        shown.contains("ldap.bind_password: set (environment variable ORGSYNC_LDAP_BIND_PASSWORD)"),
        "{shown}"
    );
    assert!(
        shown.contains("org.client_id: set (environment variable ORGSYNC_CLIENT_ID)"),
        "{shown}"
    );
    assert!(!shown.contains(password), "a secret was printed: {shown}");
}

// --- systemd-analyze -----------------------------------------------------------------------------

/// stderr lines of a `systemd-analyze` run that mention one of our files.
fn complaints(output: &Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| l.contains("orgsync") || l.contains("credentials.conf"))
        .map(String::from)
        .collect()
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        return skip("systemd-analyze verify: systemd-analyze is missing");
    }
    let tmp = temp_dir();
    let stubs = stub_binaries(tmp.path());

    // The user unit, as install.sh installs it.
    let home = tmp.path().join("home");
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let prefix = tmp.path().join("prefix");
    let output = install(&home, &["--from", s(&stubs), "--prefix", s(&prefix)], &[]);
    succeeded("install.sh --user (stubs)", &output);
    let user_unit = home.join(".config/systemd/user/orgsyncd.service");
    let output = Command::new("systemd-analyze")
        .args(["--user", "--man=no", "verify"])
        .arg(&user_unit)
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    succeeded("systemd-analyze --user verify", &output);
    assert_eq!(complaints(&output), Vec::<String>::new(), "user unit");

    // The system unit with the credentials drop-in, running the stub.
    let dir = tmp.path().join("system");
    std::fs::create_dir_all(dir.join("orgsyncd.service.d")).unwrap();
    let orgsyncd = stubs.join("orgsyncd");
    std::fs::write(
        dir.join("orgsyncd.service"),
        read(&packaging("systemd/system/orgsyncd.service")).replace(
            "ExecStart=/usr/local/bin/orgsyncd",
            &format!("ExecStart={}", orgsyncd.display()),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("orgsyncd.service.d/credentials.conf"),
        read(&packaging("systemd/system/credentials.conf.example"))
            .replace("/usr/local/bin/orgsyncd", s(&orgsyncd)),
    )
    .unwrap();
    let output = Command::new("systemd-analyze")
        .args(["--man=no", "verify"])
        .arg(dir.join("orgsyncd.service"))
        .output()
        .unwrap();
    succeeded("systemd-analyze verify", &output);
    assert_eq!(complaints(&output), Vec::<String>::new(), "system unit");

    // The exposure score of the system unit (systemd >= 250 can score a unit file offline).
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(dir.join("orgsyncd.service"))
        .output()
        .unwrap();
    let text = stdout(&output) + &stderr(&output);
    let Some(line) = text.lines().find(|l| l.contains("Overall exposure level")) else {
        return skip(&format!(
            "systemd-analyze security --offline: not supported here:\n{text}"
        ));
    };
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in {line:?}"));
    assert!(score <= 2.0, "the system unit's exposure rose: {line}");
    eprintln!("systemd-analyze security: {line}");
}

// --- The .deb --------------------------------------------------------------------------------

#[test]
fn the_deb_has_the_binaries_unit_config_and_scripts() {
    if !have("dpkg-deb") {
        return skip("the .deb: dpkg-deb is missing");
    }
    let from = binary("orgsyncd").parent().unwrap().to_path_buf();
    let tmp = temp_dir();
    let out = tmp.path().join("out");
    let output = Command::new(packaging("deb/build.sh"))
        .args([
            "--from",
            s(&from),
            "--out",
            s(&out),
            "--compression",
            "none",
        ])
        .output()
        .unwrap();
    succeeded("packaging/deb/build.sh", &output);
    let deb = PathBuf::from(
        stdout(&output)
            .lines()
            .last()
            .expect("the .deb's path")
            .trim(),
    );
    assert!(deb.is_file(), "{}", deb.display());
    assert!(deb.starts_with(&out));

    let dpkg = |args: &[&str]| -> String {
        let output = Command::new("dpkg-deb")
            .args(args)
            .arg(&deb)
            .output()
            .unwrap();
        succeeded(&format!("dpkg-deb {args:?}"), &output);
        stdout(&output)
    };
    let field = |name: &str| {
        dpkg(&["--field"])
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    };
    assert_eq!(field("Package").as_deref(), Some("orgsync"));
    assert!(field("Version").unwrap().ends_with("-1"));
    assert!(field("Depends").unwrap().contains("libc6"));

    // dpkg-deb -c: "-rwxr-xr-x root/root 123 2026-01-01 00:00 ./usr/bin/orgsync"
    let listing = dpkg(&["--contents"]);
    let files: BTreeMap<String, (String, String)> = listing
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[5].trim_start_matches('.')
                    .trim_end_matches('/')
                    .to_string(),
                (f[0].to_string(), f[1].to_string()),
            )
        })
        .collect();
    for (path, perms) in [
        ("/usr/bin/orgsync", "-rwxr-xr-x"),
        ("/usr/bin/orgsyncd", "-rwxr-xr-x"),
        ("/usr/lib/systemd/system/orgsyncd.service", "-rw-r--r--"),
        ("/usr/lib/sysusers.d/orgsync.conf", "-rw-r--r--"),
        ("/usr/lib/tmpfiles.d/orgsync.conf", "-rw-r--r--"),
        ("/etc/orgsync", "drwxrwx---"),
        ("/etc/orgsync/config.toml", "-rw-r-----"),
        ("/usr/share/doc/orgsync/copyright", "-rw-r--r--"),
        (
            "/usr/share/doc/orgsync/examples/credentials.conf",
            "-rw-r--r--",
        ),
    ] {
        let (actual, owner) = files
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"));
        assert_eq!(actual, perms, "{path}");
        assert_eq!(owner, "root/root", "{path}");
    }

    let control = tmp.path().join("control");
    let output = Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(&control)
        .output()
        .unwrap();
    succeeded("dpkg-deb --control", &output);
    assert_eq!(
        read(&control.join("conffiles")).trim(),
        "/etc/orgsync/config.toml"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.join(script);
        assert_eq!(mode(&path), 0o755, "{script}");
        let check = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        succeeded(&format!("sh -n {script}"), &check);
    }
    let postinst = read(&control.join("postinst"));
    for step in [
        "systemd-sysusers",
        "systemd-tmpfiles --create",
        "daemon-reload",
    ] {
        assert!(postinst.contains(step), "postinst lacks {step}");
    }
    // It may tell the admin to enable orgsyncd (echo), but must not do it itself.
    assert!(
        !postinst
            .lines()
            .map(str::trim)
            .any(|l| l.starts_with("systemctl enable") || l.contains("deb-systemd-helper enable")),
        "the package must not enable orgsyncd by itself"
    );

    let root = tmp.path().join("root");
    let output = Command::new("dpkg-deb")
        .arg("--extract")
        .arg(&deb)
        .arg(&root)
        .output()
        .unwrap();
    succeeded("dpkg-deb --extract", &output);
    let unit_text = read(&root.join("usr/lib/systemd/system/orgsyncd.service"));
    let unit = Unit::parse(Path::new("orgsyncd.service"), &unit_text);
    assert_eq!(unit.get("Service", "ExecStart"), "/usr/bin/orgsyncd");
    same_apart_from_exec_start(
        &unit_text,
        &read(&packaging("systemd/system/orgsyncd.service")),
    );
    assert_eq!(
        read(&root.join("etc/orgsync/config.toml")),
        read(&packaging("config.toml"))
    );
    assert!(
        read(&root.join("usr/share/doc/orgsync/examples/credentials.conf"))
            .contains("exec /usr/bin/orgsyncd'")
    );
    // Stripped, and still runs.
    let packaged = root.join("usr/bin/orgsyncd");
    assert!(
        std::fs::metadata(&packaged).unwrap().len()
            < std::fs::metadata(from.join("orgsyncd")).unwrap().len(),
        "the packaged binary is stripped"
    );
    let version = Command::new(&packaged).arg("--version").output().unwrap();
    succeeded("the packaged orgsyncd --version", &version);
}

#[test]
fn user_install_with_the_tray_adds_it_and_an_autostart_entry_naming_it() {
    let from = binary("orgsync-tray").parent().unwrap().to_path_buf();
    let tmp = temp_dir();
    let home = tmp.path().join("home");
    let prefix = tmp.path().join("prefix");
    std::fs::create_dir_all(&home).unwrap();
    let args = ["--with-tray", "--from", s(&from), "--prefix", s(&prefix)];
    let output = install(&home, &args, &[]);
    succeeded("install.sh --with-tray", &output);

    let tray = prefix.join("bin/orgsync-tray");
    assert!(tray.is_file(), "{} missing", tray.display());
    let entry =
        std::fs::read_to_string(home.join(".config/autostart/orgsync-tray.desktop")).unwrap();
    assert!(
        entry.contains(&format!("\nExec={}\n", tray.display())),
        "the autostart entry runs the installed tray:\n{entry}"
    );
    assert!(
        entry.contains(&format!("\nTryExec={}\n", tray.display())),
        "{entry}"
    );

    // The tray belongs to a desktop session, not to a system install.
    let refused = install(
        &home,
        &[
            "--system",
            "--with-tray",
            "--destdir",
            s(&tmp.path().join("d")),
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
}
