use crate::address_book::{self, BookError};
use crate::format::count;
use crate::format::resolve_recipient;
use crate::hooks::{use_driver, use_node_state};
use crate::snapshot::ACCOUNTS_SHOWN;
use shared::node::OwnTxState;
use shared::view::{labelled, parse_address, IncomingState, PinError, RecipientError};
use thiserror::Error;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Why the send form did not send.
#[derive(Debug, Clone, PartialEq, Error)]
enum SendFormError {
    #[error(transparent)]
    Recipient(#[from] RecipientError),
    #[error("the amount must be a whole number")]
    BadAmount,
    #[error("the fee must be a whole number")]
    BadFee,
    #[error(transparent)]
    Refused(#[from] shared::node::SendError),
}

/// Why a name was not pinned.
#[derive(Debug, Clone, PartialEq, Error)]
enum PinFormError {
    #[error("`{0}` is not a 40-digit hex address")]
    BadAddress(String),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("pinned for this page only: {0}")]
    NotSaved(#[from] BookError),
}

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
    let feedback = use_state(|| None::<Result<String, SendFormError>>);
    // The book lives in `address_book`; this state re-renders the list when it changes.
    let book = use_state(address_book::current);
    let pin_name = use_state(String::new);
    let pin_address = use_state(String::new);
    let pin_feedback = use_state(|| None::<Result<String, PinFormError>>);
    let double_spend_feedback =
        use_state(|| None::<Result<String, shared::node::DoubleSpendError>>);
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    let private_on = snapshot.private.is_some();

    let send = {
        let (to, amount, fee) = (to.clone(), amount.clone(), fee.clone());
        let feedback = feedback.clone();
        let snapshot = snapshot.clone();
        let book = book.clone();
        let driver = driver.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let result = (|| {
                let recipient = resolve_recipient(&to, &snapshot, &book)?;
                let amount_value: u64 = amount
                    .trim()
                    .parse()
                    .map_err(|_| SendFormError::BadAmount)?;
                let fee_value: u64 = if fee.trim().is_empty() {
                    0
                } else {
                    fee.trim().parse().map_err(|_| SendFormError::BadFee)?
                };
                let id = driver
                    .send_coins(recipient.address, amount_value, fee_value)
                    .map_err(SendFormError::Refused)?;
                let to = recipient.name.map_or_else(
                    || recipient.address.to_hex(),
                    |name| labelled(&name, &recipient.address),
                );
                Ok(format!("sent to {to}: transaction {}", id.short()))
            })();
            if result.is_ok() {
                amount.set(String::new());
            }
            feedback.set(Some(result));
        })
    };

    let pin = {
        let (pin_name, pin_address) = (pin_name.clone(), pin_address.clone());
        let (book, pin_feedback) = (book.clone(), pin_feedback.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let result = (|| {
                let address = parse_address(&pin_address)
                    .ok_or_else(|| PinFormError::BadAddress(pin_address.trim().to_string()))?;
                let mut changed = (*address_book::current()).clone();
                let name = changed.pin(&pin_name, address)?;
                let saved = address_book::replace(changed);
                book.set(address_book::current());
                saved?;
                Ok(format!("pinned {}", labelled(&name, &address)))
            })();
            if result.is_ok() {
                pin_name.set(String::new());
                pin_address.set(String::new());
            }
            pin_feedback.set(Some(result));
        })
    };
    let unpin = |name: String| {
        let (book, pin_feedback) = (book.clone(), pin_feedback.clone());
        Callback::from(move |_: MouseEvent| {
            let mut changed = (*address_book::current()).clone();
            changed.unpin(&name);
            let saved = address_book::replace(changed);
            book.set(address_book::current());
            pin_feedback.set(saved.err().map(|error| Err(PinFormError::NotSaved(error))));
        })
    };

    html! {
        <section class="panel" aria-labelledby="wallet-title">
            <h2 id="wallet-title">{ super::WALLET_TITLE }</h2>
            <p class="balance">
                <span data-testid="balance" data-value={snapshot.balance.to_string()}>{ snapshot.balance }</span>
                <span class="muted">{ " coins" }</span>
            </p>
            <form class="send" onsubmit={send}>
                <label for="send-to">{ "To (an address, a pinned name or a peer's name)" }</label>
                <input id="send-to" value={(*to).clone()} oninput={bind(&to)} data-testid="send-to" list="peer-addresses"
                    placeholder="name or 40-digit address" autocomplete="off" />
                <datalist id="peer-addresses">
                    // Peers we have and peers we remember: a gone peer stays payable by name.
                    { for snapshot.remembered.iter().filter_map(|peer| {
                        let address = peer.address?;
                        // The suggestion carries the address, so picking it pays that address.
                        let name = peer.name.clone()?;
                        Some(html! { <option key={peer.id.to_string()}
                            value={format!("{name} ({})", address.to_hex())}>{ name }</option> })
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
                Some(Err(error)) => html! { <p class="error" data-testid="send-result" data-ok="false">{ error.to_string() }</p> },
                None => html! {},
            } }
            <h3>{ "Our transactions" }</h3>
            <ul class="tx-list" data-testid="tx-list">
                if snapshot.own_txs.is_empty() {
                    <li class="muted">{ "none yet" }</li>
                }
                { for snapshot.own_txs.iter().map(|tx| {
                    let (key, text) = tx.describe();
                    let double_spend = {
                        let driver = driver.clone();
                        let feedback = double_spend_feedback.clone();
                        let id = tx.id;
                        Callback::from(move |_| {
                            feedback.set(Some(driver.double_spend(id).map(|_| id.to_hex())));
                        })
                    };
                    let reversible = private_on
                        && matches!(tx.state, OwnTxState::Pending | OwnTxState::Confirmed { .. });
                    let to = tx.to_name.as_deref().map_or_else(|| tx.to.short(), |name| labelled(name, &tx.to));
                    html! {
                        <li key={tx.id.to_hex()} data-testid="tx-item" data-txid={tx.id.to_hex()}
                            data-state={key} class={key} data-confirmations={tx.confirmations.to_string()}
                            data-max-confirmations={tx.max_confirmations.to_string()}>
                            <span>{ format!("{} → {to}", tx.amount) }
                                <span class="muted">{ format!(" fee {}", tx.fee) }</span></span>
                            <span class="state">{ text }</span>
                            if reversible {
                                <button class="link" data-testid="double-spend" data-txid={tx.id.to_hex()}
                                    onclick={double_spend}
                                    title="Signs a payment with the same number back to you and mines it only on your private branch">
                                    { "Pay it back to yourself on your private branch" }
                                </button>
                            }
                        </li>
                    }
                }) }
            </ul>
            { match (*double_spend_feedback).clone() {
                Some(Ok(_)) => html! { <p class="ok" data-testid="double-spend-result" data-ok="true">
                    { "Double spend made: it goes only into your private blocks. Mine a longer private branch, then release it." }</p> },
                Some(Err(error)) => html! { <p class="error" data-testid="double-spend-result" data-ok="false">{ error.to_string() }</p> },
                None => html! {},
            } }
            <h3>{ "Received" }</h3>
            <ul class="tx-list" data-testid="rx-list">
                if snapshot.incoming.is_empty() {
                    <li class="muted">{ "nothing yet" }</li>
                }
                { for snapshot.incoming.iter().map(|rx| {
                    let (key, text) = rx.describe();
                    let from = rx.from_name.as_deref().map_or_else(|| rx.from.short(), |name| labelled(name, &rx.from));
                    let confirmations = match rx.state {
                        IncomingState::Pending => 0,
                        IncomingState::Confirmed { confirmations, .. } => confirmations,
                        IncomingState::Reversed { .. } => 0,
                    };
                    html! {
                        <li key={rx.id.to_hex()} data-testid="rx-item" data-txid={rx.id.to_hex()}
                            data-state={key} class={key} data-amount={rx.amount.to_string()}
                            data-from={rx.from.to_hex()} data-confirmations={confirmations.to_string()}
                            data-max-confirmations={rx.max_confirmations.to_string()}>
                            <span>{ format!("{} from {from}", count(rx.amount, "coin", "coins")) }</span>
                            <span class="state">{ text }</span>
                        </li>
                    }
                }) }
            </ul>
            <h3 id="pins-title">{ "Address book" }</h3>
            <p class="hint">{ "Names are what peers call themselves; anyone can take any name. Pin a name to an address you trust, and paying that name pays that address." }</p>
            <form class="pin" onsubmit={pin} aria-labelledby="pins-title">
                <input value={(*pin_name).clone()} oninput={bind(&pin_name)} data-testid="pin-name"
                    placeholder="name" autocomplete="off" aria-label="name to pin" />
                <input value={(*pin_address).clone()} oninput={bind(&pin_address)} data-testid="pin-address"
                    placeholder="40-digit address" autocomplete="off" aria-label="address to pin it to" />
                <button type="submit" data-testid="pin-button">{ "Pin" }</button>
            </form>
            { match (*pin_feedback).clone() {
                Some(Ok(text)) => html! { <p class="ok" data-testid="pin-result" data-ok="true">{ text }</p> },
                Some(Err(error)) => html! { <p class="error" data-testid="pin-result" data-ok="false">{ error.to_string() }</p> },
                None => html! {},
            } }
            <ul class="plain" data-testid="pin-list">
                { for book.pins().iter().map(|pin| html! {
                    <li key={pin.name.clone()} data-testid="pin-item" data-name={pin.name.clone()}
                        data-address={pin.address.to_hex()}>
                        <b>{ pin.name.clone() }</b>{ " " }<code class="small">{ pin.address.to_hex() }</code>{ " " }
                        <button class="link" data-testid="pin-remove" onclick={unpin(pin.name.clone())}>{ "remove" }</button>
                    </li>
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
