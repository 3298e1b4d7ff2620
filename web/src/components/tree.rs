use crate::format::count;
use crate::hooks::use_node_state;
use yew::prelude::*;

const STEP_X: i64 = 46;
const STEP_Y: i64 = 46;
const MARGIN_X: i64 = 30;
const MARGIN_Y: i64 = 26;
/// Room under a block for one short label ("you +2"); the names themselves are listed below
/// the drawing, where they wrap instead of being clipped.
const LABEL_ROOM: i64 = 22;

/// An SVG of the recent block tree: our best chain on the first lane, side branches below,
/// peer names under the blocks they sit on, reorgs marked.
#[component]
pub fn BlockTreeView() -> Html {
    let state = use_node_state();
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    let drawing = &snapshot.tree;
    let x = |height: u64| MARGIN_X + (height - drawing.min_height) as i64 * STEP_X;
    let y = |lane: usize| MARGIN_Y + lane as i64 * (STEP_Y + LABEL_ROOM);
    let width = x(drawing.max_height.max(drawing.min_height)) + MARGIN_X + 60;
    let height = y(drawing.lanes.saturating_sub(1)) + MARGIN_Y + LABEL_ROOM;
    let edges = tree_edges(drawing, x, y);
    let nodes = drawing.nodes.iter().map(|node| {
        let (cx, cy) = (x(node.height), y(node.lane));
        let class = classes!(
            "block",
            if node.on_best_chain { "best" } else { "side" },
            node.is_our_tip.then_some("tip")
        );
        // One label that fits under a 46 px column: who is on this block, counted.
        let label = match (node.is_our_tip, node.peers.len()) {
            (false, 0) => None,
            (true, 0) => Some("you".to_string()),
            (true, others) => Some(format!("you +{others}")),
            (false, 1) => Some("1 tab".to_string()),
            (false, others) => Some(format!("{others} tabs")),
        };
        html! {
            <g key={node.hash.to_hex()} class={class} data-testid="tree-block"
                data-hash={node.hash.to_hex()} data-height={node.height.to_string()}>
                <title>{ format!("block {} {}", node.height, node.hash.short()) }</title>
                <rect x={(cx - 15).to_string()} y={(cy - 12).to_string()} width="30" height="24" rx="4" />
                <text x={cx.to_string()} y={(cy + 4).to_string()} class="h">{ node.height % 1000 }</text>
                if let Some(label) = label {
                    <text x={cx.to_string()} y={(cy + 28).to_string()}
                        class={if node.is_our_tip { "who you" } else { "who" }}>{ label }</text>
                }
            </g>
        }
    });
    let reorgs = drawing.reorgs.iter().map(|mark| {
        let (cx, cy) = (x(mark.height), y(mark.lane));
        html! {
            <g class="reorg" data-testid="reorg-marker" data-depth={mark.depth.to_string()}
                data-height={mark.height.to_string()}>
                <title>{ format!("reorg: this branch lost {} block(s) here", mark.depth) }</title>
                <text x={(cx + 16).to_string()} y={(cy - 12).to_string()}>{ format!("↺ reorg −{}", mark.depth) }</text>
            </g>
        }
    });
    html! {
        <section class="panel" aria-labelledby="tree-title">
            <h2 id="tree-title">{ "Block tree (last 30 heights)" }</h2>
            <div class="tree-wrap">
                <svg class="tree" data-testid="block-tree" width={width.to_string()} height={height.to_string()}
                    viewBox={format!("0 0 {width} {height}")} role="img"
                    aria-label="the recent block tree with branches and peers">
                    { edges }{ for nodes }{ for reorgs }
                </svg>
            </div>
            <ul class="tree-tips" data-testid="tree-tips" aria-label="which tab is on which block">
                { for drawing.nodes.iter().filter(|node| node.is_our_tip || !node.peers.is_empty()).map(|node| {
                    let mut names: Vec<String> = node.peers.clone();
                    if node.is_our_tip {
                        names.insert(0, "you".into());
                    }
                    html! {
                        <li key={node.hash.to_hex()} data-testid="tree-tip" data-height={node.height.to_string()}
                            data-hash={node.hash.to_hex()}>
                            <b>{ format!("block {}", node.height) }</b>
                            <code>{ format!(" {}", node.hash.short()) }</code>
                            { format!(" {}: ", if node.on_best_chain { "on our best chain" } else { "on a side branch" }) }
                            { names.join(", ") }
                            <span class="muted">{ format!(" ({})", count(names.len() as u64, "tab", "tabs")) }</span>
                        </li>
                    }
                }) }
            </ul>
            <p class="hint legend">
                <span class="key best"></span>{ " our best chain " }
                <span class="key side"></span>{ " side branch (fork) " }
                <span class="key tipkey"></span>{ " our tip" }
            </p>
            if !drawing.unknown_peer_tips.is_empty() {
                <p class="hint">{ "On blocks we do not have: " }
                    { drawing.unknown_peer_tips.iter()
                        .map(|(name, height)| format!("{name} (height {height})"))
                        .collect::<Vec<_>>().join(", ") }
                </p>
            }
        </section>
    }
}

/// The lines from each drawn block to its drawn parent, placed by `x` (of a height) and `y` (of
/// a lane): the page's tree and the projector's draw them alike, at their own scales.
pub fn tree_edges(
    drawing: &crate::tree_view::TreeDrawing,
    x: impl Fn(u64) -> i64,
    y: impl Fn(usize) -> i64,
) -> Html {
    drawing
        .nodes
        .iter()
        .filter_map(|node| {
            let parent = &drawing.nodes[node.parent?];
            Some(html! {
                <line x1={x(parent.height).to_string()} y1={y(parent.lane).to_string()}
                    x2={x(node.height).to_string()} y2={y(node.lane).to_string()}
                    class={if node.on_best_chain { "edge best" } else { "edge side" }} />
            })
        })
        .collect()
}
