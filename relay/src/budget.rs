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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

/// The incoming budget counts in KiB, so a 32-bit permit count covers any budget a host can have.
pub(crate) const BUDGET_UNIT_BYTES: usize = 1024;

pub(crate) struct MemoryBudgets {
    pub(crate) incoming: Arc<Semaphore>,
    incoming_units: usize,
    queued: Arc<AtomicUsize>,
    queued_limit: usize,
}

impl MemoryBudgets {
    pub(crate) fn new(incoming_bytes: usize, queued_bytes: usize) -> MemoryBudgets {
        let units = (incoming_bytes / BUDGET_UNIT_BYTES).min(Semaphore::MAX_PERMITS);
        MemoryBudgets {
            incoming: Arc::new(Semaphore::new(units)),
            incoming_units: units,
            queued: Arc::new(AtomicUsize::new(0)),
            queued_limit: queued_bytes,
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

    /// Makes `text` a frame counted in the queued budget until its last copy is gone, or `None`
    /// when it would overspend the budget.
    pub(crate) fn queued_frame(&self, text: String) -> Option<Utf8Bytes> {
        let length = text.len();
        let before = self.queued.fetch_add(length, Ordering::Relaxed);
        if before + length > self.queued_limit {
            self.queued.fetch_sub(length, Ordering::Relaxed);
            return None;
        }
        let counted = Counted {
            text,
            gauge: self.queued.clone(),
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
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.gauge.fetch_sub(self.text.len(), Ordering::Relaxed);
    }
}

/// What one reader holds of the incoming budget.
#[derive(Default)]
pub(crate) struct IncomingHold {
    permit: Option<OwnedSemaphorePermit>,
}

impl IncomingHold {
    /// Units held now.
    fn units(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, |permit| permit.num_permits())
    }

    /// Grows the hold to cover `bytes`, waiting while the budget is spent.
    pub(crate) async fn cover(&mut self, budget: &Arc<Semaphore>, bytes: usize) {
        let wanted = bytes.div_ceil(BUDGET_UNIT_BYTES);
        let missing = wanted.saturating_sub(self.units());
        if missing == 0 {
            return;
        }
        let Ok(more) = budget.clone().acquire_many_owned(missing as u32).await else {
            // The semaphore is never closed.
            return;
        };
        match &mut self.permit {
            Some(permit) => permit.merge(more),
            None => self.permit = Some(more),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_frames_count_once_until_the_last_copy_goes() {
        let budgets = MemoryBudgets::new(1 << 20, 100);
        let frame = budgets.queued_frame("x".repeat(60)).unwrap();
        let copy = frame.clone();
        assert_eq!(budgets.queued_bytes(), 60);
        assert!(budgets.queued_frame("y".repeat(50)).is_none());
        assert_eq!(budgets.queued_bytes(), 60);
        drop(frame);
        assert_eq!(budgets.queued_bytes(), 60);
        drop(copy);
        assert_eq!(budgets.queued_bytes(), 0);
        assert_eq!(budgets.queued_frame("y".repeat(50)).unwrap().len(), 50);
    }

    #[tokio::test]
    async fn incoming_holds_grow_and_give_back() {
        let budgets = MemoryBudgets::new(4 * BUDGET_UNIT_BYTES, 0);
        let mut hold = IncomingHold::default();
        hold.cover(&budgets.incoming, 1).await;
        hold.cover(&budgets.incoming, 3 * BUDGET_UNIT_BYTES).await;
        assert_eq!(budgets.incoming.available_permits(), 1);
        drop(hold);
        assert_eq!(budgets.incoming.available_permits(), 4);
    }
}
