//! The relay's own STUN server, against the relay binary: a Binding request is answered with the
//! address it came from, every `welcome` names the server first as the tab addressed the relay,
//! garbage gets no answer, and one address flooding requests is cut to its share while another
//! address is still answered.

mod common;

use common::{metric_value, RelayProcess, WAIT};
use std::net::SocketAddr;
use std::time::Duration;
use stun_types::attribute::XorMappedAddress;
use stun_types::message::{Message, MessageClass, MessageWriteVec, TransactionId, BINDING};
use stun_types::prelude::*;
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// `relay::stun::STUN_BURST_PER_ADDRESS`: what one address gets answered at once.
const BURST: usize = relay::stun::STUN_BURST_PER_ADDRESS as usize;

fn binding_request() -> (Vec<u8>, TransactionId) {
    let request = Message::builder_request(BINDING, MessageWriteVec::new());
    let id = request.transaction_id();
    (request.finish(), id)
}

/// The address a Binding success response maps us to, if `datagram` is one for `id`.
fn mapped(datagram: &[u8], id: TransactionId) -> Option<SocketAddr> {
    let message = Message::from_bytes(datagram).ok()?;
    if !message.has_class(MessageClass::Success) || message.transaction_id() != id {
        return None;
    }
    Some(message.attribute::<XorMappedAddress>().ok()?.addr(id))
}

/// Asks for our mapped address from `socket` and waits up to `wait` for the answer, sending the
/// request again every 200 ms as STUN clients do (the binary prints its URL just before its STUN
/// socket is bound, and UDP may lose a datagram).
async fn ask(socket: &UdpSocket, server: SocketAddr, wait: Duration) -> Option<SocketAddr> {
    let (request, id) = binding_request();
    let mut buffer = [0u8; 1500];
    let answer = async {
        loop {
            socket.send_to(&request, server).await.unwrap();
            let resend = tokio::time::sleep(Duration::from_millis(200));
            tokio::pin!(resend);
            loop {
                tokio::select! {
                    _ = &mut resend => break,
                    received = socket.recv_from(&mut buffer) => {
                        let (read, _) = received.unwrap();
                        if let Some(address) = mapped(&buffer[..read], id) {
                            return address;
                        }
                    }
                }
            }
        }
    };
    timeout(wait, answer).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_answers_stun_and_names_itself_first_in_every_welcome() {
    let relay = RelayProcess::start(&[]).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let answer = ask(&client, relay.addr, WAIT).await;
    assert_eq!(
        answer,
        Some(client.local_addr().unwrap()),
        "the answer maps the client to the address the relay saw"
    );
    assert_eq!(
        relay.welcome_ice_urls().await,
        vec![format!("stun:127.0.0.1:{}", relay.addr.port())],
        "the welcome names the relay's STUN server as the tab addressed the relay"
    );

    // Garbage gets no answer, is counted, and costs the next honest request nothing.
    for garbage in [&b"GET / HTTP/1.1\r\n\r\n"[..], &[0u8; 20], &[0xff; 400]] {
        client.send_to(garbage, relay.addr).await.unwrap();
    }
    let mut buffer = [0u8; 1500];
    assert!(
        timeout(Duration::from_millis(300), client.recv_from(&mut buffer))
            .await
            .is_err(),
        "no answer to garbage"
    );
    assert!(ask(&client, relay.addr, WAIT).await.is_some());
    let metrics = relay.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"relay_stun_requests_total{outcome="malformed"}"#
        ),
        Some(3),
        "{metrics}"
    );
    assert!(
        metric_value(&metrics, r#"relay_stun_requests_total{outcome="answered"}"#)
            .is_some_and(|answered| answered >= 2),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_address_gets_its_share_and_another_address_is_still_answered() {
    let relay = RelayProcess::start(&[]).await;
    let flooder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert!(
        ask(&flooder, relay.addr, WAIT).await.is_some(),
        "STUN is up"
    );
    // Three times the burst, in steps the relay's socket buffer holds (so the relay reads them
    // all, and only its limit can keep it from answering them all): bounded, loopback only.
    let sent = 3 * BURST;
    let (request, _) = binding_request();
    let started = std::time::Instant::now();
    for step in 0..sent / 50 {
        for _ in 0..50 {
            flooder.send_to(&request, relay.addr).await.unwrap();
        }
        if step % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let counted = |metrics: &str, outcome: &str| {
        metric_value(
            metrics,
            &format!(r#"relay_stun_requests_total{{outcome="{outcome}"}}"#),
        )
        .unwrap() as usize
    };
    // Wait until the relay has read what it will read of the flood.
    let mut metrics = relay.metrics().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while counted(&metrics, "answered") + counted(&metrics, "rate_limited") < sent
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        metrics = relay.metrics().await;
    }
    let answered = counted(&metrics, "answered");
    let limited = counted(&metrics, "rate_limited");
    assert!(
        answered + limited >= sent * 9 / 10,
        "the relay read most of the flood ({answered} + {limited} of {sent})"
    );
    let share = BURST + (f64::from(relay::stun::STUN_RATE_PER_ADDRESS) * elapsed).ceil() as usize;
    assert!(
        answered <= share,
        "one address got {answered} answers of {sent} in {elapsed:.2} s; its share is {share}"
    );
    assert!(answered > 0, "the flooder's first requests are answered");
    // Another address (loopback answers all of 127/8) is answered at once.
    let other = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    assert_eq!(
        ask(&other, relay.addr, WAIT).await,
        Some(other.local_addr().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_stun_the_relay_answers_none_and_names_none() {
    let relay = RelayProcess::start(&["--no-stun"]).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(
        ask(&client, relay.addr, Duration::from_millis(500)).await,
        None
    );
    assert!(relay.welcome_ice_urls().await.is_empty());

    // --stun-port moves it.
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let moved = RelayProcess::start(&["--stun-port", &port.to_string()]).await;
    let answer = ask(&client, SocketAddr::new(moved.addr.ip(), port), WAIT).await;
    assert_eq!(answer, Some(client.local_addr().unwrap()));
    assert_eq!(
        moved.welcome_ice_urls().await,
        vec![format!("stun:127.0.0.1:{port}")]
    );
}
