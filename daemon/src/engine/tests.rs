//! The engine's decisions against an in-process directory and a small organization server on
//! loopback: which read it makes, when it sends nothing, how it renews a revoked token, and
//! what a sync that fails half-way leaves behind.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use super::*;
use crate::config::{SafetyConfig, SecretsBackendKind, SecretsConfig, ServerUrls, SyncConfig};
use crate::directory::fake::{FakeDirectory, ReadKind};
use crate::directory::{DirectoryUser, Failure, NoProgress, Settings, UserRecord};
use crate::org::ImportRequest;

/// What the organization server does and saw.
#[derive(Default)]
struct Org {
    logins: usize,
    imports: Vec<ImportRequest>,
    /// Answer 401 to this many imports from now on.
    unauthorized: usize,
    /// Answer 400 to the import with this index (0-based, counting accepted ones).
    reject_at: Option<usize>,
}

type Shared = Arc<Mutex<Org>>;

fn lock(org: &Shared) -> std::sync::MutexGuard<'_, Org> {
    org.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn start_org() -> (Shared, SocketAddr) {
    let org = Shared::default();
    let token = {
        let org = org.clone();
        move || async move {
            let mut org = lock(&org);
            org.logins += 1;
            let body = format!(
                r#"{{"access_token":"token-{}","expires_in":3600,"token_type":"Bearer"}}"#,
                org.logins
            );
            (StatusCode::OK, [("content-type", "application/json")], body)
        }
    };
    let import = {
        let org = org.clone();
        move |headers: HeaderMap, body: axum::body::Bytes| async move {
            let mut org = lock(&org);
            assert!(headers.contains_key("authorization"));
            if org.unauthorized > 0 {
                org.unauthorized -= 1;
                return StatusCode::UNAUTHORIZED;
            }
            if org.reject_at == Some(org.imports.len()) {
                return StatusCode::BAD_REQUEST;
            }
            let request: ImportRequest = serde_json::from_slice(&body).expect("an import request");
            org.imports.push(request);
            StatusCode::OK
        }
    };
    let app = Router::new()
        .route("/identity/connect/token", post(token))
        .route("/api/public/organization/import", post(import));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (org, addr)
}

struct Setup {
    context: Context,
    fake: FakeDirectory,
    org: Shared,
    _dir: tempfile::TempDir,
}

async fn setup(tracks_changes: bool, sync: SyncConfig) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (org, addr) = start_org().await;
    let fake = FakeDirectory::new(tracks_changes);
    let config = ResolvedConfig {
        server: ResolvedServer {
            urls: ServerUrls {
                api: format!("http://{addr}/api"),
                identity: format!("http://{addr}/identity"),
            },
            http: crate::config::HttpConfig::default().settings(None, Duration::from_secs(30)),
        },
        directory: Settings::Fake(fake.clone()),
        http: crate::config::HttpConfig::default(),
        sync,
        safety: SafetyConfig::default(),
        secrets: SecretsConfig {
            backend: SecretsBackendKind::File,
        },
        warnings: Vec::new(),
    };
    let secrets = Secrets::open(SecretsBackendKind::File, dir.path()).unwrap();
    secrets
        .set(SecretKey::ORG_CLIENT_ID, &Secret::new("organization.org-1"))
        .unwrap();
    secrets
        .set(SecretKey::ORG_CLIENT_SECRET, &Secret::new("s3cret"))
        .unwrap();
    let state = Arc::new(State::open(dir.path()).unwrap());
    Setup {
        context: Context {
            config,
            state,
            secrets,
        },
        fake,
        org,
        _dir: dir,
    }
}

fn person(name: &str) -> UserRecord {
    UserRecord {
        user: DirectoryUser {
            reference: format!("fake:{name}"),
            external_id: format!("id-{name}"),
            email: Some(format!("{name}@example.org")),
            disabled: false,
            deleted: false,
        },
        aliases: vec![format!("id-{name}")],
    }
}

impl Setup {
    async fn sync(&self) -> Result<SyncReport, RunError> {
        self.context.sync(SyncOptions::default(), &NoProgress).await
    }

    fn imports(&self) -> usize {
        lock(&self.org).imports.len()
    }

    fn logins(&self) -> usize {
        lock(&self.org).logins
    }
}

#[tokio::test]
async fn a_tracking_source_is_read_in_full_once_then_by_changes_and_unchanged_sends_nothing() {
    let s = setup(true, SyncConfig::default()).await;
    s.fake.set_user("a", person("ann"));
    s.fake.set_user("b", person("bob"));

    let first = s.sync().await.unwrap();
    assert_eq!(first.outcome, SyncOutcome::Synced);
    assert_eq!(first.read.mode, ReadMode::Full);
    assert_eq!(s.fake.take_reads(), [ReadKind::Full]);
    assert_eq!(s.imports(), 1);

    let second = s.sync().await.unwrap();
    assert_eq!(second.outcome, SyncOutcome::Unchanged);
    assert_eq!(second.read.mode, ReadMode::Incremental);
    assert_eq!(second.requests_sent, 0);
    assert_eq!(s.fake.take_reads(), [ReadKind::Changes]);
    assert_eq!(s.imports(), 1, "an unchanged directory sends nothing");

    s.fake.remove_user("b");
    s.fake.set_user("c", person("cy"));
    let third = s.sync().await.unwrap();
    assert_eq!(third.outcome, SyncOutcome::Synced);
    assert_eq!(third.read.mode, ReadMode::Incremental);
    assert_eq!(s.fake.take_reads(), [ReadKind::Changes]);
    let invited: Vec<&str> = third.diff.invite.iter().map(|m| m.email.as_str()).collect();
    let removed: Vec<&str> = third.diff.remove.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(
        (invited, removed),
        (vec!["cy@example.org"], vec!["bob@example.org"])
    );
    // An incremental sync sends only what changed.
    let last = lock(&s.org).imports.last().cloned().unwrap();
    let mut sent: Vec<(String, bool)> = last
        .members
        .iter()
        .map(|m| (m.email.clone(), m.deleted))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            ("bob@example.org".to_string(), true),
            ("cy@example.org".to_string(), false)
        ]
    );
}

#[tokio::test]
async fn an_expired_watermark_falls_back_to_a_full_read_that_says_why() {
    let s = setup(true, SyncConfig::default()).await;
    s.fake.set_user("a", person("ann"));
    s.sync().await.unwrap();
    s.fake.take_reads();

    s.fake.forget_watermarks();
    let report = s.sync().await.unwrap();
    assert_eq!(s.fake.take_reads(), [ReadKind::Changes, ReadKind::Full]);
    assert_eq!(report.read.mode, ReadMode::Full);
    let reason = report.read.reason.unwrap_or_default();
    assert!(reason.contains("can no longer send changes"), "{reason}");
    assert_eq!(
        report.outcome,
        SyncOutcome::Unchanged,
        "same directory, same request"
    );
}

#[tokio::test]
async fn a_source_without_change_tracking_reads_in_full_and_skips_an_equal_request() {
    let s = setup(false, SyncConfig::default()).await;
    s.fake.set_user("a", person("ann"));
    assert_eq!(s.sync().await.unwrap().outcome, SyncOutcome::Synced);
    let again = s.sync().await.unwrap();
    assert_eq!(again.outcome, SyncOutcome::Unchanged);
    assert_eq!(s.fake.take_reads(), [ReadKind::Full, ReadKind::Full]);
    assert_eq!(s.imports(), 1);

    // With the reconciliation due on every sync, the same request goes again.
    let mut s = s;
    s.context.config.sync.full_read_hours = 0;
    let reconciled = s.sync().await.unwrap();
    assert_eq!(reconciled.outcome, SyncOutcome::Synced);
    assert!(
        reconciled
            .sent_because
            .is_some_and(|r| r.contains("reconciliation"))
    );
    assert_eq!(s.imports(), 2);
}

#[tokio::test]
async fn a_revoked_token_is_renewed_once_and_a_second_refusal_is_an_error() {
    let s = setup(false, SyncConfig::default()).await;
    s.fake.set_user("a", person("ann"));
    lock(&s.org).unauthorized = 1;
    assert_eq!(s.sync().await.unwrap().outcome, SyncOutcome::Synced);
    assert_eq!(
        s.logins(),
        2,
        "the first token was refused, the second accepted"
    );

    s.fake.set_user("b", person("bob"));
    lock(&s.org).unauthorized = 2;
    let error = s.sync().await.unwrap_err();
    assert!(
        matches!(error, RunError::Org(OrgError::Unauthorized { .. })),
        "{error}"
    );
    assert_eq!(s.logins(), 3, "one renewal per sync, not a loop");
    assert_eq!(s.imports(), 1);
    assert_eq!(
        s.context.state.synced().unwrap().members.len(),
        1,
        "the failed sync recorded nothing"
    );
}

#[tokio::test]
async fn a_batch_failing_half_way_records_nothing_and_the_next_sync_sends_everything() {
    let sync = SyncConfig {
        large_import: true,
        groups: false,
        ..SyncConfig::default()
    };
    let s = setup(true, sync).await;
    for i in 0..2500 {
        s.fake
            .set_user(&format!("u{i}"), person(&format!("user{i:04}")));
    }
    lock(&s.org).reject_at = Some(1);
    let error = s.sync().await.unwrap_err();
    assert!(matches!(error, RunError::Org(_)), "{error}");
    assert_eq!(
        s.imports(),
        1,
        "the first batch was accepted, the second refused"
    );
    assert!(s.context.state.synced().unwrap().members.is_empty());
    assert_eq!(s.context.state.last_hash().unwrap(), None);

    lock(&s.org).reject_at = None;
    let report = s.sync().await.unwrap();
    assert_eq!(report.outcome, SyncOutcome::Synced);
    assert_eq!(report.requests_sent, 2);
    let sent: usize = lock(&s.org).imports[1..]
        .iter()
        .map(|r| r.members.len())
        .sum();
    assert_eq!(
        sent, 2500,
        "everything is sent again, not only what changed"
    );
    assert_eq!(s.context.state.synced().unwrap().members.len(), 2500);
}

#[tokio::test]
async fn a_failed_read_sends_nothing_and_keeps_the_state() {
    let s = setup(true, SyncConfig::default()).await;
    s.fake.set_user("a", person("ann"));
    s.sync().await.unwrap();
    s.fake.remove_user("a");
    s.fake.fail_next_read(Failure::Throttled);
    let error = s.sync().await.unwrap_err();
    let RunError::Directory(error) = error else {
        panic!("not a directory error: {error}");
    };
    assert_eq!(error.failure(), Failure::Throttled);
    assert_eq!(s.imports(), 1);
    assert_eq!(s.context.state.synced().unwrap().members.len(), 1);
}
