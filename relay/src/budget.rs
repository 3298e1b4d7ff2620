//! Memory budgets over all connections together.
//!
//! Each connection's buffers are bounded on their own (see `ws` and `outbox`), but two of those
//! bounds are large (a message being received may hold `--max-frame-bytes`, a receiver's queue
//! `--peer-queue-bytes`), and 10,000 connections times a large bound is more memory than a relay
//! host has. Two budgets cap the sum:
//!
//! - [`MemoryBudgets::incoming`]: bytes of messages being received, all connections together.
//!   A reader takes from it as its message grows and gives back when the message is complete;
//!   when it is spent, readers wait (TCP pushes back on their senders) until messages complete or
//!   time out (`--message-timeout-secs`), so it can only delay, never wedge, the relay.
//! - [`MemoryBudgets::queued`]: bytes of forwarded frames waiting in outgoing queues. A frame is
//!   stored once however many receivers share it, and counted once, from the moment it is built
//!   until the last receiver has written or dropped it. A frame that would overspend it is refused
//!   to its sender (`rate_limited`): a relay that holds too much takes in no more, and readers
//!   that drain keep draining.
//!
//! Each budget also has a share per client address ([`AddressShare`], an IPv6 client by its /64):
//! one address may hold at most an eighth ([`ADDRESS_SHARE_OF_BUDGET`]) of either, so one
//! student's script that holds messages half-sent, or sends to members that never read, spends
//! its own share and is refused or waits there, while everyone else's messages go on. A frame is
//! charged to the address of its sender; a message being received to the address it comes from.

use crate::admission::AddressKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

/// The incoming budget counts in KiB, so a 32-bit permit count covers any budget a host can have.
pub(crate) const BUDGET_UNIT_BYTES: usize = 1024;

/// One client address may hold at most this fraction of each budget: 32 MiB of messages being
/// received and 64 MiB of queued frames by default, far beyond a whole class behind one school
/// address (a block is kilobytes), and small enough that seven such addresses still leave room.
pub const ADDRESS_SHARE_OF_BUDGET: usize = 8;

/// Addresses whose shares are remembered before the ones no connection holds are forgotten. The
/// next sweep waits until the map has doubled past what the last one kept, so a relay with more
/// connected addresses than this does not scan the map on every join.
const MAX_REMEMBERED_SHARES: usize = 4_096;

/// The shares by address, and the size at which the next sweep runs.
struct Shares {
    by_address: HashMap<AddressKey, Arc<AddressShare>>,
    sweep_at: usize,
}

pub(crate) struct MemoryBudgets {
    pub(crate) incoming: Arc<Semaphore>,
    incoming_units: usize,
    queued: Arc<AtomicUsize>,
    queued_limit: usize,
    /// Each connected address's share; a connection holds its address's for its life.
    shares: Mutex<Shares>,
    /// Each address's share: an eighth of each budget, but never less than one largest message
    /// (which could otherwise never pass), nor more than the budget.
    share_incoming_units: usize,
    share_queued_bytes: usize,
}

/// One client address's share of both budgets.
pub(crate) struct AddressShare {
    incoming: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    queued_limit: usize,
}

/// What a reader takes its message buffers from: the relay's incoming budget and, for a known
/// client, its address's share of it.
#[derive(Clone)]
pub(crate) struct IncomingBudget {
    pub(crate) relay: Arc<Semaphore>,
    pub(crate) address: Option<Arc<Semaphore>>,
}

impl MemoryBudgets {
    /// `largest_frame`: the largest frame a peer may send with its envelope, which one address's
    /// share must always be able to hold.
    pub(crate) fn new(
        incoming_bytes: usize,
        queued_bytes: usize,
        largest_frame: usize,
    ) -> MemoryBudgets {
        let units = (incoming_bytes / BUDGET_UNIT_BYTES).min(Semaphore::MAX_PERMITS);
        let frame_units = largest_frame.div_ceil(BUDGET_UNIT_BYTES);
        MemoryBudgets {
            incoming: Arc::new(Semaphore::new(units)),
            incoming_units: units,
            queued: Arc::new(AtomicUsize::new(0)),
            queued_limit: queued_bytes,
            shares: Mutex::new(Shares {
                by_address: HashMap::new(),
                sweep_at: MAX_REMEMBERED_SHARES,
            }),
            share_incoming_units: (units / ADDRESS_SHARE_OF_BUDGET)
                .max(frame_units)
                .min(units)
                .max(1),
            share_queued_bytes: (queued_bytes / ADDRESS_SHARE_OF_BUDGET)
                .max(largest_frame)
                .min(queued_bytes),
        }
    }

    /// The share of `client`'s address, made when its first connection comes.
    pub(crate) fn share(&self, client: std::net::IpAddr) -> Arc<AddressShare> {
        let mut shares = self
            .shares
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if shares.by_address.len() >= shares.sweep_at {
            // A share no connection holds any more holds nothing either: forget it.
            shares
                .by_address
                .retain(|_, share| Arc::strong_count(share) > 1);
            shares.sweep_at = (2 * shares.by_address.len()).max(MAX_REMEMBERED_SHARES);
        }
        let (incoming_units, queued_limit) = (self.share_incoming_units, self.share_queued_bytes);
        shares
            .by_address
            .entry(AddressKey::of(client))
            .or_insert_with(|| {
                Arc::new(AddressShare {
                    incoming: Arc::new(Semaphore::new(incoming_units)),
                    queued: Arc::new(AtomicUsize::new(0)),
                    queued_limit,
                })
            })
            .clone()
    }

    /// The incoming budget a reader from `share`'s address takes from.
    pub(crate) fn incoming_for(&self, share: Option<&Arc<AddressShare>>) -> IncomingBudget {
        IncomingBudget {
            relay: self.incoming.clone(),
            address: share.map(|share| share.incoming.clone()),
        }
    }

    /// Bytes of forwarded frames held in queues now.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Both budgets in use now.
    pub(crate) fn gauges(&self) -> crate::metrics::MemoryGauges {
        let held = self.incoming_units - self.incoming.available_permits();
        crate::metrics::MemoryGauges {
            receiving_bytes: held * BUDGET_UNIT_BYTES,
            queued_bytes: self.queued_bytes(),
        }
    }

    /// Makes `text` a frame counted in the queued budget, and in its sender's share, until its
    /// last copy is gone; `None` when it would overspend either.
    pub(crate) fn queued_frame(
        &self,
        text: String,
        sender: Option<&Arc<AddressShare>>,
    ) -> Option<Utf8Bytes> {
        let length = text.len();
        let share = match sender {
            Some(share) => {
                let before = share.queued.fetch_add(length, Ordering::Relaxed);
                if before + length > share.queued_limit {
                    share.queued.fetch_sub(length, Ordering::Relaxed);
                    return None;
                }
                Some(share.queued.clone())
            }
            None => None,
        };
        let before = self.queued.fetch_add(length, Ordering::Relaxed);
        if before + length > self.queued_limit {
            self.queued.fetch_sub(length, Ordering::Relaxed);
            if let Some(share) = share {
                share.fetch_sub(length, Ordering::Relaxed);
            }
            return None;
        }
        let counted = Counted {
            text,
            gauge: self.queued.clone(),
            share,
        };
        let bytes = Bytes::from_owner(counted);
        // SAFETY: the bytes are those of a `String`, so they are UTF-8 (checking again would scan
        // every forwarded frame a second time).
        Some(unsafe { Utf8Bytes::from_bytes_unchecked(bytes) })
    }
}

/// A frame's text that gives its bytes back to the queued budget when the last copy drops.
struct Counted {
    text: String,
    gauge: Arc<AtomicUsize>,
    /// The sender's share, when the sender is a known client.
    share: Option<Arc<AtomicUsize>>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.gauge.fetch_sub(self.text.len(), Ordering::Relaxed);
        if let Some(share) = &self.share {
            share.fetch_sub(self.text.len(), Ordering::Relaxed);
        }
    }
}

/// What one reader holds of the incoming budget (and of its address's share).
#[derive(Default)]
pub(crate) struct IncomingHold {
    permit: Option<OwnedSemaphorePermit>,
    address: Option<OwnedSemaphorePermit>,
}

impl IncomingHold {
    /// Units held now.
    fn units(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, |permit| permit.num_permits())
    }

    /// Grows the hold to cover `bytes`, waiting while the address's share or the budget is
    /// spent (the share first: an address over its share waits without holding any more of the
    /// relay's budget).
    pub(crate) async fn cover(&mut self, budget: &IncomingBudget, bytes: usize) {
        let wanted = bytes.div_ceil(BUDGET_UNIT_BYTES);
        let missing = wanted.saturating_sub(self.units());
        if missing == 0 {
            return;
        }
        if let Some(share) = &budget.address {
            let Ok(more) = share.clone().acquire_many_owned(missing as u32).await else {
                return;
            };
            merge(&mut self.address, more);
        }
        let Ok(more) = budget
            .relay
            .clone()
            .acquire_many_owned(missing as u32)
            .await
        else {
            // The semaphore is never closed.
            return;
        };
        merge(&mut self.permit, more);
    }
}

fn merge(held: &mut Option<OwnedSemaphorePermit>, more: OwnedSemaphorePermit) {
    match held {
        Some(permit) => permit.merge(more),
        None => *held = Some(more),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_frames_count_once_until_the_last_copy_goes() {
        let budgets = MemoryBudgets::new(1 << 20, 100, 0);
        let frame = budgets.queued_frame("x".repeat(60), None).unwrap();
        let copy = frame.clone();
        assert_eq!(budgets.queued_bytes(), 60);
        assert!(budgets.queued_frame("y".repeat(50), None).is_none());
        assert_eq!(budgets.queued_bytes(), 60);
        drop(frame);
        assert_eq!(budgets.queued_bytes(), 60);
        drop(copy);
        assert_eq!(budgets.queued_bytes(), 0);
        assert_eq!(
            budgets.queued_frame("y".repeat(50), None).unwrap().len(),
            50
        );
    }

    #[test]
    fn one_address_queues_only_its_share() {
        let budgets = MemoryBudgets::new(1 << 20, 800, 0);
        let flooder = budgets.share("192.0.2.1".parse().unwrap());
        let other = budgets.share("192.0.2.2".parse().unwrap());
        let held = budgets
            .queued_frame("x".repeat(100), Some(&flooder))
            .unwrap();
        assert!(
            budgets
                .queued_frame("x".to_string(), Some(&flooder))
                .is_none(),
            "over its eighth"
        );
        assert!(budgets
            .queued_frame("y".repeat(100), Some(&other))
            .is_some());
        drop(held);
        assert!(budgets
            .queued_frame("x".repeat(100), Some(&flooder))
            .is_some());
        // An IPv6 client's share is its /64's.
        let a = budgets.share("2001:db8::1".parse().unwrap());
        let b = budgets.share("2001:db8::2".parse().unwrap());
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[tokio::test]
    async fn incoming_holds_grow_and_give_back() {
        let budgets = MemoryBudgets::new(4 * BUDGET_UNIT_BYTES, 0, 0);
        let mut hold = IncomingHold::default();
        let budget = budgets.incoming_for(None);
        hold.cover(&budget, 1).await;
        hold.cover(&budget, 3 * BUDGET_UNIT_BYTES).await;
        assert_eq!(budgets.incoming.available_permits(), 1);
        drop(hold);
        assert_eq!(budgets.incoming.available_permits(), 4);
    }

    #[tokio::test]
    async fn an_address_over_its_incoming_share_waits_without_taking_the_relays() {
        let budgets = MemoryBudgets::new(16 * BUDGET_UNIT_BYTES, 0, 0);
        let share = budgets.share("192.0.2.1".parse().unwrap());
        let budget = budgets.incoming_for(Some(&share));
        let mut first = IncomingHold::default();
        first.cover(&budget, 2 * BUDGET_UNIT_BYTES).await;
        let mut second = IncomingHold::default();
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            second.cover(&budget, BUDGET_UNIT_BYTES),
        )
        .await;
        assert!(waiting.is_err(), "the share (2 of 16 units) is spent");
        assert_eq!(budgets.incoming.available_permits(), 14);
        drop(first);
        second.cover(&budget, BUDGET_UNIT_BYTES).await;
    }
}
