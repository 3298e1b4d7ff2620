//! The projector view (`?view=class`): the whole room on one screen, read from the back of a
//! classroom. The block tree of the last 30 heights with every tab's tip named, each miner's
//! share of the recent blocks, and the latest events, in large type (at least 24 px at
//! 1920 × 1080), with no scrolling and no control a student could take for one of their own.
//! The tab still runs a full node; it only never mines or pays from this view.

use crate::format::{clock, count};
use crate::hooks::{use_log_state, use_node_state};
use crate::log::LogKind;
use crate::tree_view::TreeNode;
use shared::shares::SHARE_WINDOW;
use yew::prelude::*;

/// The `?view=` value that opens this view.
pub const CLASS_VIEW: &str = "class";

// The drawing is laid out for a 1920 px wide screen (its viewBox is about that wide, so one
// unit is about one pixel there); it scales down with the window.
const STEP_X: i64 = 48;
const LANE_Y: i64 = 64;
const MARGIN_X: i64 = 34;
const MARGIN_Y: i64 = 40;
/// The column of names right of the blocks (at least): one row per block that a tab sits on.
const NAMES_WIDTH: i64 = 430;
const NAME_ROW: i64 = 40;
/// Names written out on one row; the rest are counted ("+4").
const NAMES_PER_ROW: usize = 3;
/// Events shown, newest first.
const EVENTS_SHOWN: usize = 7;

/// Who is on `node`, in words for one row: "alice, bob, carol +2".
fn names_row(node: &TreeNode) -> String {
    let mut names: Vec<&str> = node.peers.iter().map(String::as_str).collect();
    names.sort_unstable();
    let shown = names
        .iter()
        .take(NAMES_PER_ROW)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(NAMES_PER_ROW) {
        0 => shown,
        more => format!("{shown} +{more}"),
    }
}

#[component]
pub fn ClassView() -> Html {
    let state = use_node_state();
    let log = use_log_state();
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    let room = state.room();
    let network = state.network_label();
    let tabs = snapshot.answering_peers();
    let status = state.chain_status(&snapshot);

    let drawing = &snapshot.tree;
    let lanes = drawing.lanes.max(1) as i64;
    // Rows of names: the best chain's blocks first, newest first, then the side branches'.
    let mut rows: Vec<&TreeNode> = drawing
        .nodes
        .iter()
        .filter(|node| !node.peers.is_empty())
        .collect();
    rows.sort_by_key(|node| (node.lane, std::cmp::Reverse(node.height)));
    let x = |height: u64| MARGIN_X + (height - drawing.min_height) as i64 * STEP_X;
    let y = |lane: usize| MARGIN_Y + lane as i64 * LANE_Y;
    // Names right after the newest block drawn, so a short chain has short leader lines.
    let blocks_right = x(drawing.max_height.max(drawing.min_height)) + 30;
    let names_x = blocks_right + 40;
    // Room for the longest row (about 0.6 em a character), so no name runs off the drawing.
    let longest = rows
        .iter()
        .map(|node| {
            format!("{} (fork): {}", node.height, names_row(node))
                .chars()
                .count()
        })
        .max()
        .unwrap_or(0) as i64;
    let width = names_x + NAMES_WIDTH.max(longest * 17);
    let row_y = |row: usize| MARGIN_Y + 10 + row as i64 * NAME_ROW;
    let height = (y(lanes as usize - 1) + MARGIN_Y).max(row_y(rows.len().max(1)) + 10);

    let edges = super::tree::tree_edges(drawing, x, y);
    let blocks = drawing.nodes.iter().map(|node| {
        let (cx, cy) = (x(node.height), y(node.lane));
        let class = classes!(
            "block",
            if node.on_best_chain { "best" } else { "side" },
            (!node.peers.is_empty()).then_some("held")
        );
        html! {
            <g key={node.hash.to_hex()} class={class} data-testid="class-block"
                data-height={node.height.to_string()}>
                <rect x={(cx - 22).to_string()} y={(cy - 18).to_string()} width="44" height="36" rx="5" />
                <text x={cx.to_string()} y={(cy + 10).to_string()}>{ node.height % 1000 }</text>
            </g>
        }
    });
    let labels = rows.iter().enumerate().map(|(row, node)| {
        let (cx, cy) = (x(node.height), y(node.lane));
        let ly = row_y(row);
        let branch = if node.on_best_chain { "" } else { " (fork)" };
        html! {
            <g key={node.hash.to_hex()} class={if node.on_best_chain { "names best" } else { "names side" }}
                data-testid="class-tip" data-height={node.height.to_string()}
                data-names={node.peers.join(",")}>
                <polyline class="leader"
                    points={format!("{},{} {},{} {},{}", cx + 21, cy, names_x - 20, ly - 9, names_x - 8, ly - 9)} />
                <text x={names_x.to_string()} y={ly.to_string()}>
                    <tspan class="at">{ format!("{}{branch}: ", node.height) }</tspan>
                    { names_row(node) }
                </text>
            </g>
        }
    });
    let reorgs = drawing.reorgs.iter().map(|mark| {
        let (cx, cy) = (x(mark.height), y(mark.lane));
        html! {
            <text class="reorg" data-testid="class-reorg" x={(cx - 21).to_string()} y={(cy - 24).to_string()}>
                { format!("↺ reorg −{}", mark.depth) }
            </text>
        }
    });

    let shares = &snapshot.shares;
    // What the room did, not what this tab went through (its storage, its links).
    let events: Vec<_> = log
        .entries
        .iter()
        .filter(|entry| {
            matches!(
                entry.kind,
                LogKind::Block
                    | LogKind::Reorg
                    | LogKind::Rejected
                    | LogKind::Misbehavior
                    | LogKind::Transaction
            )
        })
        .take(EVENTS_SHOWN)
        .collect();
    html! {
        <main class="class-view" data-testid="class-view">
            <header class="cv-head">
                <h1>{ format!("Room {room}") }</h1>
                <p>
                    <span data-testid="status-height">{ format!("height {}", snapshot.height) }</span>
                    { " · " }
                    <span data-testid="class-tabs">{ count(tabs as u64, "tab", "tabs") }</span>
                    { format!(" · {network} network · ") }
                    <span class={classes!("cv-sync", status.key())} data-testid="status-connection"
                        data-state={state.connection.key()}>{ status.describe() }</span>
                </p>
            </header>
            <section class="cv-tree" aria-label="the block tree of the last 30 heights, with every tab's tip">
                <svg data-testid="class-tree" viewBox={format!("0 0 {width} {height}")}
                    preserveAspectRatio="xMinYMid meet" role="img"
                    aria-label="block tree: our best chain on the top lane, forks below, tabs named at their tips">
                    { edges }{ for blocks }{ for labels }{ for reorgs }
                </svg>
                if rows.is_empty() {
                    <p class="cv-empty">{ "No tab has said where it is yet." }</p>
                }
            </section>
            <div class="cv-bottom">
                <section aria-labelledby="cv-shares-title">
                    <h2 id="cv-shares-title">
                        { format!("Who mined the last {}", count(shares.counted.min(SHARE_WINDOW), "block", "blocks")) }
                    </h2>
                    if shares.miners.is_empty() {
                        <p class="cv-empty">{ "No blocks mined yet." }</p>
                    } else {
                        <ul class="cv-shares" data-testid="class-shares">
                            { for shares.miners.iter().take(5).map(|share| html! {
                                <li key={share.miner.to_hex()} data-testid="class-share"
                                    data-percent={share.percent.to_string()}>
                                    <span class="cv-name">{ share.label.clone() }</span>
                                    <span class="cv-bar" aria-hidden="true">
                                        <span style={format!("width: {}%", share.percent)}></span>
                                    </span>
                                    <span class="cv-figure">{ format!("{} %", share.percent) }</span>
                                </li>
                            }) }
                        </ul>
                    }
                </section>
                <section aria-labelledby="cv-events-title">
                    <h2 id="cv-events-title">{ "Latest" }</h2>
                    <ol class="cv-events" data-testid="class-events" aria-live="polite">
                        { for events.into_iter().map(|entry| html! {
                            <li key={entry.seq} class={entry.kind.key()}>
                                <time>{ clock(entry.at_ms) }</time>{ " " }{ entry.text.clone() }
                            </li>
                        }) }
                    </ol>
                </section>
            </div>
        </main>
    }
}
