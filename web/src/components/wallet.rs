use crate::format::resolve_recipient;
use crate::hooks::{use_driver, use_node_state};
use crate::snapshot::describe_tx_state;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Balance, the send form and our transactions with their fate.
#[component]
pub fn Wallet() -> Html {
    let state = use_node_state();
    let driver = use_driver();
    let to_ref = use_node_ref();
    let amount_ref = use_node_ref();
    let fee_ref = use_node_ref();
    let feedback = use_state(|| None::<Result<String, String>>);
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };

    let send = {
        let (to_ref, amount_ref, fee_ref) = (to_ref.clone(), amount_ref.clone(), fee_ref.clone());
        let feedback = feedback.clone();
        let snapshot = snapshot.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let value = |node: &NodeRef| {
                node.cast::<HtmlInputElement>()
                    .map(|input| input.value())
                    .unwrap_or_default()
            };
            let result = (|| {
                let to = resolve_recipient(&value(&to_ref), &snapshot)?;
                let amount: u64 = value(&amount_ref)
                    .trim()
                    .parse()
                    .map_err(|_| "the amount must be a whole number".to_string())?;
                let fee_text = value(&fee_ref);
                let fee: u64 = if fee_text.trim().is_empty() {
                    0
                } else {
                    fee_text
                        .trim()
                        .parse()
                        .map_err(|_| "the fee must be a whole number".to_string())?
                };
                let id = driver.send_coins(to, amount, fee)?;
                Ok(format!("sent: transaction {}", id.short()))
            })();
            feedback.set(Some(result));
        })
    };

    html! {
        <section class="panel" aria-labelledby="wallet-title">
            <h2 id="wallet-title">{ "Wallet" }</h2>
            <p class="balance">
                <span data-testid="balance" data-value={snapshot.balance.to_string()}>{ snapshot.balance }</span>
                <span class="muted">{ " coins" }</span>
            </p>
            <form class="send" onsubmit={send}>
                <label for="send-to">{ "To (a peer's name or an address)" }</label>
                <input id="send-to" ref={to_ref} data-testid="send-to" list="peer-addresses"
                    placeholder="peer name or 40-digit address" autocomplete="off" />
                <datalist id="peer-addresses">
                    { for snapshot.peers.iter().filter_map(|peer| {
                        let address = peer.address?;
                        Some(html! { <option key={peer.id.to_string()}
                            value={peer.name.clone()}>{ address.to_hex() }</option> })
                    }) }
                </datalist>
                <div class="row">
                    <span>
                        <label for="send-amount">{ "Amount" }</label>
                        <input id="send-amount" ref={amount_ref} data-testid="send-amount"
                            type="number" min="1" step="1" inputmode="numeric" />
                    </span>
                    <span>
                        <label for="send-fee">{ "Fee" }</label>
                        <input id="send-fee" ref={fee_ref} data-testid="send-fee"
                            type="number" min="0" step="1" value="1" inputmode="numeric" />
                    </span>
                </div>
                <button type="submit" class="primary" data-testid="send-button">{ "Send" }</button>
            </form>
            { match (*feedback).clone() {
                Some(Ok(text)) => html! { <p class="ok" data-testid="send-result" data-ok="true">{ text }</p> },
                Some(Err(text)) => html! { <p class="error" data-testid="send-result" data-ok="false">{ text }</p> },
                None => html! {},
            } }
            <h3>{ "Our transactions" }</h3>
            <ul class="tx-list" data-testid="tx-list">
                if snapshot.own_txs.is_empty() {
                    <li class="muted">{ "none yet" }</li>
                }
                { for snapshot.own_txs.iter().map(|tx| {
                    let (key, text) = describe_tx_state(&tx.state);
                    let to = tx.to_name.clone().unwrap_or_else(|| tx.to.short());
                    html! {
                        <li key={tx.id.to_hex()} data-testid="tx-item" data-txid={tx.id.to_hex()}
                            data-state={key} class={key}>
                            <span>{ format!("{} → {to}", tx.amount) }
                                <span class="muted">{ format!(" fee {}", tx.fee) }</span></span>
                            <span class="state">{ text }</span>
                        </li>
                    }
                }) }
            </ul>
        </section>
    }
}
