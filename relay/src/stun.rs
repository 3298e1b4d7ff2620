//! The relay's own STUN server: it answers Binding requests on UDP with the address it saw them
//! come from, so a tab behind a home router learns its public address and port (its
//! "server-reflexive" candidate) and two homes can link directly with no server to find or
//! configure. Every `welcome` names it first in `ice_servers`, addressed by the host name the tab
//! used to reach the relay (`stun:<host>:<port>`).
//!
//! Only what ICE needs of RFC 8489: Binding requests without authentication, answered with
//! XOR-MAPPED-ADDRESS and FINGERPRINT. No state is kept per request. What a source may ask is
//! bounded by a token bucket per client address (IPv6 by /64, as every other per-address share),
//! and all sources together by one more bucket, so a spoofed flood can make the relay send at most
//! [`STUN_RATE_TOTAL`] small answers a second (an answer is 40 to 52 bytes; a request is at
//! least 20). Anything else is dropped without an answer and counted.
//!
//! The message format is `stun-types` (the STUN crate of GStreamer's ICE library, librice: kept,
//! small, sans-I/O, with its own fuzzing); the header is checked by hand first, so that datagrams
//! that are not STUN at all cost a few comparisons and never reach its parser or its logging.

use crate::admission::AddressKey;
use crate::metrics::Metrics;
use crate::rate::KeyedBuckets;
use std::net::SocketAddr;
use std::sync::Arc;
use stun_types::attribute::XorMappedAddress;
use stun_types::message::{Message, MessageClass, MessageWriteMutSlice, BINDING};
use stun_types::prelude::*;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Binding requests per second one client address may have answered. A tab asks once per link it
/// opens and per network interface, then every few seconds while a link is being set up; a school
/// behind one address with 60 tabs opening 8 links each fits in the burst.
pub const STUN_RATE_PER_ADDRESS: u32 = 100;
/// Requests one client address may have answered at once.
pub const STUN_BURST_PER_ADDRESS: u32 = 1_000;
/// Answers per second, all sources together: at 52 bytes each, at most about 260 KB/s of
/// answers whatever a flood of spoofed sources asks.
pub const STUN_RATE_TOTAL: u32 = 5_000;
/// Largest datagram read. A Binding request from a browser is under 200 bytes; anything longer is
/// not one and is read cut (and then refused by its length field).
const MAX_DATAGRAM: usize = 576;
/// Room for the largest answer: header 20, XOR-MAPPED-ADDRESS of IPv6 24, FINGERPRINT 8.
const MAX_ANSWER: usize = 64;
/// STUN's magic cookie (RFC 8489, section 5).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const HEADER_BYTES: usize = 20;

/// What became of one datagram; each is an `outcome` label of `relay_stun_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StunOutcome {
    /// A Binding request, answered.
    Answered,
    /// Not a STUN message, not a Binding request, or malformed: dropped.
    Malformed,
    /// Over its address's share or the relay's total: dropped.
    RateLimited,
}

impl StunOutcome {
    pub const ALL: [StunOutcome; 3] = [
        StunOutcome::Answered,
        StunOutcome::Malformed,
        StunOutcome::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StunOutcome::Answered => "answered",
            StunOutcome::Malformed => "malformed",
            StunOutcome::RateLimited => "rate_limited",
        }
    }
}

/// The answer to `datagram` from `from`, written into `out`: its length, or `None` when the
/// datagram is not a Binding request to answer. Pure, for tests and fuzzing.
pub fn answer(datagram: &[u8], from: SocketAddr, out: &mut [u8; MAX_ANSWER]) -> Option<usize> {
    // The header by hand: the two top bits zero, a Binding request (0x0001), the magic cookie, a
    // length that is the rest of the datagram and a multiple of 4.
    if datagram.len() < HEADER_BYTES
        || datagram[0..2] != [0x00, 0x01]
        || datagram[4..8] != MAGIC_COOKIE
    {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if length % 4 != 0 || HEADER_BYTES + length != datagram.len() {
        return None;
    }
    let request = Message::from_bytes(datagram).ok()?;
    if !request.has_class(MessageClass::Request) || !request.has_method(BINDING) {
        return None;
    }
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; its candidate is IPv4.
    let from = SocketAddr::new(from.ip().to_canonical(), from.port());
    let mut response = Message::builder_success(&request, MessageWriteMutSlice::new(&mut out[..]));
    response
        .add_attribute(&XorMappedAddress::new(from, request.transaction_id()))
        .ok()?;
    response.add_fingerprint().ok()?;
    Some(response.finish())
}

/// Answers Binding requests on `socket` until `shutdown`.
pub(crate) async fn serve(socket: UdpSocket, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut per_address = KeyedBuckets::new(STUN_RATE_PER_ADDRESS, STUN_BURST_PER_ADDRESS);
    let mut total = crate::rate::TokenBucket::new(
        f64::from(STUN_RATE_TOTAL),
        f64::from(STUN_RATE_TOTAL),
        Instant::now(),
    );
    let mut datagram = [0u8; MAX_DATAGRAM];
    let mut out = [0u8; MAX_ANSWER];
    loop {
        let (read, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            received = socket.recv_from(&mut datagram) => match received {
                Ok(received) => received,
                // ICMP errors from earlier answers show up here on some systems; nothing to do.
                Err(error) => {
                    tracing::debug!(%error, "STUN socket read failed");
                    continue;
                }
            },
        };
        let outcome = match answer(&datagram[..read], from, &mut out) {
            None => StunOutcome::Malformed,
            Some(length) => {
                let now = Instant::now();
                let key = AddressKey::of(from.ip());
                if !total.has(1.0, now) || !per_address.take(key, now) {
                    StunOutcome::RateLimited
                } else {
                    total.take(1.0, now);
                    if let Err(error) = socket.send_to(&out[..length], from).await {
                        tracing::debug!(%error, %from, "STUN answer not sent");
                    }
                    StunOutcome::Answered
                }
            }
        };
        metrics.stun(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun_types::attribute::Fingerprint;
    use stun_types::message::{MessageWriteVec, TransactionId};

    fn binding_request() -> (Vec<u8>, TransactionId) {
        let request = Message::builder_request(BINDING, MessageWriteVec::new());
        let id = request.transaction_id();
        (request.finish(), id)
    }

    fn mapped(answer: &[u8]) -> SocketAddr {
        let message = Message::from_bytes(answer).expect("a STUN message");
        assert!(message.has_class(MessageClass::Success));
        assert!(message.has_method(BINDING));
        message
            .attribute::<XorMappedAddress>()
            .expect("XOR-MAPPED-ADDRESS")
            .addr(message.transaction_id())
    }

    #[test]
    fn a_binding_request_is_answered_with_the_address_it_came_from() {
        let (request, id) = binding_request();
        let mut out = [0u8; MAX_ANSWER];
        for from in ["203.0.113.7:40000", "[2001:db8::5]:5000"] {
            let from: SocketAddr = from.parse().unwrap();
            let length = answer(&request, from, &mut out).expect("answered");
            assert_eq!(mapped(&out[..length]), from);
            let message = Message::from_bytes(&out[..length]).unwrap();
            assert_eq!(message.transaction_id(), id);
            assert!(message.has_attribute(Fingerprint::TYPE));
        }
        // A v4 client on a dual-stack socket gets its IPv4 address back.
        let mapped_v4: SocketAddr = "[::ffff:203.0.113.7]:40000".parse().unwrap();
        let length = answer(&request, mapped_v4, &mut out).unwrap();
        assert_eq!(mapped(&out[..length]), "203.0.113.7:40000".parse().unwrap());
    }

    #[test]
    fn anything_but_a_binding_request_gets_no_answer() {
        let from: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        let mut out = [0u8; MAX_ANSWER];
        let (request, _) = binding_request();
        // Not STUN, cut short, a wrong cookie, a length that disagrees, a response.
        let mut cases: Vec<Vec<u8>> = vec![
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            request[..19].to_vec(),
            Vec::new(),
        ];
        let mut cookie = request.clone();
        cookie[4] ^= 1;
        cases.push(cookie);
        let mut long = request.clone();
        long.extend_from_slice(&[0, 0, 0, 0]);
        cases.push(long);
        let mut response = [0u8; MAX_ANSWER];
        let length = answer(&request, from, &mut response).unwrap();
        cases.push(response[..length].to_vec());
        for case in cases {
            assert_eq!(answer(&case, from, &mut out), None, "{case:?}");
        }
    }

    #[test]
    fn random_datagrams_never_panic() {
        let from: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        let mut out = [0u8; MAX_ANSWER];
        let (request, _) = binding_request();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..20_000 {
            let mut datagram = request.clone();
            // Keep a valid header half the time so the parser sees attribute garbage.
            let extra = (round % 13) * 4;
            datagram.extend(std::iter::repeat_n(0u8, extra));
            let length = (extra as u16).to_be_bytes();
            datagram[2..4].copy_from_slice(&length);
            for byte in datagram
                .iter_mut()
                .skip(if round % 2 == 0 { 20 } else { 0 })
            {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            let _ = answer(&datagram, from, &mut out);
        }
    }
}
