//! The relay binary as `cargo xtask run` and systemd use it: it prints the URL to open on stdout,
//! serves, and on SIGTERM closes every peer with 1001 and exits with success.

mod common;

use common::{recv_close, Client, WAIT};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_its_url_and_stops_cleanly_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["--port", "0", "--static-dir", "/nonexistent"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the relay binary starts");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = tokio::time::timeout(WAIT, line).await.unwrap().unwrap();
    let url = line
        .trim()
        .strip_prefix("tabchain relay listening; open ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .expect("an http URL");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("the printed address serves WebSockets");
    let mut peer = Client::welcomed(ws).await;
    assert_eq!(peer.room, "lobby");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let close = recv_close(&mut peer.ws).await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Away);
    let exit = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .expect("the relay exits after SIGTERM")
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
}

#[test]
fn bad_ice_settings_stop_the_binary_with_a_message_that_says_why() {
    /// Flags, environment, and what stderr must say.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (
            &["--ice-server", "http://stun.example.org"],
            &[],
            "`http://stun.example.org` is not a usable ICE server URL",
        ),
        // The environment spells it too, comma-separated.
        (
            &[],
            &[("ICE_SERVERS", "stun:ok.example,turn:t.example")],
            "needs both --ice-username and --ice-credential",
        ),
        (
            &["--ice-username", "tab", "--ice-credential", "secret"],
            &[],
            "are for turn: or turns: servers",
        ),
    ];
    for (args, env, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(["--port", "0", "--static-dir", "/nonexistent"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .output()
            .expect("the relay binary runs");
        assert!(!output.status.success(), "{args:?} {env:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?} {env:?}: {stderr}");
    }
}
