use std::path::Path;

use super::*;

fn resolve(text: &str) -> Result<ResolvedConfig, ConfigError> {
    Config::parse(text, Path::new("test.toml"))?.resolve()
}

const MINIMAL: &str = r#"
[ldap]
host = "ldap.example.org"
bind_dn = "cn=reader,dc=example,dc=org"
root_path = "dc=example,dc=org"
"#;

#[test]
fn minimal_ldap_config_gets_openldap_defaults() {
    let config = resolve(MINIMAL).unwrap();
    assert_eq!(config.ldap.url, "ldap://ldap.example.org:389");
    assert_eq!(config.ldap.user_filter, "(objectClass=inetOrgPerson)");
    assert_eq!(config.ldap.group_filter, "(objectClass=groupOfNames)");
    assert_eq!(config.ldap.user_base, "dc=example,dc=org");
    assert_eq!(
        config.ldap.external_id,
        ExternalIdSource::Attribute("entryUUID".into())
    );
    assert_eq!(config.ldap.page_size, Some(500));
    assert_eq!(config.server.urls.api, "https://api.bitwarden.com");
    assert_eq!(
        config.server.urls.identity,
        "https://identity.bitwarden.com"
    );
    assert!(config.sync.remove_missing_users);
}

#[test]
fn active_directory_mode_uses_ad_defaults() {
    let text = format!("{MINIMAL}active_directory = true\nencryption = \"ldaps\"\n");
    let config = resolve(&text).unwrap();
    assert_eq!(config.ldap.url, "ldaps://ldap.example.org:636");
    assert_eq!(config.ldap.user_base, "CN=Users,dc=example,dc=org");
    assert_eq!(config.ldap.user_filter, "(objectClass=person)");
    assert_eq!(config.ldap.group_name_attribute, "name");
    assert_eq!(config.ldap.external_id, ExternalIdSource::ObjectGuid);
}

#[test]
fn paths_and_filters_combine_with_the_root() {
    let text = format!(
        "{MINIMAL}\n[sync]\nuser_path = \"ou=people\"\nuser_filter = \"(departmentNumber=7)\"\n"
    );
    let config = resolve(&text).unwrap();
    assert_eq!(config.ldap.user_base, "ou=people,dc=example,dc=org");
    assert_eq!(
        config.ldap.user_filter,
        "(&(objectClass=inetOrgPerson)(departmentNumber=7))"
    );
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let err = resolve(&format!("{MINIMAL}hostname = \"x\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `hostname`"), "{err}");
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let text = r#"
[server]
url = "ftp://nope"
[ldap]
page_size = 0
[sync]
user_filter = "cn=x"
use_email_prefix_suffix = true
email_suffix = "example.com"
"#;
    let err = resolve(text).unwrap_err().to_string();
    for key in [
        "server.url",
        "ldap.host",
        "ldap.bind_dn",
        "ldap.root_path",
        "ldap.page_size",
        "sync.user_filter",
        "sync.email_suffix",
    ] {
        assert!(err.contains(key), "{key} missing from: {err}");
    }
}

#[test]
fn self_hosted_base_url_derives_api_and_identity() {
    let config = resolve(&format!(
        "{MINIMAL}[server]\nurl = \"https://vault.example.com/\"\n"
    ))
    .unwrap();
    assert_eq!(config.server.urls.api, "https://vault.example.com/api");
    assert_eq!(
        config.server.urls.identity,
        "https://vault.example.com/identity"
    );
}

#[test]
fn set_key_types_values_and_keeps_comments() {
    let text = "# my comment\n[ldap]\nhost = \"a\"\n";
    let out = set_key(text, "ldap.port", Some("1389"), Path::new("c.toml")).unwrap();
    assert!(out.contains("# my comment"));
    assert!(out.contains("port = 1389"));
    let out = set_key(
        &out,
        "ldap.active_directory",
        Some("true"),
        Path::new("c.toml"),
    )
    .unwrap();
    assert!(out.contains("active_directory = true"));
    let out = set_key(
        &out,
        "sync.user_filter",
        Some("(cn=1)"),
        Path::new("c.toml"),
    )
    .unwrap();
    assert!(out.contains("user_filter = \"(cn=1)\""));
    let out = set_key(&out, "ldap.port", None, Path::new("c.toml")).unwrap();
    assert!(!out.contains("port"));
}

#[test]
fn set_key_refuses_bad_values_unknown_keys_and_secrets() {
    let path = Path::new("c.toml");
    let err = set_key("", "ldap.port", Some("many"), path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ldap.port") && err.contains("many"), "{err}");
    let err = set_key("", "ldap.hostname", Some("x"), path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("hostname"), "{err}");
    let err = set_key("", "ldap.bind_password", Some("x"), path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("set-secret"), "{err}");
}

#[test]
fn set_key_validates_the_changed_key_but_not_unfinished_others() {
    let path = Path::new("c.toml");
    // ldap.host etc. are missing, yet setting a valid filter works.
    set_key("", "sync.user_filter", Some("(uid=a)"), path).unwrap();
    let err = set_key("", "sync.user_filter", Some("uid=a"), path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sync.user_filter") && err.contains("parenthesised"),
        "{err}"
    );
}

#[test]
fn every_key_has_a_doc_comment_and_config_set_takes_it() {
    let keys = super::keys();
    assert!(keys.len() > 40, "{}", keys.len());
    for key in &keys {
        assert!(!key.doc.trim().is_empty(), "{} has no doc comment", key.key);
        // A listed key is one `config set` knows (any refusal is about the value).
        if let Err(e) = super::set_key("", &key.key, None, std::path::Path::new("config.toml")) {
            assert!(
                !e.to_string().contains("not a config key"),
                "{}: {e}",
                key.key
            );
        }
    }
    let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    for expected in [
        "ldap.host",
        "sync.full_read_hours",
        "daemon.catch_up",
        "safety.max_removals",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
