//! How each server applies an organization import to the organization. Pure state changes: no
//! HTTP here, so the two algorithms can be read side by side.
//!
//! Bitwarden (`ImportOrganizationUsersAndGroupsCommand`, directory-connector.md §5.6), in order:
//! 1. members listed `deleted: true` whose externalId matches a member are removed, unless the
//!    member is an owner or the same externalId is also listed as not deleted;
//! 2. with `overwriteExisting`, every non-owner member with an externalId that is not listed as
//!    a non-deleted member is removed;
//! 3. members without an externalId whose email is listed get the listed externalId;
//! 4. listed externalIds still unknown are invited (`Invited`, `User`) — except when the email
//!    already belongs to a member under another externalId: the invite is skipped (as Bitwarden's
//!    invite step skips known emails), that member keeps its old externalId, and the new
//!    externalId matches nobody, so groups listing it do not get that member;
//! 5. groups are matched by externalId, created or renamed, and their membership replaced by
//!    the listed externalIds that match a member (others are ignored). Groups need `UseGroups`:
//!    without it the request fails with 400 *after* the member changes above, as on the real
//!    server, which has no transaction around the steps.
//!
//! The real server fails with a 500 where its code would throw, and so does this one, at the
//! same step (earlier steps stay applied): missing `groups`/`members`, two non-deleted members
//! with the same email, two new members with the same externalId, an email match whose
//! externalId is already taken, a group without `memberExternalIds`, two groups with the same
//! externalId.
//!
//! Vaultwarden (vaultwarden-import.md), in order: members matched by email (deleted → revoked
//! unless the last owner, not deleted → restored if revoked or invited if new; the listed
//! externalId always overwrites, an empty one is stored as none); groups matched by externalId,
//! created with the listed name (existing names are never updated), membership replaced by the
//! members whose externalId is listed, revoked ones included; groups skipped when the org may
//! not use them; finally `overwriteExisting` deletes every member whose externalId is not among
//! the listed ones (deleted ones count as listed), except the last confirmed owner.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::state::Org;
use super::{MemberStatus, MemberType};

/// An import request after the flavour's own decoding and validation. The collections are
/// optional because Bitwarden lets `null` through its validation (and then fails).
#[derive(Debug)]
pub(crate) struct ImportRequest {
    pub groups: Option<Vec<ImportGroup>>,
    pub members: Option<Vec<ImportMember>>,
    pub overwrite_existing: bool,
    pub large_import: bool,
}

#[derive(Debug)]
pub(crate) struct ImportGroup {
    pub name: String,
    pub external_id: String,
    pub member_external_ids: Option<Vec<String>>,
}

#[derive(Debug)]
pub(crate) struct ImportMember {
    /// Lower-cased by the decoder.
    pub email: Option<String>,
    pub external_id: String,
    pub deleted: bool,
}

/// Why a Bitwarden import stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ImportFailure {
    /// A `BadRequestException`: 400 with this message.
    BadRequest(&'static str),
    /// An exception the server did not anticipate: 500.
    Unhandled,
}

/// The cloud's limit on one import without `largeImport: true` (directory-connector.md §5.4).
pub(crate) const CLOUD_IMPORT_LIMIT: usize = 2000;

/// Applies an import the way Bitwarden does; `cloud` enables the 2000-entry limit.
pub(crate) fn apply_bitwarden(
    org: &mut Org,
    req: &ImportRequest,
    cloud: bool,
) -> Result<(), ImportFailure> {
    if cloud && !req.large_import {
        let groups = req.groups.as_ref().ok_or(ImportFailure::Unhandled)?;
        let members = req.members.as_ref().ok_or(ImportFailure::Unhandled)?;
        let active = members.iter().filter(|m| !m.deleted).count();
        if groups.len() > CLOUD_IMPORT_LIMIT || active > CLOUD_IMPORT_LIMIT {
            return Err(ImportFailure::BadRequest(
                "You cannot import this much data at once.",
            ));
        }
    }
    let (Some(groups), Some(members)) = (&req.groups, &req.members) else {
        return Err(ImportFailure::Unhandled);
    };
    let new_users: Vec<&ImportMember> = members.iter().filter(|m| !m.deleted).collect();
    let new_ids: HashSet<&str> = new_users.iter().map(|m| m.external_id.as_str()).collect();

    // externalId -> member id for the members managed by a directory, as found at the start.
    let mut known: HashMap<String, u64> = HashMap::new();
    for member in &org.members {
        if let Some(ext) = member.external_id()
            && known.insert(ext.to_string(), member.id).is_some()
        {
            // Bitwarden builds this map with ToDictionary, which throws on a duplicate.
            return Err(ImportFailure::Unhandled);
        }
    }
    let snapshot = known.clone();
    let is_owner = |org: &Org, id: u64| org.member(id).is_some_and(|m| m.kind == MemberType::Owner);

    // 1. Deleted members.
    for ext in members.iter().filter(|m| m.deleted).map(|m| &m.external_id) {
        if new_ids.contains(ext.as_str()) {
            continue;
        }
        if let Some(&id) = snapshot.get(ext)
            && !is_owner(org, id)
        {
            org.remove_member(id);
        }
    }

    // 2. Overwrite: drop external members that are not listed.
    if req.overwrite_existing {
        for (ext, id) in &snapshot {
            if !new_ids.contains(ext.as_str()) && !is_owner(org, *id) {
                org.remove_member(*id);
                known.remove(ext);
            }
        }
    }

    if !new_users.is_empty() {
        // 3. Give members without an externalId the listed one, matched by email.
        let mut by_email: HashMap<&str, &ImportMember> = HashMap::new();
        for user in &new_users {
            let Some(email) = user.email.as_deref() else {
                continue;
            };
            if by_email.insert(email, user).is_some() {
                return Err(ImportFailure::Unhandled);
            }
        }
        let attach: Vec<(u64, String)> = org
            .members
            .iter()
            .filter(|m| m.external_id().is_none())
            .filter_map(|m| {
                let user = by_email.get(m.email.as_str())?;
                Some((m.id, user.external_id.clone()))
            })
            .collect();
        for (id, ext) in &attach {
            if known.insert(ext.clone(), *id).is_some() {
                return Err(ImportFailure::Unhandled);
            }
        }
        for (id, ext) in attach {
            if let Some(member) = org.member_mut(id) {
                member.external_id = Some(ext);
            }
        }

        // 4. Invite the externalIds still unknown, skipping emails already in the org.
        let to_add: HashSet<&str> = new_ids
            .iter()
            .copied()
            .filter(|ext| !known.contains_key(*ext))
            .collect();
        let known_emails: HashSet<String> = org.members.iter().map(|m| m.email.clone()).collect();
        let mut invited = Vec::new();
        for user in &new_users {
            let Some(email) = user.email.as_deref().filter(|e| !e.trim().is_empty()) else {
                continue;
            };
            if !to_add.contains(user.external_id.as_str()) || known_emails.contains(email) {
                continue;
            }
            let id = org.insert_member(
                email.to_string(),
                Some(user.external_id.clone()),
                MemberType::User,
                MemberStatus::Invited,
                false,
            );
            invited.push((user.external_id.clone(), id));
        }
        for (ext, id) in invited {
            if known.insert(ext, id).is_some() {
                return Err(ImportFailure::Unhandled);
            }
        }
    }

    // 5. Groups.
    if groups.is_empty() {
        return Ok(());
    }
    if !org.uses_groups {
        return Err(ImportFailure::BadRequest("Organization cannot use groups."));
    }
    let mut seen = HashSet::new();
    for group in groups {
        if group.member_external_ids.is_none() || !seen.insert(group.external_id.as_str()) {
            return Err(ImportFailure::Unhandled);
        }
    }
    for group in groups {
        let members: BTreeSet<u64> = group
            .member_external_ids
            .iter()
            .flatten()
            .filter_map(|ext| known.get(ext).copied())
            .filter(|id| org.member(*id).is_some())
            .collect();
        match org.group_index(&group.external_id) {
            Some(i) => {
                org.groups[i].name = group.name.clone();
                org.groups[i].members = members;
            }
            None => org.add_group(group.name.clone(), group.external_id.clone(), members),
        }
    }
    Ok(())
}

/// Applies an import the way Vaultwarden does. It never fails once the body is decoded.
pub(crate) fn apply_vaultwarden(org: &mut Org, req: &ImportRequest) {
    let members = req.members.as_deref().unwrap_or_default();
    for listed in members {
        let email = listed.email.clone().unwrap_or_default();
        // Vaultwarden stores an empty externalId as NULL.
        let ext = Some(listed.external_id.clone()).filter(|e| !e.is_empty());
        let existing = org.member_by_email(&email);
        match (existing, listed.deleted) {
            (Some(id), true) => {
                let last_owner = org.confirmed_owner_count() <= 1;
                if let Some(member) = org.member_mut(id) {
                    member.external_id = ext;
                    if member.kind == MemberType::Owner && last_owner {
                        tracing::warn!("Can't revoke the last owner");
                    } else {
                        member.revoked = true;
                    }
                }
            }
            // Not a member: nothing to revoke, and no user is created.
            (None, true) => {}
            (Some(id), false) => {
                if let Some(member) = org.member_mut(id) {
                    member.external_id = ext;
                    member.revoked = false;
                }
            }
            (None, false) => {
                org.insert_member(email, ext, MemberType::User, MemberStatus::Invited, false);
            }
        }
    }

    if org.uses_groups {
        for group in req.groups.as_deref().unwrap_or_default() {
            let wanted: HashSet<&str> = group
                .member_external_ids
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            let members: BTreeSet<u64> = org
                .members
                .iter()
                .filter(|m| m.external_id.as_deref().is_some_and(|e| wanted.contains(e)))
                .map(|m| m.id)
                .collect();
            match org.group_index(&group.external_id) {
                // Existing groups keep their name.
                Some(i) => org.groups[i].members = members,
                None => org.add_group(group.name.clone(), group.external_id.clone(), members),
            }
        }
    } else if req.groups.as_ref().is_some_and(|g| !g.is_empty()) {
        tracing::warn!(
            "groups are not enabled for this organization; skipping the import's groups"
        );
    }

    if req.overwrite_existing {
        let listed: HashSet<&str> = members.iter().map(|m| m.external_id.as_str()).collect();
        let unlisted: Vec<u64> = org
            .members
            .iter()
            .filter(|m| {
                m.external_id
                    .as_deref()
                    .is_some_and(|e| !listed.contains(e))
            })
            .map(|m| m.id)
            .collect();
        for id in unlisted {
            let protect = org
                .member(id)
                .is_some_and(|m| m.is_confirmed_owner() && org.confirmed_owner_count() <= 1);
            if protect {
                tracing::warn!("Can't delete the last owner");
            } else {
                org.remove_member(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(email: &str, ext: &str, deleted: bool) -> ImportMember {
        ImportMember {
            email: Some(email.to_string()),
            external_id: ext.to_string(),
            deleted,
        }
    }

    fn request(members: Vec<ImportMember>) -> ImportRequest {
        ImportRequest {
            groups: Some(Vec::new()),
            members: Some(members),
            overwrite_existing: false,
            large_import: false,
        }
    }

    fn org() -> Org {
        Org::new(true)
    }

    #[test]
    fn bitwarden_skips_a_listed_email_already_present_under_another_external_id() {
        let mut org = org();
        org.seed_member(
            "a@x.test",
            Some("old"),
            MemberType::User,
            MemberStatus::Confirmed,
        );
        apply_bitwarden(
            &mut org,
            &request(vec![member("a@x.test", "new", false)]),
            false,
        )
        .expect("import applies");
        let members = org.members();
        assert_eq!(members.len(), 2, "{members:?}");
        assert_eq!(members[1].external_id.as_deref(), Some("old"));
    }

    #[test]
    fn bitwarden_fails_like_the_server_on_duplicate_emails() {
        let mut org = org();
        let req = request(vec![
            member("a@x.test", "1", false),
            member("a@x.test", "2", false),
        ]);
        assert_eq!(
            apply_bitwarden(&mut org, &req, false),
            Err(ImportFailure::Unhandled)
        );
    }

    #[test]
    fn vaultwarden_never_revokes_the_last_owner_but_writes_its_external_id() {
        let mut org = org();
        apply_vaultwarden(
            &mut org,
            &request(vec![member("owner@example.test", "o", true)]),
        );
        let owner = &org.members()[0];
        assert_eq!(owner.status, MemberStatus::Confirmed);
        assert_eq!(owner.external_id.as_deref(), Some("o"));
    }
}
