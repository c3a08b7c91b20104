//! The command line, as clap parses it. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Keep a Bitwarden organization's members and groups in step with LDAP / Active Directory.
///
/// Exit codes: 0 success; 1 the run failed or was refused; 2 bad usage or configuration;
/// 3 `daemon status` found no running daemon.
///
/// While orgsyncd runs for the same installation, commands that use the sync state go through
/// its API; the output is the same.
#[derive(Debug, Parser)]
#[command(name = "orgsync", version, propagate_version = true, after_help = ENVIRONMENT)]
pub struct Args {
    /// Config file [default: ~/.config/orgsync/config.toml]
    #[arg(long, global = true, env = "ORGSYNC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory: sync state, secrets file, daemon files [default: ~/.local/share/orgsync].
    /// Each config file needs its own; orgsync refuses to share one between two
    #[arg(long, global = true, env = "ORGSYNC_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// Every environment variable orgsync reads, for `--help`.
const ENVIRONMENT: &str = "\
Environment:
  ORGSYNC_CONFIG              config file (as --config)
  ORGSYNC_DATA_DIR            data directory (as --data-dir)
  ORGSYNC_LOG                 log filter on stderr, e.g. debug or orgsync=debug (as -v)
  ORGSYNC_LDAP_BIND_PASSWORD  the bind password, over the keyring and secrets file
  ORGSYNC_ENTRA_CLIENT_SECRET, ORGSYNC_GOOGLE_KEY, ORGSYNC_OKTA_TOKEN, ORGSYNC_OKTA_PRIVATE_KEY,
  ORGSYNC_ONELOGIN_CLIENT_SECRET
                              the other directories' secrets, likewise
  ORGSYNC_CLIENT_ID           the organization API key's client id, over the stored one
  ORGSYNC_CLIENT_SECRET       the organization API key's secret, over the stored one
  DBUS_SESSION_BUS_ADDRESS    the session bus of the Secret Service keyring (secrets.backend)
  HOME                        where the default config file and data directory live
  BITWARDENCLI_CONNECTOR_APPDATA_DIR, BITWARDEN_CONNECTOR_APPDATA_DIR, XDG_CONFIG_HOME
                              where import-bwdc looks for Directory Connector's data.json
  RUST_BACKTRACE              1: a backtrace with an internal error's message

Run `orgsync config keys` for every setting, its default and what it does.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in with the organization's API key (Admin Console → Settings → Organization info)
    Login {
        /// organization.<uuid> [env: ORGSYNC_CLIENT_ID; prompted if missing]
        client_id: Option<String>,
        /// The API key's secret [env: ORGSYNC_CLIENT_SECRET; prompted (hidden) if missing]
        client_secret: Option<String>,
    },
    /// Forget the API key and access token
    Logout,
    /// Dry run: read the directory and show what a sync would change; changes nothing
    Test {
        /// Print the report as JSON (stable shape, see README)
        #[arg(long)]
        json: bool,
        /// List every user and group, not only the changes
        #[arg(long)]
        list: bool,
    },
    /// Read the directory and apply the changes to the organization
    Sync {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Apply removals even if they exceed the [safety] limits (this run only)
        #[arg(long)]
        allow_removals: bool,
    },
    /// Print when users or groups were last synced (RFC 3339; nothing if never)
    LastSync {
        #[arg(value_enum)]
        what: LastSyncObject,
    },
    /// Forget the last request hash and sync times so the next sync sends everything
    ClearCache,
    /// Show or change the configuration
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Show the installation: paths, login, secrets, last sync
    Status {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Talk to the running daemon (orgsyncd)
    Daemon {
        #[command(subcommand)]
        command: DaemonCommand,
    },
    /// Give the organization's members and groups the external ids the directory now has (after
    /// changing ldap.external_id_attribute, e.g. from dn to entryUUID), keeping everyone where
    /// they are: nobody is invited again or removed
    Rekey {
        /// Show what would be re-keyed; change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Take over a Bitwarden Directory Connector installation: its settings, its secrets (from
    /// the desktop keyring or its plaintext mode) and its organization API key
    #[command(name = "import-bwdc")]
    ImportBwdc {
        /// The connector's data.json, or the folder holding it [default: where the connector
        /// keeps it; env BITWARDENCLI_CONNECTOR_APPDATA_DIR, BITWARDEN_CONNECTOR_APPDATA_DIR]
        path: Option<std::path::PathBuf>,
        /// Print the resulting config and what was not carried over; write nothing
        #[arg(long)]
        dry_run: bool,
        /// Replace an existing orgsync config file
        #[arg(long)]
        force: bool,
    },
}

impl Command {
    /// Whether the command reads or writes the sync state (or config the daemon must see), and
    /// so must go through a running daemon.
    /// Whether the command only looks: it checks that the data directory belongs to this
    /// config file, but creates nothing.
    pub fn only_looks(&self) -> bool {
        match self {
            Command::Status { .. } | Command::LastSync { .. } => true,
            Command::ImportBwdc { dry_run, .. } => *dry_run,
            Command::Config { command } => {
                matches!(command, ConfigCommand::Path | ConfigCommand::Show)
            }
            Command::Daemon { command } => matches!(
                command,
                DaemonCommand::Status { .. } | DaemonCommand::History { .. }
            ),
            _ => false,
        }
    }

    pub fn uses_state(&self) -> bool {
        match self {
            Command::Config { command } => {
                matches!(
                    command,
                    ConfigCommand::Set { .. } | ConfigCommand::Unset { .. }
                )
            }
            _ => true,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Is it running, its address and token file, polling, next and last run (exit 3 if not running)
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Resume polling on the schedule (persists across restarts)
    StartPolling,
    /// Stop polling; the daemon keeps running and answering (persists across restarts)
    StopPolling,
    /// The last runs, newest first
    History {
        /// How many runs
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LastSyncObject {
    Users,
    Groups,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults included; secrets only as set / not set)
    Show,
    /// Print the config file's path
    Path,
    /// List every key `config set` takes, with its default and what it does
    Keys,
    /// Set KEY (dotted, e.g. ldap.host or sync.interval_minutes) to VALUE; `orgsync config keys`
    /// lists them
    Set { key: String, value: String },
    /// Remove KEY from the file so its default applies
    Unset { key: String },
    /// Store a secret (the directory's, e.g. ldap.bind_password, or org.client_secret) in the
    /// keyring or secrets file
    SetSecret {
        /// The secret's name; `orgsync config keys` lists them
        key: String,
        /// Read the value from standard input (its first line; all of it for a key file)
        #[arg(long, conflicts_with_all = ["env", "file"])]
        stdin: bool,
        /// Read the value from this environment variable
        #[arg(long, value_name = "VAR", conflicts_with = "file")]
        env: Option<String>,
        /// Read the value from the first line of this file (all of it for a key file such as
        /// google.key)
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}
