//! orgsync: keeps a Bitwarden (or Vaultwarden) organization's members and groups in step with a
//! directory (LDAP / Active Directory, Microsoft Entra ID).
//!
//! Modules in the order a sync flows through them (see ARCHITECTURE.md):

pub mod api;
pub mod bwdc;
pub mod config;
pub mod crash;
pub mod directory;
pub mod engine;
pub mod http;
pub mod org;
/// Where an installation lives (shared with the tray, so it is in `proto`).
pub use orgsync_proto::paths;
pub mod plan;
pub mod schedule;
pub mod secrets;
pub mod service;
pub mod state;
pub mod status;
