//! Where this tab connects and which network it runs, read from the page URL.
//!
//! `?room=class-3` picks the room (default `lobby`), `?relay=ws://host:port` overrides the relay
//! (default: the page's own origin), `?net=classroom` or `?net=test` picks the network
//! parameters (default: the main network), `?max_links=N` lowers the number of direct WebRTC
//! links this tab keeps (default [`MAX_DIRECT_LINKS`]; 0 leaves every message to the relay),
//! `?local=off` keeps this tab off the channel that links the tabs of one browser (it then
//! meets them only through the relay and WebRTC, as if each were another machine).
//! Parsing is pure so it is tested natively.

use shared::node::MAX_DIRECT_LINKS;
use shared::protocol::relay::{valid_room_name, DEFAULT_ROOM};
use shared::NetworkParams;

/// Everything the URL decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub room: String,
    /// The full WebSocket URL of the room, e.g. `ws://127.0.0.1:3030/ws/lobby`.
    pub relay_url: String,
    pub network: NetworkParams,
    /// The most direct links the node keeps (`NodeConfig::max_direct_links`).
    pub max_direct_links: usize,
    /// Whether this tab links to the other tabs of this browser over a `BroadcastChannel`.
    pub same_browser: bool,
    /// Problems with the URL that fell back to a default; shown in the event log.
    pub warnings: Vec<String>,
}

impl Config {
    /// `protocol` is `location.protocol` (`http:` or `https:`), `host` is `location.host`
    /// and `search` is `location.search` (with or without the leading `?`).
    pub fn from_location(protocol: &str, host: &str, search: &str) -> Config {
        let mut warnings = Vec::new();
        let room = match query_param(search, "room") {
            Some(room) if valid_room_name(&room) => room,
            Some(room) => {
                warnings.push(format!(
                    "room name {room:?} is not valid (1-64 of a-z A-Z 0-9 - _ .); using {DEFAULT_ROOM}"
                ));
                DEFAULT_ROOM.to_string()
            }
            None => DEFAULT_ROOM.to_string(),
        };
        let network = match query_param(search, "net") {
            Some(name) => NetworkParams::by_name(&name).unwrap_or_else(|| {
                warnings.push(format!("unknown network {name:?}; using main"));
                NetworkParams::default_network()
            }),
            None => NetworkParams::default_network(),
        };
        let base = match query_param(search, "relay") {
            Some(relay) if relay.starts_with("ws://") || relay.starts_with("wss://") => relay,
            Some(relay) => {
                warnings.push(format!(
                    "relay {relay:?} must start with ws:// or wss://; using this page's origin"
                ));
                origin_ws(protocol, host)
            }
            None => origin_ws(protocol, host),
        };
        let max_direct_links = match query_param(search, "max_links") {
            Some(text) => match text.parse::<usize>() {
                Ok(count) if count <= MAX_DIRECT_LINKS => count,
                Ok(_) => {
                    warnings.push(format!(
                        "max_links can only lower the number of direct links; using {MAX_DIRECT_LINKS}"
                    ));
                    MAX_DIRECT_LINKS
                }
                Err(_) => {
                    warnings.push(format!(
                        "max_links {text:?} is not a number; using {MAX_DIRECT_LINKS}"
                    ));
                    MAX_DIRECT_LINKS
                }
            },
            None => MAX_DIRECT_LINKS,
        };
        let same_browser = match query_param(search, "local").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                warnings.push(format!("local {other:?} is neither on nor off; using on"));
                true
            }
        };
        Config {
            same_browser,
            relay_url: room_url(&base, &room),
            room,
            network,
            max_direct_links,
            warnings,
        }
    }

    /// The short network name people see (`main`, `classroom`, `test`).
    pub fn network_label(&self) -> &'static str {
        self.network
            .name
            .strip_prefix("tabchain-")
            .unwrap_or(self.network.name)
    }
}

fn origin_ws(protocol: &str, host: &str) -> String {
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}")
}

/// `ws://h:p` becomes `ws://h:p/ws/room`; `ws://h:p/ws` becomes `ws://h:p/ws/room`.
fn room_url(base: &str, room: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/ws") {
        format!("{base}/{room}")
    } else {
        format!("{base}/ws/{room}")
    }
}

/// The first value of `name` in a query string, percent-decoded.
pub fn query_param(search: &str, name: &str) -> Option<String> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(value))
        .filter(|value| !value.is_empty())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 3 <= bytes.len() => {
                match (hex_digit(bytes[index + 1]), hex_digit(bytes[index + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        index += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_room_relay_and_network() {
        let cases = [
            (
                "http:",
                "h:8080",
                "",
                "lobby",
                "ws://h:8080/ws/lobby",
                "main",
            ),
            (
                "https:",
                "x.org",
                "?room=class-3",
                "class-3",
                "wss://x.org/ws/class-3",
                "main",
            ),
            (
                "http:",
                "h",
                "?relay=ws://127.0.0.1:3030&net=classroom",
                "lobby",
                "ws://127.0.0.1:3030/ws/lobby",
                "classroom",
            ),
            (
                "http:",
                "h",
                "?relay=ws%3A%2F%2Fa%3A1%2Fws&room=r&net=test",
                "r",
                "ws://a:1/ws/r",
                "test",
            ),
            (
                "http:",
                "h",
                "?room=bad%20room",
                "lobby",
                "ws://h/ws/lobby",
                "main",
            ),
        ];
        for (protocol, host, search, room, url, net) in cases {
            let config = Config::from_location(protocol, host, search);
            assert_eq!(config.room, room, "{search}");
            assert_eq!(config.relay_url, url, "{search}");
            assert_eq!(config.network_label(), net, "{search}");
        }
    }

    #[test]
    fn bad_values_fall_back_with_a_warning() {
        let config = Config::from_location("http:", "h", "?net=nope&relay=http://x");
        assert_eq!(config.network_label(), "main");
        assert_eq!(config.relay_url, "ws://h/ws/lobby");
        assert_eq!(config.warnings.len(), 2);
    }

    #[test]
    fn local_turns_the_tab_channel_off_and_nothing_else() {
        let cases = [
            ("", true, 0),
            ("?local=on", true, 0),
            ("?local=off", false, 0),
            ("?local=no", true, 1),
        ];
        for (search, same_browser, warnings) in cases {
            let config = Config::from_location("http:", "h", search);
            assert_eq!(config.same_browser, same_browser, "{search}");
            assert_eq!(config.warnings.len(), warnings, "{search}");
        }
    }

    #[test]
    fn max_links_only_lowers_the_default() {
        let cases = [
            ("", MAX_DIRECT_LINKS, 0),
            ("?max_links=0", 0, 0),
            ("?max_links=2", 2, 0),
            (
                &*format!("?max_links={}", MAX_DIRECT_LINKS + 1),
                MAX_DIRECT_LINKS,
                1,
            ),
            ("?max_links=-1", MAX_DIRECT_LINKS, 1),
            ("?max_links=many", MAX_DIRECT_LINKS, 1),
        ];
        for (search, links, warnings) in cases {
            let config = Config::from_location("http:", "h", search);
            assert_eq!(config.max_direct_links, links, "{search}");
            assert_eq!(config.warnings.len(), warnings, "{search}");
        }
    }
}
