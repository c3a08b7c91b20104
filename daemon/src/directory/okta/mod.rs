//! Okta through the Management API (v1), signed in with an API token or, as Okta recommends, an
//! API service app's private key (`private_key_jwt`, with DPoP where the org requires it).
//!
//! A full read lists users (200 a page, following every `Link` header), deprovisioned users
//! with their own query (Okta leaves them out of every other listing), groups, and each kept
//! group's users, `okta.concurrency` at a time. Every request is paced by Okta's rate-limit
//! headers ([`crate::http::Pacer`]): requests wait for the window's reset before the budget
//! runs out, and a 429 waits for it too and carries on.
//!
//! An incremental read asks for the users whose `lastUpdated` is after the last read, in both
//! queries (so leavers arrive as they are deprovisioned), lists the groups and re-reads the
//! members of those whose `lastUpdated` or `lastMembershipUpdated` moved (a membership-only
//! change touches only the latter); a group no longer listed is gone. The watermark is Okta's
//! own clock (the answers' `Date`), a minute early, so a change made while a read runs is read
//! again rather than missed.

pub mod api;
pub mod config;

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use self::api::{Okta, SignIn};
use self::config::{Credential, ResolvedOkta};
use crate::config::HttpConfig;
use crate::directory::{
    Changes, Delta, Directory, DirectoryError, DirectoryUser, Entries, EntryKind, Failure,
    FullRead, GroupRecord, Progress, ReadOptions, UserRecord, read_each,
};
use crate::http::jwt::SigningKey;
use crate::http::{ApiClient, Http, TokenCache, encode_query as encode, http_error, link_target};
use crate::secrets::{SecretKey, Secrets};

/// The API token (`Authorization: SSWS …`).
pub const TOKEN: SecretKey =
    SecretKey::new("okta.token", "Okta API token", Some("ORGSYNC_OKTA_TOKEN"));

/// The service app's private key (PEM), when it is kept as a secret instead of a file.
pub const PRIVATE_KEY: SecretKey = SecretKey::new(
    "okta.private_key",
    "Okta service app private key (PEM)",
    Some("ORGSYNC_OKTA_PRIVATE_KEY"),
)
.whole_file();

/// The service app's access token, kept between runs (set by orgsync only).
const ACCESS_TOKEN: SecretKey = SecretKey::new("okta.access_token", "", None);

/// How far before Okta's clock at the start of a read the next incremental read reaches back.
const OVERLAP_SECONDS: i64 = 60;

/// Where an incremental read continues: Okta's time, and whether groups were read.
#[derive(Serialize, Deserialize)]
struct Watermark {
    since: String,
    groups: bool,
}

/// Reads users and groups from Okta.
pub struct OktaDirectory {
    config: ResolvedOkta,
    okta: ApiClient<Okta>,
    read_groups: bool,
}

/// One listing: its items, and Okta's clock when it answered the first page.
struct Listing<T> {
    items: Vec<T>,
    at: Option<chrono::DateTime<chrono::Utc>>,
}

impl OktaDirectory {
    /// The source with its credential (the token, or the service app's key).
    ///
    /// # Errors
    /// When the token or key is not set or not usable, or the CA file or proxy is unusable.
    pub fn open(
        config: ResolvedOkta,
        http: &HttpConfig,
        secrets: &Secrets,
        read_groups: bool,
    ) -> Result<OktaDirectory, DirectoryError> {
        let client = Http::new(http.settings(config.ca_file.clone(), config.timeout))
            .map_err(|e| http_error("setting up HTTPS for Okta", e))?;
        let (sign_in, tokens) = match &config.credential {
            Credential::ApiToken => {
                let token = secrets
                    .get(TOKEN)
                    .map_err(|e| DirectoryError::secret_store(TOKEN, e))?
                    .ok_or_else(|| {
                        DirectoryError::missing_secret(TOKEN).hint(
                            "create an API token (Admin Console → Security → API → Tokens) and run `orgsync config set-secret okta.token`, or set okta.client_id to sign in as an API service app",
                        )
                    })?;
                // The token is the credential: it is not copied anywhere else.
                (SignIn::ApiToken(token), TokenCache::default())
            }
            Credential::ServiceApp {
                client_id,
                key_file,
                key_id,
            } => {
                let (pem, source) = match key_file {
                    Some(path) => (
                        std::fs::read(path).map_err(|e| {
                            DirectoryError::new(
                                Failure::Config,
                                format!("cannot read okta.private_key_file {}: {e}", path.display()),
                            )
                        })?,
                        format!("okta.private_key_file {}", path.display()),
                    ),
                    None => (
                        secrets
                            .get(PRIVATE_KEY)
                            .map_err(|e| DirectoryError::secret_store(PRIVATE_KEY, e))?
                            .ok_or_else(|| {
                                DirectoryError::missing_secret(PRIVATE_KEY).hint(
                                    "set okta.private_key_file to the service app's private key (PEM), or store it with `orgsync config set-secret okta.private_key --file key.pem`",
                                )
                            })?
                            .expose()
                            .as_bytes()
                            .to_vec(),
                        "the secret okta.private_key".to_string(),
                    ),
                };
                let (key, algorithm) = SigningKey::from_pem_rsa_or_ec(&pem).map_err(|e| {
                    DirectoryError::new(Failure::Config, format!("{source}: {e}")).hint(
                        "give the private key whose public key is registered on the app (Admin Console → Applications → the app → Public keys)",
                    )
                })?;
                let issued_for = format!(
                    "{}/oauth2/v1/token {client_id} {} {}",
                    config.org,
                    api::SCOPES,
                    key_id.as_deref().unwrap_or("-")
                );
                let sign_in = SignIn::ServiceApp {
                    client_id: client_id.clone(),
                    key,
                    algorithm,
                    key_id: key_id.clone(),
                };
                // Kept between runs, unless it is DPoP-bound (to this process's key).
                (
                    sign_in,
                    TokenCache::stored(secrets.clone(), ACCESS_TOKEN, issued_for),
                )
            }
        };
        Ok(OktaDirectory {
            okta: ApiClient::new(client, Okta::new(config.org.clone(), sign_in), tokens),
            config,
            read_groups,
        })
    }

    pub fn tracks_changes(&self) -> bool {
        self.config.incremental
    }

    fn url(&self, path: &str, filter: Option<&str>) -> String {
        let mut url = format!("{}/api/v1{path}?limit=200", self.config.org);
        if let Some(filter) = filter {
            url.push_str(&format!("&filter={}", encode(filter)));
        }
        url
    }

    /// Every item of a listing, following each page's `next` link verbatim.
    async fn all<T: DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
    ) -> Result<Listing<T>, DirectoryError> {
        let mut items = Vec::new();
        let mut at = None;
        let mut next = Some(url.to_string());
        let mut seen = HashSet::new();
        while let Some(url) = next {
            if !seen.insert(url.clone()) {
                return Err(DirectoryError::new(
                    Failure::Read,
                    format!("{what} failed: Okta sent the same next link again"),
                ));
            }
            let answer = self
                .okta
                .get(what, &url, &[("Accept", "application/json")])
                .await?;
            if at.is_none() {
                at = answer
                    .headers
                    .get(reqwest::header::DATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
                    .map(|d| d.with_timezone(&chrono::Utc));
            }
            let page: Vec<T> = answer.json().map_err(|e| http_error(what, e))?;
            items.extend(page);
            next = link_target(&answer.headers, "next");
        }
        Ok(Listing { items, at })
    }

    /// `(<native>) and <clause>`, or the clause alone.
    fn with_native(native: Option<&str>, clause: &str) -> String {
        match native {
            Some(native) => format!("({native}) and {clause}"),
            None => clause.to_string(),
        }
    }

    /// Users matching `filter` (none: every user but the deprovisioned), and the deprovisioned
    /// ones matching it, both queries at once.
    async fn users(
        &self,
        filter: Option<String>,
        include_deleted: bool,
    ) -> Result<(Listing<api::User>, Vec<api::User>), DirectoryError> {
        let deprovisioned = Self::with_native(filter.as_deref(), "status eq \"DEPROVISIONED\"");
        let url = self.url("/users", filter.as_deref());
        let deleted_url = self.url("/users", Some(&deprovisioned));
        let deleted = async {
            match include_deleted {
                true => self
                    .all::<api::User>("listing deprovisioned users", &deleted_url)
                    .await
                    .map(|l| l.items),
                false => Ok(Vec::new()),
            }
        };
        let (users, deleted) = tokio::join!(self.all("listing users", &url), deleted);
        Ok((users?, deleted?))
    }

    fn user_record(&self, user: api::User) -> Option<(String, UserRecord)> {
        let email = user.profile.email.clone();
        if !self.config.user_filter.set.keeps(email.as_deref()) {
            return None;
        }
        let record = UserRecord {
            user: DirectoryUser {
                reference: user
                    .profile
                    .login
                    .clone()
                    .or_else(|| email.clone())
                    .unwrap_or_else(|| user.id.clone()),
                external_id: user.id.clone(),
                email,
                disabled: user.status == "SUSPENDED",
                deleted: user.status == "DEPROVISIONED",
            },
            aliases: vec![user.id.clone()],
        };
        Some((user.id, record))
    }

    /// The groups the filters keep.
    async fn groups(&self) -> Result<Listing<api::Group>, DirectoryError> {
        let filter = &self.config.group_filter;
        let url = self.url("/groups", filter.native.as_deref());
        let mut listing: Listing<api::Group> = self.all("listing groups", &url).await?;
        listing
            .items
            .retain(|g| filter.set.keeps(g.profile.name.as_deref()));
        Ok(listing)
    }

    /// The groups with their members, `okta.concurrency` listings at a time.
    async fn with_members(
        &self,
        groups: Vec<api::Group>,
        progress: &dyn Progress,
    ) -> Result<Vec<(String, GroupRecord)>, DirectoryError> {
        read_each(
            groups,
            self.config.concurrency,
            progress,
            EntryKind::Groups,
            |group| async move {
                let name = group.profile.name.clone().unwrap_or_default();
                let url = self.url(&format!("/groups/{}/users", encode(&group.id)), None);
                // A listing that fails fails the read: never a group that lost its members.
                let members: Listing<api::User> = self
                    .all(&format!("listing the members of group {name}"), &url)
                    .await?;
                let record = GroupRecord {
                    reference: name.clone(),
                    external_id: group.id.clone(),
                    name,
                    alias: group.id.clone(),
                    members: members.items.into_iter().map(|u| u.id).collect(),
                };
                Ok((group.id, record))
            },
        )
        .await
    }

    /// The next watermark: Okta's time at the earliest first page, a minute early (this
    /// machine's time, five minutes early, if Okta sent no `Date`).
    fn watermark(
        &self,
        times: &[Option<chrono::DateTime<chrono::Utc>>],
    ) -> Result<String, DirectoryError> {
        let since = match times.iter().flatten().min() {
            Some(at) => *at - chrono::Duration::seconds(OVERLAP_SECONDS),
            None => chrono::Utc::now() - chrono::Duration::seconds(5 * OVERLAP_SECONDS),
        };
        serde_json::to_string(&Watermark {
            since: okta_time(since),
            groups: self.read_groups,
        })
        .map_err(|e| {
            DirectoryError::new(Failure::Read, format!("cannot record the watermark: {e}"))
        })
    }
}

/// A time as Okta's filters take it: `2026-08-01T10:00:00.000Z`.
fn okta_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Whether an Okta timestamp is after `since` (a missing or unreadable one counts as after:
/// reading a group again is cheaper than missing a change).
fn is_after(stamp: Option<&str>, since: chrono::DateTime<chrono::Utc>) -> bool {
    stamp
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .is_none_or(|at| at > since)
}

impl Directory for OktaDirectory {
    async fn read(
        &self,
        options: ReadOptions,
        progress: &dyn Progress,
    ) -> Result<FullRead, DirectoryError> {
        self.okta.login(options.fresh_sign_in).await?;
        let native = self.config.user_filter.native.clone();
        let groups = async {
            match self.read_groups {
                true => {
                    let listing = self.groups().await?;
                    let records = self.with_members(listing.items, progress).await?;
                    Ok((records, listing.at))
                }
                false => Ok((Vec::new(), None)),
            }
        };
        let (users, groups) = tokio::join!(self.users(native, options.include_deleted), groups);
        let (users, deleted) = users?;
        let (groups, groups_at) = groups?;
        progress.entries_read(EntryKind::Users, users.items.len());
        let mut records: HashMap<String, UserRecord> = HashMap::new();
        // Listed users first: a user deprovisioned between the two queries is taken as deleted.
        for user in users.items.into_iter().chain(deleted) {
            if let Some((key, record)) = self.user_record(user) {
                records.insert(key, record);
            }
        }
        let watermark = match options.track_changes {
            true => Some(self.watermark(&[users.at, groups_at])?),
            false => None,
        };
        Ok(FullRead {
            entries: Entries {
                users: records,
                disabled: HashSet::new(),
                groups: groups.into_iter().collect(),
            },
            watermark,
            warnings: Vec::new(),
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
        let Ok(since) = chrono::DateTime::parse_from_rfc3339(&stored.since) else {
            return Ok(None);
        };
        let since = since.with_timezone(&chrono::Utc);
        if stored.groups != self.read_groups {
            return Ok(None);
        }
        let changed = format!("lastUpdated gt \"{}\"", stored.since);
        let native = self.config.user_filter.native.as_deref();
        let users = async {
            let selected = self
                .users(Some(Self::with_native(native, &changed)), true)
                .await?;
            // With a native filter, users who changed so that it no longer selects them are
            // found by asking without it.
            let unselected = match native {
                Some(_) => Some(self.users(Some(changed.clone()), true).await?),
                None => None,
            };
            Ok::<_, DirectoryError>((selected, unselected))
        };
        let groups = async {
            match self.read_groups {
                true => {
                    let listing = self.groups().await?;
                    let present: HashSet<String> =
                        listing.items.iter().map(|g| g.id.clone()).collect();
                    let moved: Vec<api::Group> = listing
                        .items
                        .into_iter()
                        .filter(|g| {
                            is_after(g.last_updated.as_deref(), since)
                                || is_after(g.last_membership_updated.as_deref(), since)
                        })
                        .collect();
                    let records = self.with_members(moved, progress).await?;
                    Ok::<_, DirectoryError>((Some((records, present)), listing.at))
                }
                false => Ok((None, None)),
            }
        };
        let (users, groups) = tokio::join!(users, groups);
        let (((listed, deleted), unselected), (groups, groups_at)) = (users?, groups?);
        let at = listed.at;
        let mut changes = Changes::default();
        let mut kept = HashSet::new();
        for user in listed.items.into_iter().chain(deleted) {
            let id = user.id.clone();
            match self.user_record(user) {
                Some((key, record)) => {
                    kept.insert(key.clone());
                    changes.users.upserts.push((key, record));
                }
                // Changed so that the email filter no longer selects it.
                None => changes.users.deletes.push(id),
            }
        }
        if let Some((listed, deleted)) = unselected {
            for user in listed.items.into_iter().chain(deleted) {
                if !kept.contains(&user.id) {
                    changes.users.deletes.push(user.id);
                }
            }
        }
        changes.users.deletes.sort_unstable();
        changes.users.deletes.dedup();
        progress.entries_read(EntryKind::Users, changes.users.upserts.len());
        if let Some((records, present)) = groups {
            changes.groups = Delta {
                upserts: records,
                deletes: Vec::new(),
                present: Some(present),
            };
        }
        changes.watermark = self.watermark(&[at, groups_at])?;
        Ok(Some(changes))
    }

    async fn follow(&self, _on_change: &(dyn Fn() + Send + Sync)) -> Result<bool, DirectoryError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_okta_filters_take_them_and_compared() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-08-01T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(okta_time(at), "2026-08-01T10:00:00.000Z");
        assert!(is_after(Some("2026-08-01T10:00:00.001Z"), at));
        assert!(!is_after(Some("2026-08-01T10:00:00.000Z"), at));
        assert!(is_after(None, at));
    }

    #[test]
    fn a_native_filter_is_combined_in_parentheses() {
        assert_eq!(
            OktaDirectory::with_native(
                Some("profile.lastName eq \"A\" or id eq \"x\""),
                "status eq \"DEPROVISIONED\""
            ),
            "(profile.lastName eq \"A\" or id eq \"x\") and status eq \"DEPROVISIONED\""
        );
        assert_eq!(OktaDirectory::with_native(None, "x"), "x");
    }
}
