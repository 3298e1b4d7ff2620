//! The state of our link to the relay, as the status bar shows it, beside the direct links to
//! other tabs that carry the room while the relay is away. How long the transport waits between
//! tries is `shared::node::reconnect`.

/// What the status bar says about the relay connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// The person pressed "go offline": no socket, the node keeps mining alone.
    Offline,
    /// Opening the socket (attempt 1, 2, ...).
    Connecting { attempt: u32 },
    /// The relay welcomed us into the room.
    Connected { peer_id: String },
    /// The socket closed; the next try is at `retry_at_ms`.
    Waiting { retry_at_ms: u64, reason: String },
}

impl ConnectionState {
    /// The stable word in `data-state`.
    pub fn key(&self) -> &'static str {
        match self {
            ConnectionState::Offline => "offline",
            ConnectionState::Connecting { .. } => "connecting",
            ConnectionState::Connected { .. } => "connected",
            ConnectionState::Waiting { .. } => "waiting",
        }
    }

    pub fn describe(&self, now_ms: u64) -> String {
        match self {
            ConnectionState::Offline => "offline (by choice)".into(),
            ConnectionState::Connecting { attempt: 1 } => "connecting…".into(),
            ConnectionState::Connecting { attempt } => format!("connecting… (try {attempt})"),
            ConnectionState::Connected { .. } => "connected".into(),
            ConnectionState::Waiting { retry_at_ms, .. } => {
                let seconds = retry_at_ms.saturating_sub(now_ms).div_ceil(1000);
                format!("server offline, retry in {seconds}s")
            }
        }
    }

    /// The pill's colour class: `same-browser` while the relay is away and tabs of this browser
    /// carry the room, else [`ConnectionState::key`].
    pub fn class_with_tabs(&self, same_browser: usize) -> &'static str {
        match self {
            ConnectionState::Connecting { .. } | ConnectionState::Waiting { .. }
                if same_browser > 0 =>
            {
                "same-browser"
            }
            _ => self.key(),
        }
    }

    /// The pill's words when `same_browser` tabs of this browser are linked over the tab
    /// channel: with the relay away the tab is not alone, so it says where it reaches instead of
    /// only that the server is away.
    pub fn describe_with_tabs(&self, now_ms: u64, same_browser: usize) -> String {
        match self {
            ConnectionState::Connecting { .. } | ConnectionState::Waiting { .. }
                if same_browser > 0 =>
            {
                "this browser only (no server)".into()
            }
            _ => self.describe(now_ms),
        }
    }

    /// The status line: the relay's state, then the open direct links when there are any
    /// ("server offline, retry in 2s · 3 direct links"), so a tab that still reaches its
    /// peers while the relay is down says both.
    pub fn describe_with_links(&self, now_ms: u64, direct_links: usize) -> String {
        format!(
            "{}{}",
            self.describe(now_ms),
            direct_links_suffix(direct_links)
        )
    }
}

/// What the status line adds for the open direct links: nothing for none.
pub fn direct_links_suffix(direct_links: usize) -> String {
    match direct_links {
        0 => String::new(),
        1 => " · 1 direct link".into(),
        links => format!(" · {links} direct links"),
    }
}

/// How far we have heard the room: peers whose hello came (`ready`), peers whose hello we still
/// wait for (`awaiting`, see `Node::awaiting_hellos`), peers on another network and the one
/// named first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hearing {
    pub ready: usize,
    pub awaiting: usize,
    pub other_network: usize,
    pub theirs: Option<&'static str>,
}

/// How long a joined peer's hello is waited for before the tab stops saying it is still
/// hearing from the room (a silent peer must not hold "syncing" forever).
pub const HELLO_WAIT_MS: u64 = 5_000;

/// What the sync pill says: one answer from the relay's state, the direct links and the node's
/// sync state together, so a tab that reaches nobody never says "in sync".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainStatus {
    /// Offline by choice (the partition control): it mines alone.
    Offline,
    /// The relay is away and no direct link carries the room: the tab is trying again.
    Reconnecting,
    /// Every peer that answered is on another network (`theirs`, when it is one we know): the
    /// tab is alone, whatever its sync state says.
    OtherNetwork { theirs: Option<&'static str> },
    /// Downloading blocks: `height` of `target`.
    Syncing { height: u64, target: u64 },
    /// Connected, but some peers' hellos (their chains' claims) have not come yet: until they
    /// have, the tab cannot know it is in sync.
    Joining { heard: usize, of: usize },
    /// It reaches its room and has caught up with every claim it heard.
    Synced,
}

impl ChainStatus {
    pub fn of(
        connection: &ConnectionState,
        sync: shared::node::SyncState,
        height: u64,
        direct_links: usize,
        hearing: &Hearing,
    ) -> ChainStatus {
        match (connection, sync) {
            (ConnectionState::Offline, _) => ChainStatus::Offline,
            (ConnectionState::Connecting { .. } | ConnectionState::Waiting { .. }, _)
                if direct_links == 0 =>
            {
                ChainStatus::Reconnecting
            }
            _ if hearing.ready == 0 && hearing.other_network > 0 => ChainStatus::OtherNetwork {
                theirs: hearing.theirs,
            },
            (_, shared::node::SyncState::Syncing { target_height }) => ChainStatus::Syncing {
                height,
                target: target_height.max(height),
            },
            _ if hearing.awaiting > 0 => ChainStatus::Joining {
                heard: hearing.ready,
                of: hearing.ready + hearing.awaiting,
            },
            (_, shared::node::SyncState::Synced) => ChainStatus::Synced,
        }
    }

    /// The stable word in `data-state`.
    pub fn key(&self) -> &'static str {
        match self {
            ChainStatus::Offline => "offline",
            ChainStatus::Reconnecting => "reconnecting",
            ChainStatus::OtherNetwork { .. } => "other-network",
            ChainStatus::Syncing { .. } | ChainStatus::Joining { .. } => "syncing",
            ChainStatus::Synced => "synced",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ChainStatus::Offline => "offline: mining alone".into(),
            ChainStatus::Reconnecting => "reconnecting…".into(),
            ChainStatus::OtherNetwork {
                theirs: Some(theirs),
            } => {
                format!("alone: the room is on the {theirs} network")
            }
            ChainStatus::OtherNetwork { theirs: None } => {
                "alone: the room is on another network".into()
            }
            ChainStatus::Syncing { height, target } => format!("syncing {height} of {target}"),
            ChainStatus::Joining { heard, of } => {
                format!("syncing: hearing from peers ({heard} of {of})")
            }
            ChainStatus::Synced => "in sync".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_the_relay_state_and_the_direct_links() {
        let waiting = ConnectionState::Waiting {
            retry_at_ms: 2_500,
            reason: "the relay closed the connection".into(),
        };
        let connected = ConnectionState::Connected {
            peer_id: "ab".into(),
        };
        let cases = [
            (&waiting, 3, "server offline, retry in 2s · 3 direct links"),
            (&waiting, 0, "server offline, retry in 2s"),
            (&connected, 1, "connected · 1 direct link"),
            (&connected, 0, "connected"),
            (
                &ConnectionState::Offline,
                2,
                "offline (by choice) · 2 direct links",
            ),
        ];
        for (state, links, text) in cases {
            assert_eq!(state.describe_with_links(1_000, links), text);
        }
    }

    #[test]
    fn tabs_of_this_browser_with_no_server_say_so() {
        let waiting = ConnectionState::Waiting {
            retry_at_ms: 2_500,
            reason: "could not open a connection".into(),
        };
        let connected = ConnectionState::Connected {
            peer_id: "ab".into(),
        };
        assert_eq!(
            waiting.describe_with_tabs(1_000, 2),
            "this browser only (no server)"
        );
        assert_eq!(
            ConnectionState::Connecting { attempt: 3 }.describe_with_tabs(0, 1),
            "this browser only (no server)"
        );
        assert_eq!(
            waiting.describe_with_tabs(1_000, 0),
            "server offline, retry in 2s"
        );
        assert_eq!(connected.describe_with_tabs(0, 2), "connected");
        assert_eq!(
            ConnectionState::Offline.describe_with_tabs(0, 2),
            "offline (by choice)"
        );
    }

    #[test]
    fn the_sync_pill_never_says_in_sync_while_the_tab_reaches_nobody() {
        use shared::node::SyncState;
        let waiting = ConnectionState::Waiting {
            retry_at_ms: 0,
            reason: "closed".into(),
        };
        let connected = ConnectionState::Connected {
            peer_id: "ab".into(),
        };
        let syncing = SyncState::Syncing { target_height: 158 };
        let cases = [
            (
                &ConnectionState::Offline,
                SyncState::Synced,
                0,
                "offline",
                "offline: mining alone",
            ),
            (
                &waiting,
                SyncState::Synced,
                0,
                "reconnecting",
                "reconnecting…",
            ),
            (
                &ConnectionState::Connecting { attempt: 2 },
                syncing,
                0,
                "reconnecting",
                "reconnecting…",
            ),
            // The relay is away but direct links carry the room: the chain's state is what counts.
            (&waiting, SyncState::Synced, 2, "synced", "in sync"),
            (&connected, syncing, 0, "syncing", "syncing 64 of 158"),
            (&connected, SyncState::Synced, 0, "synced", "in sync"),
        ];
        for (connection, sync, links, key, text) in cases {
            let heard = Hearing {
                ready: 1,
                ..Hearing::default()
            };
            let status = ChainStatus::of(connection, sync, 64, links, &heard);
            assert_eq!(
                (status.key(), status.describe().as_str()),
                (key, text),
                "{connection:?} {sync:?} {links}"
            );
        }
    }

    #[test]
    fn a_joining_tab_is_not_in_sync_and_a_tab_on_the_wrong_network_is_alone() {
        use shared::node::SyncState;
        let connected = ConnectionState::Connected {
            peer_id: "ab".into(),
        };
        let hearing = |ready, awaiting, other_network, theirs| Hearing {
            ready,
            awaiting,
            other_network,
            theirs,
        };
        let cases = [
            // Welcomed, no hello yet: not "in sync" at height 0.
            (
                hearing(0, 3, 0, None),
                SyncState::Synced,
                "syncing",
                "syncing: hearing from peers (0 of 3)",
            ),
            (
                hearing(2, 1, 0, None),
                SyncState::Synced,
                "syncing",
                "syncing: hearing from peers (2 of 3)",
            ),
            (
                hearing(3, 0, 0, None),
                SyncState::Synced,
                "synced",
                "in sync",
            ),
            // Alone in the room: nobody to be in sync with.
            (
                hearing(0, 0, 2, Some("classroom")),
                SyncState::Synced,
                "other-network",
                "alone: the room is on the classroom network",
            ),
            (
                hearing(0, 1, 1, None),
                SyncState::Synced,
                "other-network",
                "alone: the room is on another network",
            ),
            // One peer of ours is enough to be in the room.
            (
                hearing(1, 0, 2, Some("main")),
                SyncState::Synced,
                "synced",
                "in sync",
            ),
        ];
        for (heard, sync, key, text) in cases {
            let status = ChainStatus::of(&connected, sync, 0, 0, &heard);
            assert_eq!(
                (status.key(), status.describe().as_str()),
                (key, text),
                "{heard:?}"
            );
        }
    }
}
