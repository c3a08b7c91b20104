//! LDAP and Active Directory source (ldap3, rustls).
//!
//! One streaming paged search for users and one for groups, each asking only for the attributes
//! orgsync uses. Group members are resolved against the users already read (by normalised DN, or
//! by user name for `memberUid`), so there is no second user search. Disabled users on non-AD
//! servers come from one extra search with the configured `ldap.disabled_filter` that returns DNs
//! only.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Encryption, ExternalIdSource, ResolvedLdap};
use crate::directory::{
    Directory, DirectoryError, DirectoryGroup, DirectoryUser, Progress, ReadOptions, Snapshot,
};
use crate::secrets::Secret;

/// AD's "show deleted objects" control: lets a search see tombstones under CN=Deleted Objects.
const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";
/// userAccountControl bit ACCOUNTDISABLE.
const UAC_ACCOUNT_DISABLE: u64 = 0x2;
/// How many unresolved group members to name in a warning.
const EXAMPLES: usize = 3;

/// Reads users and groups from an LDAP server.
pub struct LdapDirectory {
    config: ResolvedLdap,
    password: Secret,
    read_users: bool,
    read_groups: bool,
}

impl LdapDirectory {
    pub fn new(
        config: ResolvedLdap,
        password: Secret,
        read_users: bool,
        read_groups: bool,
    ) -> Self {
        LdapDirectory {
            config,
            password,
            read_users,
            read_groups,
        }
    }
}

impl Directory for LdapDirectory {
    async fn read(
        &self,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<Snapshot, DirectoryError> {
        let mut session = Session::open(&self.config, &self.password).await?;
        let result = self.read_with(&mut session, options, progress).await;
        session.close().await;
        result
    }
}

impl LdapDirectory {
    async fn read_with(
        &self,
        session: &mut Session<'_>,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<Snapshot, DirectoryError> {
        let cfg = &self.config;
        let mut warnings = Vec::new();

        // Users are read even when only groups are synced: memberships are resolved against them.
        let mut users = self.read_users(session, progress).await?;
        if cfg.active_directory && options.include_deleted && self.read_users {
            match self.read_deleted_users(session).await {
                Ok(deleted) => users.extend(deleted),
                Err(e) => warnings.push(format!("cannot read deleted objects: {e}")),
            }
        }

        let groups = if self.read_groups {
            Some(
                self.read_groups(session, &users, progress, &mut warnings)
                    .await?,
            )
        } else {
            None
        };
        Ok(Snapshot {
            users: self
                .read_users
                .then(|| users.into_iter().map(|u| u.user).collect()),
            groups,
            warnings,
        })
    }

    fn user_attributes(&self) -> Vec<String> {
        let cfg = &self.config;
        let mut attrs = vec![cfg.email_attribute.clone(), cfg.uid_attribute.clone()];
        if let Some(attr) = external_id_attribute(&cfg.external_id) {
            attrs.push(attr.to_string());
        }
        if let Some((prefix, _)) = &cfg.email_prefix_suffix {
            attrs.push(prefix.clone());
        }
        if cfg.active_directory {
            attrs.push("userAccountControl".into());
        }
        attrs.sort();
        attrs.dedup();
        attrs
    }

    async fn read_users(
        &self,
        session: &mut Session<'_>,
        progress: &dyn Progress,
    ) -> Result<Vec<ReadUser>, DirectoryError> {
        let cfg = &self.config;
        let disabled_dns = match &cfg.disabled_filter {
            Some(disabled) => {
                let filter = format!("(&{}{disabled})", cfg.user_filter);
                let mut dns = HashSet::new();
                session
                    .search(
                        &cfg.user_base,
                        &filter,
                        &["1.1".to_string()],
                        None,
                        |entry| {
                            dns.insert(normalize_dn(&entry.dn));
                            Ok(())
                        },
                    )
                    .await?;
                dns
            }
            None => HashSet::new(),
        };

        let mut users = Vec::new();
        let attrs = self.user_attributes();
        session
            .search(&cfg.user_base, &cfg.user_filter, &attrs, None, |entry| {
                let mut user = self.build_user(&entry, false)?;
                if disabled_dns.contains(&user.normalized_dn) {
                    user.user.disabled = true;
                }
                users.push(user);
                progress.entries_read("users", users.len());
                Ok(())
            })
            .await?;
        Ok(users)
    }

    /// AD tombstones of users, read with the show-deleted control. Tombstones usually keep only a
    /// few attributes (objectGUID, sAMAccountName); without an email they are reported, not sent.
    async fn read_deleted_users(
        &self,
        session: &mut Session<'_>,
    ) -> Result<Vec<ReadUser>, DirectoryError> {
        let cfg = &self.config;
        let base = format!("CN=Deleted Objects,{}", cfg.root_path);
        let filter = format!("(&{}(isDeleted=TRUE))", cfg.user_filter);
        let control = RawControl {
            ctype: SHOW_DELETED_OID.into(),
            crit: true,
            val: None,
        };
        let mut users = Vec::new();
        session
            .search(
                &base,
                &filter,
                &self.user_attributes(),
                Some(control),
                |entry| {
                    users.push(self.build_user(&entry, true)?);
                    Ok(())
                },
            )
            .await?;
        Ok(users)
    }

    fn build_user(&self, entry: &SearchEntry, deleted: bool) -> Result<ReadUser, DirectoryError> {
        let cfg = &self.config;
        let external_id = external_id(entry, &cfg.external_id)?;
        let email = first_value(entry, &cfg.email_attribute)
            .or_else(|| {
                let (prefix_attr, suffix) = cfg.email_prefix_suffix.as_ref()?;
                first_value(entry, prefix_attr).map(|prefix| format!("{prefix}{suffix}"))
            })
            .map(|email| email.trim().to_lowercase())
            .filter(|email| !email.is_empty());
        let disabled = cfg.active_directory
            && first_value(entry, "userAccountControl")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .is_some_and(|uac| (uac as u64) & UAC_ACCOUNT_DISABLE != 0);
        Ok(ReadUser {
            normalized_dn: normalize_dn(&entry.dn),
            uid: first_value(entry, &cfg.uid_attribute).map(|uid| uid.to_lowercase()),
            user: DirectoryUser {
                reference: entry.dn.clone(),
                external_id,
                email,
                disabled,
                deleted,
            },
        })
    }

    async fn read_groups(
        &self,
        session: &mut Session<'_>,
        users: &[ReadUser],
        progress: &dyn Progress,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let cfg = &self.config;
        let mut attrs = vec![
            cfg.group_name_attribute.clone(),
            "cn".to_string(),
            cfg.member_attribute.clone(),
        ];
        if let Some(attr) = external_id_attribute(&cfg.external_id) {
            attrs.push(attr.to_string());
        }
        attrs.sort();
        attrs.dedup();

        struct RawGroup {
            group: DirectoryGroup,
            members: Vec<String>,
        }
        let mut raw = Vec::new();
        let mut nameless = 0;
        session
            .search(&cfg.group_base, &cfg.group_filter, &attrs, None, |entry| {
                let Some(name) = first_value(&entry, &cfg.group_name_attribute)
                    .or_else(|| first_value(&entry, "cn"))
                else {
                    nameless += 1;
                    return Ok(());
                };
                let (members, ranged) = member_values(&entry, &cfg.member_attribute);
                raw.push((
                    RawGroup {
                        group: DirectoryGroup {
                            reference: entry.dn.clone(),
                            external_id: external_id(&entry, &cfg.external_id)?,
                            name,
                            user_members: Vec::new(),
                            group_members: Vec::new(),
                        },
                        members,
                    },
                    ranged,
                ));
                progress.entries_read("groups", raw.len());
                Ok(())
            })
            .await?;
        if nameless > 0 {
            warnings.push(format!(
                "{nameless} group(s) have neither {} nor cn and were skipped",
                cfg.group_name_attribute
            ));
        }

        // AD returns at most 1500 values of a large multi-valued attribute per search and names
        // the rest as ranges (`member;range=0-1499`); fetch the remaining ranges per group.
        for (group, next_range) in raw.iter_mut() {
            while let Some(start) = *next_range {
                let (more, next) = session
                    .member_range(&group.group.reference, &cfg.member_attribute, start)
                    .await?;
                group.members.extend(more);
                *next_range = next;
            }
        }
        let mut raw: Vec<RawGroup> = raw.into_iter().map(|(g, _)| g).collect();

        let users_by_dn: HashMap<&str, &str> = users
            .iter()
            .filter(|u| !u.user.deleted)
            .map(|u| (u.normalized_dn.as_str(), u.user.external_id.as_str()))
            .collect();
        let users_by_uid: HashMap<&str, &str> = users
            .iter()
            .filter(|u| !u.user.deleted)
            .filter_map(|u| Some((u.uid.as_deref()?, u.user.external_id.as_str())))
            .collect();
        let groups_by_dn: HashMap<String, usize> = raw
            .iter()
            .enumerate()
            .map(|(index, g)| (normalize_dn(&g.group.reference), index))
            .collect();

        let mut unresolved = 0usize;
        let mut examples = Vec::new();
        for raw_group in &mut raw {
            let mut seen_users = HashSet::new();
            for value in std::mem::take(&mut raw_group.members) {
                // Schemas that require a member often carry an empty placeholder value.
                if value.trim().is_empty() {
                    continue;
                }
                let member = if looks_like_dn(&value) {
                    let dn = normalize_dn(&value);
                    match users_by_dn.get(dn.as_str()) {
                        Some(id) => Member::User(id),
                        None => match groups_by_dn.get(&dn) {
                            Some(&index) => Member::Group(index),
                            None => Member::Unknown,
                        },
                    }
                } else {
                    match users_by_uid.get(value.trim().to_lowercase().as_str()) {
                        Some(id) => Member::User(id),
                        None => Member::Unknown,
                    }
                };
                match member {
                    Member::User(id) => {
                        if seen_users.insert(id) {
                            raw_group.group.user_members.push(id.to_string());
                        }
                    }
                    Member::Group(index) => raw_group.group.group_members.push(index),
                    Member::Unknown => {
                        unresolved += 1;
                        if examples.len() < EXAMPLES {
                            examples.push(value);
                        }
                    }
                }
            }
        }
        if unresolved > 0 {
            warnings.push(format!(
                "{unresolved} group member value(s) match no synced user or group (outside the user/group path or filter), e.g. {}",
                examples.join("; ")
            ));
        }
        Ok(raw.into_iter().map(|g| g.group).collect())
    }
}

enum Member<'a> {
    User(&'a str),
    Group(usize),
    Unknown,
}

/// A user plus the keys group members may refer to it by.
struct ReadUser {
    user: DirectoryUser,
    normalized_dn: String,
    uid: Option<String>,
}

/// A bound connection plus the settings every operation needs.
struct Session<'a> {
    ldap: Ldap,
    config: &'a ResolvedLdap,
}

impl<'a> Session<'a> {
    async fn open(
        config: &'a ResolvedLdap,
        password: &Secret,
    ) -> Result<Session<'a>, DirectoryError> {
        if config.skip_verify && config.encryption != Encryption::None {
            tracing::warn!(
                "ldap.skip_verify is on: the LDAP server's certificate is NOT verified, so anyone on the network path can read the bind password"
            );
        }
        let settings = connection_settings(config)?;
        let connect_error = |message: String| DirectoryError::Connect {
            url: config.url.clone(),
            message,
        };
        let (conn, mut ldap) = tokio::time::timeout(
            config.connect_timeout + Duration::from_secs(1),
            LdapConnAsync::with_settings(settings, &config.url),
        )
        .await
        .map_err(|_| {
            connect_error(format!(
                "no answer within {} s (ldap.connect_timeout_seconds); check ldap.host, ldap.port and the firewall",
                config.connect_timeout.as_secs()
            ))
        })?
        .map_err(|e| connect_error(describe_ldap_error(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!("ldap connection ended: {e}");
            }
        });
        let bind = ldap
            .with_timeout(config.operation_timeout)
            .simple_bind(&config.bind_dn, password.expose())
            .await;
        match bind {
            Ok(result) if result.rc == 0 => Ok(Session { ldap, config }),
            Ok(result) => Err(DirectoryError::Bind {
                bind_dn: config.bind_dn.clone(),
                message: format!("{} (LDAP result {})", bind_text(&result), result.rc),
            }),
            Err(ldap3::LdapError::Timeout { .. }) => Err(DirectoryError::Timeout {
                step: "binding".into(),
                seconds: config.operation_timeout.as_secs(),
            }),
            Err(e) => Err(connect_error(describe_ldap_error(&e))),
        }
    }

    async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }

    /// Runs one search to completion, handing each entry to `on_entry`. Paged when configured.
    /// Fails unless the server reports success at the end, so a size or time limit is an error.
    async fn search(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[String],
        control: Option<RawControl>,
        mut on_entry: impl FnMut(SearchEntry) -> Result<(), DirectoryError>,
    ) -> Result<(), DirectoryError> {
        let search_error = |message: String| DirectoryError::Search {
            base: base.to_string(),
            filter: filter.to_string(),
            message,
        };
        let timeout = self.config.operation_timeout;
        let mut adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> =
            vec![Box::new(EntriesOnly::new())];
        if let Some(page_size) = self.config.page_size {
            adapters.push(Box::new(PagedResults::new(page_size as i32)));
        }
        if let Some(control) = control {
            self.ldap.with_controls(vec![control]);
        }
        let started = self
            .ldap
            .with_timeout(timeout)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs.to_vec())
            .await;
        let mut stream = match started {
            Ok(stream) => stream,
            Err(ldap3::LdapError::Timeout { .. }) => {
                return Err(DirectoryError::Timeout {
                    step: format!("searching {base}"),
                    seconds: timeout.as_secs(),
                });
            }
            Err(e) => return Err(search_error(describe_ldap_error(&e))),
        };
        loop {
            let next = tokio::time::timeout(timeout, stream.next()).await;
            match next {
                Err(_) | Ok(Err(ldap3::LdapError::Timeout { .. })) => {
                    return Err(DirectoryError::Timeout {
                        step: format!("searching {base}"),
                        seconds: timeout.as_secs(),
                    });
                }
                Ok(Err(e)) => return Err(search_error(describe_ldap_error(&e))),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(entry))) => on_entry(SearchEntry::construct(entry))?,
            }
        }
        let result = stream.finish().await;
        match result.rc {
            0 => Ok(()),
            // noSuchObject on a base that does not exist: say which base.
            32 => Err(search_error(format!(
                "the search base does not exist (LDAP result 32); check ldap.root_path and the user/group path{}",
                if result.text.is_empty() { String::new() } else { format!(" ({})", result.text) }
            ))),
            4 => Err(search_error(
                "the server's size limit was reached before all entries were read (LDAP result 4); turn on ldap.paged_search or raise the limit for the bind user".into(),
            )),
            rc => Err(search_error(format!("{} (LDAP result {rc})", bind_text(&result)))),
        }
    }

    /// Fetches one more range of a ranged attribute of `dn`. Returns the values and the start of
    /// the next range, if any.
    async fn member_range(
        &mut self,
        dn: &str,
        attribute: &str,
        start: usize,
    ) -> Result<(Vec<String>, Option<usize>), DirectoryError> {
        let requested = format!("{attribute};range={start}-*");
        let timeout = self.config.operation_timeout;
        let result = self
            .ldap
            .with_timeout(timeout)
            .search(dn, Scope::Base, "(objectClass=*)", vec![requested.as_str()])
            .await
            .and_then(|r| r.success())
            .map_err(|e| DirectoryError::Search {
                base: dn.to_string(),
                filter: requested.clone(),
                message: describe_ldap_error(&e),
            })?;
        let mut values = Vec::new();
        let mut next = None;
        for entry in result.0 {
            let entry = SearchEntry::construct(entry);
            let (more, more_next) = member_values(&entry, attribute);
            values.extend(more);
            next = more_next;
        }
        Ok((values, next))
    }
}

fn connection_settings(config: &ResolvedLdap) -> Result<LdapConnSettings, DirectoryError> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(config.connect_timeout)
        .set_starttls(config.encryption == Encryption::Starttls);
    if config.encryption == Encryption::None {
        return Ok(settings);
    }
    if config.skip_verify {
        return Ok(settings.set_no_tls_verify(true));
    }
    if config.ca_file.is_none() && config.client_cert.is_none() {
        return Ok(settings); // ldap3 trusts the system's CA certificates
    }
    let tls_error = |what: &str, e: &dyn std::fmt::Display| {
        DirectoryError::Config(format!("cannot load {what}: {e}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca_file) = &config.ca_file {
        let certs = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| tls_error(&format!("ldap.ca_file {}", ca_file.display()), &e))?;
        for cert in certs {
            let cert =
                cert.map_err(|e| tls_error(&format!("ldap.ca_file {}", ca_file.display()), &e))?;
            roots
                .add(cert)
                .map_err(|e| tls_error(&format!("ldap.ca_file {}", ca_file.display()), &e))?;
        }
        if roots.is_empty() {
            return Err(DirectoryError::Config(format!(
                "ldap.ca_file {} holds no PEM certificate",
                ca_file.display()
            )));
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let tls = match &config.client_cert {
        Some((cert_file, key_file)) => {
            let chain = CertificateDer::pem_file_iter(cert_file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    tls_error(
                        &format!("ldap.client_cert_file {}", cert_file.display()),
                        &e,
                    )
                })?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                tls_error(&format!("ldap.client_key_file {}", key_file.display()), &e)
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error("the client certificate", &e))?
        }
        None => builder.with_no_client_auth(),
    };
    settings = settings.set_config(Arc::new(tls));
    Ok(settings)
}

/// Turns ldap3's errors into what an admin can act on (certificate problems especially).
fn describe_ldap_error(e: &ldap3::LdapError) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    if lower.contains("unknownissuer") || lower.contains("invalidcertificate") {
        format!(
            "{text}; the server's certificate is not trusted: set ldap.ca_file to the CA that signed it"
        )
    } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        format!(
            "{text}; the certificate does not name this host: use the host name it was issued for in ldap.host"
        )
    } else if lower.contains("connection refused") {
        format!("{text}; nothing listens there: check ldap.host, ldap.port and ldap.encryption")
    } else {
        text
    }
}

fn bind_text(result: &ldap3::LdapResult) -> String {
    let meaning = match result.rc {
        49 => "invalid credentials",
        50 => "insufficient access rights",
        8 => "the server requires a secure connection: set ldap.encryption to ldaps or starttls",
        13 => "the server requires TLS (confidentiality required)",
        _ => "",
    };
    match (meaning.is_empty(), result.text.trim().is_empty()) {
        (true, true) => "the server refused".to_string(),
        (true, false) => result.text.trim().to_string(),
        (false, true) => meaning.to_string(),
        (false, false) => format!("{meaning}: {}", result.text.trim()),
    }
}

fn external_id_attribute(source: &ExternalIdSource) -> Option<&str> {
    match source {
        ExternalIdSource::Dn => None,
        ExternalIdSource::ObjectGuid => Some("objectGUID"),
        ExternalIdSource::Attribute(attr) => Some(attr),
    }
}

fn external_id(entry: &SearchEntry, source: &ExternalIdSource) -> Result<String, DirectoryError> {
    let missing = |attr: &str| {
        DirectoryError::Config(format!(
            "entry {} has no {attr} attribute, which ldap.external_id_attribute names; choose an attribute every user and group has, or `dn`",
            entry.dn
        ))
    };
    match source {
        ExternalIdSource::Dn => Ok(entry.dn.clone()),
        ExternalIdSource::ObjectGuid => {
            let bytes = binary_value(entry, "objectGUID").ok_or_else(|| missing("objectGUID"))?;
            format_guid(&bytes).ok_or_else(|| missing("a 16-byte objectGUID"))
        }
        ExternalIdSource::Attribute(attr) => first_value(entry, attr).ok_or_else(|| missing(attr)),
    }
}

/// Formats AD's binary objectGUID as Microsoft prints it: the first three fields little-endian.
pub fn format_guid(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
}

/// Attribute names are case-insensitive in LDAP; servers answer in their schema's spelling.
fn first_value(entry: &SearchEntry, attr: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))
        .and_then(|(_, values)| values.first().cloned())
}

/// A binary attribute's first value. ldap3 files values that happen to be valid UTF-8 under
/// `attrs`, so look in both maps.
fn binary_value(entry: &SearchEntry, attr: &str) -> Option<Vec<u8>> {
    entry
        .bin_attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))
        .and_then(|(_, values)| values.first().cloned())
        .or_else(|| first_value(entry, attr).map(String::into_bytes))
}

/// All values of the member attribute, and where the next range starts if AD split them.
fn member_values(entry: &SearchEntry, attr: &str) -> (Vec<String>, Option<usize>) {
    let mut values = Vec::new();
    let mut next = None;
    for (name, vals) in &entry.attrs {
        let (base, options) = name.split_once(';').unwrap_or((name, ""));
        if !base.eq_ignore_ascii_case(attr) {
            continue;
        }
        values.extend(vals.iter().cloned());
        // `range=0-1499` means more follow from 1500; `range=1500-*` is the last part.
        if let Some(range) = options.strip_prefix("range=")
            && let Some((_, end)) = range.split_once('-')
            && let Ok(end) = end.parse::<usize>()
        {
            next = Some(end + 1);
        }
    }
    (values, next)
}

/// `cn=a,dc=b` is a DN; `alice` (a memberUid value) is not.
fn looks_like_dn(value: &str) -> bool {
    value.contains('=')
}

/// Normalises a DN for comparison: attribute types and values lower-cased, spaces around
/// separators removed, escapes decoded and re-encoded one way (`\2C` and `\,` compare equal).
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut value = String::new();
    let mut chars = dn.trim().chars().peekable();
    let mut in_value = false;
    let flush = |value: &mut String, out: &mut String| {
        let trimmed = value.trim();
        for c in trimmed.chars() {
            if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
                out.push('\\');
            }
            out.extend(c.to_lowercase());
        }
        value.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let hex: String = chars.clone().take(2).collect();
                if hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()) {
                    chars.next();
                    chars.next();
                    let byte = u8::from_str_radix(&hex, 16).unwrap_or(b'?');
                    value.push(byte as char);
                } else if let Some(escaped) = chars.next() {
                    value.push(escaped);
                }
            }
            '=' if !in_value => {
                out.push_str(value.trim());
                out.make_ascii_lowercase();
                out.push('=');
                value.clear();
                in_value = true;
            }
            ',' | '+' if in_value => {
                flush(&mut value, &mut out);
                out.push(c);
                in_value = false;
            }
            _ => value.push(c),
        }
    }
    if in_value {
        flush(&mut value, &mut out);
    } else {
        out.push_str(&value.trim().to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_normalisation_ignores_case_spaces_and_escape_style() {
        assert_eq!(
            normalize_dn("CN=Alice Smith, OU=People ,DC=Example,DC=org"),
            "cn=alice smith,ou=people,dc=example,dc=org"
        );
        assert_eq!(
            normalize_dn("cn=Smith\\, Bob,dc=x"),
            normalize_dn("CN=smith\\2c bob,DC=X")
        );
        assert_ne!(normalize_dn("cn=a,dc=x"), normalize_dn("cn=b,dc=x"));
    }

    #[test]
    fn guid_is_formatted_like_windows() {
        let bytes = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(
            format_guid(&bytes).unwrap(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        assert_eq!(format_guid(&bytes[..15]), None);
    }

    #[test]
    fn ranged_member_values_name_the_next_range() {
        let mut entry = SearchEntry {
            dn: "cn=g".into(),
            attrs: HashMap::new(),
            bin_attrs: HashMap::new(),
        };
        entry
            .attrs
            .insert("member;range=0-1499".into(), vec!["cn=a".into()]);
        assert_eq!(
            member_values(&entry, "member"),
            (vec!["cn=a".to_string()], Some(1500))
        );
        entry.attrs.clear();
        entry
            .attrs
            .insert("member;range=1500-*".into(), vec!["cn=b".into()]);
        assert_eq!(
            member_values(&entry, "member"),
            (vec!["cn=b".to_string()], None)
        );
    }
}
