use crate::browser::page::download_text;
use crate::format::{about, ago, count, local_date_time, work};
use crate::hooks::{use_driver, use_node_state};
use shared::validation::RuleOutcome;
use shared::Hash;
use web_sys::HtmlElement;
use yew::prelude::*;

/// Row height in pixels; the list positions rows by it, so it must match the CSS. 44 px is
/// the smallest comfortable tap target, and fits the two-line row of a phone screen.
pub const ROW_HEIGHT: u64 = 44;
/// Rows the viewport shows at once.
pub const VISIBLE_ROWS: u64 = 10;
/// Rows rendered above and below the viewport so fast scrolling shows no gaps.
pub const OVERSCAN_ROWS: u64 = 6;

/// The best chain, newest first. Only the rows in view are rendered, so a chain of ten
/// thousand blocks scrolls as smoothly as one of ten.
#[component]
pub fn Explorer() -> Html {
    let state = use_node_state();
    let driver = use_driver();
    let scroll_top = use_state(|| 0u64);
    let selected = use_state(|| None::<Hash>);
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    let total = snapshot.height + 1;
    let first_visible = *scroll_top / ROW_HEIGHT;
    let skip = first_visible.saturating_sub(OVERSCAN_ROWS);
    let window = (VISIBLE_ROWS + 2 * OVERSCAN_ROWS) as usize;
    let rows = driver.chain_rows(snapshot.height, skip, window);
    let now = crate::browser::driver::now_ms();

    let onscroll = {
        let scroll_top = scroll_top.clone();
        Callback::from(move |event: Event| {
            let element: HtmlElement = event.target_unchecked_into();
            scroll_top.set(element.scroll_top().max(0) as u64);
        })
    };
    let rendered = rows.iter().enumerate().map(|(offset, row)| {
        let top = (skip + offset as u64) * ROW_HEIGHT;
        let hash = row.hash;
        let select = {
            let selected = selected.clone();
            Callback::from(move |_| selected.set(Some(hash)))
        };
        let is_selected = *selected == Some(hash);
        html! {
            <button key={row.hash.to_hex()} class={classes!("chain-row", is_selected.then_some("selected"))}
                style={format!("top:{top}px")} data-testid="chain-row"
                data-height={row.height.to_string()} data-hash={row.hash.to_hex()}
                aria-pressed={is_selected.to_string()} onclick={select}>
                <span class="h">{ format!("#{}", row.height) }</span>
                <code>{ row.hash.short() }</code>
                <span class="txs">{ count(row.tx_count as u64, "transaction", "transactions") }</span>
                <span class="miner">{ row.miner_name.as_deref().map_or_else(|| row.miner.short(), |name| shared::view::labelled(name, &row.miner)) }</span>
                <span class="muted when">{ if row.height == 0 { "genesis".to_string() } else { ago(now, row.timestamp_ms) } }</span>
            </button>
        }
    });
    let detail = selected.as_ref().and_then(|hash| driver.block_detail(hash));
    let close = {
        let selected = selected.clone();
        Callback::from(move |_| selected.set(None))
    };
    html! {
        <section class="panel" aria-labelledby="explorer-title">
            <h2 id="explorer-title">{ format!("Chain explorer ({}, newest first)", count(total, "block", "blocks")) }</h2>
            <div class="chain-viewport" data-testid="chain-list" onscroll={onscroll}
                style={format!("height:{}px", VISIBLE_ROWS.min(total) * ROW_HEIGHT + 2)} tabindex="0"
                aria-label="blocks of our best chain">
                <div class="chain-spacer" style={format!("height:{}px", total * ROW_HEIGHT)}>
                    { for rendered }
                </div>
            </div>
            if let Some(detail) = detail {
                { block_detail_view(&detail, snapshot.height, close) }
            } else {
                <p class="hint">{ "Pick a block to see its header, transactions and the rules it passed." }</p>
            }
        </section>
    }
}

/// "tab-3f2a (1a2b3c4d)" when we know a name for the address, else its first digits.
fn who(name: &Option<String>, address: &shared::Address) -> String {
    name.as_deref().map_or_else(
        || address.short(),
        |name| shared::view::labelled(name, address),
    )
}

fn block_detail_view(
    detail: &crate::snapshot::BlockDetail,
    _tip_height: u64,
    close: Callback<MouseEvent>,
) -> Html {
    let block = &detail.block;
    let header = &block.header;
    let export = {
        let json = detail.json.clone();
        let name = format!("block-{}-{}.json", header.height, detail.hash.short());
        Callback::from(move |_| download_text(&name, &json))
    };
    html! {
        <div class="block-detail" data-testid="block-detail" data-hash={detail.hash.to_hex()}>
            <div class="panel-head">
                <h3>{ format!("Block {}", header.height) }</h3>
                <span>
                    <button data-testid="export-block" onclick={export}>{ "Export as JSON" }</button>
                    <button class="link" onclick={close}>{ "close" }</button>
                </span>
            </div>
            <dl class="fields">
                <dt>{ "hash" }</dt><dd><code>{ detail.hash.to_hex() }</code></dd>
                <dt>{ "status" }</dt><dd>{ if detail.on_best_chain {
                    format!("on our best chain, {}", count(detail.confirmations, "confirmation", "confirmations"))
                } else { "on a side branch (not on our best chain)".to_string() } }</dd>
                <dt>{ "mined" }</dt><dd data-testid="block-time" data-ms={header.timestamp_ms.to_string()}
                    title={format!("{} ms since 1 January 1970 UTC", header.timestamp_ms)}>
                    { if header.height == 0 { "the genesis block (fixed by the network)".to_string() }
                      else { local_date_time(header.timestamp_ms) } }</dd>
                <dt>{ "difficulty" }</dt><dd data-testid="block-target" title={format!("target {:08x} (compact)", header.target.0)}>
                    { format!("{} hashes expected per block", about(2f64.powf(header.target.work().log2()))) }
                    <span class="muted">{ format!(" · target {:08x}", header.target.0) }</span></dd>
                <dt>{ "nonce" }</dt><dd>{ header.nonce }</dd>
                <dt>{ "total work" }</dt><dd>{ format!("{} expected hashes, this block and all before it", work(detail.total_work_log2)) }</dd>
                <dt>{ "reward" }</dt><dd data-testid="block-coinbase">{ format!("{} to {}",
                    count(block.coinbase.amount, "coin", "coins"),
                    detail.miner_name.as_deref().map_or_else(|| block.coinbase.to.to_hex(),
                        |name| format!("{name} ({})", block.coinbase.to.to_hex()))) }</dd>
                <dt>{ "previous" }</dt><dd><code>{ header.prev_hash.to_hex() }</code></dd>
                <dt>{ "tx root" }</dt><dd><code>{ header.tx_root.to_hex() }</code></dd>
            </dl>
            <h4 data-testid="block-tx-count">{ if block.transactions.is_empty() {
                "No transactions besides the reward".to_string()
            } else { count(block.transactions.len() as u64, "transaction", "transactions") } }</h4>
            <ul class="plain">
                { for block.transactions.iter().zip(&detail.tx_names).map(|(tx, (from, to))| html! {
                    <li key={tx.id().to_hex()} data-testid="block-tx"><code>{ tx.id().short() }</code>
                        { format!(" {} → {} · {}, fee {}, nonce {}", who(from, &tx.sender()), who(to, &tx.to),
                            count(tx.amount, "coin", "coins"), tx.fee, tx.nonce) }</li>
                }) }
            </ul>
            <h4>{ "The rules every node checks" }</h4>
            <ul class="rules">
                { for detail.rules.iter().map(|rule| {
                    let (class, mark, why) = match &rule.outcome {
                        RuleOutcome::Passed => ("pass", "✓ ", String::new()),
                        RuleOutcome::Failed(error) => ("fail", "✗ ", format!(": {error}")),
                        RuleOutcome::NotReached => ("pending", "… ", " (not checked yet)".to_string()),
                    };
                    html! {
                        <li class={class} data-testid="block-rule" data-outcome={class}>
                            <b>{ mark }{ rule.title }</b>{ " — " }{ rule.detail.clone() }{ why }
                        </li>
                    }
                }) }
            </ul>
        </div>
    }
}
