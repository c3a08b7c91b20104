//! Types shared by the orgsync CLI, daemon and tray.
//!
//! **API boundary.** Everything here is a compatibility promise: the JSON printed by
//! `orgsync test --json` / `orgsync sync --json`, and later the daemon's control API, is exactly
//! the serde form of these types. Fields may be added; existing fields keep their name and meaning.
//! Field names are camelCase like the Bitwarden API that admins already script against.

pub mod report;

pub use report::*;

/// Version of the JSON shapes in this crate. Bumped only on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;
