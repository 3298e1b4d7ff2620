use crate::hooks::use_driver;
use crate::tamper::{Edit, Sandbox, SandboxRow};
use std::rc::Rc;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

#[derive(PartialEq)]
struct Copy {
    sandbox: Sandbox,
    rows: Vec<SandboxRow>,
}

/// Edit a copy of the chain and watch the links break; the real chain is untouched.
#[component]
pub fn TamperSandbox() -> Html {
    let driver = use_driver();
    let copy = use_state(|| None::<Rc<Copy>>);
    let block_ref = use_node_ref();
    let field_ref = use_node_ref();
    let value_ref = use_node_ref();

    let take_copy = {
        let copy = copy.clone();
        let driver = driver.clone();
        Callback::from(move |_| {
            if let Some(sandbox) = driver.sandbox() {
                let rows = sandbox.rows();
                copy.set(Some(Rc::new(Copy { sandbox, rows })));
            }
        })
    };
    let apply = {
        let copy = copy.clone();
        let (block_ref, field_ref, value_ref) =
            (block_ref.clone(), field_ref.clone(), value_ref.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let Some(current) = (*copy).clone() else {
                return;
            };
            let block: usize = block_ref
                .cast::<HtmlSelectElement>()
                .and_then(|s| s.value().parse().ok())
                .unwrap_or(0);
            let field = field_ref
                .cast::<HtmlSelectElement>()
                .map(|s| s.value())
                .unwrap_or_default();
            let Some(value) = value_ref
                .cast::<HtmlInputElement>()
                .and_then(|input| input.value().trim().parse::<u64>().ok())
            else {
                return;
            };
            let edit = match field.as_str() {
                "nonce" => Edit::Nonce {
                    block,
                    nonce: value,
                },
                "coinbase" => Edit::CoinbaseAmount {
                    block,
                    amount: value,
                },
                tx => match tx.strip_prefix("tx").and_then(|i| i.parse().ok()) {
                    Some(tx) => Edit::TransactionAmount {
                        block,
                        tx,
                        amount: value,
                    },
                    None => return,
                },
            };
            let mut sandbox = current.sandbox.clone();
            sandbox.apply(&edit);
            let rows = sandbox.rows();
            copy.set(Some(Rc::new(Copy { sandbox, rows })));
        })
    };
    let selected_block = use_state(|| 0usize);
    let on_block = {
        let selected_block = selected_block.clone();
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            selected_block.set(select.value().parse().unwrap_or(0));
        })
    };

    html! {
        <section class="panel" aria-labelledby="tamper-title" data-testid="tamper">
            <div class="panel-head">
                <h2 id="tamper-title">{ "Tamper sandbox" }</h2>
                <button data-testid="tamper-copy" onclick={take_copy}>
                    { if copy.is_some() { "Copy again" } else { "Copy the last blocks" } }
                </button>
            </div>
            <p class="hint">{ "Change a copied block and recompute: its hash changes, so its proof of work fails and the next block's link to it breaks. The real chain is not touched." }</p>
            if let Some(current) = (*copy).clone() {
                <form class="row wrap" onsubmit={apply}>
                    <select ref={block_ref} data-testid="tamper-block" onchange={on_block} aria-label="block to edit">
                        { for current.sandbox.blocks.iter().enumerate().map(|(index, block)| html! {
                            <option key={index} value={index.to_string()} selected={index == *selected_block}>
                                { format!("block {}", block.header.height) }</option>
                        }) }
                    </select>
                    <select ref={field_ref} data-testid="tamper-field" aria-label="field to edit">
                        <option value="nonce">{ "nonce" }</option>
                        <option value="coinbase">{ "coinbase amount" }</option>
                        { for current.sandbox.blocks.get(*selected_block).into_iter()
                            .flat_map(|block| block.transactions.iter().enumerate())
                            .map(|(index, tx)| html! {
                                <option key={format!("tx{index}")} value={format!("tx{index}")}>
                                    { format!("tx {index} amount ({})", tx.amount) }</option>
                            }) }
                    </select>
                    <input ref={value_ref} data-testid="tamper-value" type="number" min="0"
                        placeholder="new value" aria-label="new value" />
                    <button type="submit" class="primary" data-testid="tamper-apply">{ "Apply and recompute" }</button>
                </form>
                <div class="table-wrap">
                <table class="sandbox">
                    <thead><tr><th>{ "Height" }</th><th>{ "Hash now (was)" }</th><th>{ "Proof of work" }</th>
                        <th>{ "Tx root" }</th><th>{ "Signatures" }</th><th>{ "Coinbase" }</th><th>{ "Link to previous" }</th></tr></thead>
                    <tbody>
                        { for current.rows.iter().map(|row| {
                            let mark = |ok: bool| html! { <td class={if ok { "pass" } else { "fail" }}>{ if ok { "✓" } else { "✗ broken" } }</td> };
                            html! {
                                <tr key={row.height} data-testid="tamper-row" data-valid={row.valid().to_string()}
                                    class={classes!(row.edited.then_some("edited"), (!row.valid()).then_some("invalid"))}>
                                    <td>{ row.height }{ if row.edited { " ✎" } else { "" } }</td>
                                    <td><code>{ row.hash.short() }</code>
                                        if row.hash != row.original_hash {
                                            <span class="muted">{ format!(" ({})", row.original_hash.short()) }</span>
                                        }
                                    </td>
                                    { mark(row.checks.proof_of_work) }{ mark(row.checks.tx_root) }{ mark(row.checks.signatures) }
                                    { mark(row.checks.coinbase) }{ mark(row.checks.link) }
                                </tr>
                            }
                        }) }
                    </tbody>
                </table>
                </div>
            }
        </section>
    }
}
