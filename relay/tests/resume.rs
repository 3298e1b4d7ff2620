//! Stable peer ids: a tab that connects with `?resume=<token>` gets the id derived from its
//! token, every time, so its direct links outlive a relay restart; a second connection with the
//! same token replaces the first.

mod common;

use common::{config, TestRelay};
use shared::protocol::{PeerId, RelayErrorCode, RelayFrame};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn token(byte: u8) -> ([u8; 32], String) {
    let token = [byte; 32];
    (token, format!("{byte:02x}").repeat(32))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_token_gives_the_same_id_across_connections_and_relays() {
    let (bytes, hex) = token(0x5a);
    let expected = PeerId::from_resume_token(&bytes);
    let relay = TestRelay::start(config()).await;
    let first = relay.join_path(&format!("/ws/r?resume={hex}")).await;
    assert_eq!(first.id, expected);
    drop(first);
    let again = relay.join_path(&format!("/ws/r?resume={hex}")).await;
    assert_eq!(again.id, expected);
    // The lobby path takes the parameter too; other parameters are ignored.
    let lobby = relay.join_path(&format!("/ws?v=1&resume={hex}")).await;
    assert_eq!((lobby.id, lobby.room.as_str()), (expected.clone(), "lobby"));
    // Without one, ids stay random.
    let plain = relay.join("r").await;
    assert_ne!(plain.id, expected);
    relay.shutdown().await.unwrap();
    // A restarted relay (a new process) gives the same id: nothing is stored.
    let restarted = TestRelay::start(config()).await;
    let back = restarted.join_path(&format!("/ws/r?resume={hex}")).await;
    assert_eq!(back.id, expected);
    restarted.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_one_token_replaces_the_first() {
    let (_, hex) = token(0x11);
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("r").await;
    let mut old = relay.join_path(&format!("/ws/r?resume={hex}")).await;
    match alice.recv().await {
        RelayFrame::PeerJoined { peer_id } => assert_eq!(peer_id, old.id),
        other => panic!("{other:?}"),
    }
    // The old socket is still open (a tab whose network changed, not yet noticed dead).
    let mut new = relay.join_path(&format!("/ws/r?resume={hex}")).await;
    assert_eq!(new.id, old.id);
    assert_eq!(new.peers, vec![alice.id.clone()], "not listed to itself");

    match old.recv().await {
        RelayFrame::Error { code, .. } => assert_eq!(code, RelayErrorCode::Replaced),
        other => panic!("expected replaced, got {other:?}"),
    }
    let close = old.recv_close().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "replaced");

    // The room hears the old one leave and the new one join, and nothing else about it.
    for expected in ["left", "joined"] {
        match (expected, alice.recv().await) {
            ("left", RelayFrame::PeerLeft { peer_id })
            | ("joined", RelayFrame::PeerJoined { peer_id }) => {
                assert_eq!(peer_id, new.id)
            }
            (_, other) => panic!("expected peer_{expected}, got {other:?}"),
        }
    }
    alice.send_to(&new.id, r#""to the new one""#).await;
    assert_eq!(new.recv_message().await.1, r#""to the new one""#);
    new.broadcast(r#""from the new one""#).await;
    assert_eq!(
        alice.recv_message().await,
        (new.id.clone(), r#""from the new one""#.to_owned())
    );
    relay
        .wait_for_metric("relay_disconnects_total{reason=\"replaced\"}", 1)
        .await;
    // The old connection's leaving took nothing from the new one.
    alice.send_to(&new.id, "2").await;
    assert_eq!(new.recv_message().await.1, "2");
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_resume_token_is_refused_with_400() {
    let relay = TestRelay::start(config()).await;
    let good = "ab".repeat(32);
    let bad = [
        "resume=".to_owned(),
        "resume".to_owned(),
        format!("resume={}", good.to_uppercase()),
        format!("resume={}", &good[1..]),
        format!("resume={good}0"),
        format!("resume={good}&resume={good}"),
    ];
    for query in &bad {
        let path = format!("/ws/r?{query}");
        match tokio_tungstenite::connect_async(relay.url(&path)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{path}");
                let body =
                    String::from_utf8_lossy(response.body().as_deref().unwrap_or(&[])).into_owned();
                assert!(body.starts_with("bad_resume_token"), "{path}: {body}");
            }
            other => panic!("{path}: expected HTTP 400, got {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(
        relay
            .metric("relay_rejected_total{reason=\"bad_resume_token\"}")
            .await,
        bad.len() as u64
    );
    relay.shutdown().await.unwrap();
}
