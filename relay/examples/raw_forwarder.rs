//! The Rust baseline for the relay's load benchmark: the smallest tokio-tungstenite broadcast
//! server, in the style of warp's chat example. Rooms by URL path; every text message goes
//! verbatim to the other members through an unbounded channel per peer. No envelope, no limits,
//! no presence, default WebSocket buffers: what forwarding alone costs, and what the relay's
//! rules and bounds add on top of it.
//!
//! Usage: `raw_forwarder [port]` (listens on 127.0.0.1 only; default 3050).

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

type Rooms = Arc<Mutex<HashMap<String, HashMap<u64, mpsc::UnboundedSender<Message>>>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|port| port.parse().ok())
        .unwrap_or(3050);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("raw forwarder listening on 127.0.0.1:{port}");
    let rooms: Rooms = Arc::default();
    let next_id = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(stream, id, rooms.clone()));
    }
}

async fn serve(stream: TcpStream, id: u64, rooms: Rooms) {
    let _ = stream.set_nodelay(true);
    let mut room = String::new();
    // The error type is tungstenite's, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        room = request.uri().path().to_owned();
        Ok(response)
    };
    let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let (sender, mut queue) = mpsc::unbounded_channel::<Message>();
    rooms
        .lock()
        .unwrap()
        .entry(room.clone())
        .or_default()
        .insert(id, sender);
    let writer = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Text(_) = message {
            let rooms = rooms.lock().unwrap();
            for (other, sender) in rooms.get(&room).into_iter().flatten() {
                if *other != id {
                    let _ = sender.send(message.clone());
                }
            }
        }
    }
    let mut rooms = rooms.lock().unwrap();
    if let Some(members) = rooms.get_mut(&room) {
        members.remove(&id);
        if members.is_empty() {
            rooms.remove(&room);
        }
    }
    writer.abort();
}
