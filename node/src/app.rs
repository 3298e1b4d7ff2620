//! The subcommands (connect, sync, act, exit) and the errors of the program; [`crate::program`]
//! starts the node and picks between them and the menu. Every failure is an [`AppError`] with its own
//! exit code, so scripts can tell "the relay is down" from "the peer never said hello".

use crate::address_book::{self, BookError};
use crate::cli::{Command, Settings, SettingsError};
use crate::report;
use crate::runtime::{
    Connection, NodeError, NodeHandle, NodeOptions, RuntimeEvent, Snapshot, StartError, WaitError,
};
use crate::transport::ConnectError;
use serde::Serialize;
use shared::node::SendError;
use shared::view::{self, AddressBook, PeerState, Recipient, RecipientError};
use shared::Address;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::broadcast;

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("lost the connection to the relay: {0}")]
    ConnectionLost(String),
    #[error("not synced after {timeout:?}: height {height}{}, {pending} peer(s) still owe their hello", .target.map(|t| format!(" of {t}")).unwrap_or_default())]
    SyncTimeout {
        timeout: Duration,
        height: u64,
        target: Option<u64>,
        pending: usize,
    },
    #[error("no peer named `{name}` said hello within {timeout:?} (peers: {known}); give a name or a 40-digit address")]
    PeerNotFound {
        name: String,
        timeout: Duration,
        known: String,
    },
    #[error(transparent)]
    Recipient(RecipientError),
    #[error(transparent)]
    AddressBook(#[from] BookError),
    #[error("no peer to send to within {0:?}: the transaction would go nowhere")]
    NoPeers(Duration),
    #[error("every peer in the room is on another network or refused us: {0}")]
    Refused(String),
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("the transaction was refused: {0}")]
    Rejected(SendError),
    #[error("the node stopped: {0}")]
    Stopped(String),
    #[error("could not write the output: {0}")]
    Output(#[from] io::Error),
}

impl AppError {
    /// The process exit code; the `--help` text lists them.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Settings(_) | AppError::Usage(_) | AppError::Recipient(_) => 2,
            AppError::Connect(_) | AppError::ConnectionLost(_) => 3,
            AppError::SyncTimeout { .. } | AppError::PeerNotFound { .. } | AppError::NoPeers(_) => {
                4
            }
            AppError::Refused(_) => 5,
            AppError::Storage(_) | AppError::AddressBook(_) => 6,
            AppError::Start(StartError::Store(_)) => 6,
            AppError::Rejected(_) => 7,
            AppError::Start(StartError::Key(_)) | AppError::Stopped(_) | AppError::Output(_) => 1,
        }
    }
}

impl From<NodeError> for AppError {
    fn from(error: NodeError) -> AppError {
        match error {
            NodeError::Stopped(reason) => AppError::Stopped(reason),
            NodeError::Connect(error) => AppError::Connect(error),
            NodeError::Send(error) => AppError::Rejected(error),
            NodeError::Storage(reason) => AppError::Storage(reason),
        }
    }
}

/// Turns a failed wait into the error a person should see.
fn wait_error(error: WaitError, snapshot: &Snapshot, timeout: Duration) -> AppError {
    match error {
        WaitError::Stopped(reason) => AppError::Storage(reason),
        WaitError::Timeout(_) => match &snapshot.connection {
            Connection::Lost { reason, .. } => AppError::ConnectionLost(reason.clone()),
            _ => AppError::SyncTimeout {
                timeout,
                height: snapshot.height,
                target: snapshot.sync_target_height,
                pending: snapshot
                    .peers
                    .iter()
                    .filter(|p| p.state == PeerState::Pending)
                    .count(),
            },
        },
    }
}

pub fn node_options(settings: &Settings) -> NodeOptions {
    NodeOptions {
        name: settings.name.clone(),
        params: settings.params.clone(),
        data_dir: settings.data_dir.clone(),
        threads: settings.threads,
    }
}

/// Runs one subcommand on a started node: connect, sync, act.
pub async fn run_command(
    handle: &NodeHandle,
    settings: &Settings,
    command: Command,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    if matches!(command, Command::Send { .. }) && settings.offline {
        return Err(AppError::Usage(
            "send needs peers to hear the transaction: drop --offline".into(),
        ));
    }
    let snapshot = connect_and_sync(handle, settings).await?;
    match command {
        Command::Status(flag) => {
            if flag.json {
                print_json(out, snapshot.as_ref())?;
            } else {
                report::write_status(out, &snapshot)?;
            }
        }
        Command::Peers(flag) => {
            if flag.json {
                print_json(out, &snapshot.peers)?;
            } else {
                report::write_peers(out, &snapshot)?;
            }
        }
        Command::Chain { limit, all, json } => {
            let limit = (!all).then_some(limit);
            let book = address_book::load(&settings.data_dir)?;
            let (view, names) = handle
                .inspect(move |node| {
                    let names = report::names(node, &book);
                    (report::chain_view(node, &names, limit), names)
                })
                .await?;
            if json {
                print_json(out, &view)?;
            } else {
                report::write_chain(out, &view, &names)?;
            }
        }
        Command::Balances(flag) => {
            let book = address_book::load(&settings.data_dir)?;
            let rows = handle
                .inspect(move |node| report::balances_view(node, &report::names(node, &book)))
                .await?;
            if flag.json {
                print_json(out, &rows)?;
            } else {
                report::write_balances(out, &rows)?;
            }
        }
        Command::Send {
            to,
            amount,
            fee,
            json,
        } => {
            let book = address_book::load(&settings.data_dir)?;
            let recipient = resolve_recipient(handle, &book, &to, settings.timeout).await?;
            let address = recipient.address;
            handle
                .wait_for(settings.timeout, |s| s.ready_peers().next().is_some())
                .await
                .map_err(|_| AppError::NoPeers(settings.timeout))?;
            // The transaction is on disk when `send` returns, so the next run knows its nonce.
            let id = handle.send(address, amount, fee).await?;
            let (nonce, state) = handle
                .inspect(move |node| {
                    node.own_transactions()
                        .find(|own| own.id == id)
                        .map(|own| (own.tx.nonce, own_tx_state(&own.state)))
                })
                .await?
                .unwrap_or((0, "unknown"));
            // Leaving the room sends what is queued first, so the payment has left when we exit.
            handle.disconnect().await?;
            #[derive(Serialize)]
            struct Sent<'a> {
                id: shared::Hash,
                to: Address,
                to_name: Option<&'a str>,
                amount: u64,
                fee: u64,
                nonce: u64,
                state: &'static str,
            }
            if json {
                print_json(
                    out,
                    &Sent {
                        id,
                        to: address,
                        to_name: recipient.name.as_deref(),
                        amount,
                        fee,
                        nonce,
                        state,
                    },
                )?;
            } else {
                let to = match &recipient.name {
                    Some(name) => format!("{name} ({address})"),
                    None => address.to_hex(),
                };
                writeln!(
                    out,
                    "sent {amount} to {to} (fee {fee}): transaction {id}, nonce {nonce}, {state}"
                )?;
            }
        }
        Command::Mine {
            blocks,
            forever: _,
            json,
        } => mine(handle, blocks, json, out).await?,
        // Answered from the address book before the node starts (`address_book_command`).
        Command::Pin { .. } | Command::Unpin { .. } | Command::Pins(_) => {}
    }
    Ok(())
}

/// Joins the room and waits until synced; offline, returns the local state at once. Fails if
/// the relay is unreachable, the connection drops, the wait times out, or every peer refused us.
pub async fn connect_and_sync(
    handle: &NodeHandle,
    settings: &Settings,
) -> Result<Arc<Snapshot>, AppError> {
    if settings.offline {
        return Ok(handle.snapshot());
    }
    handle.connect(&settings.relay_url).await?;
    let synced = handle
        .wait_for(settings.timeout, |s| {
            s.is_synced() || matches!(s.connection, Connection::Lost { .. })
        })
        .await;
    let snapshot = match synced {
        Ok(snapshot) => snapshot,
        Err(error) => return Err(wait_error(error, &handle.snapshot(), settings.timeout)),
    };
    if let Connection::Lost { reason, .. } = &snapshot.connection {
        return Err(AppError::ConnectionLost(reason.clone()));
    }
    let refusals: Vec<String> = snapshot
        .peers
        .iter()
        .filter_map(|peer| peer.refusal.clone())
        .collect();
    if !snapshot.peers.is_empty() && snapshot.ready_peers().next().is_none() && !refusals.is_empty()
    {
        return Err(AppError::Refused(refusals.join("; ")));
    }
    Ok(snapshot)
}

/// The `pin`, `unpin` and `pins` commands, which need no node; `None` for every other command.
pub fn address_book_command(
    settings: &Settings,
    command: &Command,
    out: &mut dyn Write,
) -> Option<Result<(), AppError>> {
    let run = || -> Result<(), AppError> {
        let mut book = address_book::load(&settings.data_dir)?;
        match command {
            Command::Pin { name, address } => {
                let address = view::parse_address(address).ok_or_else(|| {
                    AppError::Usage(format!("`{address}` is not a 40-digit hex address"))
                })?;
                let name = book
                    .pin(name, address)
                    .map_err(|error| AppError::Usage(error.to_string()))?;
                address_book::save(&settings.data_dir, &book)?;
                writeln!(out, "pinned {name} to {address}")?;
            }
            Command::Unpin { name } => {
                if !book.unpin(name) {
                    return Err(AppError::Usage(format!("`{name}` is not pinned")));
                }
                address_book::save(&settings.data_dir, &book)?;
                writeln!(out, "unpinned {}", view::sanitize_name(name))?;
            }
            Command::Pins(flag) if flag.json => print_json(out, &book.pins())?,
            Command::Pins(_) => report::write_pins(out, &book)?,
            _ => unreachable!("only address book commands get here"),
        }
        Ok(())
    };
    matches!(
        command,
        Command::Pin { .. } | Command::Unpin { .. } | Command::Pins(_)
    )
    .then(run)
}

/// Who `to` means, by [`view::resolve_recipient`] on the peers we have now.
pub fn resolve_now(
    snapshot: &Snapshot,
    book: &AddressBook,
    to: &str,
) -> Result<Recipient, RecipientError> {
    view::resolve_recipient(to, &snapshot.peers, book, &snapshot.address)
}

/// An address, a pinned name, or a peer's name (waiting up to `timeout` for a peer of that name
/// to say hello). A name two peers say is refused at once with both addresses.
pub async fn resolve_recipient(
    handle: &NodeHandle,
    book: &AddressBook,
    to: &str,
    timeout: Duration,
) -> Result<Recipient, AppError> {
    let settled = |result: &Result<Recipient, RecipientError>| {
        !matches!(result, Err(RecipientError::Unknown { .. }))
    };
    let found = handle
        .wait_for(timeout, |s| settled(&resolve_now(s, book, to)))
        .await;
    match found {
        Ok(snapshot) => resolve_now(&snapshot, book, to).map_err(AppError::Recipient),
        Err(WaitError::Stopped(reason)) => Err(AppError::Stopped(reason)),
        Err(WaitError::Timeout(_)) => {
            let snapshot = handle.snapshot();
            if let Connection::Lost { reason, .. } = &snapshot.connection {
                return Err(AppError::ConnectionLost(reason.clone()));
            }
            let known = match resolve_now(&snapshot, book, to) {
                Err(RecipientError::Unknown { known, .. }) if !known.is_empty() => known
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "none".into(),
            };
            Err(AppError::PeerNotFound {
                name: view::sanitize_name(to),
                timeout,
                known,
            })
        }
    }
}

/// How `send` names the state of one of our transactions.
fn own_tx_state(state: &shared::node::OwnTxState) -> &'static str {
    match state {
        shared::node::OwnTxState::Pending => "pending",
        shared::node::OwnTxState::Confirmed { .. } => "confirmed",
        shared::node::OwnTxState::Reversed { .. } => "reversed",
        shared::node::OwnTxState::Dropped { .. } => "dropped",
    }
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum MineLine {
    Mined {
        height: u64,
        hash: shared::Hash,
    },
    Done {
        blocks_mined: u64,
        height: u64,
        hash_rate: f64,
    },
}

/// Mines until `blocks` of our blocks became the tip (forever without a number); prints a line
/// per block. Ctrl-C stops it cleanly.
async fn mine(
    handle: &NodeHandle,
    blocks: Option<u64>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    if blocks.is_none() {
        // Mining until Ctrl-C outlives relay restarts: a dropped connection comes back by itself.
        handle.set_auto_reconnect(true).await?;
    }
    let mut events = handle.subscribe();
    let before = handle.snapshot();
    let (start, hashes_before) = (before.blocks_mined, before.hashes);
    let started_at = std::time::Instant::now();
    let done = |snapshot: &Snapshot| blocks.is_some_and(|n| snapshot.blocks_mined >= start + n);
    match blocks {
        Some(blocks) => handle.mine_blocks(blocks).await?,
        None => handle.set_mining(true).await?,
    }
    let threads = handle.snapshot().miner_threads;
    tracing::info!(threads, "mining");
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut snapshots = handle.watch();
    let print_event = |event: RuntimeEvent, out: &mut dyn Write| -> Result<(), AppError> {
        match event {
            RuntimeEvent::Mined { height, hash } if json => {
                print_json(out, &MineLine::Mined { height, hash })
            }
            RuntimeEvent::Mined { height, hash } => {
                Ok(writeln!(out, "mined block {height} {hash}")?)
            }
            RuntimeEvent::Fatal(reason) => Err(AppError::Storage(reason)),
            _ => Ok(()),
        }
    };
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => print_event(event, out)?,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(AppError::Stopped(handle.snapshot().fatal.clone().unwrap_or_default()))
                }
            },
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return Err(AppError::Stopped(handle.snapshot().fatal.clone().unwrap_or_default()));
                }
            }
            _ = &mut interrupted => break,
        }
        let snapshot = snapshots.borrow().clone();
        if let Some(fatal) = &snapshot.fatal {
            return Err(AppError::Storage(fatal.clone()));
        }
        if done(&snapshot) {
            // The runtime sends a step's events before it publishes the step's snapshot, so the
            // last blocks' events are already queued: print them before the summary.
            while let Ok(event) = events.try_recv() {
                print_event(event, out)?;
            }
            break;
        }
    }
    handle.set_mining(false).await?;
    let snapshot = handle.snapshot();
    let mined = snapshot.blocks_mined - start;
    let elapsed = started_at.elapsed().as_secs_f64();
    let hash_rate = if elapsed > 0.0 {
        (snapshot.hashes - hashes_before) as f64 / elapsed
    } else {
        0.0
    };
    if json {
        print_json(
            out,
            &MineLine::Done {
                blocks_mined: mined,
                height: snapshot.height,
                hash_rate,
            },
        )?;
    } else {
        writeln!(
            out,
            "mined {mined} block(s) in {elapsed:.1} s; height {}; {} on {} thread(s)",
            snapshot.height,
            report::format_rate(hash_rate),
            threads
        )?;
    }
    if !matches!(snapshot.connection, Connection::Offline) {
        handle.disconnect().await?;
    }
    Ok(())
}

fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), AppError> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(())
}
