use crate::browser::page::confirm;
use crate::hooks::{use_driver, use_node_state};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

/// This tab's name and address, the saved identities it can adopt, and the reset control.
#[component]
pub fn IdentityPanel() -> Html {
    let state = use_node_state();
    let driver = use_driver();
    let editing = use_state(|| false);
    let error = use_state(|| None::<String>);
    let draft = use_state(String::new);
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    let identity_id = driver.identity().id;

    let start_edit = {
        let editing = editing.clone();
        let draft = draft.clone();
        let name = snapshot.name.clone();
        Callback::from(move |_| {
            draft.set(name.clone());
            editing.set(true);
        })
    };
    let on_draft = {
        let draft = draft.clone();
        Callback::from(move |event: InputEvent| {
            let input: HtmlInputElement = event.target_unchecked_into();
            draft.set(input.value());
        })
    };
    let save = {
        let driver = driver.clone();
        let draft = draft.clone();
        let error = error.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if let Err(why) = driver.rename(&draft) {
                error.set(Some(why.to_string()));
            }
        })
    };
    let adopt = {
        let driver = driver.clone();
        let current = identity_id.clone();
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            let id = select.value();
            if id == "new" {
                driver.new_identity();
            } else if id != current {
                driver.adopt_identity(&id);
            }
        })
    };
    let reset = {
        let driver = driver.clone();
        Callback::from(move |_| {
            if confirm("Reset this node? Its chain and pending transactions are deleted and it starts again from the genesis block. Its keys stay.") {
                driver.reset();
            }
        })
    };
    let persistent = state.session.as_ref().is_some_and(|s| s.persistent);

    html! {
        <section class="panel" aria-labelledby="identity-title">
            <h2 id="identity-title">{ super::IDENTITY_TITLE }</h2>
            if *editing {
                <form class="row" onsubmit={save}>
                    <label class="sr-only" for="name-input">{ "Name" }</label>
                    <input id="name-input" data-testid="name-input" value={(*draft).clone()}
                        oninput={on_draft} maxlength="32" />
                    <button type="submit" data-testid="name-save">{ "Save" }</button>
                </form>
                <p class="hint">{ "Saving restarts the node under the new name; the chain and keys stay." }</p>
            } else {
                <p class="row">
                    <span class="big" data-testid="node-name">{ snapshot.name.clone() }</span>
                    <button class="link" onclick={start_edit} data-testid="name-edit">{ "rename" }</button>
                </p>
            }
            if let Some(why) = (*error).clone() { <p class="error">{ why }</p> }
            <p class="label">{ "Address (others send coins here)" }</p>
            <code class="address" data-testid="node-address" data-address={snapshot.address.to_hex()}>{ snapshot.address.to_hex() }</code>
            <label class="label" for="identity-select">{ "Identity of this tab" }</label>
            <select id="identity-select" data-testid="identity-select" onchange={adopt}>
                { for state.identities.iter().map(|identity| html! {
                    <option key={identity.id.clone()} value={identity.id.clone()}
                        selected={identity.id == identity_id}>
                        { format!("{} ({})", identity.name,
                            identity.address().map(|a| a.short()).unwrap_or_default()) }
                    </option>
                }) }
                <option value="new">{ "＋ a new identity" }</option>
            </select>
            <p class="hint" data-testid="storage-persisted"
                data-persisted={match (persistent, state.storage.persisted) {
                    (false, _) => "unavailable",
                    (true, None) => "asking",
                    (true, Some(true)) => "true",
                    (true, Some(false)) => "false",
                }}>
                { match (persistent, state.storage.persisted) {
                    (false, _) => "Storage is unavailable: this node forgets its keys and chain when the page reloads.",
                    (true, None) => "Keys, chain and pending transactions are kept in this browser. Asking the browser to keep them for good…",
                    (true, Some(true)) => "Keys, chain and pending transactions are kept in this browser, and the browser agreed to keep them for good: it will not delete them to free space (only you can, by clearing this site's data).",
                    (true, Some(false)) => "Keys, chain and pending transactions are kept in this browser, but it did not promise to keep them: if the disk runs low it may delete them. The chain would come back from other tabs; the keys (and the coins they hold) would not.",
                } }
            </p>
            <button class="danger" data-testid="reset-node" onclick={reset}>{ "Reset this node…" }</button>
        </section>
    }
}
