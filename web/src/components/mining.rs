use crate::hooks::{use_driver, use_node_state};
use crate::mining::format_rate;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

/// Start and stop mining, and choose how many workers mine.
#[component]
pub fn MiningPanel() -> Html {
    let state = use_node_state();
    let driver = use_driver();
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    let mining = snapshot.mining;
    let toggle = {
        let driver = driver.clone();
        Callback::from(move |_| driver.set_mining(!mining))
    };
    let set_workers = {
        let driver = driver.clone();
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            if let Ok(count) = select.value().parse() {
                driver.set_workers(count);
            }
        })
    };
    html! {
        <section class="panel" aria-labelledby="mining-title">
            <h2 id="mining-title">{ "Mining" }</h2>
            <div class="row">
                <button class={classes!("primary", mining.then_some("active"))}
                    data-testid="mine-toggle" data-mining={mining.to_string()}
                    aria-pressed={mining.to_string()} onclick={toggle}>
                    { if mining { "Stop mining" } else { "Start mining" } }
                </button>
                <label for="workers">{ "workers" }</label>
                <select id="workers" data-testid="mine-workers" onchange={set_workers}>
                    { for (1..=state.max_workers).map(|count| html! {
                        <option key={count} value={count.to_string()} selected={count == state.workers}>
                            { count }
                        </option>
                    }) }
                </select>
            </div>
            <p class="hint">
                { if mining {
                    format!("Searching for block {} at {}. Each block pays its miner the reward plus fees.",
                        snapshot.height + 1, format_rate(state.hash_rate))
                  } else {
                    "Mining runs in Web Workers; the page stays responsive.".to_string()
                  } }
            </p>
        </section>
    }
}
