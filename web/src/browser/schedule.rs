//! When the driver next calls [`shared::node::Node::handle_tick`]. The node says when it needs
//! time to pass ([`shared::node::Node::poll_timeout`]: a request that times out, a paced status,
//! a score that decays); the driver re-arms one timer for that instant after every call into the
//! node, and sleeps otherwise. This is the pure half, tested natively with a fake clock; the
//! driver owns the browser timer.

/// The longest the driver sleeps even when the node's deadline is further off. The node's clock
/// is the wall clock (`Date.now()`), while `setTimeout` counts monotonic time: if the wall clock
/// jumps forward (a clock correction, a laptop waking from sleep), a long sleep wakes late
/// against the node's deadlines. Waking at least this often bounds that lateness, for one cheap
/// `handle_tick` per interval. It also keeps every delay far below `setTimeout`'s 2^31 ms
/// limit, past which browsers fire at once.
pub const MAX_SLEEP_MS: u64 = 30_000;
/// A deadline that is already due is ticked this long from now rather than at once: should the
/// node leave a due deadline in place after a tick, ticking at 0 ms would spin the page; this
/// caps that at 50 ticks a second and delays a due tick by one frame's worth at most.
pub const MIN_SLEEP_MS: u64 = 20;

/// What the driver does with its timer after a call into the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// The timer already runs for this deadline: leave it.
    Keep,
    /// (Re)start the timer to fire in `delay_ms`.
    Sleep { delay_ms: u32 },
    /// The node needs no tick: stop the timer.
    Disarm,
}

/// The one timer's state: the node deadline it was armed for.
#[derive(Debug, Default)]
pub struct TickScheduler {
    armed_for: Option<u64>,
}

impl TickScheduler {
    /// Called after every call into the node with its `poll_timeout()` and the time now.
    pub fn rearm(&mut self, deadline: Option<u64>, now_ms: u64) -> Arm {
        if deadline == self.armed_for {
            return if deadline.is_some() {
                Arm::Keep
            } else {
                Arm::Disarm
            };
        }
        self.armed_for = deadline;
        match deadline {
            None => Arm::Disarm,
            Some(at) => {
                let delay = at.saturating_sub(now_ms).clamp(MIN_SLEEP_MS, MAX_SLEEP_MS);
                Arm::Sleep {
                    delay_ms: delay as u32,
                }
            }
        }
    }

    /// The timer fired: the next [`TickScheduler::rearm`] arms it again whatever the deadline.
    pub fn fired(&mut self) {
        self.armed_for = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chain::TestNode;
    use shared::node::{Output, OWN_TX_REANNOUNCE_MS};
    use shared::Address;

    #[test]
    fn sleeps_until_the_deadline_clamped_to_bounds() {
        let now = 1_000_000;
        let cases = [
            (Some(now + 7_300), Arm::Sleep { delay_ms: 7_300 }),
            (
                Some(now + 1),
                Arm::Sleep {
                    delay_ms: MIN_SLEEP_MS as u32,
                },
            ),
            (
                Some(now - 500),
                Arm::Sleep {
                    delay_ms: MIN_SLEEP_MS as u32,
                },
            ),
            (
                Some(now + 10 * MAX_SLEEP_MS),
                Arm::Sleep {
                    delay_ms: MAX_SLEEP_MS as u32,
                },
            ),
            (None, Arm::Disarm),
        ];
        for (deadline, expected) in cases {
            let mut scheduler = TickScheduler::default();
            assert_eq!(scheduler.rearm(deadline, now), expected, "{deadline:?}");
        }
    }

    #[test]
    fn rearms_only_when_the_deadline_moves_and_after_firing() {
        let mut scheduler = TickScheduler::default();
        assert_eq!(
            scheduler.rearm(Some(5_000), 0),
            Arm::Sleep { delay_ms: 5_000 }
        );
        // Messages that leave the deadline where it was do not touch the timer.
        assert_eq!(scheduler.rearm(Some(5_000), 1_000), Arm::Keep);
        // An earlier deadline (a request sent) re-arms for it.
        assert_eq!(
            scheduler.rearm(Some(2_500), 1_000),
            Arm::Sleep { delay_ms: 1_500 }
        );
        assert_eq!(scheduler.rearm(None, 1_200), Arm::Disarm);
        assert_eq!(
            scheduler.rearm(Some(9_000), 1_300),
            Arm::Sleep { delay_ms: 7_700 }
        );
        // After the timer fires, a deadline that did not move (the capped case) arms again.
        scheduler.fired();
        assert_eq!(
            scheduler.rearm(Some(9_000), 9_000),
            Arm::Sleep { delay_ms: 20 }
        );
    }

    /// The driver loop with a fake clock and a real node: the node ticks exactly at its own
    /// deadlines, not once a second. A node with a pending payment of ours needs a tick only
    /// to announce it again every `OWN_TX_REANNOUNCE_MS`.
    #[test]
    fn a_real_node_is_ticked_at_its_deadlines_not_every_second() {
        let mut tab = TestNode::new("alice", 1);
        tab.mine_block();
        let mut now = tab.clock_ms;
        // Someone to announce to: a node alone in its room has nobody to send to.
        tab.node
            .handle_peer_joined(shared::protocol::PeerId::from_bytes([7; 16]), now);
        tab.node
            .send_transaction(Address([9; 20]), 1, 1, now)
            .expect("the mined coins pay for it");
        while tab.node.poll_output().is_some() {}

        let mut scheduler = TickScheduler::default();
        let horizon = now + 5 * OWN_TX_REANNOUNCE_MS;
        // Every time the driver wakes: when, and the deadline it slept for.
        let mut wakes = Vec::new();
        let mut announcements = 0;
        while now < horizon {
            let deadline = tab
                .node
                .poll_timeout()
                .expect("a pending payment has a deadline");
            let Arm::Sleep { delay_ms } = scheduler.rearm(Some(deadline), now) else {
                panic!("the timer must be armed for {deadline}");
            };
            now += u64::from(delay_ms);
            scheduler.fired();
            wakes.push((now, deadline));
            tab.node.handle_tick(now);
            while let Some(output) = tab.node.poll_output() {
                if matches!(output, Output::Broadcast { .. }) {
                    announcements += 1;
                }
            }
        }
        // A fixed one-second tick would wake 5 * OWN_TX_REANNOUNCE_MS / 1000 = 150 times.
        assert!(wakes.len() <= 6, "woke {} times: {wakes:?}", wakes.len());
        for (woke_at, deadline) in &wakes {
            assert_eq!(
                woke_at, deadline,
                "woke before or after the node's deadline"
            );
        }
        assert!(
            announcements >= 4,
            "the payment was announced {announcements} times"
        );
    }
}
