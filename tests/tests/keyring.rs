//! Secrets in a real Secret Service keyring: a private D-Bus session with gnome-keyring, as on a
//! desktop. Without a session bus, `auto` falls back to the 0600 file (covered by ldap_sync.rs).

use testkit::cli::{Installation, Run};

/// Runs `script` (sh) inside a fresh D-Bus session with an unlocked gnome-keyring.
fn in_keyring_session(inst: &Installation, script: &str) -> Run {
    let full = format!(
        "set -e\nprintf 'keyring-pw' | gnome-keyring-daemon --unlock --components=secrets >/dev/null\n{script}"
    );
    Run::from(
        inst.command("dbus-run-session")
            .args(["--", "sh", "-c", &full])
            .output()
            .expect("run dbus-run-session (installed by scripts/setup.sh)"),
    )
}

#[test]
fn secrets_go_to_the_desktop_keyring_when_one_answers() {
    let inst = Installation::new();
    let run = in_keyring_session(
        &inst,
        r#"
echo bind-pw-123 | "$ORGSYNC" config set-secret ldap.bind_password --stdin
"$ORGSYNC" config show
"$ORGSYNC" status --json
"#,
    )
    .ok();
    assert!(
        run.stdout
            .contains("Stored ldap.bind_password in the desktop keyring"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ldap.bind_password: set (desktop keyring"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(r#""bindPasswordSet": true"#),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("bind-pw-123"),
        "secret shown: {}",
        run.stdout
    );
    assert!(
        !inst.data_dir().join("secrets.json").exists(),
        "with a keyring, no secrets file is written"
    );
}

#[test]
fn an_explicit_keyring_backend_without_a_keyring_is_a_clear_error() {
    let inst = Installation::new();
    inst.set("secrets.backend", "keyring");
    let out = inst
        .run_with_stdin(
            &["config", "set-secret", "ldap.bind_password", "--stdin"],
            Some("pw\n"),
        )
        .expect_code(1);
    assert!(
        out.stderr.contains("keyring is not available"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("secrets.backend"), "{}", out.stderr);
}
