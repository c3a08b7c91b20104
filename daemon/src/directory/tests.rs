use super::*;

fn user(id: &str) -> UserRecord {
    UserRecord {
        user: DirectoryUser {
            reference: format!("uid={id},ou=people,dc=x"),
            external_id: format!("ext-{id}"),
            email: Some(format!("{id}@x")),
            disabled: false,
            deleted: false,
        },
        aliases: vec![format!("uid={id},ou=people,dc=x"), id.to_string()],
    }
}

fn group(name: &str, members: &[&str]) -> GroupRecord {
    GroupRecord {
        reference: format!("cn={name},ou=groups,dc=x"),
        external_id: format!("ext-{name}"),
        name: name.to_string(),
        alias: format!("cn={name},ou=groups,dc=x"),
        members: members.iter().map(|m| m.to_string()).collect(),
    }
}

fn entries() -> Entries {
    let mut entries = Entries::default();
    for id in ["a", "b", "c"] {
        entries.users.insert(format!("k-{id}"), user(id));
    }
    entries.groups.insert(
        "k-eng".into(),
        group(
            "eng",
            &["uid=a,ou=people,dc=x", "cn=ops,ou=groups,dc=x", "nobody"],
        ),
    );
    entries
        .groups
        .insert("k-ops".into(), group("ops", &["b", "b"]));
    entries
}

/// The snapshot with its users sorted, to compare snapshots whose users come in any order.
fn sorted(mut snapshot: Snapshot) -> Snapshot {
    if let Some(users) = &mut snapshot.users {
        users.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    }
    snapshot
}

#[test]
fn a_consumed_snapshot_equals_a_borrowed_one() {
    let mut entries = entries();
    entries.disabled.insert("k-b".into());
    for (users, groups) in [(true, true), (true, false), (false, true)] {
        assert_eq!(
            sorted(entries.clone().into_snapshot(users, groups)),
            sorted(entries.snapshot(users, groups)),
            "users {users}, groups {groups}"
        );
    }
}

#[test]
fn of_two_users_with_one_alias_the_greater_key_is_the_member_whatever_the_order() {
    // Two entries with uid "a" in different places; a memberUid "a" must always mean the same.
    for keys in [["k-1", "k-2"], ["k-2", "k-1"]] {
        let mut entries = Entries::default();
        for key in keys {
            let mut record = user("a");
            record.user.external_id = format!("ext-{key}");
            record.user.reference = format!("uid=a,ou={key},dc=x");
            record.aliases = vec![record.user.reference.clone(), "a".into()];
            entries.users.insert(key.to_string(), record);
        }
        entries.groups.insert("k-g".into(), group("g", &["a"]));
        let groups = entries.snapshot(false, true).groups.unwrap();
        assert_eq!(groups[0].user_members, vec!["ext-k-2"]);
    }
}

#[test]
fn members_resolve_by_dn_uid_and_group_and_unknown_ones_are_reported() {
    let mut entries = entries();
    entries.disabled.insert("k-c".into());
    let snapshot = entries.snapshot(true, true);
    let users = snapshot.users.unwrap();
    assert_eq!(users.len(), 3);
    assert!(
        users
            .iter()
            .find(|u| u.external_id == "ext-c")
            .unwrap()
            .disabled
    );
    let groups = snapshot.groups.unwrap();
    let eng = groups.iter().find(|g| g.name == "eng").unwrap();
    let ops_index = groups.iter().position(|g| g.name == "ops").unwrap();
    assert_eq!(eng.user_members, vec!["ext-a"]);
    assert_eq!(eng.group_members, vec![ops_index]);
    // memberUid values resolve by uid; a repeated member counts once.
    assert_eq!(groups[ops_index].user_members, vec!["ext-b"]);
    assert_eq!(snapshot.warnings.len(), 1);
    assert!(
        snapshot.warnings[0].contains("nobody"),
        "{:?}",
        snapshot.warnings
    );
}

#[test]
fn deleted_users_are_nobodys_member_and_unsynced_parts_are_none() {
    let mut entries = entries();
    entries.users.get_mut("k-a").unwrap().user.deleted = true;
    let snapshot = entries.snapshot(false, true);
    assert!(snapshot.users.is_none());
    let groups = snapshot.groups.unwrap();
    assert!(
        groups
            .iter()
            .find(|g| g.name == "eng")
            .unwrap()
            .user_members
            .is_empty()
    );
    assert!(entries.snapshot(true, false).groups.is_none());
}

#[test]
fn changes_upsert_delete_and_report_the_touched_keys() {
    let mut entries = entries();
    let changes = Changes {
        users: Delta {
            upserts: vec![("k-d".into(), user("d"))],
            deletes: vec!["k-a".into()],
            present: None,
        },
        disabled: Delta {
            upserts: vec![("k-b".into(), ())],
            ..Delta::default()
        },
        groups: Delta {
            upserts: vec![("k-ops".into(), group("ops", &["d"]))],
            ..Delta::default()
        },
        watermark: "w".into(),
        ..Changes::default()
    };
    let touched = changes.apply_to(&mut entries);
    assert_eq!(touched.users, vec!["k-a", "k-d"]);
    assert_eq!(touched.disabled, vec!["k-b"]);
    assert_eq!(touched.groups, vec!["k-ops"]);
    assert_eq!(touched.count(), 4);
    let mut keys: Vec<&String> = entries.users.keys().collect();
    keys.sort();
    assert_eq!(keys, ["k-b", "k-c", "k-d"]);
    assert!(entries.disabled.contains("k-b"));
    assert_eq!(entries.groups["k-ops"].members, vec!["d"]);
}

#[test]
fn a_present_list_removes_every_entry_neither_listed_nor_upserted() {
    let mut entries = entries();
    let changes = Changes {
        users: Delta {
            upserts: vec![("k-d".into(), user("d"))],
            deletes: Vec::new(),
            present: Some(["k-b".to_string()].into_iter().collect()),
        },
        ..Changes::default()
    };
    assert!(!changes.is_empty());
    let touched = changes.apply_to(&mut entries);
    assert_eq!(touched.users, vec!["k-a", "k-c", "k-d"]);
    let mut keys: Vec<&String> = entries.users.keys().collect();
    keys.sort();
    assert_eq!(keys, ["k-b", "k-d"]);
    // Groups had no present list: untouched.
    assert_eq!(entries.groups.len(), 2);
    assert!(Changes::default().is_empty());
}

#[test]
fn snapshots_trim_and_lower_case_every_sources_emails() {
    let mut entries = Entries::default();
    for (key, email) in [
        ("k1", Some("  Ann.Lee@Example.ORG ")),
        ("k2", Some("   ")),
        ("k3", Some("bo@example.org")),
        ("k4", None),
    ] {
        let mut record = user(key);
        record.user.email = email.map(str::to_string);
        entries.users.insert(key.into(), record);
    }
    let emails = |snapshot: Snapshot| {
        let mut users = snapshot.users.unwrap();
        users.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        users.into_iter().map(|u| u.email).collect::<Vec<_>>()
    };
    let expected = vec![
        Some("ann.lee@example.org".to_string()),
        None,
        Some("bo@example.org".to_string()),
        None,
    ];
    assert_eq!(emails(entries.snapshot(true, false)), expected);
    assert_eq!(emails(entries.into_snapshot(true, false)), expected);
}

#[test]
fn deleted_users_become_tombstones_and_group_patches_merge_members() {
    let mut entries = entries();
    let patch = |name: &str, added: &[&str], removed: &[&str]| GroupPatch {
        group: GroupRecord {
            name: name.into(),
            members: added.iter().map(|m| m.to_string()).collect(),
            ..group(name, &[])
        },
        removed: removed.iter().map(|m| m.to_string()).collect(),
    };
    let changes = Changes {
        deleted_users: vec!["k-a".into(), "k-nobody".into()],
        group_patches: vec![
            // A members-only change (no name), replayed members, and a removal.
            (
                "k-ops".into(),
                GroupPatch {
                    group: GroupRecord {
                        name: String::new(),
                        ..patch("ops", &["c", "b"], &[]).group
                    },
                    removed: vec!["b".into()],
                },
            ),
            ("k-new".into(), patch("new", &["a"], &[])),
            ("k-unnamed".into(), patch("", &["a"], &[])),
        ],
        ..Changes::default()
    };
    assert!(!changes.is_empty());
    let touched = changes.apply_to(&mut entries);
    assert_eq!(touched.users, vec!["k-a"]);
    assert_eq!(touched.groups, vec!["k-new", "k-ops"]);
    assert!(entries.users["k-a"].user.deleted);
    assert_eq!(entries.groups["k-ops"].name, "ops");
    assert_eq!(entries.groups["k-ops"].members, vec!["c"]);
    assert_eq!(entries.groups["k-new"].members, vec!["a"]);
    assert!(!entries.groups.contains_key("k-unnamed"));
}

#[test]
fn group_scoping_keeps_members_tombstones_and_disabled_on_request() {
    let mut entries = entries();
    let mut disabled = user("d");
    disabled.user.disabled = true;
    entries.users.insert("k-d".into(), disabled);
    let mut gone = user("e");
    gone.user.deleted = true;
    entries.users.insert("k-e".into(), gone);
    entries.groups.remove("k-ops");
    let ids = |keep_disabled: bool| {
        let mut snapshot = entries.snapshot(true, true);
        snapshot.keep_group_members_only(keep_disabled);
        let mut ids: Vec<String> = snapshot
            .users
            .unwrap()
            .into_iter()
            .map(|u| u.external_id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(false), ["ext-a", "ext-e"]);
    assert_eq!(ids(true), ["ext-a", "ext-d", "ext-e"]);
}
