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

/// Directory Connector's secrets as it keeps them on Linux: Secret Service items with the
/// attributes `service` = "Bitwarden Directory Connector" and `account` = the key, each value
/// JSON-encoded (written here with libsecret's own `secret-tool`, as the connector's libsecret
/// does). `import-bwdc` reads them and stores them in orgsync's own keyring entries.
#[tokio::test(flavor = "multi_thread")]
async fn the_connectors_keychain_secrets_are_imported() {
    use serde_json::json;
    use testkit::bwdc;
    use testkit::orgserver::{OrgServer, OrgServerOptions};
    let org = OrgServer::start(OrgServerOptions::default()).await;
    let inst = Installation::new();
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "id": "3a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "orgUrl": "https://example.okta.com",
        "token": bwdc::STORED_SECURELY,
    });
    bwdc::write(
        dir.path(),
        &bwdc::data_json(&org, 3, config, bwdc::sync_options(), false),
    );
    let store = |account: &str, value: &str| {
        format!(
            "printf '%s' '{}' | secret-tool store --label='Bitwarden Directory Connector' service 'Bitwarden Directory Connector' account '{account}'\n",
            serde_json::to_string(value).unwrap()
        )
    };
    let script = [
        store(
            "secretOkta:3a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "00okta-token-Zq9",
        ),
        store("apiKeyClientId", &org.client_id()),
        store("apiKeyClientSecret", &org.client_secret()),
        format!("\"$ORGSYNC\" import-bwdc '{}'\n", dir.path().display()),
        "\"$ORGSYNC\" config show\n".into(),
        "\"$ORGSYNC\" status --json\n".into(),
    ]
    .concat();
    let run = in_keyring_session(&inst, &script).ok();
    for expected in [
        "okta.token: found (keyring entry \"Bitwarden Directory Connector\" / secretOkta:3a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d)",
        "org.client_secret: found (keyring entry",
        "Stored okta.token in the desktop keyring",
        "Logged in to organization",
        "okta.token: set (desktop keyring",
        r#""loggedIn": true"#,
    ] {
        assert!(
            run.stdout.contains(expected),
            "missing {expected:?} in:\n{}",
            run.stdout
        );
    }
    for secret in ["00okta-token-Zq9", org.client_secret().as_str()] {
        assert!(!run.stdout.contains(secret), "secret shown: {}", run.stdout);
    }
    assert!(!inst.data_dir().join("secrets.json").exists());
}
