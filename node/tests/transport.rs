//! The transport under hostile traffic: a message bigger than the protocol allows costs its
//! sender, not our link; and a flood from one peer never stops the reader draining the socket.

mod common;

use common::{start_node, TestRelay, TIMEOUT};
use futures_util::{SinkExt, StreamExt};
use node::transport::connect_relay;
use serde_json::value::RawValue;
use shared::protocol::{ClientFrame, PeerId, RelayFrame, MAX_FRAME_BYTES};
use tokio_tungstenite::tungstenite::Message;

/// Before: the native transport capped messages at 1 MiB + 4 KiB, so a 2 MiB payload through
/// a relay with a larger frame limit closed our link. Now the node refuses that one message as
/// oversized, penalises the sender, and stays in the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_costs_its_sender_not_our_link() {
    let relay = TestRelay::start_with(relay::Config {
        max_frame_bytes: 4 << 20,
        peer_queue_bytes: 8 << 20,
        ..relay::Config::default()
    })
    .await;
    let room = relay.url("big");
    let dir = tempfile::tempdir().unwrap();
    let alice = start_node("alice", dir.path()).await;
    alice.connect(&room).await.unwrap();

    let (mut rogue, _) = tokio_tungstenite::connect_async(room.as_str())
        .await
        .unwrap();
    let welcome = rogue.next().await.unwrap().unwrap().into_text().unwrap();
    let Ok(RelayFrame::Welcome {
        peer_id: rogue_id, ..
    }) = RelayFrame::from_json(&welcome)
    else {
        panic!("no welcome: {welcome}");
    };
    let payload = format!(r#"{{"type":"status","pad":"{}"}}"#, "a".repeat(2 << 20));
    assert!(payload.len() > MAX_FRAME_BYTES);
    let frame = ClientFrame::broadcast(RawValue::from_string(payload).unwrap());
    rogue
        .send(Message::text(serde_json::to_string(&frame).unwrap()))
        .await
        .unwrap();

    let snapshot = alice
        .wait_for(TIMEOUT, |s| {
            s.peers
                .iter()
                .any(|peer| peer.id == rogue_id && peer.misbehavior >= 50)
                || !matches!(s.connection, node::runtime::Connection::Connected { .. })
        })
        .await
        .unwrap();
    assert!(
        matches!(
            snapshot.connection,
            node::runtime::Connection::Connected { .. }
        ),
        "the link was lost: {:?}",
        snapshot.connection
    );
    // The link still carries messages: the rogue's next (small) message arrives and costs it.
    let garbage =
        ClientFrame::broadcast(RawValue::from_string("{\"type\":\"nonsense\"}".into()).unwrap());
    rogue
        .send(Message::text(serde_json::to_string(&garbage).unwrap()))
        .await
        .unwrap();
    alice
        .wait_for(TIMEOUT, |s| {
            s.peers
                .iter()
                .any(|peer| peer.id == rogue_id && peer.misbehavior > 50)
        })
        .await
        .unwrap();
    alice.shutdown().await;
    relay.stop().await;
}

/// A fake relay that floods us with one peer's messages while the node reads nothing: every
/// frame must still leave the relay (the reader drains the socket into its bounded inbox and
/// sheds the flooder's messages), and the one honest message sent after the flood is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_drains_the_socket_while_the_node_is_busy() {
    /// Enough 1 KiB frames to fill the inbox, the old 1,024-event queue and the loopback
    /// socket buffers several times over.
    const FLOOD: usize = 20_000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rogue = PeerId::from_bytes([1; 16]);
    let honest = PeerId::from_bytes([2; 16]);
    let relay = tokio::spawn({
        let (rogue, honest) = (rogue.clone(), honest.clone());
        async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut socket = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let welcome = RelayFrame::Welcome {
                peer_id: PeerId::from_bytes([9; 16]),
                room: "flood".into(),
                peers: vec![rogue.clone(), honest.clone()],
                ice_servers: vec![],
            };
            socket.send(Message::text(welcome.to_json())).await.unwrap();
            let junk = RawValue::from_string(format!("\"{}\"", "j".repeat(1_000))).unwrap();
            let flood = RelayFrame::message_json(&rogue, &junk);
            for _ in 0..FLOOD {
                socket.feed(Message::text(flood.clone())).await.unwrap();
            }
            let last = RawValue::from_string("{\"type\":\"get_mempool\"}".into()).unwrap();
            socket
                .send(Message::text(RelayFrame::message_json(&honest, &last)))
                .await
                .unwrap();
            socket
        }
    });
    let mut link = connect_relay(&format!("ws://{addr}/ws/flood"))
        .await
        .unwrap();
    // Nothing is taken from the link until the fake relay has written every frame.
    let _socket = tokio::time::timeout(TIMEOUT, relay)
        .await
        .expect("the relay could write everything: our reader kept draining")
        .unwrap();
    // The reader may still be taking the last frames off the socket: wait for the honest one.
    let mut events = Vec::new();
    let found = tokio::time::timeout(TIMEOUT, async {
        loop {
            let event = link.next_event().await;
            let done = matches!(&event, node::transport::LinkEvent::Message { from, .. } if *from == honest);
            events.push(event);
            if done {
                break;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "the honest message was lost");
    assert!(link.shed_messages() > 0, "the flood fit without shedding?");
    assert!(events.len() <= FLOOD, "every flood message was kept?");
}
