//! OneLogin through its API v2, signed in with an API credential (client credentials, a
//! 10-hour token kept between runs).
//!
//! Users are listed 100 a page, following the `After-Cursor` header until it is empty; roles
//! likewise, and each kept role's users, `onelogin.concurrency` at a time; or, with
//! `groups_from = "groups"`, OneLogin groups (API v1) with membership from each user's
//! `group_id`. Any failed page fails the read: never the truncated directory Directory
//! Connector returns. Requests are paced by the account's rate-limit headers.
//!
//! Every read is full: OneLogin's directory API reports no deletions, and whether assigning a
//! role moves a user's `updated_at` is not documented, so reading by `updated_since` would miss
//! leavers and role changes. An unchanged directory still sends nothing (the request hash is
//! equal).
//!
//! Ids are OneLogin's numbers, sent as strings. Disabled = status 2 (Suspended), as Directory
//! Connector has it; the email is `email`, else a username that is an address, else
//! `username + onelogin.email_suffix`.

pub mod api;
pub mod config;

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;

use self::api::OneLogin;
use self::config::{GroupsFrom, ResolvedOneLogin};
use crate::config::HttpConfig;
use crate::directory::{
    Directory, DirectoryError, DirectoryUser, Entries, EntryKind, Failure, FullRead, GroupRecord,
    Progress, ReadOptions, UserRecord, read_each,
};
use crate::http::{ApiClient, Http, TokenCache, encode_query as encode, http_error};
use crate::secrets::{SecretKey, Secrets};

/// The API credential's client secret.
pub const CLIENT_SECRET: SecretKey = SecretKey::new(
    "onelogin.client_secret",
    "OneLogin API client secret",
    Some("ORGSYNC_ONELOGIN_CLIENT_SECRET"),
);

/// The access token, kept between runs (set by orgsync only).
const ACCESS_TOKEN: SecretKey = SecretKey::new("onelogin.access_token", "", None);

/// Reads users and roles (or groups) from OneLogin.
pub struct OneLoginDirectory {
    config: ResolvedOneLogin,
    api: ApiClient<OneLogin>,
    read_groups: bool,
}

impl OneLoginDirectory {
    /// # Errors
    /// When the client secret is not set, or the CA file or proxy is unusable.
    pub fn open(
        config: ResolvedOneLogin,
        http: &HttpConfig,
        secrets: &Secrets,
        read_groups: bool,
    ) -> Result<OneLoginDirectory, DirectoryError> {
        let client_secret = secrets
            .get(CLIENT_SECRET)
            .map_err(|e| DirectoryError::secret_store(CLIENT_SECRET, e))?
            .ok_or_else(|| DirectoryError::missing_secret(CLIENT_SECRET))?;
        let client = Http::new(http.settings(config.ca_file.clone(), config.timeout))
            .map_err(|e| http_error("setting up HTTPS for OneLogin", e))?;
        // Bound to the credential: a new secret signs in anew.
        let fingerprint = {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(client_secret.expose().as_bytes());
            digest[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let issued_for = format!("{} {} {fingerprint}", config.base, config.client_id);
        let tokens = TokenCache::stored(secrets.clone(), ACCESS_TOKEN, issued_for);
        let api = OneLogin {
            base: config.base.clone(),
            client_id: config.client_id.clone(),
            client_secret,
        };
        Ok(OneLoginDirectory {
            api: ApiClient::new(client, api, tokens),
            config,
            read_groups,
        })
    }

    /// `<base><path>?limit=100`, and the native query after `|`.
    fn url(&self, path: &str, native: Option<&str>) -> String {
        let mut url = format!("{}{path}?limit=100", self.config.base);
        if let Some(native) = native {
            url.push('&');
            url.push_str(native.trim());
        }
        url
    }

    /// Every item of a v2 listing: the same request with `cursor=<After-Cursor>` until the
    /// header is empty.
    async fn all<T: DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
    ) -> Result<Vec<T>, DirectoryError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_url = match &cursor {
                Some(cursor) => format!("{url}&cursor={}", encode(cursor)),
                None => url.to_string(),
            };
            let answer = self
                .api
                .get(what, &page_url, &[("Accept", "application/json")])
                .await?;
            let page: Vec<T> = answer.json().map_err(|e| http_error(what, e))?;
            items.extend(page);
            let next = answer
                .headers
                .get("after-cursor")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|c| !c.is_empty() && *c != "null")
                .map(str::to_string);
            match next {
                Some(next) if Some(&next) == cursor.as_ref() => {
                    return Err(DirectoryError::new(
                        Failure::Read,
                        format!("{what} failed: OneLogin sent the same cursor again"),
                    ));
                }
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// Every item of a v1 listing, following `pagination.next_link`.
    async fn all_v1<T: DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
    ) -> Result<Vec<T>, DirectoryError> {
        let mut items = Vec::new();
        let mut next = Some(url.to_string());
        let mut seen = HashSet::new();
        while let Some(url) = next {
            if !seen.insert(url.clone()) {
                return Err(DirectoryError::new(
                    Failure::Read,
                    format!("{what} failed: OneLogin sent the same next link again"),
                ));
            }
            let page: api::V1Page<T> = self
                .api
                .get_json(what, &url, &[("Accept", "application/json")])
                .await?;
            items.extend(page.data);
            next = page
                .pagination
                .and_then(|p| p.next_link)
                .filter(|l| !l.is_empty());
        }
        Ok(items)
    }

    fn user_record(&self, user: &api::User) -> Option<(String, UserRecord)> {
        let email = email_of(user, self.config.email_suffix.as_deref());
        if !self.config.user_filter.set.keeps(email.as_deref()) {
            return None;
        }
        let id = user.id.to_string();
        let record = UserRecord {
            user: DirectoryUser {
                reference: user
                    .username
                    .clone()
                    .filter(|u| !u.is_empty())
                    .or_else(|| email.clone())
                    .unwrap_or_else(|| id.clone()),
                external_id: id.clone(),
                email,
                disabled: user.status == Some(2),
                deleted: false,
            },
            aliases: vec![id.clone()],
        };
        Some((id, record))
    }

    /// The kept roles with the ids of their users.
    async fn roles(&self, progress: &dyn Progress) -> Result<Vec<GroupRecord>, DirectoryError> {
        let filter = &self.config.group_filter;
        let url = self.url("/api/2/roles", filter.native.as_deref());
        let roles: Vec<api::Named> = self.all("listing roles", &url).await?;
        let kept: Vec<api::Named> = roles
            .into_iter()
            .filter(|r| filter.set.keeps(r.name.as_deref()))
            .collect();
        read_each(
            kept,
            self.config.concurrency,
            progress,
            EntryKind::Groups,
            |role| async move {
                let name = role.name.clone().unwrap_or_default();
                let url = self.url(&format!("/api/2/roles/{}/users", role.id), None);
                // A listing that fails fails the read: never a role that lost its members.
                let members: Vec<api::Member> = self
                    .all(&format!("listing the users of role {name}"), &url)
                    .await?;
                Ok(group_record(
                    &role,
                    members.into_iter().map(|m| m.id.to_string()).collect(),
                ))
            },
        )
        .await
    }

    /// The kept OneLogin groups, their members from the users' `group_id`.
    async fn groups(&self, users: &[api::User]) -> Result<Vec<GroupRecord>, DirectoryError> {
        let filter = &self.config.group_filter;
        let url = match filter.native.as_deref() {
            Some(native) => format!("{}/api/1/groups?{}", self.config.base, native.trim()),
            None => format!("{}/api/1/groups", self.config.base),
        };
        let groups: Vec<api::Named> = self.all_v1("listing groups", &url).await?;
        let mut members: HashMap<u64, Vec<String>> = HashMap::new();
        for user in users {
            if let Some(group) = user.group_id {
                members.entry(group).or_default().push(user.id.to_string());
            }
        }
        Ok(groups
            .into_iter()
            .filter(|g| filter.set.keeps(g.name.as_deref()))
            .map(|g| {
                let ids = members.remove(&g.id).unwrap_or_default();
                group_record(&g, ids)
            })
            .collect())
    }
}

fn group_record(named: &api::Named, members: Vec<String>) -> GroupRecord {
    let id = named.id.to_string();
    let name = named.name.clone().unwrap_or_default();
    GroupRecord {
        reference: name.clone(),
        external_id: id.clone(),
        name,
        alias: format!("group:{id}"),
        members,
    }
}

/// Directory Connector's rule: `non-space@non-space.non-space`.
fn looks_like_email(text: &str) -> bool {
    let text = text.trim();
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !text.contains(char::is_whitespace)
                && domain
                    .rsplit_once('.')
                    .is_some_and(|(host, tld)| !host.is_empty() && !tld.is_empty())
        }
        None => false,
    }
}

/// The email: `email`, else a username that is an address, else username + suffix.
fn email_of(user: &api::User, suffix: Option<&str>) -> Option<String> {
    if let Some(email) = user.email.as_deref().filter(|e| looks_like_email(e)) {
        return Some(email.to_string());
    }
    let username = user
        .username
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())?;
    if looks_like_email(username) {
        return Some(username.to_string());
    }
    suffix.map(|suffix| format!("{username}{suffix}"))
}

impl Directory for OneLoginDirectory {
    async fn read(
        &self,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<FullRead, DirectoryError> {
        self.api.login(options.fresh_sign_in).await?;
        let url = self.url("/api/2/users", self.config.user_filter.native.as_deref());
        let roles = async {
            match (self.read_groups, self.config.groups_from) {
                (true, GroupsFrom::Roles) => self.roles(progress).await,
                _ => Ok(Vec::new()),
            }
        };
        let (users, roles) = tokio::join!(self.all::<api::User>("listing users", &url), roles);
        let users = users?;
        progress.entries_read(EntryKind::Users, users.len());
        let groups = match (self.read_groups, self.config.groups_from) {
            (true, GroupsFrom::Groups) => self.groups(&users).await?,
            _ => roles?,
        };
        let records: HashMap<String, UserRecord> =
            users.iter().filter_map(|u| self.user_record(u)).collect();
        Ok(FullRead {
            entries: Entries {
                users: records,
                disabled: HashSet::new(),
                groups: groups
                    .into_iter()
                    .map(|g| (g.external_id.clone(), g))
                    .collect(),
            },
            watermark: None,
            warnings: Vec::new(),
        })
    }

    async fn read_changes(
        &self,
        _watermark: &str,
        _progress: &dyn Progress,
    ) -> Result<Option<crate::directory::Changes>, DirectoryError> {
        // Every read is full (see the module's note).
        Ok(None)
    }

    async fn follow(&self, _on_change: &(dyn Fn() + Send + Sync)) -> Result<bool, DirectoryError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: Option<&str>, username: Option<&str>) -> api::User {
        api::User {
            id: 12345678,
            email: email.map(str::to_string),
            username: username.map(str::to_string),
            status: Some(1),
            group_id: None,
        }
    }

    #[test]
    fn the_email_is_the_email_else_a_username_address_else_username_and_suffix() {
        let suffix = Some("@example.com");
        assert_eq!(
            email_of(&user(Some("Ann@x.org"), Some("ann")), suffix).as_deref(),
            Some("Ann@x.org")
        );
        assert_eq!(
            email_of(&user(Some("not an address"), Some("bob@x.org")), suffix).as_deref(),
            Some("bob@x.org")
        );
        assert_eq!(
            email_of(&user(None, Some("cy")), suffix).as_deref(),
            Some("cy@example.com")
        );
        assert_eq!(email_of(&user(None, Some("cy")), None), None);
        assert_eq!(email_of(&user(Some(""), None), suffix), None);
    }
}
