use crate::browser::driver::now_ms;
use crate::format::count;
use crate::format::{round_trip, work};
use crate::hooks::{use_driver, use_node_state};
use crate::snapshot::{GonePeer, Link, WorkAhead};
use yew::prelude::*;

/// Compare chains across tabs: every peer's tip against ours, plus the partition controls.
#[component]
pub fn PeersPanel() -> Html {
    let state = use_node_state();
    let driver = use_driver();
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    let now = now_ms();
    let online = !matches!(
        state.connection,
        crate::connection::ConnectionState::Offline
    );
    let toggle_online = {
        let driver = driver.clone();
        Callback::from(move |_| driver.set_online(!online))
    };
    let no_path = snapshot
        .peers
        .iter()
        .filter(|peer| peer.link == Link::NoPath)
        .count();
    let unfolded = use_state(|| false);
    let toggle_folded = {
        let unfolded = unfolded.clone();
        Callback::from(move |_| unfolded.set(!*unfolded))
    };
    html! {
        <section class="panel" aria-labelledby="peers-title">
            <div class="panel-head">
                <h2 id="peers-title">{ super::PEERS_TITLE }</h2>
                <button data-testid="go-offline" data-online={online.to_string()}
                    class={classes!(if online { "" } else { "active" })} onclick={toggle_online}
                    title="close the relay connection and keep mining alone, to make a fork">
                    { if online { "Go offline" } else { "Go online" } }
                </button>
            </div>
            <div class="table-wrap">
            <table class="peers" data-testid="peer-table">
                <caption class="hint" data-testid="work-explained">{ WORK_EXPLAINED }</caption>
                <thead><tr>
                    <th scope="col">{ "Node" }</th><th scope="col">{ "Tip" }</th>
                    <th scope="col">{ "Height" }</th>
                    <th scope="col" class="work" title={WORK_EXPLAINED}>{ "Work vs ours" }</th>
                    <th scope="col">{ "Against our chain" }</th>
                    <th scope="col" title="direct: a WebRTC data channel between the tabs; relayed: through the server">{ "Link" }</th>
                    <th scope="col">{ "" }</th>
                </tr></thead>
                <tbody>
                    <tr class="self" data-testid="self-row">
                        <td><b>{ format!("{} (you)", snapshot.name) }</b></td>
                        <td><code>{ snapshot.tip_hash.short() }</code></td>
                        <td>{ snapshot.height }</td>
                        <td class="work" title={format!("total work {}", work(snapshot.total_work_log2))}>{ "ours" }</td>
                        <td class="relation">{ "—" }</td><td class="link"></td><td></td>
                    </tr>
                    { for snapshot.peers.iter().map(|peer| {
                        let muted = peer.muted;
                        let id = peer.id.clone();
                        let toggle_mute = {
                            let driver = driver.clone();
                            Callback::from(move |_| driver.set_peer_muted(&id, !muted))
                        };
                        let misbehaving = peer.misbehavior > 0 || peer.banned;
                        let same_browser = state.same_browser_peers.contains(&peer.id);
                        html! {
                            <tr key={peer.id.to_string()} data-testid="peer-row" data-present="true"
                                data-peer-name={peer.name.clone().unwrap_or_default()} data-peer-id={peer.id.to_string()}
                                data-relation={peer.relation.key()}
                                class={classes!(peer.relation.key(), muted.then_some("muted-peer"))}>
                                <td>
                                    <b>{ peer.name.clone().unwrap_or_else(|| format!("peer {}", peer.id.short())) }</b>
                                    if let Some(address) = peer.address {
                                        <code class="muted small" data-testid="peer-address" title={address.to_hex()}>{ format!(" {}", address.short()) }</code>
                                    }
                                    if misbehaving {
                                        <span class="badge bad" data-testid="peer-misbehaving"
                                            data-score={peer.misbehavior.to_string()}
                                            title={peer.last_offense.clone().unwrap_or_default()}>
                                            { if peer.banned { "banned".to_string() }
                                              else { format!("misbehaving ({})", peer.misbehavior) } }
                                        </span>
                                    }
                                    if muted { <span class="badge">{ "muted" }</span> }
                                    if let Some(reason) = peer.refusal.clone() {
                                        <span class="badge bad" title={reason}>{ "other network" }</span>
                                    }
                                </td>
                                <td>{ peer.tip.map(|tip| html! {
                                    <code data-hash={tip.hash.to_hex()}>{ tip.hash.short() }</code>
                                }).unwrap_or_else(|| html! { "—" }) }</td>
                                <td>{ peer.tip.map(|tip| tip.height.to_string()).unwrap_or("—".into()) }</td>
                                { work_cell(peer.work.as_ref()) }
                                <td class="relation">{ peer.relation.describe() }</td>
                                <td data-testid="peer-link" data-link={peer.link.key()}
                                    data-no-path={(peer.link == Link::NoPath).to_string()}
                                    data-same-browser={same_browser.to_string()}
                                    data-rtt-us={peer.rtt_us.map(|rtt| rtt.to_string())}
                                    class={classes!("link", peer.link.key())}
                                    title={if same_browser {
                                        Some("another tab of this browser, linked over the browser's own channel: no server, no network")
                                    } else if peer.link == Link::NoPath {
                                        Some(NO_PATH_EXPLAINED)
                                    } else {
                                        None
                                    }}>
                                    { match (peer.link, peer.rtt_us) {
                                        (Link::Direct, _) if same_browser => "this browser".to_string(),
                                        (Link::Direct, Some(rtt)) => format!("direct · {}", round_trip(rtt)),
                                        (Link::Connecting, _) => "connecting…".to_string(),
                                        (Link::NoPath, _) => "relayed · no direct path".to_string(),
                                        (link, _) => link.key().to_string(),
                                    } }
                                </td>
                                <td>
                                    <button class="small" data-testid="peer-mute"
                                        aria-pressed={muted.to_string()} onclick={toggle_mute}
                                        title="mute: send nothing to this peer and ignore what it sends">
                                        { if muted { "Unmute" } else { "Mute" } }
                                    </button>
                                </td>
                            </tr>
                        }
                    }) }
                    { for snapshot.gone_peers.iter().map(|gone| gone_row(gone, now)) }
                    if !snapshot.folded_peers.is_empty() {
                        <tr data-testid="peer-gone-folded" data-count={snapshot.folded_peers.len().to_string()}
                            class="gone-peer">
                            <td colspan="7">
                                { format!("{} left more than a minute ago ",
                                    count(snapshot.folded_peers.len() as u64, "tab", "tabs")) }
                                <button class="link" data-testid="peer-gone-unfold" aria-expanded={unfolded.to_string()}
                                    onclick={toggle_folded}>{ if *unfolded { "hide" } else { "show" } }</button>
                            </td>
                        </tr>
                        if *unfolded {
                            { for snapshot.folded_peers.iter().map(|gone| gone_row(gone, now)) }
                        }
                    }
                </tbody>
            </table>
            </div>
            if no_path > 0 {
                <p class="hint" data-testid="peers-no-path">{ format!(
                    "{} could not be linked directly: {}",
                    count(no_path as u64, "tab", "tabs"),
                    NO_PATH_EXPLAINED,
                ) }</p>
            }
            if snapshot.peers.is_empty() && snapshot.gone_peers.is_empty() && snapshot.folded_peers.is_empty() {
                <p class="hint">{ "No other tabs in this room yet. Open this page in another tab to add a node." }</p>
            } else if snapshot.peers.is_empty() {
                <p class="hint" data-testid="peers-unreachable">{ if online {
                    "No other tab reachable now. The rows above are the tabs we last saw, as they were then."
                } else {
                    "Offline: these are the tabs we last saw, as they were then. Their chains go on without us."
                } }</p>
            }
        </section>
    }
}

/// Why a peer stays on the relay after a direct link was tried, in plain words.
const NO_PATH_EXPLAINED: &str = "the networks between you block direct links (a router that changes ports, a strict firewall). The relay carries everything meanwhile; a TURN server, given to the relay with --ice-server, would link them.";

/// What the Work column means, in one line (the caption, and the column's title).
const WORK_EXPLAINED: &str = "Work vs ours: how much more proof of work a chain holds than ours, in blocks' worth at our current target. The chain with the most work wins.";

/// A peer's work against ours; its total work as a power of two in the title.
fn work_cell(ahead: Option<&WorkAhead>) -> Html {
    match ahead {
        Some(ahead) => html! {
            <td class="work" data-testid="peer-work" title={format!("total work {}", work(ahead.total_work_log2))}>
                { ahead.text.clone() }
            </td>
        },
        None => html! { <td class="work">{ "—" }</td> },
    }
}

/// A peer that went away: its last known tip, marked gone.
fn gone_row(gone: &GonePeer, now: u64) -> Html {
    let seen = gone.seen.seen(now);
    html! {
        <tr key={format!("gone-{}", gone.seen.view.id)} data-testid="peer-gone" data-present="false"
            data-peer-name={gone.seen.view.name.clone().unwrap_or_default()} data-peer-id={gone.seen.view.id.to_string()}
            data-relation={gone.relation.key()} data-last-seen-ms={gone.seen.last_seen_ms.to_string()}
            class={classes!("gone-peer", gone.relation.key())}>
            <td>
                <b>{ gone.seen.view.name.clone().unwrap_or_else(|| format!("peer {}", gone.seen.view.id.short())) }</b>
                if let Some(address) = gone.seen.view.address {
                    <code class="muted small" title={address.to_hex()}>{ format!(" {}", address.short()) }</code>
                }
                <span class="badge" data-testid="peer-seen">{ seen }</span>
            </td>
            <td>{ gone.seen.view.tip.map(|tip| html! {
                <code data-hash={tip.hash.to_hex()}>{ tip.hash.short() }</code>
            }).unwrap_or_else(|| html! { "—" }) }</td>
            <td>{ gone.seen.view.tip.map(|tip| tip.height.to_string()).unwrap_or("—".into()) }</td>
            { work_cell(gone.work.as_ref()) }
            <td class="relation">{ format!("{} (last known)", gone.relation.describe()) }</td>
            <td class="link">{ "gone" }</td>
            <td></td>
        </tr>
    }
}
