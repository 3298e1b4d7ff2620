//! The command line, and how it becomes [`Settings`]: every default and every check on what a
//! person typed lives here, so `--help`, the menu and the tests agree.

use clap::{Args, Parser, Subcommand};
use shared::protocol::message::MAX_NAME_CHARS;
use shared::protocol::relay::valid_room_name;
use shared::NetworkParams;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// The relay `cargo xtask run` starts, in its default room.
pub const DEFAULT_RELAY: &str = "ws://127.0.0.1:3030/ws/lobby";
/// How long a subcommand waits for the network (sync, a peer's hello) before giving up.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Blocks `chain` lists unless told otherwise, counting back from the tip.
pub const DEFAULT_CHAIN_LIMIT: usize = 20;

#[derive(Parser, Debug)]
#[command(
    name = "node",
    version,
    about = "tabchain native node: joins a relay room, syncs, mines and sends coins",
    long_about = "tabchain native node. Without a subcommand it opens an interactive menu; \
                  the subcommands connect, sync, do one thing and exit (0 on success, \
                  2 usage, 3 relay unreachable or lost, 4 timed out, 5 peers on another network, \
                  6 storage failure, 7 transaction refused)."
)]
pub struct Cli {
    #[command(flatten)]
    pub options: GlobalOptions,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOptions {
    /// Our name in the room (peers see it in our hello); also names the default data directory.
    #[arg(long, default_value = "node", global = true)]
    pub name: String,
    /// The relay room to join: ws://host:port/ws/ROOM, or wss://host/ws/ROOM for a public relay.
    #[arg(long, env = "TABCHAIN_RELAY", default_value = DEFAULT_RELAY, global = true)]
    pub relay: String,
    /// Join this room on the relay instead of the one in --relay.
    #[arg(long, global = true)]
    pub room: Option<String>,
    /// main (a block every ~10 s), classroom (~2 s) or test (a few hashes a block).
    #[arg(long, default_value = "main", global = true)]
    pub network: String,
    /// Where the key and the blocks are kept [default: ~/.tabchain/NAME, or ./tabchain-data/NAME
    /// without a home directory].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Miner threads [default: one per core].
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Do not connect: work on the stored chain only (mine alone, read the chain).
    #[arg(long, global = true)]
    pub offline: bool,
    /// Seconds to wait for the network (connect, sync, a peer's hello).
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_SECS, global = true)]
    pub timeout: u64,
    /// More log lines on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Show our chain, connection, peers and balance.
    Status(JsonFlag),
    /// List the blocks of the best chain, newest first.
    Chain {
        /// Blocks to list, counting back from the tip.
        #[arg(long, default_value_t = DEFAULT_CHAIN_LIMIT)]
        limit: usize,
        /// List every block (overrides --limit).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show every account's balance.
    Balances(JsonFlag),
    /// Show the peers in the room.
    Peers(JsonFlag),
    /// Send coins to an address (40 hex digits), a pinned name, or a peer's hello name (refused
    /// when two peers say the same name).
    Send {
        /// An address, a name pinned with `pin`, or a peer's name.
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount: u64,
        #[arg(long, default_value_t = 0)]
        fee: u64,
        #[arg(long)]
        json: bool,
    },
    /// Pin a name to an address in the address book (no network needed); `send --to NAME` then
    /// pays that address, whoever else says hello with the name.
    Pin {
        name: String,
        /// 40 hex digits.
        address: String,
    },
    /// Remove a pinned name.
    Unpin { name: String },
    /// List the pinned names.
    Pins(JsonFlag),
    /// Mine blocks: a number of them, or until interrupted.
    Mine {
        /// Stop after mining this many blocks that became our tip.
        #[arg(long, conflicts_with = "forever", required_unless_present = "forever")]
        blocks: Option<u64>,
        /// Mine until interrupted (Ctrl-C).
        #[arg(long)]
        forever: bool,
        /// One JSON object per line for each mined block and for the summary.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Clone, Copy)]
pub struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("unknown network `{0}`: use main, classroom or test")]
    UnknownNetwork(String),
    #[error("`{0}` is not a usable name: use 1 to {MAX_NAME_CHARS} letters, digits, `-`, `_` or `.`, not starting with `.`")]
    BadName(String),
    #[error("`{0}` is not a room name: use 1 to 64 letters, digits, `-`, `_` or `.`")]
    BadRoom(String),
    #[error("`{0}` is not a relay URL: use ws://host:port/ws/ROOM or wss://host/ws/ROOM")]
    BadRelay(String),
    #[error("--threads must be at least 1")]
    NoThreads,
    #[error(
        "neither --data-dir nor a home directory is set, and the current directory is unknown"
    )]
    NoDataDir,
}

/// What the options mean, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    pub name: String,
    pub params: NetworkParams,
    pub relay_url: String,
    pub data_dir: PathBuf,
    pub threads: usize,
    pub offline: bool,
    pub timeout: Duration,
}

impl Settings {
    pub fn from_options(options: &GlobalOptions) -> Result<Settings, SettingsError> {
        let params = NetworkParams::by_name(&options.network)
            .ok_or_else(|| SettingsError::UnknownNetwork(options.network.clone()))?;
        let name = options.name.trim().to_owned();
        if !valid_node_name(&name) {
            return Err(SettingsError::BadName(options.name.clone()));
        }
        let relay_url = relay_url(&options.relay, options.room.as_deref())?;
        let data_dir = match &options.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir(&name, std::env::var_os("HOME").map(PathBuf::from))?,
        };
        let threads = match options.threads {
            Some(0) => return Err(SettingsError::NoThreads),
            Some(threads) => threads,
            None => std::thread::available_parallelism().map_or(1, |cores| cores.get()),
        };
        Ok(Settings {
            name,
            params,
            relay_url,
            data_dir,
            threads,
            offline: options.offline,
            timeout: Duration::from_secs(options.timeout),
        })
    }
}

/// Names become directory names and appear in other people's views: keep them plain.
pub fn valid_node_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.chars().count())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `~/.tabchain/NAME`, or `./tabchain-data/NAME` when there is no home directory.
pub fn default_data_dir(name: &str, home: Option<PathBuf>) -> Result<PathBuf, SettingsError> {
    match home.filter(|home| !home.as_os_str().is_empty()) {
        Some(home) => Ok(home.join(".tabchain").join(name)),
        None => {
            let here = std::env::current_dir().map_err(|_| SettingsError::NoDataDir)?;
            Ok(here.join("tabchain-data").join(name))
        }
    }
}

/// The relay URL to use: `relay`, with its path replaced by `/ws/ROOM` when a room is given.
pub fn relay_url(relay: &str, room: Option<&str>) -> Result<String, SettingsError> {
    let relay = relay.trim();
    let bad = || SettingsError::BadRelay(relay.to_owned());
    let scheme_end = relay.find("://").ok_or_else(bad)? + 3;
    let scheme = &relay[..scheme_end];
    if scheme != "ws://" && scheme != "wss://" {
        return Err(bad());
    }
    let host_end = relay[scheme_end..]
        .find('/')
        .map_or(relay.len(), |at| scheme_end + at);
    if host_end == scheme_end {
        return Err(bad());
    }
    match room {
        None => Ok(relay.to_owned()),
        Some(room) => {
            if !valid_room_name(room) {
                return Err(SettingsError::BadRoom(room.to_owned()));
            }
            Ok(format!("{}/ws/{room}", &relay[..host_end]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> GlobalOptions {
        let mut argv = vec!["node"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("valid arguments").options
    }

    #[test]
    fn rooms_replace_the_path_of_the_relay_url() {
        let cases = [
            (
                "ws://127.0.0.1:3030/ws/lobby",
                None,
                "ws://127.0.0.1:3030/ws/lobby",
            ),
            (
                "ws://127.0.0.1:3030/ws/lobby",
                Some("class-7"),
                "ws://127.0.0.1:3030/ws/class-7",
            ),
            ("wss://relay.example", Some("a"), "wss://relay.example/ws/a"),
            ("wss://relay.example/ws", None, "wss://relay.example/ws"),
        ];
        for (relay, room, expected) in cases {
            assert_eq!(relay_url(relay, room).unwrap(), expected);
        }
        assert!(matches!(
            relay_url("http://h/ws", None),
            Err(SettingsError::BadRelay(_))
        ));
        assert!(matches!(
            relay_url("ws:///ws", None),
            Err(SettingsError::BadRelay(_))
        ));
        assert!(matches!(
            relay_url("ws://h", Some("no spaces")),
            Err(SettingsError::BadRoom(_))
        ));
    }

    #[test]
    fn options_are_checked_one_by_one() {
        let cases: Vec<(&[&str], SettingsError)> = vec![
            (
                &["--network", "moon"],
                SettingsError::UnknownNetwork("moon".into()),
            ),
            (
                &["--name", "../etc"],
                SettingsError::BadName("../etc".into()),
            ),
            (
                &["--name", ".hidden"],
                SettingsError::BadName(".hidden".into()),
            ),
            (&["--threads", "0"], SettingsError::NoThreads),
            (&["--room", "a/b"], SettingsError::BadRoom("a/b".into())),
        ];
        for (args, expected) in cases {
            assert_eq!(
                Settings::from_options(&options(args)).unwrap_err(),
                expected,
                "{args:?}"
            );
        }
        let settings = Settings::from_options(&options(&[
            "--name",
            "alice",
            "--network",
            "test",
            "--data-dir",
            "/tmp/x",
            "--threads",
            "3",
        ]))
        .unwrap();
        assert_eq!(settings.params.name, "tabchain-test");
        assert_eq!(settings.relay_url, DEFAULT_RELAY);
        assert_eq!(settings.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(settings.threads, 3);
    }

    #[test]
    fn the_data_directory_defaults_to_home_then_the_current_directory() {
        assert_eq!(
            default_data_dir("alice", Some(PathBuf::from("/home/a"))).unwrap(),
            PathBuf::from("/home/a/.tabchain/alice")
        );
        let fallback = default_data_dir("alice", None).unwrap();
        assert!(
            fallback.ends_with("tabchain-data/alice"),
            "{}",
            fallback.display()
        );
    }

    #[test]
    fn mine_needs_exactly_one_of_blocks_and_forever() {
        assert!(Cli::try_parse_from(["node", "mine"]).is_err());
        assert!(Cli::try_parse_from(["node", "mine", "--blocks", "2", "--forever"]).is_err());
        assert!(Cli::try_parse_from(["node", "mine", "--forever"]).is_ok());
        assert!(
            Cli::try_parse_from(["node", "--network", "test", "mine", "--blocks", "2"]).is_ok()
        );
        assert!(
            Cli::try_parse_from(["node", "mine", "--blocks", "2", "--network", "test"]).is_ok()
        );
    }
}
