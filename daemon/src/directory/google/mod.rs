//! Google Workspace through the Admin SDK Directory API, as a service account acting for an
//! administrator (domain-wide delegation).
//!
//! The Directory API has no delta query, so every read is full, made as cheap as the API
//! allows: `fields` asks only for what orgsync uses, pages are the largest allowed (500 users,
//! 200 groups and members), users and deleted users are read beside groups, and the member
//! listings run `google.concurrency` at a time. An unchanged directory still sends nothing: the
//! request hash is equal.
//!
//! Members of type USER count when ACTIVE, GROUP members are nested groups (flattened by the
//! plan), and a CUSTOMER member ("everyone in the account") stands for every user read, as
//! Directory Connector has it; the report says so once.

pub mod admin;
pub mod config;

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;

use self::admin::{Admin, Page, ServiceAccount};
use self::config::ResolvedGoogle;
use crate::config::HttpConfig;
use crate::directory::{
    Directory, DirectoryError, DirectoryUser, Entries, EntryKind, Failure, FullRead, GroupRecord,
    Progress, ReadOptions, UserRecord, read_each,
};
use crate::http::{ApiClient, Http, TokenCache, encode_query as encode, http_error};
use crate::secrets::{SecretKey, Secrets};

/// The service account's JSON key, when it is kept as a secret instead of a file.
pub const KEY: SecretKey = SecretKey::new(
    "google.key",
    "Google service account JSON key",
    Some("ORGSYNC_GOOGLE_KEY"),
)
.whole_file();

/// The Directory API's access token, kept between runs (set by orgsync only).
const ACCESS_TOKEN: SecretKey = SecretKey::new("google.access_token", "", None);

const USER_FIELDS: &str = "nextPageToken,users(id,primaryEmail,suspended,archived)";
const GROUP_FIELDS: &str = "nextPageToken,groups(id,email,name)";
const MEMBER_FIELDS: &str = "nextPageToken,members(id,type,status)";

/// Reads users and groups from Google Workspace.
pub struct GoogleDirectory {
    config: ResolvedGoogle,
    admin: ApiClient<Admin>,
    read_groups: bool,
}

impl GoogleDirectory {
    /// The source with its service account key (the file, or the secret `google.key`).
    ///
    /// # Errors
    /// When the key is missing or is no service account key, or the CA file or proxy is
    /// unusable.
    pub fn open(
        config: ResolvedGoogle,
        http: &HttpConfig,
        secrets: &Secrets,
        read_groups: bool,
    ) -> Result<GoogleDirectory, DirectoryError> {
        let account = match &config.key_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    DirectoryError::new(
                        Failure::Config,
                        format!("cannot read google.key_file {}: {e}", path.display()),
                    )
                })?;
                ServiceAccount::parse(&text, &format!("google.key_file {}", path.display()))?
            }
            None => {
                let key = secrets
                    .get(KEY)
                    .map_err(|e| DirectoryError::secret_store(KEY, e))?
                    .ok_or_else(|| {
                        DirectoryError::missing_secret(KEY).hint(
                            "set google.key_file to the service account's JSON key file, or store its content with `orgsync config set-secret google.key --file key.json`",
                        )
                    })?;
                ServiceAccount::parse(key.expose(), "the secret google.key")?
            }
        };
        let client = Http::new(http.settings(config.ca_file.clone(), config.timeout))
            .map_err(|e| http_error("setting up HTTPS for Google", e))?;
        let issued_for = format!(
            "{} {} {}",
            account.token_uri, account.client_email, config.admin_user
        );
        let tokens = TokenCache::stored(secrets.clone(), ACCESS_TOKEN, issued_for);
        let admin = Admin {
            account,
            admin_user: config.admin_user.clone(),
        };
        Ok(GoogleDirectory {
            admin: ApiClient::new(client, admin, tokens),
            config,
            read_groups,
        })
    }

    /// A collection's URL: the account or domain, the native query, the largest page and only
    /// the fields used.
    fn url(&self, path: &str, max_results: u32, fields: &str, query: Option<&str>) -> String {
        let (name, value) = self.config.scope.param();
        let mut url = format!(
            "{}{path}?{name}={}&maxResults={max_results}&fields={}",
            self.config.api,
            encode(value),
            encode(fields)
        );
        if let Some(query) = query {
            url.push_str(&format!("&query={}", encode(query)));
        }
        url
    }

    /// Every item of a collection, page after page (the same request with `pageToken`).
    async fn all<T: DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
    ) -> Result<Vec<T>, DirectoryError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page_url = match &token {
                Some(token) => format!("{url}&pageToken={}", encode(token)),
                None => url.to_string(),
            };
            let page: Page<T> = self.admin.get_json(what, &page_url, &[]).await?;
            items.extend(page.items);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) == token.as_ref() => {
                    return Err(DirectoryError::new(
                        Failure::Read,
                        format!("{what} failed: Google sent the same page token again"),
                    ));
                }
                Some(next) => token = Some(next),
                None => return Ok(items),
            }
        }
    }

    async fn read_users(
        &self,
        include_deleted: bool,
        progress: &dyn Progress,
    ) -> Result<HashMap<String, UserRecord>, DirectoryError> {
        let query = self.config.user_filter.native.as_deref();
        let url = self.url("/users", 500, USER_FIELDS, query);
        let users: Vec<admin::User> = self.all("listing users", &url).await?;
        progress.entries_read(EntryKind::Users, users.len());
        let mut records: HashMap<String, UserRecord> = users
            .into_iter()
            .filter_map(|u| self.user_record(u, false))
            .collect();
        if include_deleted {
            let url = format!(
                "{}&showDeleted=true",
                self.url("/users", 500, USER_FIELDS, query)
            );
            let deleted: Vec<admin::User> = self.all("listing deleted users", &url).await?;
            for user in deleted {
                if let Some((key, record)) = self.user_record(user, true) {
                    records.entry(key).or_insert(record);
                }
            }
        }
        Ok(records)
    }

    fn user_record(&self, user: admin::User, deleted: bool) -> Option<(String, UserRecord)> {
        let email = user.primary_email.clone();
        if !self.config.user_filter.set.keeps(email.as_deref()) {
            return None;
        }
        let record = UserRecord {
            user: DirectoryUser {
                reference: email.clone().unwrap_or_else(|| user.id.clone()),
                external_id: user.id.clone(),
                email,
                disabled: user.suspended || user.archived,
                deleted,
            },
            aliases: vec![user.id.clone()],
        };
        Some((user.id, record))
    }

    async fn read_groups(
        &self,
        progress: &dyn Progress,
    ) -> Result<Vec<(admin::Group, Vec<admin::Member>)>, DirectoryError> {
        if !self.read_groups {
            return Ok(Vec::new());
        }
        let filter = &self.config.group_filter;
        let url = self.url("/groups", 200, GROUP_FIELDS, filter.native.as_deref());
        let groups: Vec<admin::Group> = self.all("listing groups", &url).await?;
        let kept: Vec<admin::Group> = groups
            .into_iter()
            .filter(|g| filter.set.keeps(g.name.as_deref()))
            .collect();
        let listed = read_each(
            kept,
            self.config.concurrency,
            progress,
            EntryKind::Groups,
            |group| async move {
                let name = group.name.clone().unwrap_or_else(|| group.id.clone());
                let url = format!(
                    "{}/groups/{}/members?maxResults=200&fields={}",
                    self.config.api,
                    encode(&group.id),
                    encode(MEMBER_FIELDS)
                );
                // A listing that fails fails the read: never a group that lost its members.
                let members = self
                    .all(&format!("listing the members of group {name}"), &url)
                    .await?;
                Ok((group, members))
            },
        )
        .await?;
        Ok(listed)
    }
}

impl Directory for GoogleDirectory {
    async fn read(
        &self,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<FullRead, DirectoryError> {
        self.admin.login(options.fresh_sign_in).await?;
        let (users, groups) = tokio::join!(
            self.read_users(options.include_deleted, progress),
            self.read_groups(progress)
        );
        let users = users?;
        let groups = groups?;
        let everyone: Vec<String> = users
            .iter()
            .filter(|(_, r)| !r.user.deleted)
            .map(|(key, _)| key.clone())
            .collect();
        let mut warnings = Vec::new();
        let mut for_everyone = Vec::new();
        let mut records = HashMap::new();
        for (group, members) in groups {
            let name = group.name.clone().unwrap_or_default();
            let mut ids: Vec<String> = Vec::new();
            let mut seen = HashSet::new();
            for member in members {
                match member.kind.as_str() {
                    "USER" if member.status.as_deref().is_none_or(|s| s == "ACTIVE") => {
                        ids.push(member.id);
                    }
                    "GROUP" => ids.push(member.id),
                    "CUSTOMER" => {
                        for_everyone.push(name.clone());
                        ids.extend(everyone.iter().cloned());
                    }
                    _ => {}
                }
            }
            ids.retain(|id| seen.insert(id.clone()));
            records.insert(
                group.id.clone(),
                GroupRecord {
                    reference: group.email.clone().unwrap_or_else(|| name.clone()),
                    external_id: group.id.clone(),
                    name,
                    alias: group.id,
                    members: ids,
                },
            );
        }
        if !for_everyone.is_empty() {
            for_everyone.sort();
            warnings.push(format!(
                "group(s) {} have everyone in the account as a member (a CUSTOMER member), so they hold every user read",
                for_everyone.join(", ")
            ));
        }
        Ok(FullRead {
            entries: Entries {
                users,
                disabled: HashSet::new(),
                groups: records,
            },
            watermark: None,
            warnings,
        })
    }

    async fn read_changes(
        &self,
        _watermark: &str,
        _progress: &dyn Progress,
    ) -> Result<Option<crate::directory::Changes>, DirectoryError> {
        // No change tracking in the Directory API: every read is full.
        Ok(None)
    }

    async fn follow(&self, _on_change: &(dyn Fn() + Send + Sync)) -> Result<bool, DirectoryError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("orgUnitPath='/A B'"), "orgUnitPath%3D%27%2FA%20B%27");
        assert_eq!(
            encode("nextPageToken,users(id)"),
            "nextPageToken%2Cusers%28id%29"
        );
    }

    #[test]
    fn a_key_file_with_escaped_newlines_is_read_and_a_broken_one_names_its_source() {
        let err =
            ServiceAccount::parse("{\"client_email\": 1}", "google.key_file /k.json").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("google.key_file /k.json") && text.contains("JSON key"),
            "{text}"
        );
        let err = ServiceAccount::parse(
            r#"{"client_email":"a@p.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"}"#,
            "the secret google.key",
        )
        .unwrap_err();
        assert!(err.to_string().contains("private_key"), "{err}");
        assert!(
            !err.to_string().contains("nope"),
            "the key is never quoted: {err}"
        );
    }
}
