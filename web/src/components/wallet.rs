use crate::format::resolve_recipient;
use crate::hooks::{use_driver, use_node_state};
use crate::snapshot::{describe_tx_state, ACCOUNTS_SHOWN};
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Keeps a text field's state in step with what the person types.
fn bind(field: &UseStateHandle<String>) -> Callback<InputEvent> {
    let field = field.clone();
    Callback::from(move |event: InputEvent| {
        let input: HtmlInputElement = event.target_unchecked_into();
        field.set(input.value());
    })
}

/// Balance, the send form and our transactions with their fate.
#[component]
pub fn Wallet() -> Html {
    let state = use_node_state();
    let driver = use_driver();
    // Controlled fields: the app re-renders several times a second while mining, and an
    // uncontrolled `value` would be reset under the person's fingers.
    let to = use_state(String::new);
    let amount = use_state(String::new);
    let fee = use_state(|| "1".to_string());
    let feedback = use_state(|| None::<Result<String, String>>);
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };

    let send = {
        let (to, amount, fee) = (to.clone(), amount.clone(), fee.clone());
        let feedback = feedback.clone();
        let snapshot = snapshot.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let result = (|| {
                let recipient = resolve_recipient(&to, &snapshot)?;
                let amount_value: u64 = amount
                    .trim()
                    .parse()
                    .map_err(|_| "the amount must be a whole number".to_string())?;
                let fee_value: u64 = if fee.trim().is_empty() {
                    0
                } else {
                    fee.trim()
                        .parse()
                        .map_err(|_| "the fee must be a whole number".to_string())?
                };
                let id = driver.send_coins(recipient, amount_value, fee_value)?;
                Ok(format!("sent: transaction {}", id.short()))
            })();
            if result.is_ok() {
                amount.set(String::new());
            }
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
                <input id="send-to" value={(*to).clone()} oninput={bind(&to)} data-testid="send-to" list="peer-addresses"
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
                        <input id="send-amount" value={(*amount).clone()} oninput={bind(&amount)} data-testid="send-amount"
                            type="number" min="1" step="1" inputmode="numeric" />
                    </span>
                    <span>
                        <label for="send-fee">{ "Fee" }</label>
                        <input id="send-fee" value={(*fee).clone()} oninput={bind(&fee)} data-testid="send-fee"
                            type="number" min="0" step="1" inputmode="numeric" />
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
            <h3 id="balances-title">{ "Balances on our chain" }</h3>
            <table class="balances" data-testid="balances" aria-labelledby="balances-title">
                <thead><tr><th scope="col">{ "Account" }</th><th scope="col" class="num">{ "Coins" }</th></tr></thead>
                <tbody>
                    if snapshot.accounts.is_empty() {
                        <tr><td colspan="2" class="muted">{ "nobody has coins yet: mine a block" }</td></tr>
                    }
                    { for snapshot.accounts.iter().take(ACCOUNTS_SHOWN).map(|account| html! {
                        <tr key={account.address.to_hex()} data-testid="balance-row"
                            data-address={account.address.to_hex()} data-balance={account.balance.to_string()}>
                            <td>
                                if let Some(name) = account.name.clone() { <b>{ name }</b>{ " " } }
                                <code class="muted small" title={account.address.to_hex()}>{ account.address.short() }</code>
                            </td>
                            <td class="num">{ account.balance }</td>
                        </tr>
                    }) }
                    if snapshot.accounts.len() > ACCOUNTS_SHOWN {
                        <tr><td colspan="2" class="muted">{ format!("and {} more accounts", snapshot.accounts.len() - ACCOUNTS_SHOWN) }</td></tr>
                    }
                </tbody>
            </table>
        </section>
    }
}
