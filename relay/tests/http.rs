//! The HTTP side: health, metrics, the web app, and shutdown.

mod common;

use common::{config, http_request, metric_value, recv_close, TestRelay, WAIT};
use relay::Config;
use std::path::PathBuf;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_ok() {
    let relay = TestRelay::start(config()).await;
    let response = relay.get("/healthz").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "ok\n");
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_rooms_and_traffic() {
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("m1").await;
    let mut bob = relay.join("m1").await;
    let mut carol = relay.join("m2").await;
    alice.recv().await;
    alice.broadcast(r#""12345""#).await;
    bob.recv_message().await;
    carol.send_text("garbage".to_owned()).await;
    carol.recv().await;

    let response = relay.get("/metrics").await;
    assert_eq!(response.status, 200);
    assert!(response
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let body = &response.body;
    let value = |series: &str| {
        metric_value(body, series).unwrap_or_else(|| panic!("no {series} in\n{body}"))
    };
    assert_eq!(value("relay_connections"), 3);
    assert_eq!(value("relay_rooms"), 2);
    assert_eq!(value("relay_connections_total"), 3);
    assert_eq!(value("relay_messages_in_total"), 2);
    assert_eq!(
        value("relay_bytes_in_total"),
        (r#"{"type":"broadcast","payload":"12345"}"#.len() + "garbage".len()) as u64
    );
    // Out: three welcomes, one peer_joined, one message, one error frame.
    assert_eq!(value("relay_messages_out_total"), 6);
    assert!(value("relay_bytes_out_total") > 0);
    assert_eq!(value("relay_dropped_total{reason=\"malformed\"}"), 1);
    assert!(body.contains("# TYPE relay_disconnects_total counter"));
    for reason in ["client_closed", "slow_consumer", "idle_timeout", "shutdown"] {
        assert_eq!(
            value(&format!("relay_disconnects_total{{reason=\"{reason}\"}}")),
            0
        );
    }

    carol.ws.close(None).await.unwrap();
    recv_close(&mut carol.ws).await;
    relay
        .wait_for_metric("relay_disconnects_total{reason=\"client_closed\"}", 1)
        .await;
    assert_eq!(relay.metric("relay_rooms").await, 1);
    relay.shutdown().await.unwrap();
}

/// A fresh directory under the target dir, removed by the test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("relay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_is_served_with_index_fallback() {
    let dir = scratch_dir("static");
    std::fs::write(dir.join("index.html"), "<html>tabchain app</html>").unwrap();
    std::fs::write(dir.join("app-1234.js"), "console.log('app')").unwrap();
    std::fs::create_dir(dir.join("assets")).unwrap();
    std::fs::write(dir.join("assets/style.css"), "body{}").unwrap();
    let relay = TestRelay::start(Config {
        static_dir: Some(dir.clone()),
        ..config()
    })
    .await;

    let cases = [
        ("/", 200, "<html>tabchain app</html>", "text/html"),
        ("/app-1234.js", 200, "console.log('app')", "javascript"),
        ("/assets/style.css", 200, "body{}", "text/css"),
        // Client-side routes and unknown paths get the app, so a reload works.
        (
            "/chain/block/42",
            200,
            "<html>tabchain app</html>",
            "text/html",
        ),
        (
            "/no-such-file.png",
            200,
            "<html>tabchain app</html>",
            "text/html",
        ),
    ];
    for (path, status, body, content_type) in cases {
        let response = relay.get(path).await;
        assert_eq!(response.status, status, "{path}");
        assert_eq!(response.body, body, "{path}");
        let served_type = response.header("content-type").unwrap_or_default();
        assert!(served_type.contains(content_type), "{path}: {served_type}");
    }
    // Paths must not escape the directory.
    let escape = relay.get("/../Cargo.toml").await;
    assert!(!escape.body.contains("[package]"));

    relay.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_built_app_a_page_explains_how_to_build_it() {
    let relay = TestRelay::start(config()).await;
    for path in ["/", "/anything"] {
        let response = relay.get(path).await;
        assert_eq!(response.status, 503, "{path}");
        assert!(response.body.contains("cargo xtask build-web"), "{path}");
        assert!(response
            .header("content-type")
            .unwrap()
            .contains("text/html"));
    }
    // The API still works.
    assert_eq!(relay.get("/healthz").await.status, 200);
    relay.join("works").await;
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_websocket_path_asks_for_an_upgrade() {
    let relay = TestRelay::start(config()).await;
    let response = relay.get("/ws/lobby").await;
    assert_eq!(response.status, 426);
    assert_eq!(response.header("upgrade"), Some("websocket"));
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_does_not_hold_the_relay() {
    let relay = TestRelay::start(config()).await;
    // Half a request, then silence: the relay must still answer others meanwhile.
    let addr = relay.addr;
    let stalled =
        tokio::spawn(
            async move { http_request(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n").await },
        );
    assert_eq!(relay.get("/healthz").await.status, 200);
    stalled.abort();
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_peer_with_1001_and_returns() {
    let relay = TestRelay::start(config()).await;
    let mut peers = Vec::new();
    for room in ["a", "a", "b"] {
        peers.push(relay.join(room).await);
    }
    let addr = relay.addr;
    let closing = futures_util::future::join_all(
        peers
            .iter_mut()
            .map(|peer| async { recv_close(&mut peer.ws).await }),
    );
    let (closes, stopped) = tokio::join!(closing, relay.shutdown());
    stopped.expect("run returns Ok after shutdown");
    for close in closes {
        let close = close.expect("a close frame");
        assert_eq!(close.code, CloseCode::Away);
        assert_eq!(close.reason.as_str(), "shutdown");
    }
    // Nothing listens any more.
    let refused = timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap();
    assert!(refused.is_err(), "the relay still accepts connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lan_json_lists_the_lan_urls_and_nothing_without_lan_mode() {
    let relay = TestRelay::start(config()).await;
    let response = relay.get("/lan.json").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body, r#"{"urls":[]}"#);
    relay.shutdown().await.unwrap();

    let relay = TestRelay::start(Config {
        lan_urls: vec!["http://192.168.1.20:3030/".into()],
        ..config()
    })
    .await;
    let response = relay.get("/lan.json").await;
    assert_eq!(response.body, r#"{"urls":["http://192.168.1.20:3030/"]}"#);
    relay.shutdown().await.unwrap();
}
