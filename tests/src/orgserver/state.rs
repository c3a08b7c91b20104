//! Everything the emulated server remembers: the organization (members and groups), the
//! access tokens it issued, the failures tests asked for and the requests it received. One
//! mutex guards it all; nothing awaits while holding it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::{Flavour, Group, Member, MemberStatus, MemberType, OrgServerOptions, RecordedRequest};

/// The owner every fresh organization starts with: the account that created it.
pub(crate) const INITIAL_OWNER: &str = "owner@example.test";

/// State shared by all handlers. The fixed settings sit outside the mutex.
pub(crate) struct Shared {
    pub flavour: Flavour,
    pub base_url: String,
    pub org_id: String,
    pub client_secret: String,
    /// Vaultwarden's tokens carry the API key's own id as `sub`; it is not the org id.
    pub api_key_id: String,
    pub token_lifetime: Duration,
    inner: Mutex<Inner>,
}

pub(crate) struct Inner {
    pub org: Org,
    pub tokens: HashMap<String, IssuedToken>,
    pub failures: Vec<FailRule>,
    pub requests: Vec<RecordedRequest>,
    pub import_count: usize,
    /// Time spent handling accepted imports (decode, authorize, apply), for benchmarks.
    pub import_time: std::time::Duration,
}

pub(crate) struct IssuedToken {
    pub expires_at: Instant,
    /// Set by [`Inner::expire_tokens`]: the token is treated as expired from then on.
    pub revoked: bool,
}

/// What the server thinks of a bearer token.
pub(crate) enum TokenCheck {
    Valid,
    Unknown,
    Expired,
}

/// One `fail_next` request: the next `remaining` requests whose path ends with `path_suffix`
/// get `status`.
#[derive(Clone, Debug)]
pub(crate) struct FailRule {
    pub path_suffix: String,
    pub status: u16,
    pub retry_after_secs: Option<u64>,
    pub remaining: usize,
}

impl Shared {
    pub fn new(opts: &OrgServerOptions, base_url: String) -> Shared {
        let org_id = opts
            .org_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let client_secret = opts.client_secret.clone().unwrap_or_else(random_secret);
        Shared {
            flavour: opts.flavour,
            base_url,
            org_id,
            client_secret,
            api_key_id: uuid::Uuid::new_v4().to_string(),
            token_lifetime: opts.token_lifetime,
            inner: Mutex::new(Inner {
                org: Org::new(opts.uses_groups),
                tokens: HashMap::new(),
                failures: Vec::new(),
                requests: Vec::new(),
                import_count: 0,
                import_time: std::time::Duration::ZERO,
            }),
        }
    }

    pub fn client_id(&self) -> String {
        format!("organization.{}", self.org_id)
    }

    /// Locks the state. A panic in another handler must not take every later test request
    /// down with it, so a poisoned lock is simply taken over.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Issues a new access token: JWT-shaped (header.payload.signature, base64url) so that a
    /// client can read `exp` from it as Directory Connector does, but validated only by lookup,
    /// so the signature is random bytes.
    pub fn issue_token(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let exp = now + self.token_lifetime.as_secs();
        let claims = match self.flavour {
            Flavour::Vaultwarden => json!({
                "nbf": now,
                "exp": exp,
                "iss": format!("{}|api.organization", self.base_url),
                "sub": self.api_key_id,
                "client_id": self.client_id(),
                "client_sub": self.org_id,
                "scope": ["api.organization"],
                "jti": uuid::Uuid::new_v4().to_string(),
            }),
            Flavour::BitwardenCloud | Flavour::BitwardenSelfHosted => json!({
                "iss": format!("{}/identity", self.base_url),
                "nbf": now,
                "iat": now,
                "exp": exp,
                "aud": "api",
                "scope": ["api.organization"],
                "client_id": self.client_id(),
                "sub": self.org_id,
                "client_sub": self.org_id,
                "client_type": "Organization",
                "jti": uuid::Uuid::new_v4().simple().to_string(),
            }),
        };
        let header = json!({"alg": "RS256", "typ": "JWT"});
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(random_bytes(64)),
        );
        self.lock().tokens.insert(
            token.clone(),
            IssuedToken {
                expires_at: Instant::now() + self.token_lifetime,
                revoked: false,
            },
        );
        token
    }
}

impl Inner {
    pub fn check_token(&self, token: &str) -> TokenCheck {
        match self.tokens.get(token) {
            None => TokenCheck::Unknown,
            Some(t) if t.revoked || Instant::now() >= t.expires_at => TokenCheck::Expired,
            Some(_) => TokenCheck::Valid,
        }
    }

    pub fn expire_tokens(&mut self) {
        for token in self.tokens.values_mut() {
            token.revoked = true;
        }
    }

    pub fn add_failure(
        &mut self,
        path_suffix: &str,
        status: u16,
        retry_after_secs: Option<u64>,
        times: usize,
    ) {
        if times > 0 {
            self.failures.push(FailRule {
                path_suffix: path_suffix.to_string(),
                status,
                retry_after_secs,
                remaining: times,
            });
        }
    }

    /// Consumes one failure for `path`, if any rule matches.
    pub fn take_failure(&mut self, path: &str) -> Option<FailRule> {
        let index = self
            .failures
            .iter()
            .position(|rule| path.ends_with(&rule.path_suffix))?;
        let rule = &mut self.failures[index];
        rule.remaining -= 1;
        let taken = rule.clone();
        if rule.remaining == 0 {
            self.failures.remove(index);
        }
        Some(taken)
    }
}

/// The organization. Members and groups keep insertion order, which is what tests print.
pub(crate) struct Org {
    pub uses_groups: bool,
    pub members: Vec<MemberRec>,
    pub groups: Vec<GroupRec>,
    next_id: u64,
}

/// A membership. `status` is never `Revoked`: revocation is the separate `revoked` flag so
/// that Vaultwarden's restore can bring the previous status back (it stores status - 128).
#[derive(Clone, Debug)]
pub(crate) struct MemberRec {
    pub id: u64,
    pub email: String,
    pub external_id: Option<String>,
    pub kind: MemberType,
    pub status: MemberStatus,
    pub revoked: bool,
    /// The collections the member can access, as the public API lists them (opaque here: a
    /// member update that leaves them out clears them, as Bitwarden's does).
    pub collections: Vec<serde_json::Value>,
}

#[derive(Clone, Debug)]
pub(crate) struct GroupRec {
    pub id: u64,
    pub collections: Vec<serde_json::Value>,
    pub name: String,
    pub external_id: String,
    /// Member ids.
    pub members: BTreeSet<u64>,
}

impl MemberRec {
    /// Whether this membership has a directory externalId (Bitwarden treats blank as none).
    pub fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref().filter(|e| !e.trim().is_empty())
    }

    pub fn public_status(&self) -> MemberStatus {
        if self.revoked {
            MemberStatus::Revoked
        } else {
            self.status
        }
    }

    /// A confirmed owner that is not revoked: the kind both servers refuse to lose the last of.
    pub fn is_confirmed_owner(&self) -> bool {
        self.kind == MemberType::Owner && self.status == MemberStatus::Confirmed && !self.revoked
    }
}

impl Org {
    /// A fresh organization: only its creator, a confirmed owner without externalId.
    pub fn new(uses_groups: bool) -> Org {
        let mut org = Org {
            uses_groups,
            members: Vec::new(),
            groups: Vec::new(),
            next_id: 1,
        };
        org.seed_member(
            INITIAL_OWNER,
            None,
            MemberType::Owner,
            MemberStatus::Confirmed,
        );
        org
    }

    pub fn members(&self) -> Vec<Member> {
        self.members
            .iter()
            .map(|m| Member {
                email: m.email.clone(),
                external_id: m.external_id.clone(),
                status: m.public_status(),
                kind: m.kind,
            })
            .collect()
    }

    pub fn groups(&self) -> Vec<Group> {
        self.groups
            .iter()
            .map(|g| Group {
                name: g.name.clone(),
                external_id: g.external_id.clone(),
                member_emails: self
                    .members
                    .iter()
                    .filter(|m| g.members.contains(&m.id))
                    .map(|m| m.email.clone())
                    .collect(),
            })
            .collect()
    }

    /// Adds (or replaces, by email) a member set up by hand. A `Revoked` member is stored as a
    /// revoked *confirmed* member, which is what a revoked member usually was.
    pub fn seed_member(
        &mut self,
        email: &str,
        external_id: Option<&str>,
        kind: MemberType,
        status: MemberStatus,
    ) {
        let email = email.trim().to_lowercase();
        let (status, revoked) = match status {
            MemberStatus::Revoked => (MemberStatus::Confirmed, true),
            other => (other, false),
        };
        let external_id = external_id.map(str::to_string);
        if let Some(existing) = self.members.iter_mut().find(|m| m.email == email) {
            existing.external_id = external_id;
            existing.kind = kind;
            existing.status = status;
            existing.revoked = revoked;
        } else {
            self.insert_member(email, external_id, kind, status, revoked);
        }
    }

    pub fn insert_member(
        &mut self,
        email: String,
        external_id: Option<String>,
        kind: MemberType,
        status: MemberStatus,
        revoked: bool,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.members.push(MemberRec {
            id,
            email,
            external_id,
            kind,
            status,
            revoked,
            collections: Vec::new(),
        });
        id
    }

    /// Adds a group with the next id.
    pub fn add_group(&mut self, name: String, external_id: String, members: BTreeSet<u64>) {
        let id = self.next_id;
        self.next_id += 1;
        self.groups.push(GroupRec {
            id,
            collections: Vec::new(),
            name,
            external_id,
            members,
        });
    }

    pub fn member(&self, id: u64) -> Option<&MemberRec> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn member_mut(&mut self, id: u64) -> Option<&mut MemberRec> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub fn member_by_email(&self, email: &str) -> Option<u64> {
        self.members.iter().find(|m| m.email == email).map(|m| m.id)
    }

    /// Deletes a membership and its group links, as both servers do.
    pub fn remove_member(&mut self, id: u64) {
        self.members.retain(|m| m.id != id);
        for group in &mut self.groups {
            group.members.remove(&id);
        }
    }

    /// Removes a member by hand (lower-cased email); returns whether there was one.
    pub fn remove_member_by_email(&mut self, email: &str) -> bool {
        match self.member_by_email(&email.trim().to_lowercase()) {
            Some(id) => {
                self.remove_member(id);
                true
            }
            None => false,
        }
    }

    pub fn confirmed_owner_count(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.is_confirmed_owner())
            .count()
    }

    pub fn group_index(&self, external_id: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.external_id == external_id)
    }
}

/// Random bytes from the OS generator (through `uuid`, which the crate already uses), so the
/// test kit needs no extra dependency. Bytes 6 and 8 of a v4 UUID carry its version and variant
/// bits, so they are skipped.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(n + 16);
    while bytes.len() < n {
        let uuid = uuid::Uuid::new_v4();
        let raw = uuid.as_bytes();
        bytes.extend_from_slice(&raw[..6]);
        bytes.push(raw[7]);
        bytes.extend_from_slice(&raw[9..]);
    }
    bytes.truncate(n);
    bytes
}

/// A 30-character alphanumeric secret, the shape of a Bitwarden API key secret.
fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random_bytes(30)
        .into_iter()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}
