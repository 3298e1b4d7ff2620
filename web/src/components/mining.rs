use crate::hooks::{use_driver, use_node_state};
use crate::mining::format_rate;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

/// Start and stop mining, choose how many workers mine, and mine privately (the double-spend
/// lesson): a hidden branch, its lead over the public chain, and the release.
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
    let private = snapshot.private.clone();
    let private_on = private.is_some();
    let toggle_private = {
        let driver = driver.clone();
        Callback::from(move |_| driver.set_private_mining(!private_on))
    };
    let release = {
        let driver = driver.clone();
        Callback::from(move |_| {
            let _ = driver.release_private();
        })
    };
    html! {
        <section class="panel" aria-labelledby="mining-title" data-testid="mining-panel">
            <h2 id="mining-title">{ super::MINING_TITLE }</h2>
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
                    // While private the miner builds on the private tip, whichever chain is best.
                    let next = snapshot.private.as_ref().map_or(snapshot.height, |private| private.private_height) + 1;
                    format!("Searching for block {next} at {}. Each block pays its miner the reward plus fees.",
                        format_rate(state.hash_rate))
                  } else {
                    "Mining runs in Web Workers; the page stays responsive.".to_string()
                  } }
            </p>
            <div class="row">
                <button class={classes!(private_on.then_some("active"))}
                    data-testid="private-toggle" data-private={private_on.to_string()}
                    aria-pressed={private_on.to_string()} onclick={toggle_private}>
                    { if private_on { "Stop mining privately (release)" } else { "Mine privately" } }
                </button>
                if private_on {
                    <button class="primary" data-testid="private-release" onclick={release}>
                        { "Release my private branch" }
                    </button>
                }
            </div>
            { match &private {
                Some(private) => html! {
                    <p data-testid="private-lead" data-blocks={private.blocks.to_string()}
                        data-lead-blocks={private.lead_blocks.to_string()}
                        data-lead-work={format!("{:.1}", private.lead_work_blocks)}
                        data-ahead={private.ahead().to_string()}
                        class={classes!(if private.ahead() { "ok" } else { "warn" })}>
                        { private.describe() }
                        { if private.ahead() {
                            " Released now, it would replace the public chain."
                          } else {
                            " Released now, it would lose: the public chain has as much work or more."
                          } }
                        if private.full {
                            { " The branch is full: release it to mine on." }
                        }
                    </p>
                },
                None => html! {
                    <p class="hint">{ "Mining privately builds blocks on your own branch without telling anyone, until you release it. The heaviest chain still wins." }</p>
                },
            } }
            if private_on {
                <p class="hint">{ "To reverse a payment: mine privately first, then pay, then use “Pay it back to yourself on your private branch” next to the payment in your wallet." }</p>
            }
            { match &snapshot.last_release {
                Some(release) if !private_on => html! {
                    <p data-testid="private-released" data-blocks={release.blocks.to_string()}
                        data-heavier={release.heavier.to_string()}>
                        { format!("Released {} of the private branch: {}",
                            shared::view::plural(release.blocks as u64, "block", "blocks"),
                            if release.heavier { "it had more work, so everyone switches to it." }
                            else { "the public chain had as much work or more, so the branch loses." }) }
                    </p>
                },
                _ => html! {},
            } }
        </section>
    }
}
