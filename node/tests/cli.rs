//! The binary as a person or a script meets it: the interactive menu fed bad input through
//! stdin, and the subcommands' error messages and exit codes.

mod common;

use common::{node_command, run_node, start_node, TestRelay, TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_menu_answers_bad_input_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let someone = "ab".repeat(20);
    let input = [
        "x",
        "99",
        "2",
        "not a number",
        "2",
        &someone,
        "lots",
        "2",
        &someone,
        "5",
        "cheap",
        "2",
        &someone,
        "5",
        "0",
        "",
        "3",
        "4",
        "7",
        "8",
        "6",
    ]
    .join("\n");
    let run = run_node(
        dir.path(),
        &["--name", "menu", "--offline"],
        &(input + "\n"),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    for expected in [
        "`x` is not a choice",
        "`99` is not a choice",
        "`not a number` is neither a pinned name, a peer's name nor a 40-digit address",
        "`lots` is not a number",
        "`cheap` is not a number",
        // Sending with an empty account is refused by the mempool, with its reason.
        "refused:",
        "chain tabchain-test: height 0",
        "(you)",
        "connection: offline",
        "no peers",
        "bye",
    ] {
        let expected = expected.replace("(you)", "you");
        assert!(
            run.stdout.contains(&expected),
            "missing `{expected}` in:\n{}",
            run.stdout
        );
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[tokio::test]
async fn the_menu_ends_at_the_end_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_node(dir.path(), &["--name", "eof", "--offline"], "3\n").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("end of input"), "{}", run.stdout);
}

#[tokio::test]
async fn the_menu_survives_an_unreachable_relay_and_mines() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let input = "1\nws://127.0.0.1:1/ws/elsewhere\n1\nhttp://nope\n5\n5\n7\n6\n";
    let run = run_node(
        dir.path(),
        &[
            "--name",
            "lonely",
            "--relay",
            "ws://127.0.0.1:1/ws/lobby",
            "--threads",
            "1",
        ],
        input,
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.matches("could not connect").count(),
        2,
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("could not reach the relay at ws://127.0.0.1:1/ws/lobby"));
    assert!(
        run.stdout.contains("`http://nope` is not a relay URL"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("mining on 1 thread(s)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("mining stopped"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_menu_reports_a_dropped_connection_and_reconnects() {
    let relay = TestRelay::start().await;
    let room = relay.url("menu");
    let dir = tempfile::tempdir().unwrap();
    let mut child = node_command(dir.path(), &["--name", "menu", "--relay", &room])
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    // Reads until `needle` appears in the output after `from`.
    async fn read_until(
        stdout: &mut tokio::process::ChildStdout,
        seen: &mut String,
        from: usize,
        needle: &str,
    ) {
        let mut buffer = [0u8; 4096];
        tokio::time::timeout(TIMEOUT, async {
            while !seen[from..].contains(needle) {
                let read = stdout.read(&mut buffer).await.unwrap();
                assert!(read > 0, "the menu ended early:\n{seen}");
                seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no `{needle}` in:\n{seen}"));
    }
    read_until(&mut stdout, &mut seen, 0, "choose 1-8").await;
    assert!(seen.contains("joined room menu"), "{seen}");

    let addr = relay.addr;
    relay.stop().await;
    // Ask for the status until the menu has noticed the relay is gone.
    loop {
        let from = seen.len();
        stdin.write_all(b"7\n").await.unwrap();
        read_until(&mut stdout, &mut seen, from, "choose 1-8").await;
        if seen[from..].contains("connection: lost") {
            break;
        }
    }
    assert!(seen.contains("reconnecting by itself"), "{seen}");

    // The relay comes back where it was: the menu's node rejoins without being told.
    let relay = TestRelay::restart_on(addr).await;
    loop {
        let from = seen.len();
        stdin.write_all(b"7\n").await.unwrap();
        read_until(&mut stdout, &mut seen, from, "choose 1-8").await;
        if seen[from..].contains("connection: room menu") {
            break;
        }
    }
    relay.stop().await;

    // A new relay; the menu reconnects to it when told.
    let relay = TestRelay::start().await;
    let from = seen.len();
    stdin
        .write_all(format!("1\n{}\n", relay.url("again")).as_bytes())
        .await
        .unwrap();
    read_until(&mut stdout, &mut seen, from, "joined room again").await;
    stdin.write_all(b"6\n").await.unwrap();
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{seen}");
    relay.stop().await;
}

#[tokio::test]
async fn an_unreachable_relay_is_a_clear_error_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_node(
        dir.path(),
        &["--relay", "ws://127.0.0.1:1/ws/lobby", "status"],
        "",
    )
    .await;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("could not reach the relay at ws://127.0.0.1:1/ws/lobby"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn bad_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (args, message) in [
        (
            &["--network", "moon", "status"][..],
            "unknown network `moon`",
        ),
        (&["--room", "no/slash", "status"][..], "is not a room name"),
        (
            &["--offline", "send", "--to", "bob", "--amount", "1"][..],
            "drop --offline",
        ),
    ] {
        let mut argv = vec!["--name", "x"];
        argv.extend_from_slice(args);
        let run = run_node(dir.path(), &argv, "").await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
}

#[tokio::test]
async fn a_full_disk_stops_the_node_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = node::runtime::block_log_path(dir.path(), "tabchain-test");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    std::os::unix::fs::symlink("/dev/full", &log).unwrap();
    let run = run_node(dir.path(), &["--offline", "mine", "--blocks", "3"], "").await;
    assert_eq!(run.code, Some(6), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("the disk is full"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_another_network_are_a_clear_error() {
    let relay = TestRelay::start().await;
    let room = relay.url("foreign");
    let dir = tempfile::tempdir().unwrap();
    let local = start_node("local", dir.path()).await;
    local.connect(&room).await.unwrap();
    let run = run_node(
        &dir.path().join("visitor"),
        &[
            "--name",
            "visitor",
            "--network",
            "classroom",
            "--relay",
            &room,
            "status",
        ],
        "",
    )
    .await;
    assert_eq!(run.code, Some(5), "{}", run.stderr);
    assert!(run.stderr.contains("another network"), "{}", run.stderr);
    local.shutdown().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_by_peer_name_waits_for_the_hello() {
    let relay = TestRelay::start().await;
    let room = relay.url("names");
    let dir = tempfile::tempdir().unwrap();
    let bank = start_node("bank", dir.path()).await;
    let bob = start_node("bob", dir.path()).await;
    bank.connect(&room).await.unwrap();
    bob.connect(&room).await.unwrap();
    // The binary is `bank` itself (same data directory, so the same key), after the library
    // instance mined some coins and left.
    bank.mine_blocks(2).await.unwrap();
    common::wait_all(&[&bank, &bob], "bob has the coins' blocks", |s| {
        common::converged(s) && s[1].height == 2
    })
    .await;
    bank.shutdown().await;
    let run = run_node(
        &dir.path().join("bank"),
        &[
            "--name", "bank", "--relay", &room, "send", "--to", "bob", "--amount", "12", "--fee",
            "2", "--json",
        ],
        "",
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let sent = run.json();
    assert_eq!(sent["to"], serde_json::json!(bob.snapshot().address));
    assert_eq!(sent["amount"], 12);
    common::wait_all(&[&bob], "the payment in bob's mempool", |s| {
        s[0].mempool == 1
    })
    .await;

    let unknown = run_node(
        &dir.path().join("bank"),
        &[
            "--name",
            "bank",
            "--relay",
            &room,
            "--timeout",
            "1",
            "send",
            "--to",
            "nobody",
            "--amount",
            "1",
        ],
        "",
    )
    .await;
    assert_eq!(unknown.code, Some(4), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no peer named `nobody`"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("bob"),
        "known peers are listed: {}",
        unknown.stderr
    );
    bob.shutdown().await;
    relay.stop().await;
}

/// Issue 12: a rogue that said hello as `bob` got the coins when the user paid `bob`. A name two
/// peers claim is refused with both addresses; a pinned name pays the pinned address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_two_peers_claim_is_refused_until_it_is_pinned() {
    let relay = TestRelay::start().await;
    let room = relay.url("impostor");
    let dir = tempfile::tempdir().unwrap();
    let rogue_dir = tempfile::tempdir().unwrap();
    let bank = start_node("bank", dir.path()).await;
    let bob = start_node("bob", dir.path()).await;
    let rogue = start_node("bob", rogue_dir.path()).await;
    for node in [&bank, &bob, &rogue] {
        node.connect(&room).await.unwrap();
    }
    bank.mine_blocks(2).await.unwrap();
    common::wait_all(
        &[&bank, &bob, &rogue],
        "everyone has the coins' blocks",
        |s| common::converged(s) && s.iter().all(|s| s.height == 2),
    )
    .await;
    bank.shutdown().await;
    let bank_dir = dir.path().join("bank");
    let (real, fake) = (bob.snapshot().address, rogue.snapshot().address);
    let send = |to: &'static str| {
        let room = room.clone();
        let bank_dir = bank_dir.clone();
        async move {
            let args = [
                "--name", "bank", "--relay", &room, "send", "--to", to, "--amount", "5", "--json",
            ];
            run_node(&bank_dir, &args, "").await
        }
    };
    let refused = send("bob").await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    for address in [real, fake] {
        assert!(
            refused.stderr.contains(&address.to_hex()),
            "both candidates listed: {}",
            refused.stderr
        );
    }

    let pin = run_node(&bank_dir, &["pin", "Bob", &real.to_hex()], "").await;
    assert_eq!(pin.code, Some(0), "{}", pin.stderr);
    let sent = send("bob").await;
    assert_eq!(sent.code, Some(0), "{}", sent.stderr);
    assert_eq!(sent.json()["to"], serde_json::json!(real));
    let pins = run_node(&bank_dir, &["pins", "--json"], "").await;
    assert_eq!(pins.json()[0]["address"], serde_json::json!(real));
    bob.shutdown().await;
    rogue.shutdown().await;
    relay.stop().await;
}

/// Two `send`s back to back from one data directory: the second must not reuse the first's
/// nonce (it used to start again at 0, and one of the two payments was lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_twice_in_a_row_uses_the_next_nonce() {
    let relay = TestRelay::start().await;
    let room = relay.url("twice");
    let dir = tempfile::tempdir().unwrap();
    let bank = start_node("bank", dir.path()).await;
    let bob = start_node("bob", dir.path()).await;
    bank.connect(&room).await.unwrap();
    bob.connect(&room).await.unwrap();
    bank.mine_blocks(2).await.unwrap();
    common::wait_all(&[&bank, &bob], "bob has the coins' blocks", |s| {
        common::converged(s) && s[1].height == 2
    })
    .await;
    bank.shutdown().await;
    let to = bob.snapshot().address.to_string();
    let mut sent = Vec::new();
    for _ in 0..2 {
        let run = run_node(
            &dir.path().join("bank"),
            &[
                "--name", "bank", "--relay", &room, "send", "--to", &to, "--amount", "3", "--json",
            ],
            "",
        )
        .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        sent.push(run.json());
    }
    assert_ne!(sent[0]["id"], sent[1]["id"]);
    assert_eq!(sent[0]["nonce"], 0, "{}", sent[0]);
    assert_eq!(sent[1]["nonce"], 1, "{}", sent[1]);
    assert_eq!(sent[1]["state"], "pending");
    common::wait_all(&[&bob], "both payments in bob's mempool", |s| {
        s[0].mempool == 2
    })
    .await;
    bob.shutdown().await;
    relay.stop().await;
}
