use std::path::Path;

use super::*;

fn resolve(text: &str) -> Result<ResolvedConfig, ConfigError> {
    Config::parse(text, Path::new("test.toml"))?.resolve()
}

fn ldap(config: &ResolvedConfig) -> &ResolvedLdap {
    match &config.directory {
        DirectorySettings::Ldap(ldap) => ldap,
        other => panic!("not LDAP: {other:?}"),
    }
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
    assert_eq!(ldap(&config).url, "ldap://ldap.example.org:389");
    assert_eq!(ldap(&config).user_filter, "(objectClass=inetOrgPerson)");
    assert_eq!(ldap(&config).group_filter, "(objectClass=groupOfNames)");
    assert_eq!(ldap(&config).user_base, "dc=example,dc=org");
    assert_eq!(
        ldap(&config).external_id,
        ExternalIdSource::Attribute("entryUUID".into())
    );
    assert_eq!(ldap(&config).page_size, Some(500));
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
    assert_eq!(ldap(&config).url, "ldaps://ldap.example.org:636");
    assert_eq!(ldap(&config).user_base, "CN=Users,dc=example,dc=org");
    assert_eq!(ldap(&config).user_filter, "(objectClass=person)");
    assert_eq!(ldap(&config).group_name_attribute, "name");
    assert_eq!(ldap(&config).external_id, ExternalIdSource::ObjectGuid);
}

#[test]
fn paths_and_filters_combine_with_the_root() {
    let text =
        format!("{MINIMAL}user_path = \"ou=people\"\nuser_filter = \"(departmentNumber=7)\"\n");
    let config = resolve(&text).unwrap();
    assert_eq!(ldap(&config).user_base, "ou=people,dc=example,dc=org");
    assert_eq!(
        ldap(&config).user_filter,
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
        "ldap.user_filter",
        "ldap.email_suffix",
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
        "ldap.user_filter",
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
    set_key("", "ldap.user_filter", Some("(uid=a)"), path).unwrap();
    let err = set_key("", "ldap.user_filter", Some("uid=a"), path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ldap.user_filter") && err.contains("parenthesised"),
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
        "ldap.user_path",
        "directory.type",
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

#[test]
fn a_file_of_the_previous_release_resolves_the_same_and_warns_per_moved_key() {
    let old = format!(
        "directory = \"ldap\"\n{MINIMAL}\n[sync]\ninterval_minutes = 7\nuser_path = \"ou=people\"\nuser_filter = \"(departmentNumber=7)\"\n"
    );
    let new = format!(
        "[directory]\ntype = \"ldap\"\n{MINIMAL}user_path = \"ou=people\"\nuser_filter = \"(departmentNumber=7)\"\n[sync]\ninterval_minutes = 7\n"
    );
    let (old, new) = (resolve(&old).unwrap(), resolve(&new).unwrap());
    assert_eq!(
        format!("{:?}", old.directory),
        format!("{:?}", new.directory)
    );
    assert_eq!(old.sync, new.sync);
    let moved: Vec<&String> = old
        .warnings
        .iter()
        .filter(|w| !new.warnings.contains(w))
        .collect();
    assert_eq!(moved.len(), 3, "{moved:?}");
    for key in ["sync.user_path", "sync.user_filter", "directory"] {
        assert!(
            moved
                .iter()
                .any(|w| w.starts_with(&format!("{key} is now "))),
            "{key}: {moved:?}"
        );
    }
}

#[test]
fn config_set_rewrites_an_old_file_in_the_new_layout_and_takes_old_names() {
    let path = Path::new("c.toml");
    let old = format!("{MINIMAL}\n# people live here\n[sync]\nuser_path = \"ou=people\"\n");
    let out = set_key(&old, "sync.group_path", Some("ou=groups"), path).unwrap();
    let config = Config::parse(&out, path).unwrap();
    assert!(config.moved.is_empty(), "{out}");
    assert_eq!(config.ldap.user_path.as_deref(), Some("ou=people"));
    assert_eq!(config.ldap.group_path.as_deref(), Some("ou=groups"));
}
