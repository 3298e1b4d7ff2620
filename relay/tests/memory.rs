//! The relay's memory under abuse, measured on the binary as it runs (its resident set size from
//! /proc), so the allocator's and the kernel's view is the one that counts.

mod common;

use common::{RelayProcess, WAIT};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maximum_frame_leaves_no_buffer_behind_on_its_connection() {
    const CONNECTIONS: usize = 100;
    let relay = RelayProcess::start(&[]).await;
    let mut reader = relay.join("frames").await;
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        senders.push(relay.join("frames").await);
    }
    // Drain the joins the reader was told of.
    for _ in 0..CONNECTIONS {
        reader.recv().await;
    }
    let before = relay.rss_mib();
    // Sent to the reader only: the senders never read, and must not be sent each other's frames.
    let head = format!(r#"{{"type":"send","to":"{}","payload":""#, reader.id);
    let frame = format!(
        "{head}{}\"}}",
        "m".repeat(shared::protocol::MAX_FRAME_BYTES - head.len() - 2)
    );
    // Each connection sends one maximum-size frame; the reader takes each before the next, so at
    // most one is in flight and whatever stays behind stays behind on the connections.
    for sender in &mut senders {
        sender.send_text(frame.clone()).await;
        reader.recv_message().await;
    }
    let after = relay.rss_mib();
    eprintln!("RSS after a maximum frame per connection: {before:.1} -> {after:.1} MiB");
    // Before the fix each connection kept the frame's 1 MiB: +100 MiB here.
    assert!(
        after - before < 30.0,
        "RSS grew from {before:.1} to {after:.1} MiB after one 1 MiB frame on each of \
         {CONNECTIONS} connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_from_a_peer_that_never_reads_do_not_grow_memory() {
    // Rate limits out of the way: this is about what each ping costs, not about counting them.
    let relay = RelayProcess::start(&[
        "--rate-per-second",
        "100000000",
        "--rate-burst",
        "100000000",
    ])
    .await;
    // A masked ping with a 125-byte payload (mask zero, so the payload is as written), a few
    // thousand of them per write.
    let mut ping = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    ping.extend_from_slice(&[b'p'; 125]);
    let pings: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 4_000)
        .collect();
    let mut pingers = Vec::new();
    for _ in 0..2 {
        pingers.push(common::raw_websocket_from("127.0.0.1", &relay.addr, "pings").await);
    }
    let before = relay.rss_mib();
    // Two clients ping as fast as the relay reads for two seconds and never read a pong.
    let flood = pingers.iter_mut().map(|pinger| {
        let pings = &pings;
        async move {
            let until = tokio::time::Instant::now() + Duration::from_secs(2);
            while tokio::time::Instant::now() < until {
                if pinger.write_all(pings).await.is_err() {
                    return;
                }
            }
        }
    });
    let _ = timeout(WAIT, futures_util::future::join_all(flood)).await;
    let after = relay.rss_mib();
    eprintln!("RSS under a ping flood: {before:.1} -> {after:.1} MiB");
    // Before the fix the relay queued every pong: hundreds of MiB a second from two clients.
    assert!(
        after - before < 20.0,
        "RSS grew from {before:.1} to {after:.1} MiB under a ping flood"
    );
}
