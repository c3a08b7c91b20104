//! One bound LDAP connection and the searches orgsync runs over it: the paged search of a full
//! read, RFC 4533 content synchronisation for incremental reads, and AD's ranged attributes.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::{
    EntryState, MakeCritical, RawControl, RefreshMode, SyncDone, SyncInfo, SyncRequest, SyncState,
    parse_syncinfo,
};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope, SearchOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Encryption, ResolvedLdap};
use crate::directory::{DirectoryError, Failure};
use crate::secrets::Secret;

/// RFC 4533 control OIDs. A server that offers content synchronisation lists the request's in
/// its root DSE.
const SYNC_REQUEST_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";
const SYNC_STATE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.2";
const SYNC_DONE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.3";
/// e-syncRefreshRequired: the server cannot send changes since this cookie; read everything.
const SYNC_REFRESH_REQUIRED: u32 = 4096;

/// A bound connection plus the settings every operation needs.
pub(super) struct Session<'a> {
    ldap: Ldap,
    config: &'a ResolvedLdap,
}

impl<'a> Session<'a> {
    pub(super) async fn open(
        config: &'a ResolvedLdap,
        password: &Secret,
    ) -> Result<Session<'a>, DirectoryError> {
        if config.skip_verify && config.encryption != Encryption::None {
            tracing::warn!(
                "ldap.skip_verify is on: the LDAP server's certificate is NOT verified, so anyone on the network path can read the bind password"
            );
        }
        let settings = connection_settings(config)?;
        let connect_error = |message: String| {
            DirectoryError::new(
                Failure::Unreachable,
                format!("cannot connect to {}: {message}", config.url),
            )
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
            Ok(result) => Err(DirectoryError::new(
                Failure::Credentials,
                format!(
                    "the directory rejected the bind as {}: {} (LDAP result {})",
                    config.bind_dn,
                    bind_text(&result),
                    result.rc
                ),
            )
            .hint(format!(
                "check ldap.bind_dn and the password (`orgsync config set-secret {}`)",
                super::BIND_PASSWORD.name()
            ))),
            Err(ldap3::LdapError::Timeout { .. }) => {
                Err(timed_out("binding", config.operation_timeout))
            }
            Err(e) => Err(connect_error(describe_ldap_error(&e))),
        }
    }

    pub(super) async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }

    /// Runs one search to completion, handing each entry to `on_entry`. Paged when configured.
    /// Fails unless the server reports success at the end, so a size or time limit is an error.
    /// Several may run at once on the one connection (LDAP tells answers apart by message id).
    pub(super) async fn search(
        &self,
        base: &str,
        filter: &str,
        attrs: &[String],
        control: Option<RawControl>,
        mut on_entry: impl FnMut(Entry) -> Result<(), DirectoryError>,
    ) -> Result<(), DirectoryError> {
        let malformed = || search_failed(base, filter, "the server sent a malformed entry");
        self.search_raw(base, filter, attrs, control, |entry| {
            on_entry(Entry::from_result(entry).ok_or_else(malformed)?)
        })
        .await
    }

    /// The search loop behind [`Session::search`].
    async fn search_raw(
        &self,
        base: &str,
        filter: &str,
        attrs: &[String],
        control: Option<RawControl>,
        mut on_entry: impl FnMut(ResultEntry) -> Result<(), DirectoryError>,
    ) -> Result<(), DirectoryError> {
        let search_error = |message: String| search_failed(base, filter, message);
        let timeout = self.config.operation_timeout;
        let mut adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> =
            vec![Box::new(EntriesOnly::new())];
        if let Some(page_size) = self.config.page_size {
            adapters.push(Box::new(PagedResults::new(page_size as i32)));
        }
        // A handle of its own: controls and the timeout are set per operation on it.
        let mut ldap = self.ldap.clone();
        if let Some(control) = control {
            ldap.with_controls(vec![control]);
        }
        let started = ldap
            .with_timeout(timeout)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs.to_vec())
            .await;
        let mut stream = match started {
            Ok(stream) => stream,
            Err(ldap3::LdapError::Timeout { .. }) => {
                return Err(timed_out(&format!("searching {base}"), timeout));
            }
            Err(e) => return Err(search_error(describe_ldap_error(&e))),
        };
        loop {
            let next = tokio::time::timeout(timeout, stream.next()).await;
            match next {
                Err(_) | Ok(Err(ldap3::LdapError::Timeout { .. })) => {
                    return Err(timed_out(&format!("searching {base}"), timeout));
                }
                Ok(Err(e)) => return Err(search_error(describe_ldap_error(&e))),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(entry))) => on_entry(entry)?,
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
    pub(super) async fn member_range(
        &mut self,
        dn: &str,
        attribute: &str,
        start: usize,
        control: Option<RawControl>,
    ) -> Result<(Vec<String>, Option<usize>), DirectoryError> {
        let requested = format!("{attribute};range={start}-*");
        let timeout = self.config.operation_timeout;
        let mut ldap = self.ldap.clone();
        if let Some(control) = control {
            ldap.with_controls(vec![control]);
        }
        let result = ldap
            .with_timeout(timeout)
            .search(dn, Scope::Base, "(objectClass=*)", vec![requested.as_str()])
            .await
            .and_then(|r| r.success())
            .map_err(|e| search_failed(dn, &requested, describe_ldap_error(&e)))?;
        let mut values = Vec::new();
        let mut next = None;
        for entry in result.0 {
            let entry = Entry::from_result(entry).ok_or_else(|| {
                search_failed(dn, &requested, "the server sent a malformed entry")
            })?;
            let (more, more_next) = super::member_texts(&entry, attribute);
            values.extend(more.into_iter().map(str::to_string));
            next = more_next;
        }
        Ok((values, next))
    }

    /// A refreshAndPersist content sync (RFC 4533) that stays open: the initial refresh is
    /// skipped, then `on_change` is called for every change the server pushes. The entries
    /// themselves are not kept (only their DNs are asked for): a change only wakes a sync, which
    /// reads it the usual way. Returns when the server or the connection ends the search.
    pub(super) async fn follow(
        &mut self,
        base: &str,
        filter: &str,
        mut on_change: impl FnMut(),
    ) -> Result<(), DirectoryError> {
        let search_error = |message: String| search_failed(base, filter, message);
        let request = SyncRequest {
            mode: RefreshMode::RefreshAndPersist,
            cookie: None,
            reload_hint: false,
        };
        self.ldap
            .with_controls(request.critical())
            .with_search_options(SearchOptions::new().sizelimit(i32::MAX));
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = Vec::new();
        let mut stream = self
            .ldap
            .streaming_search_with(
                adapters,
                base,
                Scope::Subtree,
                filter,
                vec!["1.1".to_string()],
            )
            .await
            .map_err(|e| search_error(describe_ldap_error(&e)))?;
        let mut refreshed = false;
        loop {
            let entry = match stream.next().await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => return Err(search_error(describe_ldap_error(&e))),
            };
            if entry.is_intermediate() {
                let info = std::panic::catch_unwind(AssertUnwindSafe(|| parse_syncinfo(entry)))
                    .map_err(|_| {
                        search_error("the server sent a malformed Sync Info message".into())
                    })?;
                match info {
                    // The end of the initial refresh: from here on, everything is a change.
                    SyncInfo::RefreshDelete { refresh_done, .. }
                    | SyncInfo::RefreshPresent { refresh_done, .. } => {
                        if refresh_done && !refreshed {
                            tracing::info!("following directory changes under {base}");
                        }
                        refreshed |= refresh_done;
                    }
                    SyncInfo::SyncIdSet { .. } if refreshed => on_change(),
                    _ => {}
                }
            } else if refreshed && !entry.is_ref() {
                on_change();
            }
        }
        let result = stream.finish().await;
        Err(search_error(format!(
            "the server ended the persistent search: {} (LDAP result {})",
            bind_text(&result),
            result.rc
        )))
    }

    /// The entry at `dn` with `attrs` (the root DSE for an empty DN).
    pub(super) async fn base_entry(
        &mut self,
        dn: &str,
        attrs: &[&str],
    ) -> Result<Entry, DirectoryError> {
        let (entries, _) = self
            .ldap
            .with_timeout(self.config.operation_timeout)
            .search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec())
            .await
            .and_then(|r| r.success())
            .map_err(|e| {
                let base = if dn.is_empty() { "the root DSE" } else { dn };
                search_failed(base, "(objectClass=*)", describe_ldap_error(&e))
            })?;
        entries
            .into_iter()
            .next()
            .and_then(Entry::from_result)
            .ok_or_else(|| search_failed(dn, "(objectClass=*)", "no such entry"))
    }

    /// Whether the server offers RFC 4533 content synchronisation (OpenLDAP with `syncprov`).
    pub(super) async fn supports_content_sync(&mut self) -> bool {
        let result = self
            .ldap
            .with_timeout(self.config.operation_timeout)
            .search("", Scope::Base, "(objectClass=*)", vec!["supportedControl"])
            .await
            .and_then(|r| r.success());
        let Ok((entries, _)) = result else {
            return false;
        };
        entries
            .into_iter()
            .filter_map(Entry::from_result)
            .any(|entry| {
                entry
                    .attrs
                    .iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case("supportedControl"))
                    .flat_map(|(_, values)| values)
                    .any(|oid| oid == SYNC_REQUEST_OID)
            })
    }

    /// One refreshOnly content-synchronisation search (RFC 4533). Without a cookie the server
    /// sends every entry; with one, only what changed since. Entries added or changed go to
    /// `on_entry` with their entryUUID. `Ok(None)` when the server can no longer serve the
    /// cookie (e-syncRefreshRequired).
    ///
    /// Not paged: servers do not combine paging with content sync (OpenLDAP silently ends after
    /// the first page), so the search asks for no size limit and a limit reached is an error.
    pub(super) async fn sync_search(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[String],
        cookie: Option<&[u8]>,
        mut on_entry: impl FnMut(String, Entry) -> Result<(), DirectoryError>,
    ) -> Result<Option<SyncedSearch>, DirectoryError> {
        let search_error = |message: String| search_failed(base, filter, message);
        let timeout = self.config.operation_timeout;
        let timed_out = || timed_out(&format!("reading changes under {base}"), timeout);
        let request = SyncRequest {
            mode: RefreshMode::RefreshOnly,
            cookie: cookie.map(<[u8]>::to_vec),
            reload_hint: false,
        };
        self.ldap
            .with_controls(request.critical())
            .with_search_options(SearchOptions::new().sizelimit(i32::MAX));
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = Vec::new();
        let mut stream = match self
            .ldap
            .with_timeout(timeout)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs.to_vec())
            .await
        {
            Ok(stream) => stream,
            Err(ldap3::LdapError::Timeout { .. }) => return Err(timed_out()),
            Err(e) => return Err(search_error(describe_ldap_error(&e))),
        };
        let mut outcome = SyncedSearch::default();
        let malformed = |what: &str| search_error(format!("the server sent a malformed {what}"));
        loop {
            let entry = match tokio::time::timeout(timeout, stream.next()).await {
                Err(_) | Ok(Err(ldap3::LdapError::Timeout { .. })) => return Err(timed_out()),
                Ok(Err(e)) => return Err(search_error(describe_ldap_error(&e))),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(entry))) => entry,
            };
            if entry.is_ref() {
                continue;
            }
            if entry.is_intermediate() {
                // ldap3's parsers panic on malformed input; a bad server must not take us down.
                let info = std::panic::catch_unwind(AssertUnwindSafe(|| parse_syncinfo(entry)))
                    .map_err(|_| malformed("Sync Info message"))?;
                outcome.take_info(info);
                continue;
            }
            let Some(state) = sync_state(&entry).map_err(|()| malformed("Sync State control"))?
            else {
                return Err(malformed("entry without a Sync State control"));
            };
            let key = entry_key(&state.entry_uuid).ok_or_else(|| malformed("entryUUID"))?;
            match state.state {
                EntryState::Present => outcome.present_keys().insert(key),
                EntryState::Delete => {
                    outcome.deletes.push(key);
                    true
                }
                EntryState::Add | EntryState::Modify => {
                    let entry = Entry::from_result(entry).ok_or_else(|| malformed("entry"))?;
                    on_entry(key, entry)?;
                    true
                }
            };
            if let Some(cookie) = state.cookie {
                outcome.cookie = Some(cookie);
            }
        }
        let result = stream.finish().await;
        match result.rc {
            0 => {}
            SYNC_REFRESH_REQUIRED => return Ok(None),
            4 => {
                return Err(search_error(
                    "the server's size limit was reached (LDAP result 4); incremental reads need one unpaged search, so give the bind user no size limit (OpenLDAP: `limits dn.exact=\"<bind DN>\" size=unlimited`) or set ldap.incremental false".into(),
                ));
            }
            rc => {
                return Err(search_error(format!(
                    "{} (LDAP result {rc})",
                    bind_text(&result)
                )));
            }
        }
        let done = result
            .ctrls
            .iter()
            .find(|c| c.1.ctype == SYNC_DONE_OID)
            .map(|c| {
                std::panic::catch_unwind(AssertUnwindSafe(|| c.1.parse::<SyncDone>()))
                    .map_err(|_| malformed("Sync Done control"))
            })
            .transpose()?;
        let Some(done) = done else {
            return Err(search_error(
                "the server ended the search without a Sync Done control, so its changes cannot be tracked".into(),
            ));
        };
        if let Some(cookie) = done.cookie {
            outcome.cookie = Some(cookie);
        }
        // refreshDeletes FALSE: the server listed what is still there instead of what is gone.
        if cookie.is_some() && !done.refresh_deletes {
            outcome.present_keys();
        }
        Ok(Some(outcome))
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
        DirectoryError::new(Failure::Config, format!("cannot load {what}: {e}"))
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
            return Err(DirectoryError::new(
                Failure::Config,
                format!(
                    "ldap.ca_file {} holds no PEM certificate",
                    ca_file.display()
                ),
            ));
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

/// A search result entry. Like ldap3's `SearchEntry`, with the same split of text and binary
/// attributes, but cheaper to build (a full read makes tens of thousands): attributes in a list
/// instead of hash maps (an entry has a handful), and values moved out of the decoded message
/// instead of copied.
pub(super) struct Entry {
    pub dn: String,
    /// Attributes whose values are all UTF-8, named as the server sent them.
    pub attrs: Vec<(String, Vec<String>)>,
    /// Attributes with a value that is not UTF-8 (AD's objectGUID): the binary values first,
    /// then the text ones, as `SearchEntry` files them.
    pub bin_attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    /// `None` when the message is not a well-formed SearchResultEntry (where
    /// `SearchEntry::construct` would panic).
    pub(super) fn from_result(entry: ResultEntry) -> Option<Entry> {
        let mut parts = entry.0.match_id(4)?.expect_constructed()?.into_iter();
        let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
        let dn = match super::dn::strip_extended(&dn) {
            plain if plain.len() == dn.len() => dn,
            plain => plain.to_string(),
        };
        let attributes = parts.next()?.expect_constructed()?;
        let mut attrs = Vec::with_capacity(attributes.len());
        let mut bin_attrs = Vec::new();
        for attribute in attributes {
            let mut attribute = attribute.expect_constructed()?.into_iter();
            let name = String::from_utf8(attribute.next()?.expect_primitive()?).ok()?;
            let values = attribute.next()?.expect_constructed()?;
            let mut text = Vec::with_capacity(values.len());
            let mut binary = Vec::new();
            for value in values {
                match String::from_utf8(value.expect_primitive()?) {
                    Ok(value) => text.push(value),
                    Err(e) => binary.push(e.into_bytes()),
                }
            }
            if binary.is_empty() {
                attrs.push((name, text));
            } else {
                binary.extend(text.into_iter().map(String::into_bytes));
                bin_attrs.push((name, binary));
            }
        }
        Some(Entry {
            dn,
            attrs,
            bin_attrs,
        })
    }
}

/// What one content-synchronisation search reported besides the changed entries.
#[derive(Debug, Default)]
pub(super) struct SyncedSearch {
    /// Keys of entries deleted or no longer matching.
    pub deletes: Vec<String>,
    /// Set when the server used the present phase: keys of the unchanged entries.
    pub present: Option<HashSet<String>>,
    /// The cookie to send next time; `None` when the server kept the old one.
    pub cookie: Option<Vec<u8>>,
}

impl SyncedSearch {
    fn present_keys(&mut self) -> &mut HashSet<String> {
        self.present.get_or_insert_with(HashSet::new)
    }

    fn take_info(&mut self, info: SyncInfo) {
        let cookie = match info {
            SyncInfo::NewCookie(cookie) => Some(cookie),
            SyncInfo::RefreshDelete { cookie, .. } | SyncInfo::RefreshPresent { cookie, .. } => {
                cookie
            }
            SyncInfo::SyncIdSet {
                cookie,
                refresh_deletes,
                sync_uuids,
            } => {
                let keys = sync_uuids.iter().filter_map(|uuid| entry_key(uuid));
                if refresh_deletes {
                    self.deletes.extend(keys);
                } else {
                    self.present_keys().extend(keys);
                }
                cookie
            }
        };
        if cookie.is_some() {
            self.cookie = cookie;
        }
    }
}

/// The entry's Sync State control. `Err` when it is malformed.
fn sync_state(entry: &ResultEntry) -> Result<Option<SyncState>, ()> {
    let Some(control) = entry.1.iter().find(|c| c.1.ctype == SYNC_STATE_OID) else {
        return Ok(None);
    };
    if control.1.val.is_none() {
        return Err(());
    }
    std::panic::catch_unwind(AssertUnwindSafe(|| control.1.parse::<SyncState>()))
        .map(Some)
        .map_err(|_| ())
}

/// An entryUUID as the key of an entry: its canonical text form.
fn entry_key(uuid: &[u8]) -> Option<String> {
    uuid::Uuid::from_slice(uuid)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// A search that failed, named by its base and filter.
pub(super) fn search_failed(
    base: &str,
    filter: &str,
    message: impl std::fmt::Display,
) -> DirectoryError {
    DirectoryError::new(
        Failure::Read,
        format!("searching {base} for {filter} failed: {message}"),
    )
}

/// An operation the server did not answer within `timeout`.
pub(super) fn timed_out(step: &str, timeout: Duration) -> DirectoryError {
    DirectoryError::new(
        Failure::Timeout,
        format!(
            "the directory did not answer within {} s while {step}",
            timeout.as_secs()
        ),
    )
    .hint("raise ldap.timeout_seconds or check the server")
}
