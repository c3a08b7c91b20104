//! LDAP and Active Directory source (ldap3, rustls).
//!
//! A full read is one streaming paged search for users and one for groups, each asking only for
//! the attributes orgsync uses; disabled users on non-AD servers come from one more search with
//! `ldap.disabled_filter` that returns DNs only. Group members stay as references and are
//! resolved in [`crate::directory::Entries::snapshot`], so there is no second user search.
//!
//! Where the server offers RFC 4533 content synchronisation (OpenLDAP's `syncprov`), the same
//! three searches run as refreshOnly syncs: the first returns everything plus a cookie per
//! search, later ones only what changed since (deletes included), keyed by entryUUID.

pub mod config;
mod dn;
mod revision;
mod session;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use ldap3::controls::RawControl;
use serde::{Deserialize, Serialize};

use self::config::{ExternalIdSource, ResolvedLdap};
use self::dn::member_reference;
pub use self::dn::normalize_dn;
use self::session::{Entry, Session, SyncedSearch};
use crate::directory::{
    Changes, Delta, Directory, DirectoryError, DirectoryUser, Entries, EntryKind, Failure,
    FullRead, GroupRecord, Progress, ReadOptions, UserRecord,
};
use crate::secrets::{Secret, SecretKey, Secrets};

/// The password of `ldap.bind_dn`.
pub const BIND_PASSWORD: SecretKey = SecretKey::new(
    "ldap.bind_password",
    "LDAP bind password",
    Some("ORGSYNC_LDAP_BIND_PASSWORD"),
);

/// AD's "show deleted objects" control: lets a search see tombstones under CN=Deleted Objects.
const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";
/// AD's extended DN control: member values come as `<GUID=…>;<SID=…>;CN=…`. AD keeps links to
/// objects, not names: a rename or move rewrites every group's member value without changing
/// the group, so an incremental read keeps the value it read before. By objectGUID, those
/// members still resolve, and a new object at a deleted one's DN is not taken for it.
const EXTENDED_DN_OID: &str = "1.2.840.113556.1.4.529";
/// Its value: BER `SEQUENCE { INTEGER 1 }`, GUIDs and SIDs as strings.
const EXTENDED_DN_STRING_FORM: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x01];
/// userAccountControl bit ACCOUNTDISABLE.
const UAC_ACCOUNT_DISABLE: u64 = 0x2;

/// Reads users and groups from an LDAP server.
pub struct LdapDirectory {
    config: ResolvedLdap,
    password: Secret,
    read_groups: bool,
}

/// The groups one search returned: records by key, the ranged ones whose other member values
/// are still to fetch, and the keys of groups with neither a name nor a cn (not synced).
#[derive(Default)]
struct GroupsRead {
    groups: HashMap<String, GroupRecord>,
    ranged: Vec<(String, usize)>,
    nameless: Vec<String>,
}

/// Where the next incremental read starts, stored as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Watermark {
    /// RFC 4533 content synchronisation.
    ContentSync(Cookies),
    /// Revision attributes (see [`revision`]).
    Revision(revision::Revision),
}

impl Watermark {
    fn decode(watermark: &str) -> Option<Watermark> {
        serde_json::from_str(watermark).ok()
    }

    fn encode(&self) -> String {
        serde_json::to_string(self).expect("watermarks serialise")
    }
}

/// One content-synchronisation cookie per search, as the server sent them (base64).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cookies {
    users: String,
    disabled: Option<String>,
    groups: Option<String>,
}

fn cookie_bytes(cookie: &Option<String>) -> Option<Vec<u8>> {
    cookie.as_ref().and_then(|c| BASE64.decode(c).ok())
}

/// The cookie to store after a content-sync search: the server's new one, or the one sent when
/// the server kept it.
fn next_cookie(search: &SyncedSearch, sent: Option<&String>) -> Option<String> {
    search
        .cookie
        .as_ref()
        .map(|c| BASE64.encode(c))
        .or_else(|| sent.cloned())
}

/// A content-sync search's changes: the entries it sent in full, and what it said of the rest.
fn delta<T>(search: SyncedSearch, upserts: Vec<(String, T)>) -> Delta<T> {
    Delta {
        upserts,
        deletes: search.deletes,
        present: search.present,
    }
}

impl LdapDirectory {
    /// `read_groups` off skips the group search (users are always read: memberships and
    /// removals are resolved against them).
    pub fn new(config: ResolvedLdap, password: Secret, read_groups: bool) -> Self {
        LdapDirectory {
            config,
            password,
            read_groups,
        }
    }

    /// The source with its bind password from `secrets`.
    ///
    /// # Errors
    /// When the password is not set or the secret store cannot be read.
    pub fn open(
        config: ResolvedLdap,
        secrets: &Secrets,
        read_groups: bool,
    ) -> Result<Self, DirectoryError> {
        let password = secrets
            .get(BIND_PASSWORD)
            .map_err(|e| DirectoryError::secret_store(BIND_PASSWORD, e))?
            .ok_or_else(|| DirectoryError::missing_secret(BIND_PASSWORD))?;
        Ok(Self::new(config, password, read_groups))
    }

    /// Whether the configuration asks for incremental reads (`ldap.incremental`).
    pub fn tracks_changes(&self) -> bool {
        self.config.incremental
    }
}

impl Directory for LdapDirectory {
    async fn read(
        &self,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<FullRead, DirectoryError> {
        let mut session = Session::open(&self.config, &self.password).await?;
        let result = self.read_full(&mut session, options, progress).await;
        session.close().await;
        result
    }

    async fn follow(&self, on_change: &(dyn Fn() + Send + Sync)) -> Result<bool, DirectoryError> {
        let mut session = Session::open(&self.config, &self.password).await?;
        let result = self.follow_with(&mut session, on_change).await;
        session.close().await;
        result
    }

    async fn read_changes(
        &self,
        watermark: &str,
        progress: &dyn Progress,
    ) -> Result<Option<Changes>, DirectoryError> {
        let Some(watermark) = Watermark::decode(watermark) else {
            return Ok(None);
        };
        let mut session = Session::open(&self.config, &self.password).await?;
        let result = match &watermark {
            Watermark::ContentSync(cookies) => {
                self.read_synced(&mut session, Some(cookies), progress)
                    .await
            }
            Watermark::Revision(since) => self
                .read_revised(&mut session, since, Utc::now(), progress)
                .await
                .map(|read| {
                    read.map(|(mut changes, next)| {
                        changes.watermark = Watermark::Revision(next).encode();
                        changes
                    })
                }),
        };
        session.close().await;
        result
    }
}

impl LdapDirectory {
    /// Content-sync persistence under the root path, for users and groups in one search.
    async fn follow_with(
        &self,
        session: &mut Session<'_>,
        on_change: &(dyn Fn() + Send + Sync),
    ) -> Result<bool, DirectoryError> {
        if !self.config.incremental || !session.supports_content_sync().await {
            return Ok(false);
        }
        let filter = format!("(|{}{})", self.config.user_filter, self.config.group_filter);
        session
            .follow(&self.config.root_path, &filter, on_change)
            .await
            .map(|()| true)
    }

    async fn read_full(
        &self,
        session: &mut Session<'_>,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<FullRead, DirectoryError> {
        let mut warnings = Vec::new();
        let track = options.track_changes && self.config.incremental;
        if track && session.supports_content_sync().await {
            match self.read_synced(session, None, progress).await {
                Ok(Some(changes)) => {
                    let entries = Entries {
                        users: changes.users.upserts.into_iter().collect(),
                        disabled: changes.disabled.upserts.into_iter().map(|(k, ())| k).collect(),
                        groups: changes.groups.upserts.into_iter().collect(),
                    };
                    warnings.extend(changes.warnings);
                    return Ok(FullRead {
                        entries,
                        watermark: Some(changes.watermark),
                        warnings,
                    });
                }
                Ok(None) => {}
                Err(e) if matches!(e.failure(), Failure::Unreachable | Failure::Timeout) => {
                    return Err(e);
                }
                Err(e) => warnings.push(format!(
                    "the server offers content synchronisation, but it failed, so this read was a full paged one: {e}"
                )),
            }
        }
        // Without content sync, later reads go by revision from a point taken before this one.
        let revision = match track {
            true => match self.current_revision(session, Utc::now()).await {
                Ok(revision) => Some(revision),
                Err(e) => {
                    warnings.push(format!(
                        "changes cannot be tracked, so every read will be full: {e}"
                    ));
                    None
                }
            },
            false => None,
        };
        let mut read = self.read_paged(session, options, progress).await?;
        read.watermark = revision.map(|r| Watermark::Revision(r).encode());
        read.warnings.splice(0..0, warnings);
        Ok(read)
    }

    /// A full read with paged searches; entries keyed by normalised DN, no watermark.
    async fn read_paged(
        &self,
        session: &mut Session<'_>,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<FullRead, DirectoryError> {
        let cfg = &self.config;
        let mut warnings = Vec::new();
        let mut entries = Entries::default();

        // Users and groups are read at once, the groups on a connection of their own (a server
        // runs one paged search per connection): the server answers both in parallel while this
        // side decodes whichever entry arrives next.
        let disabled = &mut entries.disabled;
        let attrs = self.user_attributes();
        // Collected first and put in the map once their number is known: a growing map hashes
        // every key again each time it doubles.
        let mut users = Vec::new();
        let read_users = async {
            if let Some(filter) = self.disabled_filter() {
                session
                    .search(
                        &cfg.user_base,
                        &filter,
                        &["1.1".to_string()],
                        None,
                        |entry| {
                            disabled.insert(normalize_dn(&entry.dn));
                            Ok(())
                        },
                    )
                    .await?;
            }
            session
                .search(&cfg.user_base, &cfg.user_filter, &attrs, None, |entry| {
                    let record = self.user_record(&entry, false)?;
                    // The first alias is the normalised DN, the key of a paged read.
                    users.push((record.aliases[0].clone(), record));
                    progress.entries_read(EntryKind::Users, users.len());
                    Ok(())
                })
                .await
        };
        let mut groups = GroupsRead::default();
        let group_attributes = self.group_attributes();
        let group_control = self.group_control();
        let read_groups = async {
            if !self.read_groups {
                return Ok(());
            }
            let group_session = Session::open(&self.config, &self.password).await?;
            let read = group_session
                .search(
                    &cfg.group_base,
                    &cfg.group_filter,
                    &group_attributes,
                    group_control,
                    |entry| {
                        // The normalised DN is the key of a paged read.
                        self.collect_group(&mut groups, normalize_dn(&entry.dn), &entry)?;
                        progress.entries_read(EntryKind::Groups, groups.groups.len());
                        Ok(())
                    },
                )
                .await;
            group_session.close().await;
            read
        };
        tokio::try_join!(read_users, read_groups)?;

        entries.users.reserve(users.len());
        entries.users.extend(users);
        if cfg.active_directory && options.include_deleted {
            match self.deleted_users(session, None).await {
                Ok(tombstones) => entries.users.extend(tombstones),
                Err(e) => warnings.push(format!("cannot read deleted objects: {e}")),
            }
        }

        if self.read_groups {
            (entries.groups, _) = self.finish_groups(session, groups, &mut warnings).await?;
        }
        Ok(FullRead {
            entries,
            watermark: None,
            warnings,
        })
    }

    /// The three searches as RFC 4533 refreshOnly syncs. Without cookies every entry comes
    /// back as an upsert. `Ok(None)` when the server can no longer serve a cookie.
    async fn read_synced(
        &self,
        session: &mut Session<'_>,
        cookies: Option<&Cookies>,
        progress: &dyn Progress,
    ) -> Result<Option<Changes>, DirectoryError> {
        let cfg = &self.config;
        let mut next = Cookies::default();
        let mut changes = Changes::default();

        let users_cookie = match cookies.map(|c| BASE64.decode(&c.users)) {
            // A cookie that is not base64 is not ours: read everything.
            Some(Err(_)) => return Ok(None),
            Some(Ok(bytes)) => Some(bytes),
            None => None,
        };
        let attrs = self.user_attributes();
        let mut upserts = Vec::new();
        let Some(search) = session
            .sync_search(
                &cfg.user_base,
                &cfg.user_filter,
                &attrs,
                users_cookie.as_deref(),
                |key, entry| {
                    upserts.push((key, self.user_record(&entry, false)?));
                    progress.entries_read(EntryKind::Users, upserts.len());
                    Ok(())
                },
            )
            .await?
        else {
            return Ok(None);
        };
        next.users = next_cookie(&search, cookies.map(|c| &c.users))
            .ok_or_else(|| self.no_cookie(&cfg.user_base))?;
        changes.users = delta(search, upserts);

        if let Some(filter) = self.disabled_filter() {
            let cookie = cookies.and_then(|c| cookie_bytes(&c.disabled));
            let mut upserts = Vec::new();
            let Some(search) = session
                .sync_search(
                    &cfg.user_base,
                    &filter,
                    &["1.1".to_string()],
                    cookie.as_deref(),
                    |key, _| {
                        upserts.push((key, ()));
                        Ok(())
                    },
                )
                .await?
            else {
                return Ok(None);
            };
            next.disabled = next_cookie(&search, cookies.and_then(|c| c.disabled.as_ref()));
            changes.disabled = delta(search, upserts);
        }

        if self.read_groups {
            let cookie = cookies.and_then(|c| cookie_bytes(&c.groups));
            let mut read = GroupsRead::default();
            let Some(search) = session
                .sync_search(
                    &cfg.group_base,
                    &cfg.group_filter,
                    &self.group_attributes(),
                    cookie.as_deref(),
                    |key, entry| {
                        self.collect_group(&mut read, key, &entry)?;
                        progress.entries_read(EntryKind::Groups, read.groups.len());
                        Ok(())
                    },
                )
                .await?
            else {
                return Ok(None);
            };
            next.groups = next_cookie(&search, cookies.and_then(|c| c.groups.as_ref()));
            let (groups, nameless) = self
                .finish_groups(session, read, &mut changes.warnings)
                .await?;
            changes.groups = delta(search, groups.into_iter().collect());
            // A group that lost its name is no longer synced.
            changes.groups.deletes.extend(nameless);
        }
        if cookies.is_some() && self.read_groups {
            self.reread_referencing_groups(session, &mut changes)
                .await?;
        }
        changes.watermark = Watermark::ContentSync(next).encode();
        Ok(Some(changes))
    }

    /// The overlays that keep member values in step with renames and deletes (refint,
    /// memberof-refint) rewrite groups with internal operations that content sync does not
    /// report, so a group's member values can change without the group showing up as changed.
    /// After entries were renamed, moved, created or deleted, the groups that may name them are
    /// read again in full: all of them when an entry left (its DN is no longer known here, and
    /// groups may have dropped it) or many entries changed, else those whose members name one
    /// of the changed entries' DNs now.
    async fn reread_referencing_groups(
        &self,
        session: &mut Session<'_>,
        changes: &mut Changes,
    ) -> Result<(), DirectoryError> {
        /// More changed entries than this, and every group is read again (one search).
        const TARGETED_LIMIT: usize = 200;
        let cfg = &self.config;
        let something_left = !changes.users.deletes.is_empty()
            || changes.users.present.is_some()
            || !changes.groups.deletes.is_empty()
            || changes.groups.present.is_some();
        let changed: Vec<&str> = changes
            .users
            .upserts
            .iter()
            .map(|(_, r)| r.user.reference.as_str())
            .chain(
                changes
                    .groups
                    .upserts
                    .iter()
                    .map(|(_, g)| g.reference.as_str()),
            )
            .collect();
        if !something_left && changed.is_empty() {
            return Ok(());
        }
        let everything = something_left || changed.len() > TARGETED_LIMIT;
        let filter = match everything {
            true => cfg.group_filter.clone(),
            false => {
                let named: String = changed
                    .iter()
                    .map(|dn| format!("({}={})", cfg.member_attribute, ldap3::ldap_escape(*dn)))
                    .collect();
                format!("(&{}(|{named}))", cfg.group_filter)
            }
        };
        let mut attrs = self.group_attributes();
        attrs.push("entryUUID".into());
        let mut read = GroupsRead::default();
        session
            .search(&cfg.group_base, &filter, &attrs, None, |entry| {
                let Some(key) = first_text(&entry, "entryUUID").map(str::to_ascii_lowercase) else {
                    return Err(session::search_failed(
                        &cfg.group_base,
                        &filter,
                        format!("the group {} came without its entryUUID", entry.dn),
                    ));
                };
                self.collect_group(&mut read, key, &entry)
            })
            .await?;
        let (groups, nameless) = self
            .finish_groups(session, read, &mut changes.warnings)
            .await?;
        let delta = &mut changes.groups;
        if everything {
            delta.present = Some(groups.keys().cloned().collect());
            delta.upserts = groups.into_iter().collect();
            delta.deletes = nameless;
        } else {
            // What was just read is the newer answer for a group the content sync sent too.
            delta.upserts.retain(|(key, _)| !groups.contains_key(key));
            delta.upserts.extend(groups);
            delta.deletes.extend(nameless);
        }
        Ok(())
    }

    fn no_cookie(&self, base: &str) -> DirectoryError {
        session::search_failed(
            base,
            &self.config.user_filter,
            "the server sent no content-synchronisation cookie",
        )
    }

    fn disabled_filter(&self) -> Option<String> {
        let disabled = self.config.disabled_filter.as_ref()?;
        Some(format!("(&{}{disabled})", self.config.user_filter))
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
            attrs.push("objectGUID".into());
        }
        attrs.sort();
        attrs.dedup();
        attrs
    }

    /// The control group searches send: on AD, members named by objectGUID.
    fn group_control(&self) -> Option<RawControl> {
        self.config.active_directory.then(|| RawControl {
            ctype: EXTENDED_DN_OID.into(),
            crit: false,
            val: Some(EXTENDED_DN_STRING_FORM.to_vec()),
        })
    }

    /// The value group members name this entry by, besides its DN: on AD, its objectGUID in
    /// the form [`member_reference`] gives an extended DN's `<GUID=…>` part.
    fn identity_alias(&self, entry: &Entry) -> Option<String> {
        if !self.config.active_directory {
            return None;
        }
        let guid = format_guid(first_bytes(entry, "objectGUID")?)?;
        Some(dn::guid_reference(&guid))
    }

    fn group_attributes(&self) -> Vec<String> {
        let cfg = &self.config;
        let mut attrs = vec![
            cfg.group_name_attribute.clone(),
            "cn".to_string(),
            cfg.member_attribute.clone(),
        ];
        if let Some(attr) = external_id_attribute(&cfg.external_id) {
            attrs.push(attr.to_string());
        }
        if cfg.active_directory {
            attrs.push("objectGUID".into());
        }
        attrs.sort();
        attrs.dedup();
        attrs
    }

    /// AD tombstones of users (all, or those changed since a USN), read with the show-deleted
    /// control, keyed by normalised DN. Tombstones usually keep only a few attributes
    /// (objectGUID, sAMAccountName); without an email they are reported, not sent.
    async fn deleted_users(
        &self,
        session: &mut Session<'_>,
        changed_after_usn: Option<u64>,
    ) -> Result<Vec<(String, UserRecord)>, DirectoryError> {
        let cfg = &self.config;
        let base = format!("CN=Deleted Objects,{}", cfg.root_path);
        let changed =
            changed_after_usn.map_or(String::new(), |usn| format!("(uSNChanged>={})", usn + 1));
        let filter = format!("(&{}(isDeleted=TRUE){changed})", cfg.user_filter);
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
                    let record = self.user_record(&entry, true)?;
                    users.push((record.aliases[0].clone(), record));
                    Ok(())
                },
            )
            .await?;
        Ok(users)
    }

    /// The user's record. Its first alias is the normalised DN.
    fn user_record(&self, entry: &Entry, deleted: bool) -> Result<UserRecord, DirectoryError> {
        let cfg = &self.config;
        let external_id = external_id(entry, &cfg.external_id)?;
        let email = first_text(entry, &cfg.email_attribute)
            .filter(|email| !email.trim().is_empty())
            .map(str::to_string)
            .or_else(|| {
                let (prefix_attr, suffix) = cfg.email_prefix_suffix.as_ref()?;
                let prefix = first_text(entry, prefix_attr)?;
                Some(format!("{}{suffix}", prefix.trim()))
            });
        let disabled = cfg.active_directory
            && first_text(entry, "userAccountControl")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .is_some_and(|uac| (uac as u64) & UAC_ACCOUNT_DISABLE != 0);
        // Room for the DN, the uid and the GUID: tens of thousands of these stay in memory.
        let mut aliases = Vec::with_capacity(3);
        aliases.push(normalize_dn(&entry.dn));
        if let Some(uid) = first_text(entry, &cfg.uid_attribute) {
            aliases.extend(member_reference(uid));
        }
        aliases.extend(self.identity_alias(entry));
        Ok(UserRecord {
            user: DirectoryUser {
                reference: entry.dn.to_string(),
                external_id,
                email,
                disabled,
                deleted,
            },
            aliases,
        })
    }

    /// The group's record and, when AD split its members into ranges, where the next starts.
    /// `None` for a group with neither the name attribute nor a cn.
    fn group_record(
        &self,
        entry: &Entry,
    ) -> Result<Option<(GroupRecord, Option<usize>)>, DirectoryError> {
        let cfg = &self.config;
        let Some(name) =
            first_value(entry, &cfg.group_name_attribute).or_else(|| first_value(entry, "cn"))
        else {
            return Ok(None);
        };
        let (members, next_range) = member_texts(entry, &cfg.member_attribute);
        Ok(Some((
            GroupRecord {
                reference: entry.dn.to_string(),
                external_id: external_id(entry, &cfg.external_id)?,
                name,
                alias: self
                    .identity_alias(entry)
                    .unwrap_or_else(|| normalize_dn(&entry.dn)),
                members: members.into_iter().filter_map(member_reference).collect(),
            },
            next_range,
        )))
    }

    /// Files a group entry a search returned under `key`.
    fn collect_group(
        &self,
        read: &mut GroupsRead,
        key: String,
        entry: &Entry,
    ) -> Result<(), DirectoryError> {
        match self.group_record(entry)? {
            Some((record, next_range)) => {
                if let Some(start) = next_range {
                    read.ranged.push((key.clone(), start));
                }
                read.groups.insert(key, record);
            }
            None => read.nameless.push(key),
        }
        Ok(())
    }

    /// Completes the groups a search returned: fetches their remaining member ranges and warns
    /// about nameless ones. Returns the groups and the nameless groups' keys.
    async fn finish_groups(
        &self,
        session: &mut Session<'_>,
        read: GroupsRead,
        warnings: &mut Vec<String>,
    ) -> Result<(HashMap<String, GroupRecord>, Vec<String>), DirectoryError> {
        let GroupsRead {
            mut groups,
            ranged,
            nameless,
        } = read;
        self.fetch_ranges(session, &mut groups, ranged).await?;
        if !nameless.is_empty() {
            warnings.push(self.nameless_warning(nameless.len()));
        }
        Ok((groups, nameless))
    }

    /// AD returns at most 1500 values of a large multi-valued attribute per search and names the
    /// rest as ranges (`member;range=0-1499`); fetches the remaining ranges of those groups.
    async fn fetch_ranges(
        &self,
        session: &mut Session<'_>,
        groups: &mut HashMap<String, GroupRecord>,
        ranged: Vec<(String, usize)>,
    ) -> Result<(), DirectoryError> {
        for (key, start) in ranged {
            let Some(group) = groups.get_mut(&key) else {
                continue;
            };
            let mut next = Some(start);
            while let Some(start) = next {
                let (more, more_next) = session
                    .member_range(
                        &group.reference,
                        &self.config.member_attribute,
                        start,
                        self.group_control(),
                    )
                    .await?;
                group
                    .members
                    .extend(more.iter().filter_map(|m| member_reference(m)));
                next = more_next;
            }
        }
        Ok(())
    }

    fn nameless_warning(&self, count: usize) -> String {
        format!(
            "{count} group(s) have neither {} nor cn and were skipped",
            self.config.group_name_attribute
        )
    }
}

fn external_id_attribute(source: &ExternalIdSource) -> Option<&str> {
    match source {
        ExternalIdSource::Dn => None,
        ExternalIdSource::ObjectGuid => Some("objectGUID"),
        ExternalIdSource::Attribute(attr) => Some(attr),
    }
}

fn external_id(entry: &Entry, source: &ExternalIdSource) -> Result<String, DirectoryError> {
    let missing = |attr: &str| {
        DirectoryError::new(
            Failure::Config,
            format!(
                "entry {} has no {attr} attribute, which ldap.external_id_attribute names",
                entry.dn
            ),
        )
        .hint("choose an attribute every user and group has, or `dn`")
    };
    match source {
        ExternalIdSource::Dn => Ok(entry.dn.to_string()),
        ExternalIdSource::ObjectGuid => {
            let bytes = first_bytes(entry, "objectGUID").ok_or_else(|| missing("objectGUID"))?;
            format_guid(bytes).ok_or_else(|| missing("a 16-byte objectGUID"))
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
fn first_text<'e>(entry: &'e Entry, attr: &str) -> Option<&'e str> {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))
        .and_then(|(_, values)| values.first())
        .map(String::as_str)
}

fn first_value(entry: &Entry, attr: &str) -> Option<String> {
    first_text(entry, attr).map(str::to_string)
}

/// A binary attribute's first value. ldap3 files values that happen to be valid UTF-8 under
/// `attrs`, so look in both.
fn first_bytes<'e>(entry: &'e Entry, attr: &str) -> Option<&'e [u8]> {
    entry
        .bin_attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))
        .and_then(|(_, values)| values.first())
        .map(Vec::as_slice)
        .or_else(|| first_text(entry, attr).map(str::as_bytes))
}

fn binary_value(entry: &Entry, attr: &str) -> Option<Vec<u8>> {
    first_bytes(entry, attr).map(<[u8]>::to_vec)
}

/// All values of the member attribute, and where the next range starts if AD split them.
fn member_texts<'e>(entry: &'e Entry, attr: &str) -> (Vec<&'e str>, Option<usize>) {
    let mut values = Vec::new();
    let mut next = None;
    for (name, vals) in &entry.attrs {
        let (base, options) = name.split_once(';').unwrap_or((name, ""));
        if !base.eq_ignore_ascii_case(attr) {
            continue;
        }
        values.extend(vals.iter().map(String::as_str));
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let entry = |name: &str, value: &str| Entry {
            dn: "cn=g".into(),
            attrs: vec![(name.into(), vec![value.into()])],
            bin_attrs: Vec::new(),
        };
        let first = entry("member;range=0-1499", "cn=a");
        assert_eq!(member_texts(&first, "member"), (vec!["cn=a"], Some(1500)));
        let last = entry("Member;range=1500-*", "cn=b");
        assert_eq!(member_texts(&last, "member"), (vec!["cn=b"], None));
    }

    #[test]
    fn binary_values_are_found_in_either_list_and_names_ignore_case() {
        let entry = Entry {
            dn: "cn=x".into(),
            attrs: vec![("mail".into(), vec!["a@x".into()])],
            bin_attrs: vec![("objectGUID".into(), vec![vec![0xff; 16]])],
        };
        assert_eq!(first_text(&entry, "MAIL"), Some("a@x"));
        assert_eq!(first_bytes(&entry, "objectguid"), Some(&[0xff; 16][..]));
        assert_eq!(first_bytes(&entry, "mail"), Some(&b"a@x"[..]));
        assert_eq!(first_text(&entry, "uid"), None);
    }
}
