//! Directory Connector's settings (`directory-connector.md` §2) as orgsync's: every field either
//! becomes an orgsync key or secret, or a note that says why not and what orgsync does instead.

use serde_json::{Map, Value};

use super::data_file::Connector;
use super::keychain::{self, Keychain};
use crate::directory::DirectoryKind;
use crate::secrets::{Secret, SecretKey};

/// One orgsync key and where its value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    /// The connector's field, e.g. `directoryLdap.hostname`.
    pub from: String,
}

/// A secret the import found.
#[derive(Debug)]
pub struct FoundSecret {
    pub key: SecretKey,
    pub value: Secret,
    /// Where it was found (never the value).
    pub origin: String,
}

/// A secret the import could not read, why, and how to set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSecret {
    pub key: String,
    pub reason: String,
    pub how: String,
}

/// The connector's installation in orgsync's terms.
#[derive(Debug)]
pub struct Mapped {
    pub kind: DirectoryKind,
    pub settings: Vec<Setting>,
    pub secrets: Vec<FoundSecret>,
    pub missing: Vec<MissingSecret>,
    /// What was not carried over, or behaves differently, and what orgsync does instead.
    pub notes: Vec<String>,
    /// The organization the connector synced.
    pub organization_id: Option<String>,
}

/// Maps `connector`, reading its secrets from `keychain` where `data.json` does not hold them.
///
/// # Errors
/// A directory type orgsync does not support.
pub fn map(connector: &Connector, keychain: &dyn Keychain) -> Result<Mapped, String> {
    let directory_type = connector.directory_type.unwrap_or(-1);
    let kind = match directory_type {
        0 => DirectoryKind::Ldap,
        1 => DirectoryKind::Entra,
        2 => DirectoryKind::Google,
        3 => DirectoryKind::Okta,
        4 => DirectoryKind::OneLogin,
        other => {
            return Err(format!(
                "{}: directoryType {other} is not a directory orgsync supports (0 LDAP, 1 Entra ID, 2 Google Workspace, 3 Okta, 4 OneLogin)",
                connector.path.display()
            ));
        }
    };
    let mut out = Mapped {
        kind,
        settings: Vec::new(),
        secrets: Vec::new(),
        missing: Vec::new(),
        notes: Vec::new(),
        organization_id: connector.organization_id.clone(),
    };
    out.set("directory.type", kind.name(), "directoryType");
    match kind {
        DirectoryKind::Ldap => ldap(connector, &mut out),
        DirectoryKind::Entra => entra(connector, &mut out),
        DirectoryKind::Google => google(connector, keychain, &mut out),
        DirectoryKind::Okta => okta(connector, &mut out),
        DirectoryKind::OneLogin => onelogin(connector, &mut out),
    }
    if kind != DirectoryKind::Google {
        directory_secret(connector, directory_type, keychain, &mut out);
    }
    sync(connector, kind, &mut out);
    server(&connector.environment_urls, &mut out);
    organization(connector, keychain, &mut out);
    Ok(out)
}

impl Mapped {
    fn set(&mut self, key: &str, value: &str, from: &str) {
        self.settings.push(Setting {
            key: key.into(),
            value: value.into(),
            from: from.into(),
        });
    }

    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn missing(&mut self, key: SecretKey, reason: String) {
        let how = match key {
            SecretKey::ORG_CLIENT_ID | SecretKey::ORG_CLIENT_SECRET => {
                "`orgsync login` (the organization's API key: Admin Console → Settings → Organization info), then `orgsync import-bwdc --force` again, which takes the organization over with it".to_string()
            }
            key if key.is_whole_file() => {
                format!("`orgsync config set-secret {} --file FILE`", key.name())
            }
            key => format!("`orgsync config set-secret {}`", key.name()),
        };
        if self.missing.iter().any(|m| m.key == key.name()) {
            return;
        }
        self.missing.push(MissingSecret {
            key: key.name().into(),
            reason,
            how,
        });
    }
}

/// A field's text, trimmed; blank is none.
fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    object
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn flag(object: &Map<String, Value>, field: &str) -> Option<bool> {
    object.get(field).and_then(Value::as_bool)
}

/// A number the GUI may have stored as text.
fn number(object: &Map<String, Value>, field: &str) -> Option<i64> {
    match object.get(field)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Copies the text fields `(connector field, orgsync key)` of `object` (named `name` in
/// `data.json`).
fn copy(out: &mut Mapped, object: &Map<String, Value>, name: &str, fields: &[(&str, &str)]) {
    for (field, key) in fields {
        if let Some(value) = text(object, field) {
            out.set(key, value, &format!("{name}.{field}"));
        }
    }
}

/// The base DN the connector really searched: everything from the first `dc=` component on
/// (it drops what comes before, `directory-connector.md` §8.7).
fn searched_root(root: &str) -> &str {
    let lower = root.to_ascii_lowercase();
    let mut at = 0;
    for part in lower.split(',') {
        if part.trim_start().starts_with("dc=") {
            return root[at..].trim_start_matches([',', ' ']);
        }
        at += part.len() + 1;
    }
    root
}

fn ldap(connector: &Connector, out: &mut Mapped) {
    let c = &connector.ldap;
    let name = "directoryLdap";
    copy(
        out,
        c,
        name,
        &[("hostname", "ldap.host"), ("username", "ldap.bind_dn")],
    );
    if let Some(port) = number(c, "port") {
        out.set("ldap.port", &port.to_string(), &format!("{name}.port"));
    }
    let ad = flag(c, "ad").unwrap_or(true);
    out.set(
        "ldap.active_directory",
        &ad.to_string(),
        &format!("{name}.ad"),
    );
    if let Some(root) = text(c, "rootPath") {
        let searched = searched_root(root);
        out.set("ldap.root_path", searched, &format!("{name}.rootPath"));
        if searched != root {
            out.note(format!(
                "directoryLdap.rootPath is {root:?}, but Directory Connector searched from {searched:?} (it drops what comes before the first dc=); orgsync uses ldap.root_path as written, so it is set to what the connector searched. To search only below the part it dropped, put that part in ldap.user_path / ldap.group_path"
            ));
        }
    }
    let ssl = flag(c, "ssl").unwrap_or(false);
    let start_tls = flag(c, "startTls").unwrap_or(false);
    let encryption = match (ssl, start_tls) {
        (false, _) => "none",
        (true, false) => "ldaps",
        (true, true) => "starttls",
    };
    out.set(
        "ldap.encryption",
        encryption,
        &format!("{name}.ssl/startTls"),
    );
    if ssl {
        if flag(c, "sslAllowUnauthorized") == Some(true) {
            out.set(
                "ldap.skip_verify",
                "true",
                &format!("{name}.sslAllowUnauthorized"),
            );
        }
        match start_tls {
            true => copy(out, c, name, &[("tlsCaPath", "ldap.ca_file")]),
            false => copy(
                out,
                c,
                name,
                &[
                    ("sslCaPath", "ldap.ca_file"),
                    ("sslCertPath", "ldap.client_cert_file"),
                    ("sslKeyPath", "ldap.client_key_file"),
                ],
            ),
        }
    }
    if !ad {
        out.set(
            "ldap.paged_search",
            &flag(c, "pagedSearch").unwrap_or(true).to_string(),
            &format!("{name}.pagedSearch"),
        );
        // The connector sent the entry's DN as externalId on servers other than AD: keep it, so
        // the organization's members stay who they are.
        out.set(
            "ldap.external_id_attribute",
            "dn",
            "the connector's externalId on LDAP servers, the DN",
        );
        out.note("externalIds stay the DNs Directory Connector sent (ldap.external_id_attribute = dn), so no member is re-invited; as with the connector, a renamed or moved entry gets a new DN and looks like a new person. To move to orgsync's default, entryUUID, which survives renames, without reshuffling anyone: `orgsync config set ldap.external_id_attribute entryUUID`, then `orgsync rekey --dry-run` and `orgsync rekey`, which give every member and group its new externalId on the server");
    }
    if flag(c, "currentUser") == Some(true) {
        out.note("directoryLdap.currentUser (bind as the current system user) was not used by Directory Connector either; orgsync binds as ldap.bind_dn");
    }
    let s = &connector.sync;
    copy(
        out,
        s,
        "sync",
        &[
            ("userFilter", "ldap.user_filter"),
            ("groupFilter", "ldap.group_filter"),
            ("userPath", "ldap.user_path"),
            ("groupPath", "ldap.group_path"),
        ],
    );
    if !ad {
        // In AD mode the connector overwrote these with AD's own, which are orgsync's AD defaults.
        copy(
            out,
            s,
            "sync",
            &[
                ("userObjectClass", "ldap.user_object_class"),
                ("groupObjectClass", "ldap.group_object_class"),
                ("userEmailAttribute", "ldap.email_attribute"),
                ("groupNameAttribute", "ldap.group_name_attribute"),
                ("memberAttribute", "ldap.member_attribute"),
                ("emailPrefixAttribute", "ldap.email_prefix_attribute"),
            ],
        );
    }
    if flag(s, "useEmailPrefixSuffix") == Some(true) {
        out.set(
            "ldap.use_email_prefix_suffix",
            "true",
            "sync.useEmailPrefixSuffix",
        );
        copy(out, s, "sync", &[("emailSuffix", "ldap.email_suffix")]);
    }
    if text(s, "revisionDateAttribute").is_some() && !ad {
        out.note("sync.revisionDateAttribute is not carried over: orgsync reads changes with the server's content synchronisation (ldap.incremental) where it has one, and the whole directory otherwise");
    }
}

fn entra(connector: &Connector, out: &mut Mapped) {
    let c = &connector.entra;
    let name = "directoryEntra";
    copy(
        out,
        c,
        name,
        &[
            ("tenant", "entra.tenant"),
            ("applicationId", "entra.client_id"),
        ],
    );
    match text(c, "identityAuthority") {
        None | Some("login.microsoftonline.com") => {}
        Some("login.microsoftonline.us") => {
            out.set("entra.cloud", "usgov", &format!("{name}.identityAuthority"));
            out.note("US Government tenant: orgsync reads its own cloud's Graph (graph.microsoft.us); Directory Connector signed in there but read the global Graph. Choose entra.cloud = usgov-dod for DoD tenants");
        }
        Some(other) => out.note(format!(
            "directoryEntra.identityAuthority {other:?} is not one Directory Connector accepted; set entra.cloud (global, usgov, usgov-dod, china) or entra.login_url yourself"
        )),
    }
    filters(connector, "entra", out);
}

fn google(connector: &Connector, keychain: &dyn Keychain, out: &mut Mapped) {
    let c = &connector.gsuite;
    let name = "directoryGsuite";
    copy(
        out,
        c,
        name,
        &[
            ("adminUser", "google.admin_user"),
            ("domain", "google.domain"),
            ("customer", "google.customer"),
        ],
    );
    filters(connector, "google", out);
    // orgsync takes the service account's key file; the connector kept only its two fields.
    let Some(place) = keychain::secret_place(2) else {
        return;
    };
    let private_key =
        keychain::directory_secret(&place, c, connector.account_id.as_deref(), keychain);
    let secret_key = DirectoryKind::Google.secrets()[0];
    match (text(c, "clientEmail"), private_key) {
        (Some(email), Ok(found)) => {
            let file = serde_json::json!({
                "type": "service_account",
                "client_email": email,
                "private_key": found.value.replace("\\n", "\n"),
            });
            out.secrets.push(FoundSecret {
                key: secret_key,
                value: Secret::new(file.to_string()),
                origin: format!(
                    "directoryGsuite.clientEmail and the private key from the {}",
                    found.origin
                ),
            });
        }
        (None, _) => out.missing(secret_key, "directoryGsuite.clientEmail is not set".into()),
        (_, Err(reason)) => out.missing(
            secret_key,
            format!("the service account's private key is {reason}"),
        ),
    }
}

fn okta(connector: &Connector, out: &mut Mapped) {
    let c = &connector.okta;
    if let Some(url) = text(c, "orgUrl") {
        out.set(
            "okta.org_url",
            url.trim_end_matches('/'),
            "directoryOkta.orgUrl",
        );
    }
    filters(connector, "okta", out);
}

fn onelogin(connector: &Connector, out: &mut Mapped) {
    let c = &connector.onelogin;
    let name = "directoryOnelogin";
    copy(out, c, name, &[("clientId", "onelogin.client_id")]);
    out.set(
        "onelogin.region",
        text(c, "region").unwrap_or("us"),
        &format!("{name}.region"),
    );
    filters(connector, "onelogin", out);
    let s = &connector.sync;
    if flag(s, "useEmailPrefixSuffix") == Some(true) {
        copy(out, s, "sync", &[("emailSuffix", "onelogin.email_suffix")]);
    }
}

/// The cloud directories' user and group filters: orgsync takes the connector's syntax.
fn filters(connector: &Connector, table: &str, out: &mut Mapped) {
    copy(
        out,
        &connector.sync,
        "sync",
        &[
            ("userFilter", &format!("{table}.user_filter")),
            ("groupFilter", &format!("{table}.group_filter")),
        ],
    );
}

fn directory_secret(
    connector: &Connector,
    directory_type: i64,
    keychain: &dyn Keychain,
    out: &mut Mapped,
) {
    let Some(place) = keychain::secret_place(directory_type) else {
        return;
    };
    let config = match directory_type {
        0 => &connector.ldap,
        1 => &connector.entra,
        3 => &connector.okta,
        _ => &connector.onelogin,
    };
    // The first of a source's secrets is the one the connector's credential becomes (Okta: the
    // API token).
    let key = out.kind.secrets()[0];
    match keychain::directory_secret(&place, config, connector.account_id.as_deref(), keychain) {
        Ok(found) => out.secrets.push(FoundSecret {
            key,
            value: Secret::new(found.value),
            origin: found.origin,
        }),
        Err(reason) => out.missing(key, reason),
    }
}

fn sync(connector: &Connector, kind: DirectoryKind, out: &mut Mapped) {
    let s = &connector.sync;
    for (field, key) in [
        ("users", "sync.users"),
        ("groups", "sync.groups"),
        ("removeDisabled", "sync.remove_disabled"),
        ("largeImport", "sync.large_import"),
        (
            "inviteUsersAfterProvisioning",
            "sync.invite_users_after_provisioning",
        ),
    ] {
        out.set(
            key,
            &flag(s, field).unwrap_or(false).to_string(),
            &format!("sync.{field}"),
        );
    }
    match number(s, "interval") {
        Some(minutes) if minutes > 0 => {
            out.set("sync.interval_minutes", &minutes.max(5).to_string(), "sync.interval");
        }
        _ => out.note("sync.interval is off (null): Directory Connector did not sync on a schedule. orgsyncd polls every sync.interval_minutes (5); run `orgsync daemon stop-polling` to keep syncs manual"),
    }
    if flag(s, "overwriteExisting") == Some(true) {
        out.note("sync.overwriteExisting (remove and re-add every member, for debugging) is not carried over: orgsync removes members who left the directory on every sync (sync.remove_missing_users, within the [safety] limits), and never sends an overwrite after an empty or partial read. Set sync.overwrite_existing yourself if you really want it");
    }
    if flag(s, "removeDisabled") == Some(true)
        && kind == DirectoryKind::Ldap
        && flag(&connector.ldap, "ad") == Some(false)
    {
        out.note("sync.removeDisabled did nothing on a non-AD server in Directory Connector; in orgsync it removes the users ldap.disabled_filter matches (e.g. (pwdAccountLockedTime=*)), so set that filter or turn sync.remove_disabled off");
    }
    if text(s, "creationDateAttribute").is_some()
        && kind == DirectoryKind::Ldap
        && flag(&connector.ldap, "ad") == Some(false)
    {
        out.note("sync.creationDateAttribute is not carried over: Directory Connector stored it but never used it");
    }
}

/// `environmentUrls` as the connector formats and derives them (§2.8, §5.11).
fn server(urls: &Map<String, Value>, out: &mut Mapped) {
    let formatted = |field: &str| {
        text(urls, field).map(|url| {
            let url = url.trim_end_matches('/');
            match url.contains("://") {
                true => url.to_string(),
                false => format!("https://{url}"),
            }
        })
    };
    match formatted("base").as_deref() {
        None | Some("https://bitwarden.com" | "https://vault.bitwarden.com") => {
            out.set("server.url", "cloud-us", "environmentUrls.base");
        }
        Some("https://bitwarden.eu" | "https://vault.bitwarden.eu") => {
            out.set("server.url", "cloud-eu", "environmentUrls.base");
        }
        Some(base) => out.set("server.url", base, "environmentUrls.base"),
    }
    if let Some(api) = formatted("api") {
        out.set("server.api_url", &api, "environmentUrls.api");
    }
    if let Some(identity) = formatted("identity") {
        out.set("server.identity_url", &identity, "environmentUrls.identity");
    }
}

fn organization(connector: &Connector, keychain: &dyn Keychain, out: &mut Mapped) {
    for (key, inline, account) in [
        (
            SecretKey::ORG_CLIENT_ID,
            &connector.api_key_client_id,
            "apiKeyClientId",
        ),
        (
            SecretKey::ORG_CLIENT_SECRET,
            &connector.api_key_client_secret,
            "apiKeyClientSecret",
        ),
    ] {
        let found = match inline {
            Some(value) => Ok(keychain::Found {
                value: value.clone(),
                origin: format!("data.json, {account}"),
            }),
            None => keychain::lookup(&[account.to_string()], keychain),
        };
        match found {
            Ok(found) => out.secrets.push(FoundSecret {
                key,
                value: Secret::new(found.value),
                origin: found.origin,
            }),
            Err(reason) => out.missing(key, format!("the organization API key is {reason}")),
        }
    }
    let client_id = out
        .secrets
        .iter()
        .find(|s| s.key == SecretKey::ORG_CLIENT_ID)
        .map(|s| s.value.expose().to_string());
    if let (Some(id), Some(org)) = (client_id, &connector.organization_id)
        && id.strip_prefix("organization.") != Some(org.as_str())
    {
        out.note(format!(
            "the API key ({id}) is not organization {org}'s, which data.json names; orgsync syncs the API key's organization"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_searched_root_starts_at_the_first_dc() {
        assert_eq!(searched_root("dc=example,dc=com"), "dc=example,dc=com");
        assert_eq!(
            searched_root("ou=Staff, DC=example,DC=com"),
            "DC=example,DC=com"
        );
        assert_eq!(searched_root("o=example"), "o=example");
    }
}
