//! Incremental reads on servers without content synchronisation, by revision attribute.
//!
//! Active Directory: `uSNChanged` against the domain controller's `highestCommittedUSN`, as
//! Microsoft documents for polling. A USN means something only on the DC that issued it, so the
//! watermark carries the DC's `invocationId`; another DC (or the same one restored from a backup)
//! has another, and the read is full. Deleted users come from their tombstones. Other servers:
//! `modifyTimestamp` against orgsync's clock at the start of the previous read, less a margin for
//! clock skew; entries seen again unchanged do not count as changes.
//!
//! Entries that left the search (deleted, moved out of the path, no longer matching the filter)
//! cannot be found by a revision filter, so each read also lists the DNs still there, paged and
//! without attributes; what is not listed is gone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::session::Session;
use super::{GroupsRead, LdapDirectory, format_guid, normalize_dn};
use crate::directory::{Changes, Delta, DirectoryError, EntryKind, GroupRecord, Progress};

/// How far before the previous read's start a timestamp watermark reaches back, for clocks that
/// disagree and for changes made while that read ran.
const CLOCK_MARGIN_MINUTES: i64 = 10;

/// Where the next revision read starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Revision {
    /// Active Directory: the DC's invocationId and its highestCommittedUSN before the read.
    Usn { invocation_id: String, usn: u64 },
    /// Other servers: a generalized time (`20261126010203Z`).
    Timestamp { since: String },
}

impl LdapDirectory {
    /// The server's revision now, taken before a read so nothing changed during it is missed.
    pub(super) async fn current_revision(
        &self,
        session: &mut Session<'_>,
        now: DateTime<Utc>,
    ) -> Result<Revision, DirectoryError> {
        if !self.config.active_directory {
            let since = now - chrono::Duration::minutes(CLOCK_MARGIN_MINUTES);
            return Ok(Revision::Timestamp {
                since: since.format("%Y%m%d%H%M%SZ").to_string(),
            });
        }
        let root = session
            .base_entry("", &["highestCommittedUSN", "dsServiceName"])
            .await?;
        let unusable = |what: &str| {
            super::session::search_failed(
                "the root DSE",
                "(objectClass=*)",
                format!("the domain controller did not give its {what}"),
            )
        };
        let usn = super::first_value(&root, "highestCommittedUSN")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| unusable("highestCommittedUSN"))?;
        let service =
            super::first_value(&root, "dsServiceName").ok_or_else(|| unusable("dsServiceName"))?;
        let settings = session.base_entry(&service, &["invocationId"]).await?;
        let invocation_id = super::binary_value(&settings, "invocationId")
            .and_then(|bytes| format_guid(&bytes))
            .ok_or_else(|| unusable("invocationId"))?;
        Ok(Revision::Usn { invocation_id, usn })
    }

    /// `filter` narrowed to entries changed since `since`.
    fn changed_since(filter: &str, since: &Revision) -> String {
        match since {
            Revision::Usn { usn, .. } => format!("(&{filter}(uSNChanged>={}))", usn + 1),
            Revision::Timestamp { since } => format!("(&{filter}(modifyTimestamp>={since}))"),
        }
    }

    /// What changed since `since`. `Ok(None)` when the watermark cannot be continued here.
    pub(super) async fn read_revised(
        &self,
        session: &mut Session<'_>,
        since: &Revision,
        now: DateTime<Utc>,
        progress: &dyn Progress,
    ) -> Result<Option<(Changes, Revision)>, DirectoryError> {
        let cfg = &self.config;
        let next = self.current_revision(session, now).await?;
        match (since, &next) {
            (
                Revision::Usn {
                    invocation_id: a, ..
                },
                Revision::Usn {
                    invocation_id: b, ..
                },
            ) if a != b => {
                return Ok(None);
            }
            (Revision::Usn { .. }, Revision::Usn { .. })
            | (Revision::Timestamp { .. }, Revision::Timestamp { .. }) => {}
            _ => return Ok(None),
        }
        let mut changes = Changes::default();

        let mut upserts = Vec::new();
        let filter = Self::changed_since(&cfg.user_filter, since);
        session
            .search(
                &cfg.user_base,
                &filter,
                &self.user_attributes(),
                None,
                |entry| {
                    upserts.push((normalize_dn(&entry.dn), self.user_record(&entry, false)?));
                    progress.entries_read(EntryKind::Users, upserts.len());
                    Ok(())
                },
            )
            .await?;
        if let Revision::Usn { usn, .. } = since {
            match self.deleted_users(session, Some(*usn)).await {
                Ok(tombstones) => upserts.extend(tombstones),
                Err(e) => changes
                    .warnings
                    .push(format!("cannot read deleted objects: {e}")),
            }
        }
        changes.users = Delta {
            present: Some(self.list(session, &cfg.user_base, &cfg.user_filter).await?),
            upserts,
            deletes: Vec::new(),
        };

        if let Some(filter) = self.disabled_filter() {
            let disabled = self.list(session, &cfg.user_base, &filter).await?;
            changes.disabled = Delta {
                upserts: disabled.iter().map(|key| (key.clone(), ())).collect(),
                deletes: Vec::new(),
                present: Some(disabled),
            };
        }

        if self.read_groups {
            let mut read = GroupsRead::default();
            let filter = Self::changed_since(&cfg.group_filter, since);
            session
                .search(
                    &cfg.group_base,
                    &filter,
                    &self.group_attributes(),
                    self.group_control(),
                    |entry| self.collect_group(&mut read, normalize_dn(&entry.dn), &entry),
                )
                .await?;
            let (groups, nameless) = self
                .finish_groups(session, read, &mut changes.warnings)
                .await?;
            changes.groups = Delta {
                upserts: groups.into_iter().collect::<Vec<(String, GroupRecord)>>(),
                // A group that lost its name is no longer synced.
                deletes: nameless,
                present: Some(
                    self.list(session, &cfg.group_base, &cfg.group_filter)
                        .await?,
                ),
            };
        }
        Ok(Some((changes, next)))
    }

    /// Normalised DNs of the entries `filter` matches under `base` (no attributes).
    async fn list(
        &self,
        session: &mut Session<'_>,
        base: &str,
        filter: &str,
    ) -> Result<std::collections::HashSet<String>, DirectoryError> {
        let mut keys = std::collections::HashSet::new();
        session
            .search(base, filter, &["1.1".to_string()], None, |entry| {
                keys.insert(normalize_dn(&entry.dn));
                Ok(())
            })
            .await?;
        Ok(keys)
    }
}
