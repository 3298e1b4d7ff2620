use crate::browser::miner::WORKER_SCRIPT;
use crate::format::{about, count};
use crate::hooks::{use_driver, use_node_state};
use crate::miner_worker::MiningWorker;
use crate::mining::{MinerCommand, MinerReport};
use crate::tamper::{expected_hashes, remine_budget, Edit, Sandbox, SandboxRow};
use gloo_worker::{Spawnable, WorkerBridge};
use shared::{Address, BlockHeader};
use std::cell::RefCell;
use std::rc::Rc;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

/// A re-mine under way: one block's nonce search in a mining worker of its own.
#[derive(Clone, Debug, PartialEq)]
struct Remining {
    job_id: u64,
    index: usize,
    header: BlockHeader,
    tried: u64,
    budget: u64,
}

/// The sandbox as the panel shows it: the copy, its re-checked rows, a re-mine under way and
/// what the last one gave.
#[derive(Clone, Debug, PartialEq, Default)]
struct SandboxState {
    sandbox: Option<Sandbox>,
    rows: Vec<SandboxRow>,
    remining: Option<Remining>,
    outcome: Option<String>,
}

enum SandboxAction {
    Copied(Sandbox),
    Apply(Edit),
    RemineStarted(Remining),
    Progress { job_id: u64, tried: u64 },
    Found { job_id: u64, nonce: u64, tried: u64 },
    GaveUp { job_id: u64, tried: u64 },
}

impl Reducible for SandboxState {
    type Action = SandboxAction;

    fn reduce(self: Rc<Self>, action: SandboxAction) -> Rc<Self> {
        let mut next = (*self).clone();
        let current_job = self.remining.as_ref().map(|r| r.job_id);
        match action {
            SandboxAction::Copied(sandbox) => {
                next.rows = sandbox.rows();
                next.sandbox = Some(sandbox);
                next.remining = None;
                next.outcome = None;
            }
            SandboxAction::Apply(edit) => {
                let Some(sandbox) = next.sandbox.as_mut() else {
                    return self;
                };
                sandbox.apply(&edit);
                next.rows = sandbox.rows();
                next.outcome = None;
            }
            SandboxAction::RemineStarted(remining) => {
                next.outcome = None;
                next.remining = Some(remining);
            }
            SandboxAction::Progress { job_id, tried } => {
                if current_job != Some(job_id) {
                    return self;
                }
                if let Some(remining) = next.remining.as_mut() {
                    remining.tried = tried;
                }
            }
            SandboxAction::Found {
                job_id,
                nonce,
                tried,
            } => {
                let (Some(remining), Some(sandbox)) = (next.remining.take(), next.sandbox.as_mut())
                else {
                    return self;
                };
                if remining.job_id != job_id {
                    return self;
                }
                if sandbox.remined(remining.index, &remining.header, nonce) {
                    next.rows = sandbox.rows();
                    next.outcome = Some(format!(
                        "Block {} re-mined: nonce {nonce} found after {}.",
                        remining.header.height,
                        count(tried, "try", "tries")
                    ));
                }
            }
            SandboxAction::GaveUp { job_id, tried } => {
                if current_job != Some(job_id) {
                    return self;
                }
                let height = next.remining.take().map_or(0, |r| r.header.height);
                next.outcome = Some(format!(
                    "Gave up re-mining block {height} after {}: this target needs more work than the sandbox spends.",
                    count(tried, "try", "tries")
                ));
            }
        }
        Rc::new(next)
    }
}

/// What the worker's callback needs to know of the search it reports on.
#[derive(Default)]
struct SearchBook {
    job_id: u64,
    tried: u64,
    budget: u64,
}

/// Edit a copy of the chain and watch every later block fail; re-mine blocks one by one to
/// watch them pass again. The real chain is untouched.
#[component]
pub fn TamperSandbox() -> Html {
    let driver = use_driver();
    let node_state = use_node_state();
    let state = use_reducer(SandboxState::default);
    let worker = use_mut_ref(|| None::<WorkerBridge<MiningWorker>>);
    let book = use_mut_ref(SearchBook::default);
    let next_job = use_mut_ref(|| 0u64);
    let block_ref = use_node_ref();
    let field_ref = use_node_ref();
    let value_ref = use_node_ref();
    let selected_block = use_state(|| 0usize);
    let our_address = node_state.snapshot.as_ref().map(|s| s.address);

    let stop_search = {
        let worker = worker.clone();
        let book = book.clone();
        move || {
            book.borrow_mut().job_id = 0;
            if let Some(bridge) = worker.borrow().as_ref() {
                bridge.send(MinerCommand::Stop);
            }
        }
    };
    let take_copy = {
        let state = state.clone();
        let driver = driver.clone();
        let stop_search = stop_search.clone();
        Callback::from(move |_| {
            if let Some(sandbox) = driver.sandbox() {
                stop_search();
                state.dispatch(SandboxAction::Copied(sandbox));
            }
        })
    };
    let apply = {
        let state = state.clone();
        let (block_ref, field_ref, value_ref) =
            (block_ref.clone(), field_ref.clone(), value_ref.clone());
        let stop_search = stop_search.clone();
        let sandbox_blocks: Vec<shared::block::Block> = state
            .sandbox
            .as_ref()
            .map(|s| s.blocks.clone())
            .unwrap_or_default();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let block: usize = block_ref
                .cast::<HtmlSelectElement>()
                .and_then(|s| s.value().parse().ok())
                .unwrap_or(0);
            let field = field_ref
                .cast::<HtmlSelectElement>()
                .map(|s| s.value())
                .unwrap_or_default();
            let value = value_ref
                .cast::<HtmlInputElement>()
                .and_then(|input| input.value().trim().parse::<u64>().ok());
            let edit = match (field.as_str(), value) {
                // To us; a block that already pays us gives its reward away, to nobody.
                ("reward-to-me", _) => {
                    let Some(us) = our_address else { return };
                    let pays_us = sandbox_blocks
                        .get(block)
                        .is_some_and(|copy| copy.coinbase.to == us);
                    let to = if pays_us { Address::ZERO } else { us };
                    Edit::CoinbaseRecipient { block, to }
                }
                ("nonce", Some(nonce)) => Edit::Nonce { block, nonce },
                ("coinbase", Some(amount)) => Edit::CoinbaseAmount { block, amount },
                (tx, Some(amount)) => match tx.strip_prefix("tx").and_then(|i| i.parse().ok()) {
                    Some(tx) => Edit::TransactionAmount { block, tx, amount },
                    None => return,
                },
                _ => return,
            };
            // A search on the header before this edit would find a nonce for nothing.
            stop_search();
            state.dispatch(SandboxAction::Apply(edit));
        })
    };
    let remine = {
        let state = state.clone();
        let worker = worker.clone();
        let book = book.clone();
        let next_job = next_job.clone();
        Callback::from(move |index: usize| {
            let Some(header) = state.sandbox.as_ref().and_then(|s| s.remine_header(index)) else {
                return;
            };
            let job_id = {
                let mut next = next_job.borrow_mut();
                *next += 1;
                *next
            };
            let budget = remine_budget(&header);
            *book.borrow_mut() = SearchBook {
                job_id,
                tried: 0,
                budget,
            };
            let mut slot = worker.borrow_mut();
            let bridge = slot.get_or_insert_with(|| {
                let dispatcher = state.dispatcher();
                let book = book.clone();
                let worker = Rc::downgrade(&worker);
                MiningWorker::spawner()
                    .callback(move |report| {
                        on_search_report(report, &book, &worker, &dispatcher);
                    })
                    .spawn(WORKER_SCRIPT)
            });
            bridge.send(MinerCommand::Mine {
                job_id,
                header,
                first_nonce: 0,
                not_before_ms: 0.0,
            });
            state.dispatch(SandboxAction::RemineStarted(Remining {
                job_id,
                index,
                header,
                tried: 0,
                budget,
            }));
        })
    };
    let on_block = {
        let selected_block = selected_block.clone();
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            selected_block.set(select.value().parse().unwrap_or(0));
        })
    };

    let sandbox = state.sandbox.as_ref();
    let invalid = state.rows.iter().filter(|row| !row.valid()).count();
    // The lesson card ticks its tamper steps from what this panel shows.
    let lesson_facts = use_context::<UseStateHandle<crate::lessons::TamperFacts>>();
    {
        let facts = crate::lessons::TamperFacts {
            copied: sandbox.is_some(),
            invalid_rows: invalid,
        };
        use_effect_with(facts, move |facts| {
            if let Some(handle) = lesson_facts {
                if *handle != *facts {
                    handle.set(*facts);
                }
            }
        });
    }
    let first_invalid = state
        .rows
        .iter()
        .find(|row| !row.valid())
        .map(|row| row.height);
    html! {
        <section class="panel" aria-labelledby="tamper-title" data-testid="tamper">
            <div class="panel-head">
                <h2 id="tamper-title">{ super::TAMPER_TITLE }</h2>
                <button data-testid="tamper-copy" onclick={take_copy}>
                    { if sandbox.is_some() { "Copy again" } else { "Copy the last blocks" } }
                </button>
            </div>
            <p class="hint">{ "A block's proof of work holds when its hash is below the target: the valid hashes below start with zeros. Change a copied block: its hash changes, so its proof of work fails. Each later block is re-pointed at its changed parent, which changes its hash too, so every block after the edit fails. Re-mine a block to find a new nonce and watch it pass, then the next one. The real chain is not touched." }</p>
            if let Some(sandbox) = sandbox {
                <form class="row wrap tamper-form" onsubmit={apply}>
                    <label class="field"><span>{ "block" }</span>
                    <select ref={block_ref} data-testid="tamper-block" onchange={on_block}>
                        { for sandbox.blocks.iter().enumerate().map(|(index, block)| html! {
                            <option key={index} value={index.to_string()} selected={index == *selected_block}>
                                { format!("block {}", block.header.height) }</option>
                        }) }
                    </select></label>
                    <label class="field"><span>{ "change" }</span>
                    <select ref={field_ref} data-testid="tamper-field">
                        <option value="reward-to-me">{ "give its reward to me (or away, if it is mine)" }</option>
                        <option value="coinbase">{ "reward amount" }</option>
                        <option value="nonce">{ "nonce" }</option>
                        { for sandbox.blocks.get(*selected_block).into_iter()
                            .flat_map(|block| block.transactions.iter().enumerate())
                            .map(|(index, tx)| html! {
                                <option key={format!("tx{index}")} value={format!("tx{index}")}>
                                    { format!("transaction {} amount ({})", index + 1, count(tx.amount, "coin", "coins")) }</option>
                            }) }
                    </select></label>
                    <label class="field"><span>{ "new value" }</span>
                    <input ref={value_ref} data-testid="tamper-value" type="number" min="0"
                        placeholder="not needed for “me”" /></label>
                    <button type="submit" class="primary" data-testid="tamper-apply">{ "Apply the change" }</button>
                </form>
                <p data-testid="tamper-status" class={classes!("tamper-status", (invalid > 0).then_some("broken"))}>
                    { match first_invalid {
                        None => format!("All {} copied blocks are valid.", state.rows.len()),
                        Some(height) => format!("{} of {} invalid, from block {height} on.",
                            count(invalid as u64, "block", "blocks"), state.rows.len()),
                    } }
                </p>
                if let Some(outcome) = state.outcome.clone() {
                    <p class="hint" data-testid="tamper-outcome">{ outcome }</p>
                }
                <div class="table-wrap">
                <table class="sandbox">
                    <thead><tr><th>{ "Block" }</th><th>{ "Hash now (was)" }</th><th>{ "Proof of work" }</th>
                        <th>{ "Tx root" }</th><th>{ "Signatures" }</th><th>{ "Reward" }</th><th>{ "Link to previous" }</th>
                        <th>{ "Re-mine" }</th></tr></thead>
                    <tbody>
                        { for state.rows.iter().enumerate().map(|(index, row)| {
                            let remining = state.remining.as_ref().filter(|r| r.index == index);
                            sandbox_row(index, row, remining, state.remining.is_some(), &remine)
                        }) }
                    </tbody>
                </table>
                </div>
            }
        </section>
    }
}

/// What the sandbox's own worker reports: progress against the search's budget, a nonce, or
/// (past the budget) a stop.
fn on_search_report(
    report: MinerReport,
    book: &Rc<RefCell<SearchBook>>,
    worker: &std::rc::Weak<RefCell<Option<WorkerBridge<MiningWorker>>>>,
    dispatcher: &UseReducerDispatcher<SandboxState>,
) {
    let mut book = book.borrow_mut();
    match report {
        MinerReport::Progress { job_id, hashes } if job_id == book.job_id => {
            book.tried += hashes;
            if book.tried < book.budget {
                dispatcher.dispatch(SandboxAction::Progress {
                    job_id,
                    tried: book.tried,
                });
                return;
            }
            book.job_id = 0;
            if let Some(worker) = worker.upgrade() {
                if let Some(bridge) = worker.borrow().as_ref() {
                    bridge.send(MinerCommand::Stop);
                }
            }
            dispatcher.dispatch(SandboxAction::GaveUp {
                job_id,
                tried: book.tried,
            });
        }
        MinerReport::Found {
            job_id,
            nonce,
            hashes,
        } if job_id == book.job_id => {
            book.job_id = 0;
            dispatcher.dispatch(SandboxAction::Found {
                job_id,
                nonce,
                tried: book.tried + hashes,
            });
        }
        _ => {}
    }
}

fn sandbox_row(
    index: usize,
    row: &SandboxRow,
    remining: Option<&Remining>,
    busy: bool,
    remine: &Callback<usize>,
) -> Html {
    let mark = |label: &'static str, ok: bool, broken: &'static str, ok_text: &'static str| {
        html! {
            <td class={if ok { "pass" } else { "fail" }} data-label={label}>
                { if ok { ok_text } else { broken } }
            </td>
        }
    };
    let idle = remining.is_none() && row.checks.proof_of_work;
    let action = if let Some(search) = remining {
        html! {
            <span data-testid="tamper-progress" data-tried={search.tried.to_string()}>
                { format!("searching… {} of at most {} tries (expected {})",
                    search.tried, search.budget, about(expected_hashes(row.target) as f64)) }
            </span>
        }
    } else if row.checks.proof_of_work {
        html! { <span class="muted">{ if row.remined { "re-mined" } else { "not needed" } }</span> }
    } else {
        let onclick = {
            let remine = remine.clone();
            Callback::from(move |_| remine.emit(index))
        };
        html! {
            <button data-testid="tamper-remine" data-height={row.height.to_string()} disabled={busy}
                aria-label={format!("Re-mine block {}", row.height)} onclick={onclick}>{ "Re-mine" }</button>
        }
    };
    html! {
        <tr key={row.height} data-testid="tamper-row" data-valid={row.valid().to_string()}
            data-height={row.height.to_string()} data-pow={row.checks.proof_of_work.to_string()}
            class={classes!(row.edited.then_some("edited"), (!row.valid()).then_some("invalid"))}>
            <td data-label="Block"><b>{ row.height }</b>{ if row.edited { " ✎ edited" } else { "" } }
                <span class={if row.valid() { "verdict ok" } else { "verdict error" }}>
                    { if row.valid() { " valid" } else { " invalid" } }</span></td>
            <td data-label="Hash now (was)"><code>{ row.hash.short() }</code>
                if row.hash != row.original_hash {
                    <span class="muted">{ format!(" (was {})", row.original_hash.short()) }</span>
                }
            </td>
            { mark("Proof of work", row.checks.proof_of_work, "✗ hash above target", "✓") }
            { mark("Tx root", row.checks.tx_root, "✗ broken", "✓") }
            { mark("Signatures", row.checks.signatures, "✗ forged", "✓") }
            { mark("Reward", row.checks.coinbase, "✗ wrong amount", "✓") }
            { mark("Link to previous", row.checks.link, "✗ broken",
                if row.repointed { "✓ re‑pointed" } else { "✓" }) }
            <td data-label="Re-mine" class={classes!(idle.then_some("idle"))}>{ action }</td>
        </tr>
    }
}
