//! Types shared by the orgsync CLI, daemon and tray.
//!
//! **API boundary.** Everything here is a compatibility promise: the JSON printed by
//! `orgsync test --json` / `orgsync sync --json`, and the daemon's control API, are exactly the
//! serde form of these types. Fields may be added; existing fields keep their name and meaning.
//! Field names are camelCase like the Bitwarden API that admins already script against.

pub mod api;
#[cfg(feature = "client")]
pub mod client;
pub mod paths;
pub mod report;

pub use report::*;

/// Version of the JSON shapes of the reports. Bumped only on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;
