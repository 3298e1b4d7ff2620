use crate::hooks::{use_driver, use_node_state};
use crate::mining::{format_rate, THROTTLE_STEPS};
use shared::shares::SHARE_WINDOW;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

/// The hash-power dial (the share of time this tab mines) and each miner's share of the
/// room's recent blocks, so a class sees hash power turn into blocks.
#[component]
pub fn HashPowerPanel() -> Html {
    let state = use_node_state();
    let driver = use_driver();
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    let set_throttle = Callback::from(move |event: Event| {
        let select: HtmlSelectElement = event.target_unchecked_into();
        if let Ok(percent) = select.value().parse() {
            driver.set_throttle(percent);
        }
    });
    let shares = &snapshot.shares;
    let rate = if snapshot.mining {
        state.hash_rate
    } else {
        0.0
    };
    html! {
        <section class="panel" aria-labelledby="power-title" data-testid="hash-power">
            <h2 id="power-title">{ super::HASH_POWER_TITLE }</h2>
            <div class="row">
                <label for="throttle">{ "mine" }</label>
                <select id="throttle" data-testid="mine-throttle" onchange={set_throttle}>
                    { for THROTTLE_STEPS.iter().map(|percent| html! {
                        <option key={*percent} value={percent.to_string()} selected={*percent == state.throttle}>
                            { format!("{percent} % of the time") }
                        </option>
                    }) }
                </select>
                <span class="muted">
                    { format_rate(rate) }
                </span>
            </div>
            <p class="hint">
                { "Hash power is how many guesses a second a tab makes at the puzzle of the next block. Give one tab more and it finds more of the blocks." }
            </p>
            <h3>{ format!("Share of the last {} blocks", shares.counted.min(SHARE_WINDOW)) }</h3>
            if shares.miners.is_empty() {
                <p class="hint" data-testid="shares-empty">{ "No blocks mined yet." }</p>
            } else {
                <ul class="shares" data-testid="block-shares">
                    { for shares.miners.iter().map(|share| html! {
                        <li key={share.miner.to_hex()} class={classes!(share.is_us.then_some("self"))}
                            data-testid="share-row" data-miner={share.miner.to_hex()}
                            data-percent={share.percent.to_string()} data-us={share.is_us.to_string()}>
                            <span class="share-name">{ share.label.clone() }</span>
                            <span class="share-bar" aria-hidden="true">
                                <span style={format!("width: {}%", share.percent)}></span>
                            </span>
                            <span class="share-figure">
                                { format!("{} % ({} blocks)", share.percent, share.blocks) }
                            </span>
                        </li>
                    }) }
                </ul>
            }
        </section>
    }
}
