//! The link a phone opens to join this tab's room, and the relay's LAN addresses it is built
//! from (`/lan.json`, see docs/protocol.md). Pure, so it is tested natively.

use serde::Deserialize;

/// What `/lan.json` says: the URLs other machines on the local network can open, empty when
/// the relay listens on loopback only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct LanInfo {
    pub urls: Vec<String>,
}

/// The most LAN URLs read (a machine with many interfaces lists each; the first is shown).
pub const MAX_LAN_URLS: usize = 16;

impl LanInfo {
    /// `None` for anything but the relay's answer (a dev server's index page, an error).
    pub fn parse(text: &str) -> Option<LanInfo> {
        let mut info: LanInfo = serde_json::from_str(text).ok()?;
        info.urls.truncate(MAX_LAN_URLS);
        info.urls
            .retain(|url| url.starts_with("http://") || url.starts_with("https://"));
        Some(info)
    }
}

/// Whether a phone cannot open `hostname`: only this machine answers to it.
pub fn is_loopback_host(hostname: &str) -> bool {
    let host = hostname.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// The URL to share: the page's own (`href`), or, when it was opened on this machine by a
/// loopback name and the relay knows a LAN address, the same path and query on that address.
pub fn join_url(href: &str, hostname: &str, path_and_query: &str, lan: &LanInfo) -> String {
    match lan.urls.first() {
        Some(base) if is_loopback_host(hostname) => {
            format!("{}{}", base.trim_end_matches('/'), path_and_query)
        }
        _ => href.to_string(),
    }
}

/// The page's query `search` (`?room=c&net=main`, or empty) with `net` set to `network`, every
/// other parameter kept in order: the link that opens this room on the network its tabs use.
pub fn with_network(search: &str, network: &str) -> String {
    let mut parts: Vec<String> = search
        .trim_start_matches('?')
        .split('&')
        .filter(|part| !part.is_empty() && !part.starts_with("net=") && *part != "net")
        .map(str::to_string)
        .collect();
    parts.push(format!("net={network}"));
    format!("?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_link_sets_the_network_and_keeps_the_rest() {
        let cases = [
            ("", "classroom", "?net=classroom"),
            ("?room=c", "classroom", "?room=c&net=classroom"),
            ("?net=main&room=c", "classroom", "?room=c&net=classroom"),
            (
                "?room=c&net=test&lesson=forks",
                "main",
                "?room=c&lesson=forks&net=main",
            ),
        ];
        for (search, network, expected) in cases {
            assert_eq!(with_network(search, network), expected, "{search}");
        }
    }

    #[test]
    fn a_loopback_page_shares_the_lan_address() {
        let lan =
            LanInfo::parse(r#"{"urls":["http://192.168.1.20:3030/","http://10.0.0.4:3030/"]}"#)
                .unwrap();
        let cases = [
            (
                "http://127.0.0.1:3030/?room=c",
                "127.0.0.1",
                "/?room=c",
                "http://192.168.1.20:3030/?room=c",
            ),
            (
                "http://localhost:3030/?room=c&net=classroom",
                "localhost",
                "/?room=c&net=classroom",
                "http://192.168.1.20:3030/?room=c&net=classroom",
            ),
            (
                "http://[::1]:3030/",
                "[::1]",
                "/",
                "http://192.168.1.20:3030/",
            ),
            // Opened by its LAN address or a public name: that is the link already.
            (
                "http://192.168.1.20:3030/?room=c",
                "192.168.1.20",
                "/?room=c",
                "http://192.168.1.20:3030/?room=c",
            ),
            (
                "https://chain.example.org/?room=c",
                "chain.example.org",
                "/?room=c",
                "https://chain.example.org/?room=c",
            ),
        ];
        for (href, host, path, expected) in cases {
            assert_eq!(join_url(href, host, path, &lan), expected, "{href}");
        }
        let none = LanInfo::default();
        assert_eq!(
            join_url("http://127.0.0.1:3030/", "127.0.0.1", "/", &none),
            "http://127.0.0.1:3030/"
        );
    }

    #[test]
    fn only_the_relays_answer_is_read() {
        assert_eq!(LanInfo::parse("<!doctype html>"), None);
        let odd =
            LanInfo::parse(r#"{"urls":["javascript:alert(1)","http://10.1.1.1:3030/"]}"#).unwrap();
        assert_eq!(odd.urls, vec!["http://10.1.1.1:3030/".to_string()]);
    }
}
