//! Human-readable output of the CLI. JSON output is the serde form of the `orgsync_proto` types.

use std::fmt::Write;
use std::path::Path;

use orgsync::config::Config;
use orgsync::secrets::{SecretKey, Secrets};
use orgsync_proto::api::{DaemonStatus, RunRecord};
use orgsync_proto::{
    Diff, DirectoryRead, EntryKind, InstallationStatus, ReadMode, SyncOutcome, SyncReport,
    TestReport, UserEntry,
};

/// How many names to print per list before "and N more".
const SHOWN: usize = 20;

pub fn test_report(report: &TestReport, list: bool) -> String {
    let mut out = String::new();
    let users = &report.users;
    let skipped_groups = report
        .skipped
        .iter()
        .filter(|s| s.kind == EntryKind::Group)
        .count();
    let skipped_users = report.skipped.len() - skipped_groups;
    if let Some(source) = &report.source {
        let _ = writeln!(out, "Source:    {} ({})", source.location, source.kind);
    }
    let _ = writeln!(
        out,
        "Directory: read {} user(s) ({} enabled, {} disabled, {} deleted, {} skipped) and {} group(s){}",
        users.len() + skipped_users,
        users.enabled.len(),
        users.disabled.len(),
        users.deleted.len(),
        skipped_users,
        report.groups.len() + skipped_groups,
        if skipped_groups > 0 {
            format!(" ({skipped_groups} skipped)")
        } else {
            String::new()
        },
    );
    if list {
        for (title, entries) in [
            ("Enabled users", &users.enabled),
            ("Disabled users", &users.disabled),
            ("Deleted users", &users.deleted),
        ] {
            user_list(&mut out, title, entries);
        }
        if !report.groups.is_empty() {
            let _ = writeln!(out, "\nGroups:");
            for group in &report.groups {
                let _ = writeln!(
                    out,
                    "  {} ({} member(s))  [{}]",
                    group.name,
                    group.member_external_ids.len(),
                    group.external_id
                );
            }
        }
    }
    skipped(&mut out, &report.skipped);
    let _ = writeln!(out);
    if report.diff.is_empty() {
        let _ = writeln!(out, "A sync would change nothing.");
    } else {
        let _ = writeln!(out, "A sync would:");
        diff(&mut out, &report.diff);
    }
    gone_groups(&mut out, &report.diff);
    warnings(&mut out, &report.warnings);
    if let Some(refusal) = &report.refusal {
        let _ = writeln!(out, "\nA sync would be REFUSED: {}", refusal.message);
    }
    if let Some(failure) = &report.failure {
        let _ = writeln!(out, "\nA sync would FAIL: {failure}");
    }
    out
}

pub fn sync_report(report: &SyncReport) -> String {
    let mut out = String::new();
    match report.outcome {
        SyncOutcome::Synced => {
            let _ = writeln!(
                out,
                "Synced: read {} user(s) and {} group(s); sent {} import request(s).",
                report.users_read, report.groups_read, report.requests_sent
            );
            if report.diff.is_empty() {
                let _ = writeln!(
                    out,
                    "No member or group changed; sent because {}.",
                    report
                        .sent_because
                        .as_deref()
                        .unwrap_or("the request differs from the last one sent")
                );
            } else {
                diff(&mut out, &report.diff);
            }
        }
        SyncOutcome::Unchanged => {
            let _ = writeln!(
                out,
                "Unchanged: read {} user(s) and {} group(s); the directory matches the last sync, nothing sent.",
                report.users_read, report.groups_read
            );
        }
        SyncOutcome::Refused => {
            let _ = writeln!(out, "Refused: nothing was sent.");
            if let Some(refusal) = &report.refusal {
                let _ = writeln!(out, "{}", refusal.message);
            }
            diff(&mut out, &report.diff);
        }
    }
    directory_read(&mut out, &report.read);
    skipped(&mut out, &report.skipped);
    gone_groups(&mut out, &report.diff);
    warnings(&mut out, &report.warnings);
    out
}

/// How the directory was read, when it tracks changes (a plain full read says nothing).
fn directory_read(out: &mut String, read: &DirectoryRead) {
    match (read.mode, &read.reason) {
        (ReadMode::Incremental, _) => {
            let _ = writeln!(
                out,
                "Read only the changes since the last sync: {} entr{} changed.",
                read.entries_changed.unwrap_or_default(),
                if read.entries_changed == Some(1) {
                    "y"
                } else {
                    "ies"
                }
            );
        }
        (ReadMode::Full, Some(reason)) => {
            let _ = writeln!(out, "Read the whole directory: {reason}.");
        }
        (ReadMode::Full, None) => {}
    }
}

fn user_list(out: &mut String, title: &str, entries: &[UserEntry]) {
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}:");
    for user in entries {
        let _ = writeln!(
            out,
            "  {}  [{}]  {}",
            user.email, user.external_id, user.reference
        );
    }
}

fn names<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = items.len();
    let shown: Vec<&str> = items.take(SHOWN).collect();
    let mut text = shown.join(", ");
    if total > shown.len() {
        let _ = write!(text, " and {} more", total - shown.len());
    }
    text
}

fn diff(out: &mut String, diff: &Diff) {
    if !diff.invite.is_empty() {
        let _ = writeln!(
            out,
            "  invite {}: {}",
            diff.invite.len(),
            names(diff.invite.iter().map(|m| m.email.as_str()))
        );
    }
    if !diff.email_changed.is_empty() {
        let _ = writeln!(out, "  email changed {}:", diff.email_changed.len());
        for change in diff.email_changed.iter().take(SHOWN) {
            let _ = writeln!(out, "    {} → {}", change.from, change.to);
        }
        if diff.email_changed.len() > SHOWN {
            let _ = writeln!(out, "    and {} more", diff.email_changed.len() - SHOWN);
        }
    }
    if !diff.remove.is_empty() {
        let _ = writeln!(out, "  remove {}:", diff.remove.len());
        for removal in diff.remove.iter().take(SHOWN) {
            let _ = writeln!(out, "    {} ({})", removal.email, removal.reason.describe());
        }
        if diff.remove.len() > SHOWN {
            let _ = writeln!(out, "    and {} more", diff.remove.len() - SHOWN);
        }
    }
    for group in &diff.groups_created {
        let _ = writeln!(
            out,
            "  create group {} with {} member(s)",
            group.name,
            group.added.len()
        );
    }
    for group in &diff.groups_updated {
        let mut parts = Vec::new();
        if let Some(old) = &group.renamed_from {
            parts.push(format!("renamed from {old:?}"));
        }
        if !group.added.is_empty() {
            parts.push(format!(
                "add {}",
                names(group.added.iter().map(String::as_str))
            ));
        }
        if !group.removed.is_empty() {
            parts.push(format!(
                "remove {}",
                names(group.removed.iter().map(String::as_str))
            ));
        }
        let _ = writeln!(out, "  update group {}: {}", group.name, parts.join("; "));
    }
}

fn gone_groups(out: &mut String, diff: &Diff) {
    if !diff.groups_gone.is_empty() {
        let _ = writeln!(
            out,
            "\nGroups no longer in the directory (the import API never deletes groups; delete them in the Admin Console if wanted): {}",
            names(diff.groups_gone.iter().map(|g| g.name.as_str()))
        );
    }
}

fn skipped(out: &mut String, skipped: &[orgsync_proto::SkippedEntry]) {
    if skipped.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nSkipped {} directory entr(ies):", skipped.len());
    for entry in skipped.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "  {}{}: {}",
            entry.reference,
            entry
                .email
                .as_deref()
                .map(|e| format!(" <{e}>"))
                .unwrap_or_default(),
            entry.reason.describe()
        );
    }
    if skipped.len() > SHOWN {
        let _ = writeln!(out, "  and {} more (see --json)", skipped.len() - SHOWN);
    }
}

fn warnings(out: &mut String, warnings: &[String]) {
    for warning in warnings {
        let _ = writeln!(out, "\nwarning: {warning}");
    }
}

/// `config keys`: every key, its default, and its doc comment indented below it.
pub fn config_keys(keys: &[orgsync::config::KeyDoc]) -> String {
    let mut out = String::new();
    for key in keys {
        let default = match &key.default {
            Some(value) => format!("default {value}"),
            None => "not set by default".into(),
        };
        let _ = writeln!(out, "{}  ({default})", key.key);
        for line in key.doc.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = writeln!(
        out,
        "\nSecrets are not keys: store them with `orgsync config set-secret {}`.",
        SecretKey::settable()
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join("|")
    );
    out
}

/// `config show`: the effective configuration with defaults, and where each secret comes from.
pub fn config_show(config: &Config, secrets: &Secrets, path: &Path) -> String {
    let mut out = format!("# {}\n", path.display());
    if !path.exists() {
        out.push_str("# (the file does not exist yet: these are the defaults)\n");
    }
    out.push_str(&toml::to_string(config).unwrap_or_default());
    out.push_str("\n# Secrets (never stored in this file):\n");
    for key in SecretKey::reported(config) {
        let where_ = match secrets.source(key) {
            Ok(Some(source)) => format!("set ({source})"),
            Ok(None) => "not set".to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        let _ = writeln!(out, "#   {}: {where_}", key.name());
    }
    out
}

/// `orgsync status` output.
pub struct Status(pub InstallationStatus);

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Status {
    pub fn render(&self) -> String {
        let s = &self.0;
        let mut out = String::new();
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "never".into());
        let _ = writeln!(out, "Config file:      {}", s.config_file);
        let _ = writeln!(out, "Data directory:   {}", s.data_dir);
        if let Some(problem) = &s.config_problem {
            let _ = writeln!(
                out,
                "Config problems:  {}",
                problem.replace('\n', "\n                  ")
            );
        }
        if let Some(directory) = &s.directory {
            let _ = writeln!(out, "Directory:        {directory}");
        }
        if let Some(server) = &s.server {
            let _ = writeln!(out, "Server API:       {server}");
        }
        let _ = writeln!(
            out,
            "Logged in:        {}",
            match &s.organization_id {
                Some(org) => format!("yes, organization {org}"),
                None => "no (run `orgsync login`)".into(),
            }
        );
        let _ = writeln!(out, "Secrets:          {}", s.secrets);
        if !s.directory_type.is_empty() {
            let _ = writeln!(out, "Directory type:   {}", s.directory_type);
        }
        for secret in &s.directory_secrets {
            let state = match secret.set {
                true => "set".to_string(),
                false => format!("not set (`orgsync config set-secret {}`)", secret.key),
            };
            let _ = writeln!(out, "Secret:           {} {state}", secret.key);
        }
        let _ = writeln!(out, "Last user sync:   {}", or_none(&s.last_user_sync));
        let _ = writeln!(out, "Last group sync:  {}", or_none(&s.last_group_sync));
        let _ = writeln!(
            out,
            "Synced:           {} member(s), {} group(s)",
            s.synced_members, s.synced_groups
        );
        if let Some(refusal) = &s.last_refusal {
            let _ = writeln!(out, "Last refusal:     {refusal}");
        }
        out
    }
}

/// `orgsync daemon status`.
pub fn daemon_status(status: &DaemonStatus, url: &str, token_file: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "orgsyncd {} running (pid {})",
        status.version, status.pid
    );
    let _ = writeln!(out, "API:              {url}");
    let _ = writeln!(out, "Token file:       {}", token_file.display());
    let _ = writeln!(
        out,
        "Polling:          {}",
        if status.polling {
            format!("on, {}", status.schedule)
        } else {
            "off (orgsync daemon start-polling)".into()
        }
    );
    if let Some(next) = &status.next_run_at {
        let _ = writeln!(out, "Next run:         {next}");
    }
    if let Some(run) = &status.current_run {
        let _ = writeln!(
            out,
            "Running:          run {} ({:?}, {:?}) since {}, {} user(s) read",
            run.id, run.kind, run.trigger, run.started_at, run.users_read
        );
    }
    if let Some(last) = &status.last_run {
        let _ = writeln!(out, "Last run:         {}", run_line(last));
    }
    if status.consecutive_failures > 0 {
        let _ = writeln!(
            out,
            "Failures in a row: {} (polling backs off until a run succeeds)",
            status.consecutive_failures
        );
    }
    if let Some(rejected) = &status.config_rejected {
        let _ = writeln!(out, "Config NOT adopted: {rejected}");
    }
    out
}

/// `orgsync daemon history`.
pub fn history(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "No runs yet.\n".into();
    }
    runs.iter()
        .map(|run| format!("{}\n", run_line(run)))
        .collect()
}

fn run_line(run: &RunRecord) -> String {
    let mut line = format!(
        "#{} {} {:?} {:?} ({:?}, {} ms): {} user(s), {} group(s) read",
        run.id,
        run.started_at,
        run.kind,
        run.outcome,
        run.trigger,
        run.duration_ms,
        run.users_read,
        run.groups_read
    );
    let s = &run.summary;
    if s.invited + s.removed + s.groups_created + s.groups_updated > 0 {
        let _ = write!(
            line,
            "; {} invited, {} removed, {} group(s) created, {} updated",
            s.invited, s.removed, s.groups_created, s.groups_updated
        );
    }
    if let Some(error) = &run.error {
        let _ = write!(line, "; {}", error.replace('\n', " "));
    }
    line
}

/// What `import-bwdc` read and what it maps to; secrets by name and origin only.
pub fn import_report(import: &orgsync::bwdc::Import, refused: &[String]) -> String {
    let connector = &import.connector;
    let mapped = &import.mapped;
    let mut out = format!(
        "Directory Connector: {} (state version {}), directory {}\n",
        connector.path.display(),
        connector.state_version,
        mapped.kind.name()
    );
    if let Some(org) = &mapped.organization_id {
        let _ = writeln!(out, "Organization: {org}");
    }
    out.push_str("\nSettings:\n");
    for setting in &mapped.settings {
        let _ = writeln!(
            out,
            "  {} = {:?}    (from {})",
            setting.key, setting.value, setting.from
        );
    }
    out.push_str("\nSecrets:\n");
    for found in &mapped.secrets {
        let _ = writeln!(out, "  {}: found ({})", found.key.name(), found.origin);
    }
    for missing in &mapped.missing {
        let _ = writeln!(
            out,
            "  {}: not found: {}; set it with {}",
            missing.key, missing.reason, missing.how
        );
    }
    let notes: Vec<&String> = mapped.notes.iter().chain(refused).collect();
    if !notes.is_empty() {
        out.push_str("\nNot carried over, or different in orgsync:\n");
        for note in notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    out
}

/// What `rekey` found or did.
pub fn rekey_report(done: &orgsync::engine::Rekeyed) -> String {
    if done.members.is_empty() && done.groups.is_empty() {
        return "Nothing to re-key: every synced member and group has the id the directory gives it.\n".into();
    }
    let mut out = String::new();
    for (what, list) in [("member", &done.members), ("group", &done.groups)] {
        for rekey in list {
            let _ = writeln!(
                out,
                "  {what} {}: {} → {}",
                rekey.name, rekey.from, rekey.to
            );
        }
    }
    let (members, groups) = (done.members.len(), done.groups.len());
    match done.applied {
        true => format!(
            "Re-keyed {members} member(s) and {groups} group(s) on the server:\n{out}Nobody was invited or removed; the next sync sends everything once.\n"
        ),
        false => format!(
            "Would re-key {members} member(s) and {groups} group(s):\n{out}Nothing was changed (--dry-run).\n"
        ),
    }
}
