//! Runs the real `orgsync` binary the way an admin would, in an isolated installation: its own
//! HOME, config file and data directory, a clean environment (no keyring session bus, so secrets
//! go to the 0600 file), and only the variables a test passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::slapd::Slapd;

/// The path of a binary built from this workspace (`orgsync`, `orgsyncd`, ...).
///
/// Test binaries live in `target/<profile>/deps`, the workspace's binaries one level up (where
/// the test kit's own binaries, like `orgsync-bench`, live too). Build them first (`cargo build --workspace --bins`, which `scripts/test.sh` does).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().expect("a binary lives in a directory");
    // Test binaries live in target/<profile>/deps; the test kit's own binaries beside orgsync.
    let profile_dir = if dir.ends_with("deps") {
        dir.parent().expect("deps has a parent")
    } else {
        dir
    };
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace's binaries first (cargo build --workspace --bins, or run scripts/test.sh)",
        path.display()
    );
    if let Some(newer) = newer_source(&path) {
        panic!(
            "{} is older than {}: the test would run a stale build. Build the binaries first (cargo build --workspace --bins --locked, or run scripts/test.sh)",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A source file of the workspace changed after `binary` was built, if any. Checked once per
/// binary and process (a few hundred `stat`s).
fn newer_source(binary: &Path) -> Option<PathBuf> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CHECKED: OnceLock<Mutex<HashMap<PathBuf, Option<PathBuf>>>> = OnceLock::new();
    let checked = CHECKED.get_or_init(Default::default);
    let mut checked = checked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = checked.get(binary) {
        return found.clone();
    }
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    // The sources each binary is built from (a change elsewhere does not rebuild it).
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let sources: &[&str] = match name {
        "orgsync" | "orgsyncd" => &["daemon/src", "proto/src"],
        "orgsync-tray" => &["tray/src", "proto/src"],
        _ => &["tests/src", "proto/src"],
    };
    let mut stack: Vec<PathBuf> = sources.iter().map(|p| root.join(p)).collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified())
            && newest.as_ref().is_none_or(|(t, _)| modified > *t)
        {
            newest = Some((modified, path));
        }
    }
    let found = match (built, newest) {
        (Some(built), Some((changed, path))) if changed > built => Some(path),
        _ => None,
    };
    checked.insert(binary.to_path_buf(), found.clone());
    found
}

/// The `email` of each entry of a JSON list from a report (e.g. `report["users"]["enabled"]`).
pub fn emails(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|entry| entry["email"].as_str().expect("an email"))
        .collect()
}

/// What a command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn ok(self) -> Run {
        self.expect_code(0)
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// One orgsync installation in a temp directory.
pub struct Installation {
    dir: TempDir,
    env: Vec<(String, String)>,
}

impl Default for Installation {
    fn default() -> Self {
        Installation::new()
    }
}

impl Installation {
    pub fn new() -> Installation {
        let dir = tempfile::Builder::new()
            .prefix("orgsync-cli-")
            .tempdir()
            .expect("temp dir for an orgsync installation");
        std::fs::create_dir_all(dir.path().join("home")).expect("create HOME");
        Installation {
            dir,
            env: Vec::new(),
        }
    }

    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Sets an environment variable for every later command.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// A command for `program` with this installation's clean environment, for tests that must
    /// wrap orgsync (e.g. in a D-Bus session). `ORGSYNC` holds the path of the orgsync binary.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("ORGSYNC", binary("orgsync"))
            .env("ORGSYNC_CONFIG", self.config_file())
            .env("ORGSYNC_DATA_DIR", self.data_dir())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Runs `orgsync <args>` with `stdin` fed to it.
    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        use std::io::Write;
        let mut command = self.command(binary("orgsync"));
        command
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("start orgsync");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(text.as_bytes())
                .expect("write orgsync's stdin");
        }
        drop(child.stdin.take());
        Run::from(blocking(|| child.wait_with_output()).expect("wait for orgsync"))
    }

    /// Runs `orgsync <args>`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    /// Runs `orgsync <args>` with `dir` as its working directory.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Run {
        let mut command = self.command(binary("orgsync"));
        command.args(args).current_dir(dir);
        Run::from(blocking(|| command.output()).expect("run orgsync"))
    }

    /// Runs `orgsync sync`, which must read incrementally, then checks with `orgsync test` (a
    /// full read) that nothing is left to change: an incremental sync must end where a full read
    /// would. `change` names what was changed, for the message.
    #[track_caller]
    pub fn assert_incremental_sync_matches_a_full_read(&self, change: &str) {
        let report = self.run(&["sync", "--json"]).ok().json();
        assert_eq!(report["read"]["mode"], "incremental", "{change}: {report}");
        let full = self.run(&["test", "--json"]).ok().json();
        let diff = &full["diff"];
        for part in [
            "invite",
            "remove",
            "groupsCreated",
            "groupsUpdated",
            "emailChanged",
        ] {
            assert!(
                diff[part].as_array().is_some_and(Vec::is_empty),
                "after {change}, a full read still finds {part}: {diff}\nthe incremental sync reported: {report}"
            );
        }
    }

    /// What `orgsync test --json` reads: the emails of enabled and disabled users, and the
    /// group names, both sorted.
    pub fn users_and_groups(&self) -> (Vec<String>, Vec<String>) {
        let report = self.run(&["test", "--json"]).ok().json();
        let mut users: Vec<String> = ["enabled", "disabled"]
            .iter()
            .flat_map(|state| emails(&report["users"][*state]))
            .map(str::to_string)
            .collect();
        users.sort();
        let mut groups: Vec<String> = report["groups"]
            .as_array()
            .map(|groups| {
                groups
                    .iter()
                    .filter_map(|g| g["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        groups.sort();
        (users, groups)
    }

    /// `orgsync last-sync users|groups`: the time, or `None` if never.
    pub fn last_sync(&self, what: &str) -> Option<String> {
        let out = self.run(&["last-sync", what]).ok().stdout;
        Some(out.trim().to_string()).filter(|t| !t.is_empty())
    }

    /// `orgsync config set KEY VALUE`, which must succeed.
    pub fn set(&self, key: &str, value: &str) {
        self.run(&["config", "set", key, value]).ok();
    }

    /// `orgsync config set-secret KEY --stdin`, which must succeed.
    pub fn set_secret(&self, key: &str, value: &str) {
        self.run_with_stdin(
            &["config", "set-secret", key, "--stdin"],
            Some(&format!("{value}\n")),
        )
        .ok();
    }

    /// Points the installation at the organization server `server` and logs in with its API key.
    pub fn login_to(&self, server: &crate::orgserver::OrgServer) {
        self.set("server.url", &server.base_url());
        self.run(&["login", &server.client_id(), &server.client_secret()])
            .ok();
    }

    /// Points the installation at the Graph emulator `graph` as Entra ID, signing in with its
    /// client secret.
    pub fn use_entra(&self, graph: &crate::graph::GraphServer) {
        let options = graph.options();
        self.set("directory.type", "entra");
        self.set("entra.tenant", &options.tenant_id);
        self.set("entra.client_id", &options.client_id);
        self.set("entra.login_url", &graph.base_url());
        self.set("entra.graph_url", &graph.base_url());
        self.set_secret("entra.client_secret", &options.client_secret);
    }

    /// Points the installation at the Google emulator `google` with its service account key
    /// in a file, acting as `admin`.
    pub fn use_google(&self, google: &crate::google::GoogleServer, admin: &str) {
        let key = self.config_file().with_file_name("google-key.json");
        std::fs::write(&key, google.key_file_json()).expect("write the key file");
        self.set("directory.type", "google");
        self.set("google.key_file", key.to_str().expect("a UTF-8 path"));
        self.set("google.admin_user", admin);
        self.set("google.api_url", &google.base_url());
    }

    /// Points the installation at the Okta emulator `okta`, signing in with its API token.
    pub fn use_okta(&self, okta: &crate::okta::OktaServer) {
        self.set("directory.type", "okta");
        self.set("okta.org_url", &okta.base_url());
        self.set_secret("okta.token", &okta.options().api_token);
    }

    /// Points the installation at the OneLogin emulator `onelogin` with its API credential.
    pub fn use_onelogin(&self, onelogin: &crate::onelogin::OneLoginServer) {
        self.set("directory.type", "onelogin");
        self.set("onelogin.client_id", &onelogin.options().client_id);
        self.set("onelogin.api_url", &onelogin.base_url());
        self.set_secret("onelogin.client_secret", &onelogin.options().client_secret);
    }

    /// Points the installation at a test slapd over plain LDAP, with people under `ou=people`
    /// and groups under `ou=groups`, bound as the rootdn.
    pub fn use_slapd(&self, slapd: &Slapd) {
        self.set("ldap.host", "127.0.0.1");
        self.set("ldap.port", &slapd.port().to_string());
        self.set("ldap.bind_dn", &slapd.admin_dn());
        self.set("ldap.root_path", slapd.suffix());
        self.set("ldap.user_path", "ou=people");
        self.set("ldap.group_path", "ou=groups");
        self.set("ldap.connect_timeout_seconds", "5");
        self.set_secret("ldap.bind_password", slapd.admin_password());
    }
}

/// Runs `wait` (a wait for a child process) so that, inside a test's multi-threaded runtime, the
/// servers' tasks this worker holds move to another: a blocked worker's queued tasks (its LIFO
/// slot) are not stolen otherwise, and an emulator's answer could wait for the test forever.
fn blocking<T>(wait: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}
