use crate::browser::driver::now_ms;
use crate::connection::{direct_links_suffix, ChainStatus};
use crate::hooks::use_node_state;
use crate::mining::format_rate;
use crate::room_link::with_network;
use yew::prelude::*;

/// The always-visible line: who, where, how connected, how far the chain is. On a phone it is
/// two lines (who, connection and sync; height, peers, mining) and the rest (room, address,
/// pending, tip, saved) opens with "details", so the bar does not cover a quarter of the screen.
#[component]
pub fn StatusBar() -> Html {
    let state = use_node_state();
    let open = use_state(|| false);
    let toggle = {
        let open = open.clone();
        Callback::from(move |_| open.set(!*open))
    };
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    let room = state.room();
    let network = state.network_label();
    let connected_peers = snapshot.answering_peers();
    let connection = &state.connection;
    let status = state.chain_status(&snapshot);
    // Alone because the room runs another network: say so in a sentence, with the link that
    // opens this room on the room's network.
    let wrong_network = match &status {
        ChainStatus::OtherNetwork { theirs } => {
            let search = web_sys::window()
                .and_then(|window| window.location().search().ok())
                .unwrap_or_default();
            Some((*theirs, theirs.map(|theirs| with_network(&search, theirs))))
        }
        _ => None,
    };
    let sync = (status.key(), status.describe());
    html! {
        <>
        <header class={classes!("status-bar", open.then_some("open"))} role="status"
            data-testid="status-bar">
            <span class="brand">{ "tabchain" }</span>
            <span class="item" title={snapshot.address.to_hex()}>
                <b>{ snapshot.name.clone() }</b>
                <code class="muted detail">{ format!(" {}", snapshot.address.short()) }</code>
            </span>
            <span class={classes!("item", "pill", connection.class_with_tabs(state.same_browser))}
                data-testid="status-connection" data-state={connection.key()}
                data-same-browser={state.same_browser.to_string()}
                title="the relay connection, and the direct links to other tabs">
                { connection.describe_with_tabs(now_ms(), state.same_browser) }
                <span data-testid="status-links" data-count={snapshot.direct_links.to_string()}>
                    { direct_links_suffix(snapshot.direct_links) }</span>
            </span>
            <span class={classes!("item", "pill", sync.0)} data-testid="status-sync" data-state={sync.0}>
                { sync.1 }
            </span>
            if state.hidden {
                <span class="item pill background" data-testid="status-background"
                    title="browsers run the timers of a hidden tab rarely: mining and messages slow down until it is in front again">
                    { "in the background: the browser slows this tab" }
                </span>
            }
            <span class="item">{ "height " }<b data-testid="status-height">{ snapshot.height }</b></span>
            <span class="item" title="peers that said hello">
                { "peers " }<b data-testid="peer-count">{ connected_peers }</b>
            </span>
            <span class="item" title="hashes per second, all workers">
                { "mining " }<b data-testid="hash-rate" data-value={format!("{:.0}", state.hash_rate)}>
                    { format_rate(state.hash_rate) }</b>
            </span>
            <span class="item detail" data-testid="status-room" title="room">{ format!("room {room}") }
                <span class="muted">{ format!(" · {network}") }</span></span>
            <span class="item detail" title="payments waiting for a block">
                { "pending " }<b data-testid="pool-size">{ snapshot.mempool_size }</b>
            </span>
            <span class="item detail" title={snapshot.tip_hash.to_hex()}>
                { "tip " }<code data-testid="tip-hash" data-hash={snapshot.tip_hash.to_hex()}
                    data-work={snapshot.total_work.to_hex()}>
                    { snapshot.tip_hash.short() }</code>
            </span>
            <span class={classes!("item", "muted", "small", "detail")} data-testid="status-saved"
                data-unsaved={state.unsaved.to_string()}
                title="blocks and transactions are written to this browser's IndexedDB in batches">
                { if state.unsaved == 0 { "saved".to_string() } else { format!("saving {}…", state.unsaved) } }
            </span>
            <button class="link details-toggle" data-testid="status-details" aria-expanded={open.to_string()}
                onclick={toggle}>{ if *open { "less" } else { "details" } }</button>
        </header>
        if let Some((theirs, fix)) = wrong_network {
            <p class="banner bad" role="alert" data-testid="wrong-network">
                { format!(
                    "Every tab that answered in room {room} is on {}; this tab is on the {network} network, so it mines alone and sees none of their blocks. ",
                    theirs.map(|theirs| format!("the {theirs} network")).unwrap_or_else(|| "another network".into())
                ) }
                if let Some(fix) = fix {
                    <a data-testid="wrong-network-fix" href={fix}>
                        { format!("Open room {room} on the {} network", theirs.unwrap_or_default()) }</a>
                }
            </p>
        }
        </>
    }
}
