//! Lesson cards, opened by URL (`?lesson=forks`): each lesson is data, a list of steps with
//! what to do, what to watch for, and a predicate over [`LessonFacts`], a few plain facts built
//! from the snapshot on every render. Steps tick in order and stay ticked ([`LessonProgress`]);
//! a step's predicate sees the facts of now and of the moment the step before it ticked, so
//! "mine a block" means a new block of ours, not one from before.

use crate::snapshot::NodeSnapshot;
use shared::node::OwnTxState;

/// What the node sees, in the terms the lessons use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LessonFacts {
    pub height: u64,
    /// Whether the tip of our best chain is a block we mined.
    pub our_tip: bool,
    /// Our blocks among the last `SHARE_WINDOW` of our best chain, and their share in percent.
    pub our_recent_blocks: u64,
    pub our_share: u64,
    /// Miners among the last blocks.
    pub recent_miners: usize,
    pub balance: u64,
    /// Peers we are connected to, and those among them we muted.
    pub peers: usize,
    pub muted_peers: usize,
    /// False while the person keeps this tab offline ("Go offline").
    pub online: bool,
    pub mining: bool,
    /// The mining throttle in percent (the hash-power dial).
    pub throttle: u8,
    /// Reorgs recorded in the block tree drawing (switches to another branch).
    pub reorgs_seen: usize,
    /// The tamper sandbox holds a copy, and how many of its rows fail a rule.
    pub tamper_copied: bool,
    pub tamper_invalid_rows: usize,
    /// Our newest payment's confirmations, when one is in a block.
    pub own_payment_confirmations: Option<u64>,
    // Filled from the attack branch's snapshot fields (private mining, its lead, its release,
    // a reversed payment); until that branch is merged they stay false / None.
    pub private_mining: bool,
    pub private_lead: Option<u64>,
    pub private_released: bool,
    pub payment_reversed: bool,
}

/// What the tamper sandbox tells the lesson card (its state lives in its own component).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TamperFacts {
    pub copied: bool,
    pub invalid_rows: usize,
}

impl LessonFacts {
    pub fn from_snapshot(
        snapshot: &NodeSnapshot,
        online: bool,
        throttle: u8,
        tamper: TamperFacts,
    ) -> LessonFacts {
        let ours = snapshot.shares.miners.iter().find(|share| share.is_us);
        LessonFacts {
            height: snapshot.height,
            our_tip: snapshot.shares.tip_is_ours,
            our_recent_blocks: ours.map_or(0, |share| share.blocks),
            our_share: ours.map_or(0, |share| share.percent),
            recent_miners: snapshot.shares.miners.len(),
            balance: snapshot.balance,
            peers: snapshot.peers.len(),
            muted_peers: snapshot.peers.iter().filter(|peer| peer.muted).count(),
            online,
            mining: snapshot.mining,
            throttle,
            reorgs_seen: snapshot.tree.reorgs.len(),
            tamper_copied: tamper.copied,
            tamper_invalid_rows: tamper.invalid_rows,
            own_payment_confirmations: snapshot.own_txs.first().and_then(|tx| {
                matches!(tx.state, OwnTxState::Confirmed { .. }).then_some(tx.confirmations)
            }),
            private_mining: false,
            private_lead: None,
            private_released: false,
            payment_reversed: false,
        }
    }
}

/// `done(now, at_start)`: `at_start` are the facts when the step before ticked (or when the
/// card opened, for the first step).
pub type StepDone = fn(&LessonFacts, &LessonFacts) -> bool;

pub struct Step {
    pub do_this: &'static str,
    pub watch_for: &'static str,
    pub done: StepDone,
}

pub struct Lesson {
    /// The `?lesson=` value.
    pub id: &'static str,
    pub title: &'static str,
    pub goal: &'static str,
    pub steps: &'static [Step],
}

/// A new block of ours on top of our chain since the step began.
fn mined_a_block(now: &LessonFacts, start: &LessonFacts) -> bool {
    now.our_tip && now.height > start.height
}

pub const LESSONS: &[Lesson] = &[
    Lesson {
        id: "forks",
        title: "Forks: two chains, one winner",
        goal: "See the network split in two, each side grow its own chain, and the side with less work give way when they meet again.",
        steps: &[
            Step {
                do_this: "Press Start mining and wait for a block with your name.",
                watch_for: "The newest row of the chain explorer says (you): you earned the block reward.",
                done: mined_a_block,
            },
            Step {
                do_this: "Cut this tab off: press Go offline in the Peers panel, or Mute every peer.",
                watch_for: "The other tabs keep mining, but you no longer hear of their blocks.",
                done: |now, _| !now.online || (now.peers > 0 && now.muted_peers == now.peers),
            },
            Step {
                do_this: "Keep mining alone until you find one more block, while another tab mines faster.",
                watch_for: "Your chain and theirs now differ: a fork, two versions of history.",
                done: mined_a_block,
            },
            Step {
                do_this: "Come back: press Go online, or unmute the peers.",
                watch_for: "If their chain has more work, this tab drops its own blocks and follows theirs. That switch is a reorg (short for reorganisation); the block tree marks it.",
                done: |now, start| now.reorgs_seen > start.reorgs_seen,
            },
        ],
    },
    Lesson {
        id: "tamper",
        title: "Tamper: why old blocks cannot be changed",
        goal: "Change a block in a private copy of the chain and see why every node would refuse it.",
        steps: &[
            Step {
                do_this: "Mine a few blocks (or wait for others to), then press Copy the last blocks in the Tamper sandbox.",
                watch_for: "A copy of the newest blocks, all green: every rule passes.",
                done: |now, _| now.tamper_copied,
            },
            Step {
                do_this: "Pick a block, choose what to change (for example pay its reward to you) and press Apply the change.",
                watch_for: "That block turns red, and so does every block after it: each block holds the hash (a fingerprint) of the one before, so one change breaks the whole rest of the chain.",
                done: |now, _| now.tamper_copied && now.tamper_invalid_rows > 0,
            },
            Step {
                do_this: "Press Re-mine on the red blocks, oldest first, until all are green again.",
                watch_for: "Each one passes only after new proof of work, while the real chain keeps growing: rewriting history costs all the work that made it.",
                done: |now, start| {
                    start.tamper_invalid_rows > 0 && now.tamper_copied && now.tamper_invalid_rows == 0
                },
            },
        ],
    },
    Lesson {
        id: "majority",
        title: "Majority: hash power decides",
        goal: "See that the share of blocks a tab mines follows its share of the room's hash power (how many guesses a second it makes).",
        steps: &[
            Step {
                do_this: "Every tab: leave Hash power at the same value and press Start mining.",
                watch_for: "The Share of recent blocks list fills up with several names, each with a similar share.",
                done: |now, _| now.mining && now.recent_miners >= 2,
            },
            Step {
                do_this: "Teacher's tab: set Hash power to 100 %. Every other tab: set it to 10 %.",
                watch_for: "The hash rate of the slowed tabs drops to about a tenth.",
                done: |now, _| now.mining && now.throttle == 100,
            },
            Step {
                do_this: "Keep mining for a minute or two.",
                watch_for: "Your share of the last 50 blocks climbs above 50 %: with most of the hash power, you write most of the history.",
                done: |now, _| now.our_share > 50,
            },
            Step {
                do_this: "Switch on private mining: keep your new blocks secret.",
                watch_for: "Your secret chain grows faster than the public one, because you have the majority.",
                done: |now, _| now.private_mining,
            },
            Step {
                do_this: "Release the private chain.",
                watch_for: "Every other tab drops its newest blocks and follows yours: the majority can rewrite recent history.",
                done: |now, _| now.private_released,
            },
        ],
    },
    Lesson {
        id: "double-spend",
        title: "Double spend: why people wait for confirmations",
        goal: "Pay someone, let them see the payment in a block, then undo it with a secret, longer chain.",
        steps: &[
            Step {
                do_this: "Mine until you have some coins.",
                watch_for: "Your balance grows by the reward of each block you mine.",
                done: |now, _| now.balance > 0,
            },
            Step {
                do_this: "Switch on private mining, then pay another tab from the Wallet.",
                watch_for: "The payment goes into a public block: the other tab sees it confirmed (in a block, with blocks on top counted as confirmations).",
                done: |now, _| now.private_mining && now.own_payment_confirmations.is_some(),
            },
            Step {
                do_this: "Keep mining privately until your secret chain is 2 blocks ahead.",
                watch_for: "Your secret chain does not hold the payment; nobody else knows it yet.",
                done: |now, _| now.private_lead.is_some_and(|lead| lead >= 2),
            },
            Step {
                do_this: "Release the private chain.",
                watch_for: "The other tab switches to your longer chain and the payment is gone: it was reversed. Waiting for more confirmations makes this much harder.",
                done: |now, _| now.payment_reversed,
            },
        ],
    },
];

/// The lesson a `?lesson=` value names.
pub fn lesson(id: &str) -> Option<&'static Lesson> {
    LESSONS.iter().find(|lesson| lesson.id == id)
}

/// How far a card got: steps before `ticked` are done, and stay done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LessonProgress {
    pub ticked: usize,
    /// The facts when the last step ticked (or when the card opened).
    pub start: Option<LessonFacts>,
}

impl LessonProgress {
    /// Ticks the current step if its predicate holds, and the next ones after it if theirs
    /// hold against the facts of that moment. Returns whether anything ticked.
    pub fn advance(&mut self, lesson: &Lesson, facts: &LessonFacts) -> bool {
        let start = self.start.get_or_insert_with(|| facts.clone());
        let before = self.ticked;
        while let Some(step) = lesson.steps.get(self.ticked) {
            if !(step.done)(facts, start) {
                break;
            }
            self.ticked += 1;
            *start = facts.clone();
        }
        self.ticked != before
    }

    pub fn finished(&self, lesson: &Lesson) -> bool {
        self.ticked >= lesson.steps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> LessonFacts {
        LessonFacts {
            online: true,
            throttle: 100,
            ..LessonFacts::default()
        }
    }

    /// Walks `lesson` through `timeline`, returning the ticked count after each picture.
    fn walk(id: &str, timeline: &[LessonFacts]) -> Vec<usize> {
        let lesson = lesson(id).unwrap();
        let mut progress = LessonProgress::default();
        timeline
            .iter()
            .map(|facts| {
                progress.advance(lesson, facts);
                progress.ticked
            })
            .collect()
    }

    #[test]
    fn every_lesson_has_plain_steps() {
        let ids: Vec<&str> = LESSONS.iter().map(|lesson| lesson.id).collect();
        assert_eq!(ids, ["forks", "tamper", "majority", "double-spend"]);
        for lesson in LESSONS {
            assert!(lesson.steps.len() >= 3, "{}", lesson.id);
            for step in lesson.steps {
                assert!(!step.do_this.is_empty() && !step.watch_for.is_empty());
            }
        }
        assert!(super::lesson("nope").is_none());
    }

    #[test]
    fn forks_ticks_in_order_and_only_on_new_events() {
        let open = LessonFacts {
            height: 4,
            our_tip: true, // our block from before the card opened does not count
            peers: 2,
            ..facts()
        };
        let mined = LessonFacts {
            height: 5,
            our_tip: true,
            ..open.clone()
        };
        let offline = LessonFacts {
            online: false,
            ..mined.clone()
        };
        let reorg_too_early = LessonFacts {
            reorgs_seen: 1,
            ..offline.clone()
        };
        let mined_alone = LessonFacts {
            height: 6,
            ..reorg_too_early.clone()
        };
        let back = LessonFacts {
            online: true,
            our_tip: false,
            height: 8,
            ..mined_alone.clone()
        };
        let reorged = LessonFacts {
            reorgs_seen: 2,
            ..back.clone()
        };
        assert_eq!(
            walk(
                "forks",
                &[
                    open,
                    mined,
                    offline,
                    reorg_too_early,
                    mined_alone,
                    back,
                    reorged.clone(),
                    // Steps stay ticked whatever happens next.
                    LessonFacts::default(),
                ]
            ),
            vec![0, 1, 2, 2, 3, 3, 4, 4]
        );
        // Muting every peer counts as cutting the tab off; muting one of two does not.
        let lesson = lesson("forks").unwrap();
        let cut = lesson.steps[1].done;
        let peers = LessonFacts {
            peers: 2,
            muted_peers: 1,
            ..facts()
        };
        assert!(!cut(&peers, &peers));
        let all = LessonFacts {
            muted_peers: 2,
            ..peers
        };
        assert!(cut(&all, &all));
    }

    #[test]
    fn tamper_needs_a_broken_copy_before_the_repair_counts() {
        let copied = LessonFacts {
            tamper_copied: true,
            ..facts()
        };
        let broken = LessonFacts {
            tamper_invalid_rows: 3,
            ..copied.clone()
        };
        let fixing = LessonFacts {
            tamper_invalid_rows: 1,
            ..copied.clone()
        };
        assert_eq!(
            walk("tamper", &[facts(), copied.clone(), broken, fixing, copied]),
            vec![0, 1, 2, 2, 3]
        );
    }

    #[test]
    fn majority_and_double_spend_wait_for_their_facts() {
        let mining = LessonFacts {
            mining: true,
            recent_miners: 3,
            our_share: 30,
            ..facts()
        };
        let majority = LessonFacts {
            our_share: 62,
            ..mining.clone()
        };
        assert_eq!(
            walk("majority", &[facts(), mining, majority.clone()]),
            vec![0, 2, 3]
        );
        let private = LessonFacts {
            private_mining: true,
            ..majority
        };
        let released = LessonFacts {
            private_released: true,
            ..private.clone()
        };
        assert_eq!(
            walk("majority", &[private.clone(), released])[1],
            5,
            "the attack branch's facts finish it"
        );

        let rich = LessonFacts {
            balance: 50,
            ..facts()
        };
        let paid = LessonFacts {
            private_mining: true,
            own_payment_confirmations: Some(1),
            ..rich.clone()
        };
        let ahead = LessonFacts {
            private_lead: Some(2),
            ..paid.clone()
        };
        let reversed = LessonFacts {
            payment_reversed: true,
            ..ahead.clone()
        };
        assert_eq!(
            walk("double-spend", &[rich, paid, ahead, reversed]),
            vec![1, 2, 3, 4]
        );
    }
}
