use orgsync_proto::{EmailChange, EntryKind, RemovalReason, SkipReason};

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
    assert!(plan.has_state_changes());
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
    assert!(with_missing.has_state_changes());
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

#[test]
fn entries_the_server_would_reject_are_skipped_and_the_rest_is_sent() {
    let long_id = format!("uid={},dc=x", "a".repeat(300));
    let mut deep = user("ok", Some("deep@x.com"));
    deep.external_id = long_id.clone();
    let dir = vec![
        user("bad", Some("not an email")),
        deep,
        user("u1", Some("1@x.com")),
    ];
    let mut long_name = group("long", &["u1"], &[]);
    long_name.name = "N".repeat(101);
    let mut unnamed = group("unnamed", &["u1"], &[]);
    unnamed.name = " ".into();
    // The skipped group's members still reach the group it is nested in.
    let groups = vec![
        long_name,
        group("parent", &[], &[0]),
        unnamed,
        group("ok", &["bad", "u1"], &[]),
    ];
    let plan = plan(&snapshot(dir, groups), &SyncedState::default(), &options());
    let skipped: Vec<(EntryKind, &str, SkipReason)> = plan
        .skipped
        .iter()
        .map(|s| (s.kind, s.reference.as_str(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (
                EntryKind::User,
                "uid=bad,ou=people,dc=x",
                SkipReason::InvalidEmail
            ),
            (
                EntryKind::User,
                "uid=ok,ou=people,dc=x",
                SkipReason::ExternalIdTooLong
            ),
            (
                EntryKind::Group,
                "cn=long,ou=groups,dc=x",
                SkipReason::GroupNameTooLong
            ),
            (
                EntryKind::Group,
                "cn=unnamed,ou=groups,dc=x",
                SkipReason::NoGroupName
            ),
        ]
    );
    let requests = plan.requests();
    let members: Vec<&str> = requests[0]
        .members
        .iter()
        .map(|m| m.email.as_str())
        .collect();
    assert_eq!(members, vec!["1@x.com"]);
    let groups: Vec<(&str, &[String])> = requests[0]
        .groups
        .iter()
        .map(|g| (g.external_id.as_str(), g.member_external_ids.as_slice()))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("ok", &["u1".to_string()][..]),
            ("parent", &["u1".to_string()][..])
        ]
    );
    assert_eq!(plan.diff.invite.len(), 1);
}

#[test]
fn a_synced_member_whose_entry_turns_invalid_is_kept_not_forgotten() {
    let mut state = synced(3);
    state.groups.insert(
        "g".into(),
        SyncedGroup {
            name: "G".into(),
            members: vec!["u0".into()],
        },
    );
    let mut dir = users(3);
    dir[0].email = Some("broken@".into());
    let mut bad_group = group("g", &["u0"], &[]);
    bad_group.name = "x".repeat(120);
    let plan = plan(&snapshot(dir, vec![bad_group]), &state, &options());
    assert!(plan.diff.remove.is_empty(), "{:?}", plan.diff.remove);
    assert!(plan.diff.groups_gone.is_empty());
    let next = plan.next_state(&state);
    assert_eq!(next.members.get("u0").map(String::as_str), Some("u0@x.com"));
    assert_eq!(next.groups.get("g"), state.groups.get("g"));
    // Once it leaves the directory, it is removed like anyone else.
    let plan = super::plan(&snapshot(users(3)[1..].to_vec(), vec![]), &next, &options());
    assert_eq!(plan.diff.remove[0].external_id, "u0");
}

#[test]
fn email_syntax_is_checked_as_the_servers_and_mail_need() {
    for good in [
        "a@x.com",
        "first.last+tag@sub.example.org",
        "a@localhost",
        "ü@bücher.de",
    ] {
        assert!(is_valid_email(good), "{good}");
    }
    for bad in [
        "not an email",
        "a b@x.com",
        "@x.com",
        "a@",
        "a@@x.com",
        "a@b@x.com",
        "a@x..com",
        "a@.x.com",
        "a@x.com.",
        "a\n@x.com",
        "",
    ] {
        assert!(!is_valid_email(bad), "{bad:?}");
    }
}

#[test]
fn an_email_change_retires_the_old_membership_before_inviting_the_new_one() {
    let mut state = synced(2);
    state.groups.insert(
        "g".into(),
        SyncedGroup {
            name: "G".into(),
            members: vec!["u0".into(), "u1".into()],
        },
    );
    state.groups.insert(
        "h".into(),
        SyncedGroup {
            name: "H".into(),
            members: vec!["u1".into()],
        },
    );
    let mut dir = users(2);
    dir[0].email = Some("new0@x.com".into());
    let groups = vec![group("g", &["u0", "u1"], &[]), group("h", &["u1"], &[])];
    let plan = plan(&snapshot(dir, groups), &state, &options());
    assert_eq!(
        plan.diff.email_changed,
        vec![EmailChange {
            external_id: "u0".into(),
            from: "u0@x.com".into(),
            to: "new0@x.com".into(),
        }]
    );
    assert!(plan.diff.invite.is_empty() && plan.diff.remove.is_empty());
    assert!(plan.diff.groups_updated.is_empty(), "same externalIds");
    assert!(plan.refusal.is_none());
    assert!(plan.has_state_changes());

    for requests in [plan.requests(), plan.change_requests()] {
        assert_eq!(requests.len(), 2);
        let retire: Vec<(&str, &str, bool)> = requests[0]
            .members
            .iter()
            .map(|m| (m.email.as_str(), m.external_id.as_str(), m.deleted))
            .collect();
        assert_eq!(
            retire,
            vec![
                ("u0@x.com", "u0", true),
                ("u0@x.com", "orgsync-moved:u0@x.com", true)
            ]
        );
        assert!(requests[0].groups.is_empty() && !requests[0].overwrite_existing);
        assert!(
            requests[1]
                .members
                .iter()
                .any(|m| m.email == "new0@x.com" && m.external_id == "u0" && !m.deleted)
        );
        // The group holding the moved member is sent again; the other need not be.
        assert!(requests[1].groups.iter().any(|g| g.external_id == "g"));
    }
    let incremental = plan.change_requests();
    assert!(!incremental[1].groups.iter().any(|g| g.external_id == "h"));
    let next = plan.next_state(&state);
    assert_eq!(next.members["u0"], "new0@x.com");
}

#[test]
fn a_removal_names_the_email_the_organization_holds() {
    let mut dir = users(20);
    dir[0].email = Some("renamed@x.com".into());
    dir[0].disabled = true;
    let options = PlanOptions {
        remove_disabled: true,
        ..options()
    };
    let plan = plan(&snapshot(dir, vec![]), &synced(20), &options);
    assert!(plan.diff.email_changed.is_empty());
    assert_eq!(plan.diff.remove[0].email, "u0@x.com");
    let requests = plan.requests();
    let removal = requests[0].members.iter().find(|m| m.deleted).unwrap();
    assert_eq!(
        (removal.email.as_str(), removal.external_id.as_str()),
        ("u0@x.com", "u0")
    );
}

/// An AD tombstone has lost its email; orgsync removes it by the one it synced. Once that
/// removal is accepted the tombstone is nobody orgsync knows, and the same directory must hash
/// the same, or every later sync re-sends everything for nothing.
#[test]
fn a_removed_tombstone_does_not_change_the_next_hash() {
    let mut dir = users(20);
    dir[0].email = None;
    dir[0].deleted = true;
    let state = synced(20);
    let first = plan(&snapshot(dir.clone(), vec![]), &state, &options());
    assert_eq!(first.diff.remove[0].reason, RemovalReason::Deleted);
    assert!(first.has_state_changes());
    assert!(
        first.requests()[0]
            .members
            .iter()
            .any(|m| m.deleted && m.external_id == "u0")
    );
    let next = first.next_state(&state);
    let second = plan(&snapshot(dir, vec![]), &next, &options());
    assert!(second.diff.is_empty());
    assert!(!second.has_state_changes());
    assert_eq!(second.request_hash("a", "o"), first.request_hash("a", "o"));
}

#[test]
fn disabled_users_invited_anyway_are_said_to_be() {
    let mut dir = users(3);
    dir[0].disabled = true;
    let plan = plan(
        &snapshot(dir.clone(), vec![]),
        &SyncedState::default(),
        &options(),
    );
    assert_eq!(plan.diff.invite.len(), 3);
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("1 disabled user(s) are invited anyway")
                && w.contains("u0@x.com")
                && w.contains("sync.remove_disabled")),
        "{:?}",
        plan.warnings
    );
    let options = PlanOptions {
        remove_disabled: true,
        ..options()
    };
    let plan = super::plan(&snapshot(dir, vec![]), &SyncedState::default(), &options);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn members_taken_over_stay_until_the_admin_removes_who_left_before_the_switch() {
    // Taken over from the organization: u0..u9, every one held; u8 and u9 have left.
    let mut state = synced(10);
    state.held = state.members.keys().cloned().collect();
    let snap = snapshot(users(8), Vec::new());
    let kept = plan(&snap, &state, &options());
    assert!(kept.diff.remove.is_empty(), "{:?}", kept.diff.remove);
    assert!(kept.diff.invite.is_empty());
    assert!(kept.refusal.is_none());
    assert!(
        kept.warnings.iter().any(|w| w
            .starts_with("2 member(s) left the directory before the switch")
            && w.contains("u8@x.com, u9@x.com")),
        "{:?}",
        kept.warnings
    );
    let next = kept.next_state(&state);
    assert_eq!(next.members.len(), 10, "the leavers stay synced");
    assert_eq!(
        next.held.iter().map(String::as_str).collect::<Vec<_>>(),
        ["u8", "u9"],
        "who was read is no longer held"
    );

    // The admin's word removes them; a later leaver is removed as usual.
    let removed = plan(
        &snap,
        &next,
        &PlanOptions {
            remove_held: true,
            ..options()
        },
    );
    let gone: Vec<&str> = removed
        .diff
        .remove
        .iter()
        .map(|r| r.email.as_str())
        .collect();
    assert_eq!(gone, ["u8@x.com", "u9@x.com"]);
    assert!(removed.next_state(&next).held.is_empty());
    let later = plan(&snapshot(users(7), Vec::new()), &next, &options());
    let gone: Vec<&str> = later.diff.remove.iter().map(|r| r.email.as_str()).collect();
    assert_eq!(
        gone,
        ["u7@x.com"],
        "u7 was seen after the switch: an ordinary leaver"
    );
}

#[test]
fn members_are_paired_with_their_new_ids_by_email_and_groups_by_reference_or_name() {
    let mut state = SyncedState::default();
    state.members.insert("uid=a,dc=x".into(), "a@x.com".into());
    state.members.insert("uid=b,dc=x".into(), "b@x.com".into());
    state.members.insert("kept".into(), "k@x.com".into());
    state.held.insert("uid=b,dc=x".into());
    let old_group = |name: &str, members: &[&str]| SyncedGroup {
        name: name.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
    };
    state.groups.insert(
        "cn=a,ou=groups,dc=x".into(),
        old_group("A", &["uid=a,dc=x", "kept"]),
    );
    state
        .groups
        .insert("old-b".into(), old_group("B", &["uid=b,dc=x"]));
    let snap = snapshot(
        vec![
            user("uuid-a", Some("a@x.com")),
            user("uuid-b", Some("b@x.com")),
            user("kept", Some("k@x.com")),
            user("uuid-new", Some("new@x.com")),
        ],
        vec![group("a", &["uuid-a"], &[]), group("b", &["uuid-b"], &[])],
    );
    let (members, groups) = rekeys(&snap, &state);
    let pairs = |list: &[Rekey]| -> Vec<(String, String)> {
        list.iter()
            .map(|r| (r.from.clone(), r.to.clone()))
            .collect()
    };
    assert_eq!(
        pairs(&members),
        [
            ("uid=a,dc=x".to_string(), "uuid-a".to_string()),
            ("uid=b,dc=x".to_string(), "uuid-b".to_string())
        ]
    );
    // `group()` gives group a the reference cn=a,ou=groups,dc=x; B matches by its name.
    assert_eq!(
        pairs(&groups),
        [
            ("cn=a,ou=groups,dc=x".to_string(), "a".to_string()),
            ("old-b".to_string(), "b".to_string())
        ]
    );
    let next = rekeyed(&state, &members, &groups);
    assert_eq!(
        next.members.get("uuid-a").map(String::as_str),
        Some("a@x.com")
    );
    assert_eq!(next.groups["a"].members, ["kept", "uuid-a"]);
    assert!(next.held.contains("uuid-b"));
    let after = plan(&snap, &next, &options());
    assert_eq!(
        after.diff.invite.len(),
        1,
        "only the new person: {:?}",
        after.diff.invite
    );
    assert!(after.diff.remove.is_empty());
}
