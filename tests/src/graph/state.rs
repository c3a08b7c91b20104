//! What the emulated tenant holds: users, groups, other directory objects, memberships and
//! administrative units, with a change log that delta queries read; and the tokens issued. One mutex guards it all; nothing awaits while
//! holding it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// A user as Graph describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub display_name: String,
    pub account_enabled: bool,
    /// `Member` or `Guest`.
    pub user_type: String,
}

impl User {
    /// A member user `name@<domain>` with that mail, enabled.
    pub fn member(id: &str, name: &str, domain: &str) -> User {
        User {
            id: id.to_string(),
            user_principal_name: format!("{name}@{domain}"),
            mail: Some(format!("{name}@{domain}")),
            display_name: name.to_string(),
            account_enabled: true,
            user_type: "Member".into(),
        }
    }
}

/// What a member of a group or unit is (its `@odata.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    User,
    Group,
    Device,
    OrgContact,
    ServicePrincipal,
}

impl Kind {
    pub fn odata_type(self) -> &'static str {
        match self {
            Kind::User => "#microsoft.graph.user",
            Kind::Group => "#microsoft.graph.group",
            Kind::Device => "#microsoft.graph.device",
            Kind::OrgContact => "#microsoft.graph.orgContact",
            Kind::ServicePrincipal => "#microsoft.graph.servicePrincipal",
        }
    }
}

/// What one change touched, for delta queries.
#[derive(Clone, Debug)]
pub enum Changed {
    User(String),
    Group(String),
    Membership {
        group: String,
        member: String,
        kind: Kind,
        added: bool,
    },
}

#[derive(Default)]
pub struct Tenant {
    pub users: BTreeMap<String, User>,
    /// Soft-deleted users (restorable), by id.
    pub deleted_users: BTreeMap<String, User>,
    /// Users deleted for good: delta reports them with reason `deleted`.
    pub purged: BTreeSet<String>,
    /// Group id → display name.
    pub groups: BTreeMap<String, String>,
    pub removed_groups: BTreeSet<String>,
    /// Group id → its direct members in the order they were added.
    pub members: BTreeMap<String, Vec<(String, Kind)>>,
    /// Administrative unit id → member groups.
    pub units: BTreeMap<String, Vec<(String, Kind)>>,
    /// The change log: change n has sequence number n + 1.
    pub log: Vec<Changed>,
    /// Delta links carry the generation they were minted in; older ones are expired.
    pub generation: u64,
}

impl Tenant {
    pub fn seq(&self) -> u64 {
        self.log.len() as u64
    }

    fn record(&mut self, change: Changed) {
        self.log.push(change);
    }

    pub fn upsert_user(&mut self, user: User) {
        self.deleted_users.remove(&user.id);
        self.purged.remove(&user.id);
        let id = user.id.clone();
        if self.users.get(&id) != Some(&user) {
            self.users.insert(id.clone(), user);
            self.record(Changed::User(id));
        }
    }

    /// Soft-deletes a user (it moves to deleted items, and leaves its groups).
    pub fn delete_user(&mut self, id: &str) -> bool {
        let Some(user) = self.users.remove(id) else {
            return false;
        };
        self.deleted_users.insert(id.to_string(), user);
        self.leave_all(id);
        self.record(Changed::User(id.to_string()));
        true
    }

    /// Deletes a soft-deleted (or live) user for good.
    pub fn purge_user(&mut self, id: &str) -> bool {
        let known = self.users.remove(id).is_some() | self.deleted_users.remove(id).is_some();
        if known {
            self.leave_all(id);
            self.purged.insert(id.to_string());
            self.record(Changed::User(id.to_string()));
        }
        known
    }

    fn leave_all(&mut self, member: &str) {
        let groups: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.iter().any(|(id, _)| id == member))
            .map(|(g, _)| g.clone())
            .collect();
        for group in groups {
            self.remove_member(&group, member);
        }
    }

    pub fn upsert_group(&mut self, id: &str, name: &str) {
        self.removed_groups.remove(id);
        if self.groups.get(id).map(String::as_str) != Some(name) {
            self.groups.insert(id.to_string(), name.to_string());
            self.members.entry(id.to_string()).or_default();
            self.record(Changed::Group(id.to_string()));
        }
    }

    pub fn delete_group(&mut self, id: &str) -> bool {
        if self.groups.remove(id).is_none() {
            return false;
        }
        self.members.remove(id);
        self.removed_groups.insert(id.to_string());
        self.leave_all(id);
        self.record(Changed::Group(id.to_string()));
        true
    }

    pub fn add_member(&mut self, group: &str, member: &str, kind: Kind) -> bool {
        let Some(members) = self.members.get_mut(group) else {
            return false;
        };
        if members.iter().any(|(id, _)| id == member) {
            return true;
        }
        members.push((member.to_string(), kind));
        self.record(Changed::Membership {
            group: group.to_string(),
            member: member.to_string(),
            kind,
            added: true,
        });
        true
    }

    pub fn remove_member(&mut self, group: &str, member: &str) -> bool {
        let Some(members) = self.members.get_mut(group) else {
            return false;
        };
        let Some(at) = members.iter().position(|(id, _)| id == member) else {
            return false;
        };
        let (_, kind) = members.remove(at);
        self.record(Changed::Membership {
            group: group.to_string(),
            member: member.to_string(),
            kind,
            added: false,
        });
        true
    }

    /// Every member reachable from `group` through nesting, of every type, once each.
    pub fn transitive_members(&self, group: &str) -> Vec<(String, Kind)> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut out = Vec::new();
        let mut stack = vec![group.to_string()];
        let mut visited = BTreeSet::new();
        while let Some(current) = stack.pop() {
            if !visited.insert(current.clone()) {
                continue;
            }
            for (id, kind) in self.members.get(&current).into_iter().flatten() {
                if seen.insert(id.clone()) {
                    out.push((id.clone(), *kind));
                }
                if *kind == Kind::Group {
                    stack.push(id.clone());
                }
            }
        }
        out
    }
}

pub struct Inner {
    pub tenant: Tenant,
    /// Access token → when it expires.
    pub tokens: HashMap<String, Instant>,
    /// Whether the app has admin consent for the Graph permissions.
    pub consented: bool,
    /// The client secret the app accepts.
    pub client_secret: String,
}

pub struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    pub fn new(inner: Inner) -> Shared {
        Shared {
            inner: Mutex::new(inner),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
