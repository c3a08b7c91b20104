//! The test kit: servers that orgsync's end-to-end tests start on loopback, and helpers to run the
//! real binaries against them.
//!
//! - [`bwdc`]: Bitwarden Directory Connector's `data.json` and import request, to leave an
//!   organization as the connector left it.
//! - [`cli`]: runs the real `orgsync` binary in an isolated installation.
//! - [`daemon`]: starts and stops the real `orgsyncd` for such an installation (SIGTERM, SIGKILL)
//!   and finds its API (`daemon.json`, `api-token`).
//! - [`fixture`]: the small company (slapd, organization server, logged-in installation) that
//!   daemon and tray tests start from.
//! - [`tls`]: a throw-away CA and server certificates (openssl).
//! - [`orgserver`]: an emulated Bitwarden / Vaultwarden organization server (API-key login and
//!   organization import) with test controls.
//! - [`emulator`]: what the cloud directory emulators share (latency, faults, request log).
//! - [`google`]: an emulated Google OAuth token endpoint and Admin SDK Directory API (users,
//!   groups, members), with JWT assertions checked, faults and a request log.
//! - [`graph`]: an emulated Microsoft Entra ID token endpoint and Microsoft Graph (users,
//!   groups, members, delta queries), with faults, runtime changes and a request log.
//! - [`okta`]: an emulated Okta Management API (users, groups, members) and org token
//!   endpoint (API tokens, private-key service apps, DPoP), with Link paging, filters, rate
//!   limits, faults and a request log.
//! - [`onelogin`]: an emulated OneLogin API (v2 token, users, roles, v1 groups) with cursor
//!   headers, its three error shapes, the account's rate limit, faults and a request log.
//! - [`proxy`]: a forward HTTP proxy that records where requests went.
//! - [`ports`]: free loopback ports, waiting for servers, and the server child processes (stopped
//!   on drop, with a watchdog in case the test process dies).
//! - [`measure`]: GNU time measurements and medians for the benchmarks.
//! - [`ldif`]: LDIF builders and the ldap-utils command-line tools, run with a clean environment.
//! - [`slapd`]: a private OpenLDAP server per test (memberof, ppolicy, optional syncprov, TLS).
//! - [`standalone`]: what the test servers' binaries share (logging, runtime, signals).
//! - [`samba`]: a private Samba AD domain controller per test on its own 127.0.0.N.

pub mod bwdc;
pub mod cli;
pub mod daemon;
pub mod emulator;
pub mod fixture;
pub mod google;
pub mod graph;
pub mod ldif;
pub mod measure;
pub mod okta;
pub mod onelogin;
pub mod orgserver;
pub mod ports;
pub mod proxy;
pub mod samba;
pub mod slapd;
pub mod standalone;
pub mod tls;
