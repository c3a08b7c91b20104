//! The connector's `data.json` of every directory type and state version (fixtures written from
//! `directory-connector.md` §1.4–§1.7 and §2), read and mapped as `import-bwdc` does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::keychain::Keychain;
use super::{Import, read};
use crate::secrets::SecretKey;

/// A keyring holding the connector's entries (values JSON-encoded, as it stores them).
struct Entries(HashMap<String, String>);

impl Keychain for Entries {
    fn get(&self, account: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(account).cloned())
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/bwdc/fixtures")
        .join(name)
}

fn imported(name: &str, entries: &[(&str, &str)]) -> Import {
    let keychain = Entries(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::to_string(v).unwrap()))
            .collect(),
    );
    read(Some(&fixture(name)), &|_| None, &keychain).unwrap()
}

/// The config file the import writes, parsed back.
fn config(import: &Import) -> (crate::config::Config, Vec<String>) {
    let path = Path::new("/nonexistent/config.toml");
    let (text, notes) = import.config_text(path);
    (crate::config::Config::parse(&text, path).unwrap(), notes)
}

fn secret(import: &Import, key: &str) -> Option<String> {
    let key = SecretKey::from_user_name(key).or(match key {
        "org.client_id" => Some(SecretKey::ORG_CLIENT_ID),
        _ => None,
    })?;
    import
        .mapped
        .secrets
        .iter()
        .find(|s| s.key == key)
        .map(|s| s.value.expose().to_string())
}

#[test]
fn active_directory_in_secure_mode() {
    let import = imported(
        "v8-ldap-ad.json",
        &[
            ("secretLdap:c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "bind-pw"),
            (
                "apiKeyClientId",
                "organization.2b7c9d1e-3f4a-4b5c-8d6e-7f8091a2b3c4",
            ),
            ("apiKeyClientSecret", "api-secret"),
        ],
    );
    let (config, notes) = config(&import);
    assert_eq!(config.directory.kind, crate::config::DirectoryKind::Ldap);
    let ldap = &config.ldap;
    assert_eq!(ldap.host, "dc1.corp.example.com");
    assert_eq!(ldap.port, Some(636));
    assert_eq!(ldap.encryption, crate::config::Encryption::Ldaps);
    assert!(ldap.active_directory);
    assert_eq!(ldap.bind_dn, "CORP\\svc-bitwarden");
    assert_eq!(ldap.root_path, "DC=corp,DC=example,DC=com");
    assert_eq!(ldap.user_path.as_deref(), Some("OU=Staff"));
    assert_eq!(
        ldap.external_id_attribute, None,
        "AD keeps objectGUID, as the connector"
    );
    assert_eq!(ldap.user_object_class, None, "AD's own defaults");
    assert_eq!(
        ldap.user_filter.as_deref(),
        Some("(memberOf=CN=Bitwarden,OU=Groups,DC=corp,DC=example,DC=com)")
    );
    assert_eq!(config.sync.interval_minutes, 5, "the connector's minimum");
    assert!(config.sync.remove_disabled && config.sync.large_import);
    assert!(config.sync.invite_users_after_provisioning);
    assert_eq!(config.server.url, "cloud-us");
    assert_eq!(
        secret(&import, "ldap.bind_password").as_deref(),
        Some("bind-pw")
    );
    assert_eq!(
        secret(&import, "org.client_secret").as_deref(),
        Some("api-secret")
    );
    assert!(
        import.mapped.missing.is_empty(),
        "{:?}",
        import.mapped.missing
    );
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn openldap_at_state_version_5_keeps_inviting_and_its_dn_ids() {
    let import = imported("v5-ldap-openldap.json", &[("secretLdap", "pw")]);
    let (config, _) = config(&import);
    let ldap = &config.ldap;
    assert_eq!(ldap.port, Some(389), "the GUI stores the port as text");
    assert_eq!(ldap.encryption, crate::config::Encryption::None);
    assert_eq!(
        ldap.root_path, "dc=example,dc=org",
        "what the connector searched"
    );
    assert!(!ldap.paged_search);
    assert_eq!(ldap.external_id_attribute.as_deref(), Some("dn"));
    assert_eq!(ldap.member_attribute.as_deref(), Some("uniqueMember"));
    assert_eq!(
        ldap.group_object_class.as_deref(),
        Some("groupOfUniqueNames")
    );
    assert!(ldap.use_email_prefix_suffix);
    assert_eq!(ldap.email_suffix.as_deref(), Some("@example.org"));
    assert_eq!(ldap.revision_date_attribute, None);
    assert!(
        config.sync.invite_users_after_provisioning,
        "before version 8 the connector always invited"
    );
    assert!(!config.sync.overwrite_existing, "never carried over");
    let notes = import.mapped.notes.join("\n");
    for expected in [
        "drops what comes before the first dc=",
        "sync.overwriteExisting",
        "ldap.disabled_filter",
        "sync.revisionDateAttribute",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in {notes}");
    }
    // The unscoped entry: this config has no id.
    assert_eq!(secret(&import, "ldap.bind_password").as_deref(), Some("pw"));
    let missing: Vec<&str> = import
        .mapped
        .missing
        .iter()
        .map(|m| m.key.as_str())
        .collect();
    assert_eq!(missing, ["org.client_id", "org.client_secret"]);
    assert!(import.mapped.missing[0].how.contains("orgsync login"));
}

#[test]
fn entra_for_us_government_on_the_eu_cloud() {
    let import = imported(
        "v8-entra-usgov.json",
        &[(
            "secretEntra:a9b8c7d6-e5f4-4a3b-8c2d-1e0f9a8b7c6d",
            "client-secret",
        )],
    );
    let (config, notes) = config(&import);
    assert_eq!(config.entra.tenant, "contoso.onmicrosoft.us");
    assert_eq!(
        config.entra.client_id,
        "11111111-2222-4333-8444-555555555555"
    );
    assert_eq!(format!("{:?}", config.entra.cloud), "Usgov");
    assert_eq!(
        config.entra.user_filter.as_deref(),
        Some("includeGroup:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee|exclude:test@contoso.us")
    );
    assert_eq!(
        config.entra.group_filter.as_deref(),
        Some("include:Sales,IT")
    );
    assert_eq!(config.server.url, "cloud-eu");
    assert_eq!(
        config.sync.interval_minutes, 5,
        "off in the connector: orgsync's default"
    );
    assert!(
        import
            .mapped
            .notes
            .iter()
            .any(|n| n.contains("stop-polling"))
    );
    assert_eq!(
        secret(&import, "entra.client_secret").as_deref(),
        Some("client-secret")
    );
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn google_in_plaintext_mode_becomes_a_key_file() {
    let import = imported("v8-google.json", &[]);
    let (config, _) = config(&import);
    assert_eq!(config.google.admin_user, "admin@example.org");
    assert_eq!(config.google.domain.as_deref(), Some("example.org"));
    assert_eq!(config.google.customer.as_deref(), Some("C01abc23d"));
    assert_eq!(
        config.google.user_filter.as_deref(),
        Some("exclude:joe@example.org | orgUnitPath=/Engineering")
    );
    assert!(!config.sync.groups);
    assert_eq!(config.server.url, "https://bitwarden.example.org");
    assert_eq!(
        config.server.api_url.as_deref(),
        Some("https://api.bitwarden.example.org")
    );
    let key: serde_json::Value =
        serde_json::from_str(&secret(&import, "google.key").unwrap()).unwrap();
    assert_eq!(
        key["client_email"],
        "bitwarden@example-project.iam.gserviceaccount.com"
    );
    let pem = key["private_key"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMII"), "{pem}");
    assert_eq!(
        secret(&import, "org.client_secret").as_deref(),
        Some("plain-api-secret")
    );
}

#[test]
fn okta_with_the_trailing_slash_and_native_filters() {
    let import = imported(
        "v8-okta.json",
        &[("secretOkta:c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f", "00token")],
    );
    let (config, notes) = config(&import);
    assert_eq!(config.okta.org_url, "https://example.okta.com");
    assert_eq!(
        config.okta.group_filter.as_deref(),
        Some("include:Sales,IT | type eq \"OKTA_GROUP\"")
    );
    assert_eq!(secret(&import, "okta.token").as_deref(), Some("00token"));
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn onelogin_in_the_eu_with_an_email_suffix() {
    let import = imported(
        "v8-onelogin.json",
        &[(
            "secretOneLogin:d3e4f5a6-b7c8-4d9e-8f0a-2b3c4d5e6f70",
            "ol-secret",
        )],
    );
    let (config, _) = config(&import);
    assert_eq!(config.onelogin.client_id, "0123456789abcdef");
    assert_eq!(config.onelogin.region, "eu");
    assert_eq!(config.onelogin.email_suffix.as_deref(), Some("@example.eu"));
    assert_eq!(
        config.onelogin.group_filter.as_deref(),
        Some("include: Integration Test Role")
    );
    assert_eq!(
        secret(&import, "onelogin.client_secret").as_deref(),
        Some("ol-secret")
    );
}

#[test]
fn state_version_4_nests_everything_under_the_active_account() {
    let import = imported(
        "v4-okta-nested.json",
        &[(
            "9c4d6e8f-0a1b-4c2d-8e3f-405162738495_oktaToken",
            "legacy-token",
        )],
    );
    assert_eq!(import.connector.state_version, 4);
    let (config, _) = config(&import);
    assert_eq!(config.okta.org_url, "https://legacy.okta.com");
    assert_eq!(config.server.url, "https://bw.example.net");
    assert!(config.sync.invite_users_after_provisioning);
    assert_eq!(
        secret(&import, "okta.token").as_deref(),
        Some("legacy-token")
    );
    assert_eq!(
        secret(&import, "org.client_id").as_deref(),
        Some("organization.8b3c5d7e-9f0a-4b1c-8d2e-3f4051627384")
    );
    assert_eq!(
        secret(&import, "org.client_secret").as_deref(),
        Some("nested-api-secret")
    );
}

#[test]
fn state_version_3_reads_the_azure_configuration() {
    let import = imported(
        "v3-entra-azure-nested.json",
        &[("secretAzure", "az-secret")],
    );
    let (config, _) = config(&import);
    assert_eq!(config.entra.tenant, "fabrikam.onmicrosoft.com");
    assert_eq!(
        secret(&import, "entra.client_secret").as_deref(),
        Some("az-secret")
    );
    let missing: Vec<&str> = import
        .mapped
        .missing
        .iter()
        .map(|m| m.key.as_str())
        .collect();
    assert_eq!(
        missing,
        ["org.client_secret"],
        "the id is in the file, the secret nowhere"
    );
}

#[test]
fn every_flat_state_version_reads_alike_and_only_8_defaults_to_not_inviting() {
    let text = std::fs::read_to_string(fixture("v8-okta.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for version in 5..=8 {
        let mut data: serde_json::Value = serde_json::from_str(&text).unwrap();
        data["stateVersion"] = version.into();
        // Hand-edited files sometimes have the type as text.
        data["directoryType"] = "3".into();
        data["sync"]
            .as_object_mut()
            .unwrap()
            .remove("inviteUsersAfterProvisioning");
        let path = dir.path().join(format!("v{version}.json"));
        std::fs::write(&path, data.to_string()).unwrap();
        let import = read(Some(&path), &|_| None, &Entries(HashMap::new())).unwrap();
        let (config, _) = config(&import);
        assert_eq!(
            config.okta.org_url, "https://example.okta.com",
            "version {version}"
        );
        assert_eq!(
            config.sync.invite_users_after_provisioning,
            version < 8,
            "version {version}"
        );
    }
}
