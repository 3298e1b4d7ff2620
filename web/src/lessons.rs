//! Lesson cards, opened by URL (`?lesson=forks`): each lesson is data, a list of steps with
//! what to do, what to watch for, and a predicate over [`LessonFacts`], a few plain facts built
//! from the snapshot on every render. Steps tick in order and stay ticked ([`LessonProgress`]);
//! a step's predicate sees the facts of now and of the moment the step before it ticked, so
//! "mine a block" means a new block of ours, not one from before. A card is read by every
//! role its lesson has (the majority's teacher and students, the double spend's attacker and
//! merchant): each step says what each role does and ticks on either role's own action.
//!
//! A lesson can also count who mined the blocks since one of its steps ticked
//! ([`SharesSince`]): the majority card shows each miner's share of the blocks mined since the
//! tab's dial moved, and ticks its majority step on that count.

use crate::snapshot::NodeSnapshot;
use shared::node::OwnTxState;
use shared::shares::{BlockShares, MinerShare};
use shared::view::IncomingState;
use shared::Hash;

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
    /// Blocks of our best chain mined since the lesson's [`SharesSince`] step ticked, and the
    /// largest share of them one miner has (ours or another tab's), in percent: a student's
    /// card sees the teacher's majority by it. Zero until that step ticks.
    pub blocks_since_mark: u64,
    pub top_share_since_mark: u64,
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
    /// Payments we made (any state), and those of them in a block of our best chain now.
    pub own_payments: usize,
    pub own_payments_confirmed: usize,
    /// The newest payment someone made to us (the first the wallet lists under Received), and
    /// its confirmations (0 while it waits in the pool, or once reversed).
    pub newest_incoming: Option<Hash>,
    pub newest_incoming_confirmations: u64,
    /// Private mining is on (our new blocks are kept secret).
    pub private_mining: bool,
    /// The private branch has more work than the public chain: a release now would win.
    pub private_ahead: bool,
    /// Payments of ours paid back to ourselves on the private branch.
    pub double_spends: usize,
    /// We released a private branch (since private mining last started; false while it is on).
    pub private_released: bool,
    /// Payments of ours and payments to us that were reversed (replaced on the best chain by a
    /// conflicting one): a count, so a step sees a new reversal, not one from before.
    pub payments_reversed: usize,
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
        let newest_incoming = snapshot.incoming.first();
        LessonFacts {
            height: snapshot.height,
            our_tip: snapshot.shares.tip_is_ours,
            our_recent_blocks: ours.map_or(0, |share| share.blocks),
            our_share: ours.map_or(0, |share| share.percent),
            recent_miners: snapshot.shares.miners.len(),
            blocks_since_mark: 0,
            top_share_since_mark: 0,
            balance: snapshot.balance,
            peers: snapshot.peers.len(),
            muted_peers: snapshot.peers.iter().filter(|peer| peer.muted).count(),
            online,
            mining: snapshot.mining,
            throttle,
            reorgs_seen: snapshot.tree.reorgs.len(),
            tamper_copied: tamper.copied,
            tamper_invalid_rows: tamper.invalid_rows,
            own_payments: snapshot.own_txs.len(),
            own_payments_confirmed: snapshot
                .own_txs
                .iter()
                .filter(|tx| matches!(tx.state, OwnTxState::Confirmed { .. }))
                .count(),
            newest_incoming: newest_incoming.map(|rx| rx.id),
            newest_incoming_confirmations: newest_incoming.map_or(0, |rx| match rx.state {
                IncomingState::Confirmed { confirmations, .. } => confirmations,
                IncomingState::Pending | IncomingState::Reversed { .. } => 0,
            }),
            private_mining: snapshot.private.is_some(),
            private_ahead: snapshot.private.as_ref().is_some_and(|view| view.ahead()),
            double_spends: snapshot
                .private
                .as_ref()
                .map_or(0, |view| view.double_spends),
            private_released: snapshot.last_release.is_some(),
            payments_reversed: snapshot
                .own_txs
                .iter()
                .filter(|tx| matches!(tx.state, OwnTxState::Reversed { .. }))
                .count()
                + snapshot
                    .incoming
                    .iter()
                    .filter(|rx| matches!(rx.state, IncomingState::Reversed { .. }))
                    .count(),
        }
    }

    /// These facts with the count of who mined the blocks since the lesson's mark
    /// ([`Lesson::since_height`], counted by [`shared::shares::block_shares_since`]).
    pub fn with_shares_since(self, shares: &BlockShares) -> LessonFacts {
        LessonFacts {
            blocks_since_mark: shares.counted,
            top_share_since_mark: shares
                .miners
                .iter()
                .map(|share| share.percent)
                .max()
                .unwrap_or(0),
            ..self
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
    /// The roles its steps address ("Attacker: … Merchant: …"): the card puts each role's
    /// part of a step on a line of its own ([`role_parts`]).
    pub roles: &'static [&'static str],
    pub shares_since: Option<SharesSince>,
}

/// A count of who mined the blocks since a step ticked, shown under a later step: what the
/// step did, in blocks ("Since your dial moved (at block 14): …").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharesSince {
    /// The step whose tick starts the count: the blocks above our height then are counted.
    pub after_step: usize,
    /// The step under which the card shows the count.
    pub shown_in_step: usize,
    /// What happened at that step, from the reader's side: "Since your dial moved".
    pub heading: &'static str,
}

impl Lesson {
    /// The height above which the lesson counts who mined the blocks, once its
    /// [`SharesSince`] step has ticked.
    pub fn since_height(&self, progress: &LessonProgress) -> Option<u64> {
        progress.height_when_ticked(self.shares_since?.after_step)
    }
}

/// Blocks the majority step needs since the dial moved before a share above 50 % counts: a
/// handful, so two lucky blocks of a slow tab right after the dial moved do not decide it.
pub const MAJORITY_MIN_BLOCKS: u64 = 6;

/// A new block of ours on top of our chain since the step began.
fn mined_a_block(now: &LessonFacts, start: &LessonFacts) -> bool {
    now.our_tip && now.height > start.height
}

/// We released a private branch since the step began (not one released before the card).
fn released(now: &LessonFacts, start: &LessonFacts) -> bool {
    now.private_released && !start.private_released
}

/// A payment to us we had not seen when the step began has arrived (pending or in a block).
fn payment_arrived(now: &LessonFacts, start: &LessonFacts) -> bool {
    now.newest_incoming.is_some() && now.newest_incoming != start.newest_incoming
}

/// `text` cut where a part for one of `roles` begins ("Attacker: …", at the start or after a
/// space), each part with its role and without the "Role: " label; text before any role's
/// part (or all of it, when it names none) comes first, with no role.
pub fn role_parts<'a>(text: &'a str, roles: &[&'a str]) -> Vec<(Option<&'a str>, &'a str)> {
    let mut starts: Vec<(usize, &'a str)> = roles
        .iter()
        .flat_map(|role| {
            let label = format!("{role}: ");
            text.match_indices(&label)
                .map(|(at, _)| at)
                .filter(|at| *at == 0 || text[..*at].ends_with(' '))
                .map(|at| (at, *role))
                .collect::<Vec<_>>()
        })
        .collect();
    starts.sort_unstable();
    let mut parts = Vec::new();
    let first = starts.first().map_or(text.len(), |(at, _)| *at);
    if !text[..first].trim().is_empty() {
        parts.push((None, text[..first].trim()));
    }
    for (index, (at, role)) in starts.iter().enumerate() {
        let end = starts.get(index + 1).map_or(text.len(), |(next, _)| *next);
        let body = text[at + role.len() + 2..end].trim();
        parts.push((Some(*role), body));
    }
    parts
}

/// One miner of a [`SharesSince`] count in running text: "tab-ab12 (ab12cd34) 9 of 12 blocks
/// (75 %)" for the first, "you 3 (25 %)" after it; a percent sign never wraps apart from its
/// number (a no-break space).
pub fn share_phrase(share: &MinerShare, counted: u64, first: bool) -> String {
    if first {
        format!(
            "{} {} of {} ({}\u{a0}%)",
            share.label,
            share.blocks,
            shared::view::plural(counted, "block", "blocks"),
            share.percent
        )
    } else {
        format!(
            "{} {} ({}\u{a0}%)",
            share.label, share.blocks, share.percent
        )
    }
}

/// The miners a [`SharesSince`] line does not name, in one phrase: "3 other tabs 4 (8 %)".
pub fn others_phrase(rest: &[MinerShare]) -> String {
    format!(
        "{} {} ({}\u{a0}%)",
        shared::view::plural(rest.len() as u64, "other tab", "other tabs"),
        rest.iter().map(|share| share.blocks).sum::<u64>(),
        rest.iter().map(|share| share.percent).sum::<u64>()
    )
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
                do_this: "Cut this tab off: press Go offline at the top of the Compare chains across tabs panel, or Mute every peer there.",
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
        roles: &[],
        shares_since: None,
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
        roles: &[],
        shares_since: None,
    },
    Lesson {
        id: "majority",
        title: "Majority: hash power decides",
        goal: "See that the share of blocks a tab mines follows its share of the room's hash power (how many guesses a second it makes). The teacher's tab takes the majority; every other tab watches it rewrite history.",
        steps: &[
            Step {
                do_this: "Every tab: set Hash power to 50\u{a0}% and press Start mining.",
                watch_for: "The share list in the Hash power panel fills up with several names, each with a similar share.",
                done: |now, _| now.mining && now.throttle == 50 && now.recent_miners >= 2,
            },
            Step {
                do_this: "Teacher's tab: set Hash power to 100\u{a0}%. Every other tab: set it to 10\u{a0}%.",
                watch_for: "The hash rate of the slowed tabs drops to about a tenth; the teacher's doubles.",
                // Each role ticks on its own move of the dial, not on a value it started with.
                done: |now, before| {
                    now.mining && now.throttle != before.throttle && matches!(now.throttle, 10 | 100)
                },
            },
            Step {
                do_this: "Keep mining for a minute or two.",
                watch_for: "The line below counts who mined the blocks since your dial moved: the teacher's tab gets more than half of them. With most of the hash power, one tab writes most of the history.",
                // Counted from this tab's own dial move, so the blocks from before it (about
                // even at 50 %) do not hide the dial's effect.
                done: |now, _| {
                    now.blocks_since_mark >= MAJORITY_MIN_BLOCKS && now.top_share_since_mark > 50
                },
            },
            Step {
                do_this: "Teacher's tab: press Mine privately in the Mining panel (your new blocks stay secret until you release them). Every other tab: keep mining.",
                watch_for: "The teacher's blocks stop arriving, and the other tabs' blocks make the public chain; the teacher's secret chain grows faster.",
                // The teacher goes private; another tab sees its own block become the tip once
                // the teacher's blocks stop coming.
                done: |now, before| {
                    now.private_mining
                        || (now.our_tip && now.our_recent_blocks > before.our_recent_blocks)
                },
            },
            Step {
                do_this: "Teacher's tab: when the Mining panel says your branch has more work than the public chain, press Release my private branch. Every other tab: watch the Block tree.",
                watch_for: "Every other tab drops its newest blocks and follows the teacher's: the majority can rewrite recent history.",
                done: |now, before| released(now, before) || now.reorgs_seen > before.reorgs_seen,
            },
        ],
        roles: &["Every tab", "Teacher's tab", "Every other tab"],
        shares_since: Some(SharesSince {
            after_step: 1,
            shown_in_step: 2,
            heading: "Since your dial moved",
        }),
    },
    Lesson {
        id: "double-spend",
        title: "Double spend: why people wait for confirmations",
        goal: "The attacker pays the merchant, waits until the merchant sees the payment in a block, then undoes it with a secret, longer chain. Pick one tab to be the attacker and one to be the merchant; at least one other tab mines the public chain.",
        steps: &[
            Step {
                do_this: "Attacker: mine until you have some coins. Merchant: tell the attacker your name (at the top of the This node panel), then watch the attacker's blocks arrive.",
                watch_for: "The attacker's balance grows by the reward of each block it mines; every tab gets the blocks.",
                // The merchant's side: a block of another tab since the card opened.
                done: |now, start| {
                    now.balance > 0 || (now.height > start.height && !now.our_tip)
                },
            },
            Step {
                do_this: "Attacker: press Mine privately in the Mining panel: from now on your new blocks stay secret, a private branch only your tab knows. Merchant: wait for the attacker's payment.",
                watch_for: "Attacker: the Mining panel shows your private branch and how far ahead of or behind the public chain it is. Merchant: the payment appears in your Wallet under Received, pending: it is in no block yet.",
                done: |now, start| now.private_mining || payment_arrived(now, start),
            },
            Step {
                do_this: "Attacker: pay the merchant from the Wallet (its name is enough), and keep mining privately. Merchant: wait until another tab mines the payment into a block, or mine it yourself.",
                watch_for: "The payment goes to every tab and into a public block, but not into the attacker's private branch. Merchant: the payment says which block it is in, with 1 confirmation.",
                // The attacker's payment must come after private mining began, or the private
                // branch would hold it too. The merchant does not mine privately: that keeps an
                // attacker's old payment from someone else from ticking the merchant's side.
                done: |now, start| {
                    (now.private_mining && now.own_payments > start.own_payments)
                        || (!now.private_mining && now.newest_incoming_confirmations >= 1)
                },
            },
            Step {
                do_this: "Attacker: when the merchant's tab says 2 confirmations, press Pay it back to yourself on your private branch (next to the payment), then keep mining privately until the Mining panel says your branch has more work than the public chain. Merchant: wait for 2 confirmations (the payment's block and one on top), then hand over what was bought.",
                watch_for: "Attacker: a second payment with the same number (the nonce) sends the coins back to you, on your secret branch only: just one of the two can ever be in the chain. Merchant: 2 confirmations, and nothing shows you the secret branch.",
                done: |now, _| {
                    (now.private_mining && now.double_spends > 0 && now.private_ahead)
                        || (!now.private_mining && now.newest_incoming_confirmations >= 2)
                },
            },
            Step {
                do_this: "Attacker: press Release my private branch. Merchant: watch the payment under Received.",
                watch_for: "Every tab switches to the attacker's heavier chain, and the payment says reversed on both sides: the coins went back to the attacker. Each extra confirmation the merchant waits for makes this much harder.",
                // The attacker's own list may say reversed before the release: its tree takes
                // the private branch as its best chain once that is heavier.
                done: |now, start| {
                    released(now, start) || now.payments_reversed > start.payments_reversed
                },
            },
        ],
        roles: &["Attacker", "Merchant"],
        shares_since: None,
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
    /// Our height when each ticked step ticked, in step order.
    pub heights: Vec<u64>,
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
            self.heights.push(facts.height);
            *start = facts.clone();
        }
        self.ticked != before
    }

    /// Our height when step `index` ticked; `None` while it has not.
    pub fn height_when_ticked(&self, index: usize) -> Option<u64> {
        self.heights.get(index).copied()
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

    /// Every "the … panel" a step names is a panel the page has, by its heading.
    #[test]
    fn every_panel_a_lesson_names_exists() {
        let mut named = 0;
        for lesson in LESSONS {
            for step in lesson.steps {
                for text in [step.do_this, step.watch_for] {
                    for (end, _) in text.match_indices(" panel") {
                        let before = &text[..end];
                        let start = before
                            .to_lowercase()
                            .rfind("the ")
                            .expect("\"the … panel\"")
                            + 4;
                        let panel = &before[start..];
                        assert!(
                            crate::components::PANEL_TITLES
                                .iter()
                                .any(|title| title.eq_ignore_ascii_case(panel)),
                            "{}: no panel is called {panel:?}",
                            lesson.id
                        );
                        named += 1;
                    }
                }
            }
        }
        assert!(
            named >= 4,
            "only {named} panels named: is the search right?"
        );
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
    fn a_step_is_cut_into_each_roles_part() {
        let roles = ["Every tab", "Teacher's tab", "Every other tab"];
        assert_eq!(
            role_parts(
                "Teacher's tab: set it to 100 %. Every other tab: set it to 10 %.",
                &roles
            ),
            vec![
                (Some("Teacher's tab"), "set it to 100 %."),
                (Some("Every other tab"), "set it to 10 %.")
            ]
        );
        assert_eq!(
            role_parts("Keep mining. Every other tab drops its blocks.", &roles),
            vec![(None, "Keep mining. Every other tab drops its blocks.")],
            "a role named in a sentence, without its colon, is no part"
        );
        assert_eq!(
            role_parts(
                "Every tab gets it. Attacker: wait. Merchant: look.",
                &["Attacker", "Merchant"]
            ),
            vec![
                (None, "Every tab gets it."),
                (Some("Attacker"), "wait."),
                (Some("Merchant"), "look.")
            ]
        );
        assert_eq!(
            role_parts("Mine a block.", &[]),
            vec![(None, "Mine a block.")]
        );
    }

    /// A role-aware card says, at every step, what each of its roles does (or, with no role
    /// named, what every tab does), so nobody reading it is left without an instruction.
    #[test]
    fn every_step_of_a_card_with_roles_tells_each_role_what_to_do() {
        for lesson in LESSONS.iter().filter(|lesson| !lesson.roles.is_empty()) {
            let each: Vec<&str> = lesson
                .roles
                .iter()
                .copied()
                .filter(|role| *role != "Every tab")
                .collect();
            for (index, step) in lesson.steps.iter().enumerate() {
                let parts = role_parts(step.do_this, lesson.roles);
                let named: Vec<&str> = parts.iter().filter_map(|(role, _)| *role).collect();
                assert!(
                    named.is_empty() || named == ["Every tab"] || named == each,
                    "{} step {}: {named:?}",
                    lesson.id,
                    index + 1
                );
                assert!(parts.iter().all(|(_, text)| !text.is_empty()));
            }
        }
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

    /// The majority card's facts since the dial moved: `blocks` counted, the largest share.
    fn since_dial(facts: &LessonFacts, blocks: u64, top_share: u64) -> LessonFacts {
        LessonFacts {
            blocks_since_mark: blocks,
            top_share_since_mark: top_share,
            ..facts.clone()
        }
    }

    #[test]
    fn majority_ticks_for_the_teacher_and_for_a_student() {
        // The teacher: at 50 % with other miners, then the dial to 100 %, then the majority of
        // the blocks since the dial moved, private mining and the release.
        let mining = LessonFacts {
            mining: true,
            recent_miners: 3,
            throttle: 50,
            our_share: 30,
            ..facts()
        };
        let teacher_dial = LessonFacts {
            throttle: 100,
            ..mining.clone()
        };
        let majority = since_dial(&teacher_dial, 8, 75);
        let private = LessonFacts {
            private_mining: true,
            ..majority.clone()
        };
        let released = LessonFacts {
            private_released: true,
            ..private.clone()
        };
        assert_eq!(
            walk(
                "majority",
                &[
                    facts(),
                    mining.clone(),
                    teacher_dial.clone(),
                    majority.clone(),
                    private,
                    released
                ]
            ),
            vec![0, 1, 2, 3, 4, 5],
            "the dial's step waits for the dial to move (it once ticked with the first step)"
        );

        // A student: the dial down to 10 %, the teacher's majority of the blocks since, its own
        // block on the tip once the teacher's stop coming, then the reorg of the release.
        let student_dial = LessonFacts {
            throttle: 10,
            ..mining.clone()
        };
        let teacher_leads = LessonFacts {
            our_share: 8,
            our_recent_blocks: 4,
            ..since_dial(&student_dial, 7, 86)
        };
        let own_tip = LessonFacts {
            our_tip: true,
            our_recent_blocks: 5,
            ..teacher_leads.clone()
        };
        let followed = LessonFacts {
            reorgs_seen: 1,
            our_tip: false,
            ..own_tip.clone()
        };
        assert_eq!(
            walk(
                "majority",
                &[
                    mining.clone(),
                    student_dial.clone(),
                    teacher_leads.clone(),
                    teacher_leads.clone(),
                    own_tip.clone(),
                    followed
                ]
            ),
            vec![1, 2, 3, 3, 4, 5],
            "a student can finish the card too"
        );
        // A student that released a private branch in an earlier lesson still waits for the
        // teacher's release (a reorg) at the last step.
        let old_release = |facts: &LessonFacts| LessonFacts {
            private_released: true,
            ..facts.clone()
        };
        assert_eq!(
            walk(
                "majority",
                &[
                    old_release(&mining),
                    old_release(&student_dial),
                    old_release(&teacher_leads),
                    old_release(&own_tip),
                    old_release(&own_tip),
                ]
            ),
            vec![1, 2, 3, 4, 4]
        );
        // A student whose dial stays at the lesson's 50 % does not tick the dial's step.
        let undialled = LessonFacts {
            throttle: 50,
            ..teacher_leads
        };
        assert_eq!(walk("majority", &[mining.clone(), mining, undialled])[2], 1);
    }

    /// The majority step counts only the blocks since the dial moved, and needs a handful of
    /// them with one miner above half.
    #[test]
    fn the_majority_step_waits_for_a_majority_of_blocks_since_the_dial() {
        let dialled = LessonFacts {
            mining: true,
            throttle: 100,
            recent_miners: 2,
            our_share: 62, // the last 50 blocks do not count
            ..facts()
        };
        let majority = lesson("majority").unwrap().steps[2].done;
        let cases = [
            (0, 0, false, "no block since the dial moved"),
            (3, 100, false, "three lucky blocks are not a handful"),
            (MAJORITY_MIN_BLOCKS, 50, false, "half is no majority"),
            (MAJORITY_MIN_BLOCKS, 67, true, "two thirds of a handful"),
            (40, 55, true, "a narrow majority of many"),
        ];
        for (blocks, top, ticks, why) in cases {
            let now = since_dial(&dialled, blocks, top);
            assert_eq!(majority(&now, &dialled), ticks, "{why}");
        }
    }

    /// The card counts from our height when the dial's step ticked, and the facts take the
    /// count's largest share.
    #[test]
    fn the_count_since_the_dial_starts_where_the_dial_step_ticked() {
        let majority = lesson("majority").unwrap();
        let mark = majority.shares_since.unwrap();
        assert_eq!(
            (mark.after_step, mark.shown_in_step),
            (1, 2),
            "counted from the dial's step, shown under the majority's"
        );
        let mining = LessonFacts {
            mining: true,
            throttle: 50,
            recent_miners: 2,
            height: 9,
            ..facts()
        };
        let mut progress = LessonProgress::default();
        progress.advance(majority, &mining);
        assert_eq!(
            majority.since_height(&progress),
            None,
            "the dial has not moved"
        );
        let dialled = LessonFacts {
            throttle: 100,
            height: 14,
            ..mining
        };
        progress.advance(majority, &dialled);
        assert_eq!(majority.since_height(&progress), Some(14));
        assert_eq!(progress.height_when_ticked(0), Some(9));
        assert_eq!(lesson("forks").unwrap().since_height(&progress), None);

        let share = |byte: u8, label: &str, blocks: u64, percent: u64| MinerShare {
            miner: shared::Address([byte; 20]),
            label: label.into(),
            is_us: label == "you",
            blocks,
            percent,
        };
        let shares = BlockShares {
            counted: 12,
            miners: vec![
                share(1, "tab-ab12 (01010101)", 9, 75),
                share(2, "you", 3, 25),
            ],
            tip_is_ours: false,
        };
        let facts = dialled.with_shares_since(&shares);
        assert_eq!(
            (facts.blocks_since_mark, facts.top_share_since_mark),
            (12, 75)
        );
        assert_eq!(
            share_phrase(&shares.miners[0], 12, true),
            "tab-ab12 (01010101) 9 of 12 blocks (75\u{a0}%)"
        );
        assert_eq!(
            share_phrase(&shares.miners[1], 12, false),
            "you 3 (25\u{a0}%)"
        );
        assert_eq!(
            others_phrase(&shares.miners),
            "2 other tabs 12 (100\u{a0}%)"
        );
        assert_eq!(
            others_phrase(&shares.miners[1..]),
            "1 other tab 3 (25\u{a0}%)"
        );
    }

    /// The double-spend card's facts, on a tab with coins that has not begun.
    fn rich() -> LessonFacts {
        LessonFacts {
            balance: 50,
            height: 3,
            our_tip: true,
            ..facts()
        }
    }

    #[test]
    fn the_attacker_finishes_the_double_spend_card() {
        let private = LessonFacts {
            private_mining: true,
            ..rich()
        };
        let paid = LessonFacts {
            own_payments: 1,
            ..private.clone()
        };
        let double_spent = LessonFacts {
            double_spends: 1,
            ..paid.clone()
        };
        // Once the private branch is heavier, the attacker's own tree takes it as its best
        // chain: its payment already says reversed there, before anyone else knows.
        let ahead = LessonFacts {
            private_ahead: true,
            payments_reversed: 1,
            ..double_spent.clone()
        };
        let released = LessonFacts {
            private_mining: false,
            private_ahead: false,
            private_released: true,
            ..ahead.clone()
        };
        assert_eq!(
            walk(
                "double-spend",
                &[
                    rich(),
                    private.clone(),
                    paid.clone(),
                    double_spent.clone(),
                    ahead.clone(),
                    ahead.clone(),
                    released
                ]
            ),
            vec![1, 2, 3, 3, 4, 4, 5],
            "the payment back to itself waits for the branch to lead, the last step for the release"
        );
        // A payment made before private mining began does not count (the private branch
        // would already hold it), and being ahead without a double spend is not the step.
        let paid_first = LessonFacts {
            own_payments: 1,
            ..rich()
        };
        assert_eq!(
            walk(
                "double-spend",
                &[
                    paid_first.clone(),
                    private_after(&paid_first),
                    ahead_without(&paid_first)
                ]
            ),
            vec![1, 2, 2]
        );
        // An attacker that was paid before by someone else: that old payment, confirmed long
        // ago, ticks none of the merchant's side while the attacker mines privately.
        let paid_long_ago = LessonFacts {
            newest_incoming: Some(Hash([7; 32])),
            newest_incoming_confirmations: 30,
            ..rich()
        };
        assert_eq!(
            walk(
                "double-spend",
                &[paid_long_ago.clone(), private_after(&paid_long_ago)]
            ),
            vec![1, 2]
        );
        // An old reversed payment does not finish the card: the release must reverse one now.
        let reversed_before = LessonFacts {
            payments_reversed: 1,
            ..ahead_without(&double_spent)
        };
        assert_eq!(
            walk(
                "double-spend",
                &[rich(), private.clone(), paid.clone(), reversed_before]
            ),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn the_merchant_finishes_the_double_spend_card() {
        // The merchant has no coins and never mines privately: it sees the attacker's blocks
        // arrive, the payment come in pending, get its block, a second confirmation, and be
        // reversed by the release.
        let open = LessonFacts {
            height: 0,
            ..facts()
        };
        let blocks_came = LessonFacts {
            height: 3,
            ..open.clone()
        };
        let payment = Some(Hash([9; 32]));
        let pending = LessonFacts {
            newest_incoming: payment,
            ..blocks_came.clone()
        };
        let mined = LessonFacts {
            height: 4,
            newest_incoming_confirmations: 1,
            ..pending.clone()
        };
        let two = LessonFacts {
            height: 5,
            newest_incoming_confirmations: 2,
            ..mined.clone()
        };
        let reversed = LessonFacts {
            height: 7,
            newest_incoming_confirmations: 0,
            payments_reversed: 1,
            reorgs_seen: 1,
            ..two.clone()
        };
        assert_eq!(
            walk(
                "double-spend",
                &[
                    open.clone(),
                    blocks_came.clone(),
                    pending.clone(),
                    mined,
                    two.clone(),
                    reversed.clone()
                ]
            ),
            vec![0, 1, 2, 3, 4, 5]
        );
        // A payment that arrives already in a block ticks its arrival and its block at once.
        let arrived_mined = LessonFacts {
            newest_incoming_confirmations: 1,
            ..pending.clone()
        };
        assert_eq!(
            walk(
                "double-spend",
                &[open.clone(), blocks_came.clone(), arrived_mined]
            ),
            vec![0, 1, 3]
        );

        // Nothing ticks by itself: the merchant's own block is not the attacker's, a payment
        // the merchant had before the card opened has not arrived, and a reorg without the
        // payment reversed is not the last step.
        let own_block = LessonFacts {
            height: 1,
            our_tip: true,
            ..open.clone()
        };
        assert_eq!(walk("double-spend", &[open.clone(), own_block]), vec![0, 0]);
        let old_payment = LessonFacts {
            newest_incoming: Some(Hash([1; 32])),
            newest_incoming_confirmations: 12,
            ..open.clone()
        };
        let later = LessonFacts {
            height: 3,
            ..old_payment.clone()
        };
        assert_eq!(
            walk("double-spend", &[old_payment, later.clone()]),
            vec![0, 1],
            "the old payment's confirmations wait for a new payment"
        );
        let reorg_only = LessonFacts {
            reorgs_seen: 1,
            ..two.clone()
        };
        assert_eq!(
            walk(
                "double-spend",
                &[
                    open.clone(),
                    blocks_came.clone(),
                    pending.clone(),
                    two.clone(),
                    reorg_only
                ]
            ),
            vec![0, 1, 2, 4, 4]
        );
        // A tab that released a private branch in an earlier lesson: that release is no step.
        let released_before = |facts: &LessonFacts| LessonFacts {
            private_released: true,
            ..facts.clone()
        };
        assert_eq!(
            walk(
                "double-spend",
                &[
                    released_before(&open),
                    released_before(&blocks_came),
                    released_before(&pending),
                    released_before(&two)
                ]
            ),
            vec![0, 1, 2, 4]
        );
    }

    fn private_after(facts: &LessonFacts) -> LessonFacts {
        LessonFacts {
            private_mining: true,
            ..facts.clone()
        }
    }

    fn ahead_without(facts: &LessonFacts) -> LessonFacts {
        LessonFacts {
            private_mining: true,
            private_ahead: true,
            ..facts.clone()
        }
    }
}
