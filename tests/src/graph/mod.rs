//! An emulator of Microsoft Entra ID's token endpoint and the Microsoft Graph v1.0 calls a
//! directory sync client makes, written from Microsoft's documentation (the facts, with
//! sources, are in `shared/reference/cloud-directories.md` §1):
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials with a client secret (form or
//!   Basic auth) or a certificate assertion (RS256/PS256, `x5t#S256`, `aud` = the token URL),
//!   answering Entra's error bodies (`AADSTSnnnn` descriptions and `error_codes`) for an
//!   unknown tenant (90002), unknown app (700016), wrong secret (7000215), bad assertion
//!   (700027), wrong scope (70011), missing grant type (900144);
//! - `GET /v1.0/users`, `/groups`, `/groups/{id}/members`, `/groups/{id}/transitiveMembers`,
//!   `/directory/administrativeUnits/{id}/members`,
//!   `/directory/deletedItems/microsoft.graph.user`: small pages (default 3), an empty first
//!   page that still carries a next link, absolute next links with opaque `$skiptoken`s,
//!   `$select` (unselected properties absent; without it Graph's default set, which lacks
//!   `accountEnabled` and `userType`), `$top` 1–999;
//! - `GET /v1.0/users/delta`, `/groups/delta`: a full round, `$deltatoken=latest`, changes since
//!   a token (`@removed` with reason `changed` for soft-deleted objects, `members@delta` sliced
//!   over consecutive items), and expiry on demand (410 `syncStateNotFound` with a `Location`,
//!   or 400 `resyncRequired`);
//! - Graph's error bodies (`InvalidAuthenticationToken` for an expired token,
//!   `Authorization_RequestDenied` without admin consent, `Request_ResourceNotFound`, …).
//!
//! Tests change the tenant at run time and inject faults (a status with `Retry-After` after
//! `skip` matching requests, or an answer cut off mid-body), in process or over `/_test/`
//! (for the `orgsync-test-graph` binary), and read the request log.
//!
//! **Invariant:** the server only ever listens on 127.0.0.1.

mod api;
mod control;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::emulator::{Fault, Recorded as GraphRequest};
use crate::emulator::{Served, Traffic};
use state::{Inner, Shared, Tenant};
pub use state::{Kind, User};

/// How to start a [`GraphServer`].
#[derive(Clone, Debug)]
pub struct GraphOptions {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The most items on a page, whatever `$top` asks.
    pub page_size: usize,
    /// Serve an empty first page (with a next link) for every collection listing.
    pub empty_first_page: bool,
    pub tenant_id: String,
    pub tenant_domain: String,
    pub client_id: String,
    pub client_secret: String,
    /// A certificate (PEM) registered for the app: assertions signed by its key are accepted.
    pub certificate: Option<PathBuf>,
    pub token_lifetime: Duration,
    /// A pause before each answer.
    pub latency: Duration,
    /// 410 (Gone, `syncStateNotFound`) or 400 (`resyncRequired`) for an expired delta link.
    pub expired_delta_status: u16,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            port: 0,
            page_size: 3,
            empty_first_page: true,
            tenant_id: "0b5c4b8e-5d1e-4c2a-9f7a-6a3d2e1f0c9b".into(),
            tenant_domain: "contoso.onmicrosoft.com".into(),
            client_id: "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b".into(),
            client_secret: "Qx8~emulated.client.secret-value".into(),
            certificate: None,
            token_lifetime: Duration::from_secs(3600),
            latency: Duration::ZERO,
            expired_delta_status: 410,
        }
    }
}

/// The registered certificate.
pub(crate) struct Certificate {
    pub pem: Vec<u8>,
    /// base64url SHA-256 of its DER.
    pub thumbprint: String,
}

/// What the handlers share.
pub(crate) struct Server {
    pub options: GraphOptions,
    pub base_url: String,
    pub certificate: Option<Certificate>,
    pub shared: Shared,
    pub traffic: Arc<Traffic>,
}

/// A running emulator; dropping it stops it.
pub struct GraphServer {
    server: Arc<Server>,
    /// The server task (none for the controls' handle on the same state).
    _served: Option<Served>,
}

impl GraphServer {
    /// Starts the emulator on 127.0.0.1.
    ///
    /// # Panics
    /// When the port cannot be bound or the certificate cannot be read.
    pub async fn start(options: GraphOptions) -> GraphServer {
        let (listener, addr) = crate::emulator::bind(options.port).await;
        let certificate = options.certificate.as_ref().map(|path| {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let pem = std::fs::read(path).expect("read the app's certificate");
            let der = CertificateDer::from_pem_slice(&pem).expect("a PEM certificate");
            let digest = sha2::Sha256::digest(der.as_ref());
            Certificate {
                pem,
                thumbprint: base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    digest,
                ),
            }
        });
        let server = Arc::new(Server {
            base_url: format!("http://{addr}"),
            certificate,
            shared: Shared::new(Inner {
                tenant: Tenant::default(),
                tokens: Default::default(),
                consented: true,
                client_secret: options.client_secret.clone(),
            }),
            traffic: {
                let traffic = Arc::new(Traffic::default());
                traffic.set_latency(options.latency);
                traffic
            },
            options,
        });
        let app = control::router(server.clone());
        GraphServer {
            server,
            _served: Some(Served::start(listener, app, "Graph")),
        }
    }

    /// `http://127.0.0.1:PORT`: both the sign-in host (`entra.login_url`) and the Graph root
    /// (`entra.graph_url`).
    pub fn base_url(&self) -> String {
        self.server.base_url.clone()
    }

    pub fn options(&self) -> &GraphOptions {
        &self.server.options
    }

    fn tenant<T>(&self, change: impl FnOnce(&mut Tenant) -> T) -> T {
        change(&mut self.server.shared.lock().tenant)
    }

    /// Adds or changes a user.
    pub fn upsert_user(&self, user: User) {
        self.tenant(|t| t.upsert_user(user));
    }

    /// Soft-deletes a user (to deleted items; it leaves its groups).
    pub fn delete_user(&self, id: &str) -> bool {
        self.tenant(|t| t.delete_user(id))
    }

    /// Deletes a user for good.
    pub fn purge_user(&self, id: &str) -> bool {
        self.tenant(|t| t.purge_user(id))
    }

    /// Adds or renames a group.
    pub fn upsert_group(&self, id: &str, name: &str) {
        self.tenant(|t| t.upsert_group(id, name));
    }

    pub fn delete_group(&self, id: &str) -> bool {
        self.tenant(|t| t.delete_group(id))
    }

    /// Makes `member` (of `kind`) a direct member of `group`.
    pub fn add_member(&self, group: &str, member: &str, kind: Kind) -> bool {
        self.tenant(|t| t.add_member(group, member, kind))
    }

    pub fn remove_member(&self, group: &str, member: &str) -> bool {
        self.tenant(|t| t.remove_member(group, member))
    }

    /// Makes `group` a member of the administrative unit `unit`.
    pub fn add_to_unit(&self, unit: &str, group: &str) {
        self.tenant(|t| {
            t.units
                .entry(unit.to_string())
                .or_default()
                .push((group.to_string(), Kind::Group));
        });
    }

    /// Makes every delta link handed out so far expire.
    pub fn expire_delta_links(&self) {
        self.tenant(|t| t.generation += 1);
    }

    /// Invalidates every access token issued so far (the next call answers 401).
    pub fn expire_tokens(&self) {
        self.server.shared.lock().tokens.clear();
    }

    /// Whether the app has admin consent (without it, data calls answer 403).
    pub fn set_consent(&self, consented: bool) {
        self.server.shared.lock().consented = consented;
    }

    /// Changes the pause before each answer.
    pub fn set_latency(&self, latency: Duration) {
        self.server.traffic.set_latency(latency);
    }

    /// Changes the client secret the app accepts.
    pub fn set_client_secret(&self, secret: &str) {
        self.server.shared.lock().client_secret = secret.to_string();
    }

    /// Injects a fault (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.server.traffic.inject(fault);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<GraphRequest> {
        self.server.traffic.requests()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.server.traffic.clear_requests();
    }
}

/// A GUID-shaped id made from a readable name, so tests can name objects and Graph's id checks
/// hold: the same name always gives the same id.
pub fn id(name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

use sha2::Digest as _;
