//! Microsoft Entra ID through Microsoft Graph v1.0.
//!
//! A full read lists users (`$select`ed, 999 a page), soft-deleted users (as tombstones), groups,
//! and each group's direct members with bounded concurrency, type-checked (users and nested
//! groups; devices, contacts and service principals are not people). With change tracking on,
//! it first takes delta links that start now (`$deltatoken=latest`), so an incremental read
//! follows them: users changed or removed (soft-deleted users become tombstones, so they are
//! removed), groups changed, and `members@delta` merged across pages into each group.
//!
//! Filters that select users or groups by membership (`includeGroup:`, administrative units)
//! are evaluated on every read; when what they select changed, the read is a full one.

pub mod config;
mod graph;

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::config::{Credential, ResolvedEntra};
use self::graph::{Graph, MemberKind, Page, Proof};
use crate::config::HttpConfig;
use crate::directory::{
    Changes, Directory, DirectoryError, DirectoryUser, Entries, EntryKind, Failure, FullRead,
    GroupPatch, GroupRecord, Progress, ReadOptions, UserRecord, read_each,
};
use crate::http::{ApiClient, Http, TokenCache, http_error};
use crate::secrets::{SecretKey, Secrets};

/// The app registration's client secret.
pub const CLIENT_SECRET: SecretKey = SecretKey::new(
    "entra.client_secret",
    "Entra app client secret (its Value)",
    Some("ORGSYNC_ENTRA_CLIENT_SECRET"),
);

/// Graph's access token, kept between runs (set by orgsync only).
const ACCESS_TOKEN: SecretKey = SecretKey::new("entra.access_token", "", None);

/// The user properties read: `accountEnabled` and `userType` are not in Graph's default set.
const USER_SELECT: &str = "id,mail,userPrincipalName,displayName,accountEnabled,userType";

/// Reads users and groups from Microsoft Graph.
pub struct EntraDirectory {
    config: ResolvedEntra,
    graph: ApiClient<Graph>,
    read_groups: bool,
}

/// Where an incremental read continues: the delta links, and a hash of what the membership
/// filters selected.
#[derive(Serialize, Deserialize)]
struct Watermark {
    users: String,
    groups: Option<String>,
    scope: String,
}

/// What the membership filters select, read afresh on every read.
#[derive(Default)]
struct Scope {
    /// Users of `includeGroup:` groups (`None`: no such clause).
    included_users: Option<HashSet<String>>,
    excluded_users: HashSet<String>,
    /// Groups of `includeadministrativeunit:` units (`None`: no such clause).
    included_groups: Option<HashSet<String>>,
    excluded_groups: HashSet<String>,
}

impl Scope {
    fn keeps_user(&self, key: &str) -> bool {
        self.included_users.as_ref().is_none_or(|s| s.contains(key))
            && !self.excluded_users.contains(key)
    }

    fn keeps_group(&self, key: &str) -> bool {
        self.included_groups
            .as_ref()
            .is_none_or(|s| s.contains(key))
            && !self.excluded_groups.contains(key)
    }

    fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        let sets = [
            self.included_users.as_ref(),
            Some(&self.excluded_users),
            self.included_groups.as_ref(),
            Some(&self.excluded_groups),
        ];
        for set in sets {
            let mut ids: Vec<&String> = set.map(|s| s.iter().collect()).unwrap_or_default();
            ids.sort_unstable();
            hasher.update(format!("{}:{ids:?};", set.is_some()));
        }
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            hasher.finalize(),
        )
    }
}

impl EntraDirectory {
    /// The source with its credential loaded (the secret from `secrets`, or the certificate).
    ///
    /// # Errors
    /// When the secret is not set, a file cannot be read, or the CA file or proxy is unusable.
    pub fn open(
        config: ResolvedEntra,
        http: &HttpConfig,
        secrets: &Secrets,
        read_groups: bool,
    ) -> Result<EntraDirectory, DirectoryError> {
        let secret = match config.credential {
            Credential::Secret => secrets
                .get(CLIENT_SECRET)
                .map_err(|e| DirectoryError::secret_store(CLIENT_SECRET, e))?,
            Credential::Certificate { .. } => None,
        };
        let proof = Proof::load(&config, secret)?;
        let client = Http::new(http.settings(config.ca_file.clone(), config.timeout))
            .map_err(|e| http_error("setting up HTTPS for Microsoft Graph", e))?;
        // A token is kept for the credential it was issued to: a new secret signs in anew.
        let issued_for = format!(
            "{} {} {} {}",
            config.token_url,
            config.client_id,
            config.scope,
            proof.fingerprint()
        );
        let tokens = TokenCache::stored(secrets.clone(), ACCESS_TOKEN, issued_for);
        Ok(EntraDirectory {
            graph: ApiClient::new(
                client,
                Graph {
                    config: config.clone(),
                    proof,
                },
                tokens,
            ),
            config,
            read_groups,
        })
    }

    pub fn tracks_changes(&self) -> bool {
        self.config.incremental
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.graph)
    }

    /// Reads every page from `url`, handing each item to `on_item`; returns the delta link of
    /// the last page, `Ok(None)` inside when the link has expired and `expiring` is set.
    async fn pages<T: DeserializeOwned>(
        &self,
        what: &str,
        mut url: String,
        expiring: bool,
        mut on_item: impl FnMut(T) -> Result<(), DirectoryError>,
    ) -> Result<Paged, DirectoryError> {
        loop {
            let answer = self.graph.fetch(what, &url, &[]).await?;
            if expiring && is_expired(&answer) {
                return Ok(Paged::Expired);
            }
            if !answer.status.is_success() {
                return Err(graph::graph_error(what, &answer));
            }
            let page: Page<T> = answer.json().map_err(|e| http_error(what, e))?;
            for item in page.value {
                on_item(item)?;
            }
            match page.next_link {
                Some(next) if next == url => {
                    return Err(DirectoryError::new(
                        Failure::Read,
                        format!("{what} failed: Microsoft Graph sent the same page link again"),
                    ));
                }
                Some(next) => url = next,
                None => return Ok(Paged::Done(page.delta_link)),
            }
        }
    }

    /// Every item of a collection.
    async fn all<T: DeserializeOwned>(
        &self,
        what: &str,
        url: String,
    ) -> Result<Vec<T>, DirectoryError> {
        let mut items = Vec::new();
        self.pages(what, url, false, |item| {
            items.push(item);
            Ok(())
        })
        .await?;
        Ok(items)
    }

    /// The delta link that starts now, for a collection.
    async fn latest_link(&self, what: &str, path: &str) -> Result<String, DirectoryError> {
        let url = self.url(&format!("{path}&$deltatoken=latest"));
        match self
            .pages::<serde_json::Value>(what, url, false, |_| Ok(()))
            .await?
        {
            Paged::Done(Some(link)) => Ok(link),
            _ => Err(DirectoryError::new(
                Failure::Read,
                format!("{what} failed: Microsoft Graph sent no delta link"),
            )),
        }
    }

    /// Reads what the membership filters select.
    async fn scope(&self) -> Result<Scope, DirectoryError> {
        let filter = &self.config.user_filter;
        let groups = &self.config.group_filter;
        let mut scope = Scope::default();
        let members_of = |ids: &BTreeSet<String>, path: &'static str, kind: MemberKind| {
            let ids: Vec<String> = ids.iter().cloned().collect();
            async move {
                let mut found = HashSet::new();
                for id in ids {
                    let what = format!("reading the members of {id} (a filter names it)");
                    let url = self.url(&path.replace("{id}", &id));
                    let members: Vec<graph::Member> = self.all(&what, url).await?;
                    found.extend(
                        members
                            .into_iter()
                            .filter(|m| m.kind() == kind)
                            .map(|m| m.id.to_lowercase()),
                    );
                }
                Ok::<_, DirectoryError>(found)
            }
        };
        const TRANSITIVE: &str = "/groups/{id}/transitiveMembers?$select=id&$top=999";
        const UNIT: &str = "/directory/administrativeUnits/{id}/members";
        if !filter.include_groups.is_empty() {
            scope.included_users =
                Some(members_of(&filter.include_groups, TRANSITIVE, MemberKind::User).await?);
        }
        scope.excluded_users =
            members_of(&filter.exclude_groups, TRANSITIVE, MemberKind::User).await?;
        if self.read_groups {
            if !groups.include_units.is_empty() {
                scope.included_groups =
                    Some(members_of(&groups.include_units, UNIT, MemberKind::Group).await?);
            }
            scope.excluded_groups =
                members_of(&groups.exclude_units, UNIT, MemberKind::Group).await?;
        }
        Ok(scope)
    }

    /// The record of a user, or `None` when the filters leave it out.
    fn user_record(&self, user: &graph::User, scope: &Scope, deleted: bool) -> Option<UserRecord> {
        let key = user.id.to_lowercase();
        let email = email_of(user, self.config.include_guests, deleted);
        if !scope.keeps_user(&key) || !self.config.user_filter.emails.keeps(email.as_deref()) {
            return None;
        }
        let reference = user
            .user_principal_name
            .clone()
            .unwrap_or_else(|| user.id.clone());
        Some(UserRecord {
            user: DirectoryUser {
                reference,
                external_id: user.id.clone(),
                email,
                disabled: user.account_enabled == Some(false),
                deleted,
            },
            aliases: vec![key],
        })
    }

    fn keeps_group(&self, key: &str, name: Option<&str>, scope: &Scope) -> bool {
        scope.keeps_group(key) && name.is_none_or(|n| self.config.group_filter.names.keeps(Some(n)))
    }

    /// The direct members of a group that are people or groups, and how many were neither.
    async fn members(&self, group: &graph::Group) -> Result<(Vec<String>, usize), DirectoryError> {
        let name = group.display_name.as_deref().unwrap_or(&group.id);
        let what = format!("listing the members of group {name}");
        let url = self.url(&format!("/groups/{}/members?$select=id&$top=999", group.id));
        let members: Vec<graph::Member> = self.all(&what, url).await?;
        let mut others = 0;
        let ids = members
            .into_iter()
            .filter_map(|m| match m.kind() {
                MemberKind::User | MemberKind::Group => Some(m.id.to_lowercase()),
                MemberKind::Other => {
                    others += 1;
                    None
                }
            })
            .collect();
        Ok((ids, others))
    }

    async fn read_users(
        &self,
        scope: &Scope,
        include_deleted: bool,
        progress: &dyn Progress,
    ) -> Result<HashMap<String, UserRecord>, DirectoryError> {
        let mut users = HashMap::new();
        let mut seen = 0;
        let url = self.url(&format!("/users?$select={USER_SELECT}&$top=999"));
        self.pages("listing users", url, false, |user: graph::User| {
            seen += 1;
            if seen % 999 == 0 {
                progress.entries_read(EntryKind::Users, seen);
            }
            if let Some(record) = self.user_record(&user, scope, false) {
                users.insert(user.id.to_lowercase(), record);
            }
            Ok(())
        })
        .await?;
        progress.entries_read(EntryKind::Users, seen);
        if include_deleted {
            let url = self.url(&format!(
                "/directory/deletedItems/microsoft.graph.user?$select={USER_SELECT}&$top=999"
            ));
            self.pages("listing deleted users", url, false, |user: graph::User| {
                let key = user.id.to_lowercase();
                if !users.contains_key(&key)
                    && let Some(record) = self.user_record(&user, scope, true)
                {
                    users.insert(key, record);
                }
                Ok(())
            })
            .await?;
        }
        Ok(users)
    }

    async fn read_groups(
        &self,
        scope: &Scope,
        progress: &dyn Progress,
        warnings: &mut Vec<String>,
    ) -> Result<HashMap<String, GroupRecord>, DirectoryError> {
        if !self.read_groups {
            return Ok(HashMap::new());
        }
        let url = self.url("/groups?$select=id,displayName&$top=999");
        let groups: Vec<graph::Group> = self.all("listing groups", url).await?;
        let kept: Vec<graph::Group> = groups
            .into_iter()
            .filter(|g| self.keeps_group(&g.id.to_lowercase(), Some(name_of(g)), scope))
            .collect();
        let listed: Vec<(graph::Group, (Vec<String>, usize))> = read_each(
            kept,
            self.config.concurrency,
            progress,
            EntryKind::Groups,
            |group| async move {
                let members = self.members(&group).await?;
                Ok((group, members))
            },
        )
        .await?;
        let others: usize = listed.iter().map(|(_, (_, others))| others).sum();
        if others > 0 {
            warnings.push(format!(
                "{others} group member(s) are devices, contacts or service principals, which are not people and are not synced"
            ));
        }
        Ok(listed
            .into_iter()
            .map(|(group, (members, _))| {
                let mut record = group_record(&group);
                record.members = members;
                (record.alias.clone(), record)
            })
            .collect())
    }

    /// The users changed since `link`, as changes, and the next link (`None`: expired).
    async fn users_changes(
        &self,
        link: &str,
        scope: &Scope,
        progress: &dyn Progress,
    ) -> Result<(Changes, Option<String>), DirectoryError> {
        let mut changes = Changes::default();
        let mut seen = 0;
        let paged = self
            .pages(
                "reading changed users",
                link.to_string(),
                true,
                |user: graph::User| {
                    seen += 1;
                    let key = user.id.to_lowercase();
                    if user.removed.is_some() {
                        changes.deleted_users.push(key);
                    } else {
                        match self.user_record(&user, scope, false) {
                            Some(record) => changes.users.upserts.push((key, record)),
                            None => changes.users.deletes.push(key),
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        progress.entries_read(EntryKind::Users, seen);
        Ok((changes, expect_link(paged, "reading changed users")?))
    }

    /// The groups changed since `link`, as changes, and the next link (`None`: expired).
    async fn groups_changes(
        &self,
        link: &str,
        scope: &Scope,
        progress: &dyn Progress,
    ) -> Result<(Changes, Option<String>), DirectoryError> {
        // One group may come on several pages, each with a slice of its member changes.
        let mut patches: HashMap<String, GroupPatch> = HashMap::new();
        let mut gone: Vec<String> = Vec::new();
        let paged = self
            .pages(
                "reading changed groups",
                link.to_string(),
                true,
                |group: graph::Group| {
                    let key = group.id.to_lowercase();
                    if group.removed.is_some()
                        || !self.keeps_group(&key, group.display_name.as_deref(), scope)
                    {
                        patches.remove(&key);
                        gone.push(key);
                        return Ok(());
                    }
                    let patch = patches.entry(key.clone()).or_insert_with(|| GroupPatch {
                        group: GroupRecord {
                            name: String::new(),
                            members: Vec::new(),
                            ..group_record(&group)
                        },
                        removed: Vec::new(),
                    });
                    if let Some(name) = &group.display_name {
                        patch.group.name = name.clone();
                        patch.group.reference = name.clone();
                    }
                    for member in group.members_delta.iter().flatten() {
                        if member.kind() == MemberKind::Other {
                            continue;
                        }
                        let id = member.id.to_lowercase();
                        match member.removed {
                            Some(_) => {
                                patch.group.members.retain(|m| *m != id);
                                patch.removed.push(id);
                            }
                            None => {
                                patch.removed.retain(|m| *m != id);
                                patch.group.members.push(id);
                            }
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        progress.entries_read(EntryKind::Groups, patches.len() + gone.len());
        let mut changes = Changes::default();
        changes.groups.deletes = gone;
        changes.group_patches = patches.into_iter().collect();
        Ok((changes, expect_link(paged, "reading changed groups")?))
    }
}

/// How a paged read ended.
enum Paged {
    Done(Option<String>),
    /// The delta link is no longer valid: read in full.
    Expired,
}

/// The new delta link of a finished delta read, `None` when the link expired.
fn expect_link(paged: Paged, what: &str) -> Result<Option<String>, DirectoryError> {
    match paged {
        Paged::Expired => Ok(None),
        Paged::Done(Some(link)) => Ok(Some(link)),
        Paged::Done(None) => Err(DirectoryError::new(
            Failure::Read,
            format!("{what} failed: Microsoft Graph's last page carried no delta link"),
        )),
    }
}

/// A delta link Graph no longer knows: 410 Gone, or `syncStateNotFound` / `resyncRequired`.
fn is_expired(answer: &crate::http::Answer) -> bool {
    answer.status.as_u16() == 410
        || (answer.status.is_client_error()
            && matches!(
                graph::error_code(answer).as_str(),
                "syncStateNotFound" | "resyncRequired"
            ))
}

fn name_of(group: &graph::Group) -> &str {
    group.display_name.as_deref().unwrap_or_default()
}

fn group_record(group: &graph::Group) -> GroupRecord {
    GroupRecord {
        reference: name_of(group).to_string(),
        external_id: group.id.clone(),
        name: name_of(group).to_string(),
        alias: group.id.to_lowercase(),
        members: Vec::new(),
    }
}

/// Directory Connector's rule: `mail`, but the user principal name when there is no mail or
/// the mail is a tenant address (`…onmicrosoft.com`). A guest's `#EXT#` name is no address:
/// with `include_guests` the guest's own address is read from it, else there is none. A
/// deleted user's principal name is rewritten by Entra, so only its mail counts.
fn email_of(user: &graph::User, include_guests: bool, deleted: bool) -> Option<String> {
    let mail = user
        .mail
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    if deleted {
        return mail.map(str::to_string);
    }
    let upn = user
        .user_principal_name
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let email = match (mail, upn) {
        (Some(mail), Some(upn)) if mail.to_lowercase().contains("onmicrosoft.com") => upn,
        (Some(mail), _) => mail,
        (None, Some(upn)) => upn,
        (None, None) => return None,
    };
    let Some(at) = email.to_uppercase().find("#EXT#") else {
        return Some(email.to_string());
    };
    if !include_guests {
        return None;
    }
    let local = &email[..at];
    let (name, domain) = local.rsplit_once('_')?;
    Some(format!("{name}@{domain}"))
}

impl Directory for EntraDirectory {
    async fn read(
        &self,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<FullRead, DirectoryError> {
        // Credentials first: a wrong secret says so before anything else is tried.
        self.graph.login(options.fresh_sign_in).await?;
        // Delta links first: a change made while the lists are read is in both, never lost.
        let links = match options.track_changes {
            true => Some((
                self.latest_link(
                    "starting change tracking for users",
                    &format!("/users/delta?$select={USER_SELECT}"),
                )
                .await?,
                match self.read_groups {
                    true => Some(
                        self.latest_link(
                            "starting change tracking for groups",
                            "/groups/delta?$select=id,displayName,members",
                        )
                        .await?,
                    ),
                    false => None,
                },
            )),
            false => None,
        };
        let scope = self.scope().await?;
        let mut warnings = Vec::new();
        let (users, groups) = tokio::join!(
            self.read_users(&scope, options.include_deleted, progress),
            self.read_groups(&scope, progress, &mut warnings),
        );
        let entries = Entries {
            users: users?,
            disabled: HashSet::new(),
            groups: groups?,
        };
        let watermark = links
            .map(|(users, groups)| {
                serde_json::to_string(&Watermark {
                    users,
                    groups,
                    scope: scope.hash(),
                })
            })
            .transpose()
            .map_err(|e| {
                DirectoryError::new(Failure::Read, format!("cannot record the delta links: {e}"))
            })?;
        Ok(FullRead {
            entries,
            watermark,
            warnings,
        })
    }

    async fn read_changes(
        &self,
        watermark: &str,
        progress: &dyn Progress,
    ) -> Result<Option<Changes>, DirectoryError> {
        let Ok(stored) = serde_json::from_str::<Watermark>(watermark) else {
            return Ok(None);
        };
        if stored.groups.is_some() != self.read_groups {
            return Ok(None);
        }
        let scope = self.scope().await?;
        if scope.hash() != stored.scope {
            tracing::info!(
                "the groups or administrative units a filter names changed members: reading in full"
            );
            return Ok(None);
        }
        // Users and groups at the same time: an unchanged poll costs one round trip each.
        let groups = async {
            match &stored.groups {
                Some(link) => self
                    .groups_changes(link, &scope, progress)
                    .await
                    .map(|(changes, next)| (changes, next.map(Some))),
                None => Ok((Changes::default(), Some(None))),
            }
        };
        let (users, groups) =
            tokio::join!(self.users_changes(&stored.users, &scope, progress), groups);
        let ((mut changes, users), (group_changes, groups)) = (users?, groups?);
        let (Some(users), Some(groups)) = (users, groups) else {
            return Ok(None);
        };
        changes.groups = group_changes.groups;
        changes.group_patches = group_changes.group_patches;
        changes.watermark = serde_json::to_string(&Watermark {
            users,
            groups,
            scope: stored.scope,
        })
        .map_err(|e| {
            DirectoryError::new(Failure::Read, format!("cannot record the delta links: {e}"))
        })?;
        Ok(Some(changes))
    }

    async fn follow(&self, _on_change: &(dyn Fn() + Send + Sync)) -> Result<bool, DirectoryError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(mail: Option<&str>, upn: &str) -> graph::User {
        graph::User {
            id: "1".into(),
            mail: mail.map(str::to_string),
            user_principal_name: Some(upn.into()),
            account_enabled: Some(true),
            removed: None,
        }
    }

    #[test]
    fn the_email_follows_directory_connectors_rule_and_decodes_guests_on_request() {
        assert_eq!(
            email_of(
                &user(Some("Ann@X.com"), "ann@x.onmicrosoft.com"),
                false,
                false
            )
            .as_deref(),
            Some("Ann@X.com")
        );
        assert_eq!(
            email_of(&user(None, "bo@x.com"), false, false).as_deref(),
            Some("bo@x.com")
        );
        assert_eq!(
            email_of(
                &user(Some("cy@x.onmicrosoft.com"), "cy@x.com"),
                false,
                false
            )
            .as_deref(),
            Some("cy@x.com")
        );
        let guest = user(None, "dee_example.com#EXT#@x.onmicrosoft.com");
        assert_eq!(email_of(&guest, false, false), None);
        assert_eq!(
            email_of(&guest, true, false).as_deref(),
            Some("dee@example.com")
        );
        assert_eq!(email_of(&user(None, "0a1bann@x.com"), false, true), None);
    }
}
