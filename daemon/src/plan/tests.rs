use orgsync_proto::{RemovalReason, SkipReason};

use super::*;

fn user(id: &str, email: Option<&str>) -> DirectoryUser {
    DirectoryUser {
        reference: format!("uid={id},ou=people,dc=x"),
        external_id: id.to_string(),
        email: email.map(str::to_string),
        disabled: false,
        deleted: false,
    }
}

fn group(id: &str, users: &[&str], groups: &[usize]) -> DirectoryGroup {
    DirectoryGroup {
        reference: format!("cn={id},ou=groups,dc=x"),
        external_id: id.to_string(),
        name: id.to_uppercase(),
        user_members: users.iter().map(|u| u.to_string()).collect(),
        group_members: groups.to_vec(),
    }
}

fn options() -> PlanOptions {
    PlanOptions {
        sync_users: true,
        sync_groups: true,
        remove_missing_users: true,
        max_removals: 5,
        max_removal_percent: 10,
        ..PlanOptions::default()
    }
}

fn snapshot(users: Vec<DirectoryUser>, groups: Vec<DirectoryGroup>) -> Snapshot {
    Snapshot {
        users: Some(users),
        groups: Some(groups),
        warnings: Vec::new(),
    }
}

fn synced(n: usize) -> SyncedState {
    let mut state = SyncedState::default();
    for i in 0..n {
        state.members.insert(format!("u{i}"), format!("u{i}@x.com"));
    }
    state
}

fn users(n: usize) -> Vec<DirectoryUser> {
    (0..n)
        .map(|i| user(&format!("u{i}"), Some(&format!("u{i}@x.com"))))
        .collect()
}

#[test]
fn nested_groups_are_flattened_through_a_cycle() {
    // a ⊃ b ⊃ c ⊃ a (cycle); each has one direct user.
    let snap = snapshot(
        vec![
            user("u1", Some("1@x")),
            user("u2", Some("2@x")),
            user("u3", Some("3@x")),
        ],
        vec![
            group("a", &["u1"], &[1]),
            group("b", &["u2"], &[2]),
            group("c", &["u3"], &[0]),
        ],
    );
    let plan = plan(&snap, &SyncedState::default(), &options());
    for g in &plan.groups {
        assert_eq!(
            g.member_external_ids,
            vec!["u1", "u2", "u3"],
            "group {}",
            g.name
        );
    }
}

#[test]
fn nesting_only_flows_downwards() {
    let snap = snapshot(
        vec![user("u1", Some("1@x")), user("u2", Some("2@x"))],
        vec![group("parent", &["u1"], &[1]), group("child", &["u2"], &[])],
    );
    let plan = plan(&snap, &SyncedState::default(), &options());
    let child = plan
        .groups
        .iter()
        .find(|g| g.external_id == "child")
        .unwrap();
    assert_eq!(child.member_external_ids, vec!["u2"]);
    let parent = plan
        .groups
        .iter()
        .find(|g| g.external_id == "parent")
        .unwrap();
    assert_eq!(parent.member_external_ids, vec!["u1", "u2"]);
}

#[test]
fn first_sync_invites_everyone_and_creates_groups() {
    let snap = snapshot(users(3), vec![group("g", &["u0", "u2"], &[])]);
    let plan = plan(&snap, &SyncedState::default(), &options());
    assert_eq!(plan.diff.invite.len(), 3);
    assert!(plan.diff.remove.is_empty());
    assert_eq!(
        plan.diff.groups_created[0].added,
        vec!["u0@x.com", "u2@x.com"]
    );
    assert_eq!(plan.requests().len(), 1);
    assert_eq!(plan.requests()[0].members.len(), 3);
    assert_eq!(plan.next_state(&SyncedState::default()).members.len(), 3);
    assert!(plan.refusal.is_none());
}

#[test]
fn missing_disabled_and_deleted_users_are_removed() {
    let mut dir = users(18);
    dir[0].disabled = true;
    dir[1].deleted = true;
    // u18 and u19 were synced before and are gone from the directory.
    let state = synced(20);
    let options = PlanOptions {
        remove_disabled: true,
        ..options()
    };
    let plan = plan(&snapshot(dir, vec![]), &state, &options);
    // Sorted by email: "u18@" < "u1@" because '8' sorts before '@'.
    let removed: Vec<(&str, RemovalReason)> = plan
        .diff
        .remove
        .iter()
        .map(|r| (r.external_id.as_str(), r.reason))
        .collect();
    assert_eq!(
        removed,
        vec![
            ("u0", RemovalReason::Disabled),
            ("u18", RemovalReason::Missing),
            ("u19", RemovalReason::Missing),
            ("u1", RemovalReason::Deleted),
        ]
    );
    let requests = plan.requests();
    let deleted: Vec<&str> = requests[0]
        .members
        .iter()
        .filter(|m| m.deleted)
        .map(|m| m.external_id.as_str())
        .collect();
    assert_eq!(deleted, vec!["u0", "u1", "u18", "u19"]); // directory users, then missing ones
    assert_eq!(plan.next_state(&SyncedState::default()).members.len(), 16);
    assert!(plan.has_missing_removals());
}

#[test]
fn disabled_users_stay_without_remove_disabled() {
    let mut dir = users(2);
    dir[0].disabled = true;
    let plan = plan(&snapshot(dir, vec![]), &synced(2), &options());
    assert!(plan.diff.remove.is_empty());
    assert_eq!(plan.users.disabled.len(), 1);
    assert!(plan.requests()[0].members.iter().all(|m| !m.deleted));
}

#[test]
fn guard_allows_small_removals_and_refuses_large_ones() {
    // 5 of 100 removed: within max_removals.
    let plan_small = plan(&snapshot(users(95), vec![]), &synced(100), &options());
    assert!(plan_small.refusal.is_none());
    // 6 of 100: more than 5 but only 6% → allowed.
    let plan_six = plan(&snapshot(users(94), vec![]), &synced(100), &options());
    assert!(plan_six.refusal.is_none());
    // 11 of 100: more than 5 and more than 10% → refused, overridable, names listed.
    let plan_big = plan(&snapshot(users(89), vec![]), &synced(100), &options());
    let refusal = plan_big.refusal.expect("refused");
    assert!(refusal.overridable);
    assert_eq!(refusal.removals, 11);
    assert!(refusal.message.contains("u89@x.com"), "{}", refusal.message);
    assert!(refusal.message.contains("--allow-removals"));
}

#[test]
fn an_empty_read_after_a_sync_is_always_refused() {
    let plan = plan(&snapshot(vec![], vec![]), &synced(3), &options());
    let refusal = plan.refusal.expect("refused");
    assert!(!refusal.overridable);
    assert!(refusal.message.contains("no users"));
}

#[test]
fn duplicate_emails_are_reported_per_entry() {
    let mut twin = user("u9", Some("u1@x.com"));
    twin.reference = "uid=twin,dc=x".into();
    let dir = vec![
        user("u1", Some("u1@x.com")),
        twin,
        user("u2", Some("u2@x.com")),
    ];
    let plan = plan(&snapshot(dir, vec![]), &SyncedState::default(), &options());
    let refs: Vec<&str> = plan
        .conflicts
        .iter()
        .map(|c| c.reference.as_str())
        .collect();
    // Sorted by reference: the directory's order does not show in the report.
    assert_eq!(refs, vec!["uid=twin,dc=x", "uid=u1,ou=people,dc=x"]);
    assert!(
        plan.skipped
            .iter()
            .all(|s| s.reason == SkipReason::DuplicateEmail)
    );
    assert_eq!(plan.users.enabled.len(), 1);
}

#[test]
fn identical_repeats_and_tombstones_of_active_users_are_dropped_quietly() {
    let mut tombstone = user("old", Some("u1@x.com"));
    tombstone.deleted = true;
    let dir = vec![
        tombstone,
        user("u1", Some("u1@x.com")),
        user("u1", Some("u1@x.com")),
    ];
    let plan = plan(&snapshot(dir, vec![]), &SyncedState::default(), &options());
    assert!(plan.conflicts.is_empty());
    assert_eq!(plan.requests()[0].members.len(), 1);
}

#[test]
fn users_without_email_are_reported_not_sent() {
    let long = format!("{}@x.com", "a".repeat(260));
    let dir = vec![
        user("u1", None),
        user("u2", Some(&long)),
        user("u3", Some("3@x")),
    ];
    let plan = plan(&snapshot(dir, vec![]), &SyncedState::default(), &options());
    let reasons: Vec<SkipReason> = plan.skipped.iter().map(|s| s.reason).collect();
    assert_eq!(reasons, vec![SkipReason::NoEmail, SkipReason::EmailTooLong]);
    assert_eq!(plan.requests()[0].members.len(), 1);
}

#[test]
fn a_tombstone_without_email_is_removed_by_the_email_orgsync_knows() {
    let mut tombstone = user("u0", None);
    tombstone.deleted = true;
    let mut dir = users(20);
    dir[0] = tombstone;
    let plan = plan(&snapshot(dir, vec![]), &synced(20), &options());
    assert_eq!(plan.diff.remove.len(), 1);
    assert_eq!(plan.diff.remove[0].email, "u0@x.com");
    assert_eq!(plan.diff.remove[0].reason, RemovalReason::Deleted);
}

#[test]
fn group_changes_are_diffed_by_email() {
    let mut state = synced(3);
    state.groups.insert(
        "g".into(),
        SyncedGroup {
            name: "Old name".into(),
            members: vec!["u0".into(), "u1".into()],
        },
    );
    state.groups.insert(
        "gone".into(),
        SyncedGroup {
            name: "Gone".into(),
            members: vec![],
        },
    );
    let plan = plan(
        &snapshot(users(3), vec![group("g", &["u1", "u2"], &[])]),
        &state,
        &options(),
    );
    let update = &plan.diff.groups_updated[0];
    assert_eq!(update.renamed_from.as_deref(), Some("Old name"));
    assert_eq!(update.added, vec!["u2@x.com"]);
    assert_eq!(update.removed, vec!["u0@x.com"]);
    assert_eq!(plan.diff.groups_gone[0].name, "Gone");
}

#[test]
fn removed_users_leave_their_groups() {
    let mut dir = users(20);
    dir[0].disabled = true;
    let options = PlanOptions {
        remove_disabled: true,
        ..options()
    };
    let plan = plan(
        &snapshot(dir, vec![group("g", &["u0", "u1"], &[])]),
        &synced(20),
        &options,
    );
    assert_eq!(plan.groups[0].member_external_ids, vec!["u1"]);
}

#[test]
fn hash_ignores_directory_order_and_missing_removals() {
    let forward = plan(
        &snapshot(users(5), vec![]),
        &SyncedState::default(),
        &options(),
    );
    let mut reversed_users = users(5);
    reversed_users.reverse();
    let reversed = plan(
        &snapshot(reversed_users, vec![]),
        &SyncedState::default(),
        &options(),
    );
    assert_eq!(
        forward.request_hash("api", "org"),
        reversed.request_hash("api", "org")
    );

    // After u5 is removed (and dropped from the state) the payload is the same as before.
    let with_missing = plan(&snapshot(users(5), vec![]), &synced(6), &options());
    assert!(with_missing.has_missing_removals());
    assert_eq!(
        with_missing.request_hash("api", "org"),
        forward.request_hash("api", "org")
    );
    assert_ne!(
        serde_json::to_string(&with_missing.requests()).unwrap(),
        serde_json::to_string(&forward.requests()).unwrap()
    );
}

#[test]
fn large_imports_are_batched_users_first() {
    let options = PlanOptions {
        large_import: true,
        ..options()
    };
    let groups: Vec<DirectoryGroup> = (0..2001)
        .map(|i| group(&format!("g{i}"), &[], &[]))
        .collect();
    let plan = plan(
        &snapshot(users(4500), groups),
        &SyncedState::default(),
        &options,
    );
    let shape: Vec<(usize, usize, bool)> = plan
        .requests()
        .iter()
        .map(|r| (r.members.len(), r.groups.len(), r.large_import))
        .collect();
    assert_eq!(
        shape,
        vec![
            (2000, 0, true),
            (2000, 0, true),
            (500, 0, true),
            (0, 2000, true),
            (0, 1, true)
        ]
    );
}

#[test]
fn small_imports_stay_single_even_with_large_import_on() {
    let options = PlanOptions {
        large_import: true,
        ..options()
    };
    let plan = plan(
        &snapshot(users(10), vec![]),
        &SyncedState::default(),
        &options,
    );
    assert_eq!(plan.requests().len(), 1);
    assert!(!plan.requests()[0].large_import);
}

#[test]
fn groups_only_sync_keeps_member_state_and_sends_no_members() {
    let snap = Snapshot {
        users: None,
        groups: Some(vec![group("g", &["u1"], &[])]),
        warnings: vec![],
    };
    let state = synced(2);
    let plan = plan(&snap, &state, &options());
    assert!(plan.requests()[0].members.is_empty());
    assert_eq!(plan.next_state(&state).members, state.members);
    assert!(plan.diff.remove.is_empty());
}

#[test]
fn request_hash_matches_directory_connectors_formula() {
    // base64(sha256(api URL + organization id + the request JSON as Directory Connector writes it))
    let plan = plan(
        &snapshot(vec![user("u1", Some("1@x"))], vec![]),
        &SyncedState::default(),
        &options(),
    );
    let json = r#"{"groups":[],"members":[{"email":"1@x","externalId":"u1","deleted":false}],"overwriteExisting":false,"largeImport":false,"inviteUsersAfterProvisioning":false}"#;
    let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(
        format!("https://api.exampleorg{json}").as_bytes(),
    ));
    assert_eq!(plan.request_hash("https://api.example", "org"), expected);
}
