//! The interactive menu, in the spirit of the original .NET console node: a numbered list, one
//! line of input per answer. Nothing typed can end it except `6` (or the end of input): a bad
//! choice, a bad number, an unknown peer, an unreachable relay or a dropped connection each get
//! a message and the menu again.

use crate::address_book;
use crate::app::{resolve_now, AppError};
use crate::cli::{relay_url, Settings};
use crate::report;
use crate::runtime::{Connection, NodeHandle};
use std::io::Write;
use tokio::sync::mpsc;

const MENU: &str = concat!(
    "  1) connect to a room\n",
    "  2) add a transaction\n",
    "  3) show the chain\n",
    "  4) show balances\n",
    "  5) mine (start or stop)\n",
    "  6) exit\n",
    "  7) status\n",
    "  8) peers",
);

/// Runs the menu until `6` or the end of input.
pub async fn run(
    handle: &NodeHandle,
    settings: &Settings,
    out: &mut dyn Write,
    mut input: mpsc::Receiver<String>,
) -> Result<(), AppError> {
    let snapshot = handle.snapshot();
    writeln!(
        out,
        "tabchain node {} on {} — address {}",
        snapshot.name, snapshot.network, snapshot.address
    )?;
    writeln!(
        out,
        "chain loaded: height {} ({} stored blocks), data in {}",
        snapshot.height,
        snapshot.stored_blocks,
        settings.data_dir.display()
    )?;
    // What the store had to repair at start is said here, not only in the log.
    if snapshot.truncated_bytes > 0 {
        writeln!(
            out,
            "warning: the block store ended in a torn record (a crash?): {} byte(s) cut off; the blocks before it loaded, the rest will sync again",
            snapshot.truncated_bytes
        )?;
    }
    if snapshot.rejected_stored_blocks > 0 {
        writeln!(
            out,
            "warning: {} stored block(s) broke a rule and were deleted from the store",
            snapshot.rejected_stored_blocks
        )?;
    }
    let mut url = settings.relay_url.clone();
    // A dropped connection comes back by itself; the status line above the menu says so.
    handle.set_auto_reconnect(true).await?;
    if !settings.offline {
        connect(handle, &url, out).await?;
    }
    loop {
        show_connection(handle, out)?;
        writeln!(out, "{MENU}")?;
        write!(out, "choose 1-8: ")?;
        out.flush()?;
        let Some(line) = input.recv().await else {
            writeln!(out, "\nend of input: exiting")?;
            break;
        };
        match line.trim() {
            "" => {}
            "1" => {
                let answer = ask(
                    out,
                    &mut input,
                    &format!("relay URL or room name [{url}]: "),
                )
                .await?;
                let Some(answer) = answer else { break };
                let target = if answer.is_empty() {
                    Ok(url.clone())
                } else if answer.contains("://") {
                    relay_url(&answer, None)
                } else {
                    relay_url(&url, Some(&answer))
                };
                match target {
                    Ok(target) => {
                        if connect(handle, &target, out).await? {
                            url = target;
                        }
                    }
                    Err(error) => writeln!(out, "{error}")?,
                }
            }
            "2" => {
                if !add_transaction(handle, settings, out, &mut input).await? {
                    break;
                }
            }
            "3" => {
                let book = address_book::load(&settings.data_dir).unwrap_or_default();
                let (view, names) = handle
                    .inspect(move |node| {
                        let names = report::names(node, &book);
                        let limit = Some(crate::cli::DEFAULT_CHAIN_LIMIT);
                        (report::chain_view(node, &names, limit), names)
                    })
                    .await?;
                report::write_chain(out, &view, &names)?;
            }
            "4" => {
                let book = address_book::load(&settings.data_dir).unwrap_or_default();
                let rows = handle
                    .inspect(move |node| report::balances_view(node, &report::names(node, &book)))
                    .await?;
                report::write_balances(out, &rows)?;
            }
            "5" => {
                let snapshot = handle.snapshot();
                if snapshot.mining {
                    handle.set_mining(false).await?;
                    writeln!(
                        out,
                        "mining stopped; {} block(s) mined this session",
                        snapshot.blocks_mined
                    )?;
                } else {
                    handle.set_mining(true).await?;
                    writeln!(
                        out,
                        "mining on {} thread(s); choose 5 again to stop",
                        snapshot.miner_threads
                    )?;
                }
            }
            "6" | "exit" | "quit" | "q" => {
                writeln!(out, "bye")?;
                break;
            }
            "7" => report::write_status(out, &handle.snapshot())?,
            "8" => report::write_peers(out, &handle.snapshot())?,
            other => writeln!(out, "`{other}` is not a choice: type a number from 1 to 8")?,
        }
        if let Some(fatal) = handle.snapshot().fatal.clone() {
            return Err(AppError::Storage(fatal));
        }
    }
    Ok(())
}

/// Prints a prompt and reads one line; `None` at the end of input.
async fn ask(
    out: &mut dyn Write,
    input: &mut mpsc::Receiver<String>,
    prompt: &str,
) -> Result<Option<String>, AppError> {
    write!(out, "{prompt}")?;
    out.flush()?;
    Ok(input.recv().await.map(|line| line.trim().to_owned()))
}

/// Joins the room at `url`; prints what happened. Returns whether it worked.
async fn connect(handle: &NodeHandle, url: &str, out: &mut dyn Write) -> Result<bool, AppError> {
    writeln!(out, "connecting to {url} ...")?;
    match handle.connect(url).await {
        Ok(info) => {
            writeln!(
                out,
                "joined room {} as peer {} with {} other peer(s); syncing in the background",
                info.room,
                info.peer_id.short(),
                info.peers.len()
            )?;
            Ok(true)
        }
        Err(crate::runtime::NodeError::Stopped(reason)) => Err(AppError::Stopped(reason)),
        Err(error) => {
            writeln!(out, "could not connect: {error}")?;
            writeln!(out, "choose 1 to try again, or keep working offline")?;
            Ok(false)
        }
    }
}

fn show_connection(handle: &NodeHandle, out: &mut dyn Write) -> Result<(), AppError> {
    let snapshot = handle.snapshot();
    let connection = match &snapshot.connection {
        Connection::Offline => "offline".to_owned(),
        Connection::Connected { room, .. } => format!(
            "room {room}, {} peer(s){}",
            snapshot.peers.len(),
            if snapshot.syncing { ", syncing" } else { "" }
        ),
        Connection::Lost { reason, .. } => match &snapshot.reconnecting {
            Some(retry) => format!(
                "connection lost ({}); reconnecting by itself (attempt {}), or choose 1",
                crate::sanitize::printable(reason),
                retry.attempt
            ),
            None => format!(
                "connection lost ({}); choose 1 to reconnect",
                crate::sanitize::printable(reason)
            ),
        },
    };
    writeln!(
        out,
        "\n[{}] height {} | balance {} | {}{}",
        snapshot.name,
        snapshot.height,
        snapshot.balance,
        connection,
        if snapshot.mining { " | mining" } else { "" }
    )?;
    Ok(())
}

/// Asks for a recipient, an amount and a fee, and sends. Returns false at the end of input.
async fn add_transaction(
    handle: &NodeHandle,
    settings: &Settings,
    out: &mut dyn Write,
    input: &mut mpsc::Receiver<String>,
) -> Result<bool, AppError> {
    let Some(to) = ask(
        out,
        input,
        "to (a 40-digit address, a pinned name or a peer's name): ",
    )
    .await?
    else {
        return Ok(false);
    };
    let book = match address_book::load(&settings.data_dir) {
        Ok(book) => book,
        Err(error) => {
            writeln!(out, "{error}; only addresses and peers' names work")?;
            Default::default()
        }
    };
    let address = match resolve_now(&handle.snapshot(), &book, &to) {
        Ok(recipient) => {
            if let Some(name) = &recipient.name {
                writeln!(out, "paying {name} at {}", recipient.address)?;
            }
            recipient.address
        }
        Err(error) => {
            writeln!(out, "{error}")?;
            return Ok(true);
        }
    };
    let Some(amount) = ask(out, input, "amount: ").await? else {
        return Ok(false);
    };
    let amount = match amount.parse::<u64>() {
        Ok(amount) => amount,
        Err(_) => {
            writeln!(
                out,
                "`{amount}` is not a number: give a whole amount of coins"
            )?;
            return Ok(true);
        }
    };
    let Some(fee) = ask(out, input, "fee [0]: ").await? else {
        return Ok(false);
    };
    let fee = if fee.is_empty() {
        0
    } else {
        match fee.parse::<u64>() {
            Ok(fee) => fee,
            Err(_) => {
                writeln!(out, "`{fee}` is not a number: give a whole fee in coins")?;
                return Ok(true);
            }
        }
    };
    match handle.send(address, amount, fee).await {
        Ok(id) => writeln!(out, "transaction {id} stored, queued and announced")?,
        Err(crate::runtime::NodeError::Stopped(reason)) => return Err(AppError::Stopped(reason)),
        Err(error) => writeln!(out, "refused: {error}")?,
    }
    Ok(true)
}

/// Reads stdin line by line on its own thread (stdin is blocking) into a small queue; the
/// receiver yields `None` at the end of input.
pub fn stdin_lines() -> mpsc::Receiver<String> {
    // A person types slower than the node answers; 16 lines is plenty for piped scripts too,
    // since the reader simply waits when the queue is full.
    let (lines, receiver) = mpsc::channel(16);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            use std::io::BufRead;
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                // Bytes, not `read_line`: a line that is not UTF-8 is a bad answer, not the end.
                match stdin.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                        if lines.blocking_send(text).is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .expect("the OS can start the stdin thread");
    receiver
}
