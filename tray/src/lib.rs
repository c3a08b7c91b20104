//! orgsync-tray: the tray icon of an orgsync installation.
//!
//! Everything that decides something lives in this library and is tested without a display:
//!
//! - [`model`]: the tray's state (from the daemon's status, history and events) and the menu it
//!   shows, including which click starts which [`model::Action`];
//! - [`icons`]: the icon of each state, drawn in code;
//! - [`actions`]: a menu action turned into calls of the daemon's API;
//! - [`notifications`]: which runs notify, with what text;
//! - [`report`]: the "Show Last Report" text;
//! - [`controller`]: the async loop that finds the daemon, follows its events (reconnecting when
//!   it restarts), runs actions and hands each new [`model::View`] to the GUI.
//!
//! The binary (`src/main.rs`, `src/shell.rs`) only renders views with tao / tray-icon and forwards
//! menu clicks; it talks to the daemon through nothing but [`orgsync_proto::client::Client`].

pub mod actions;
pub mod controller;
pub mod icons;
pub mod model;
pub mod notifications;
pub mod report;
pub mod time;
