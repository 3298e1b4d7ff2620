use crate::format::clock;
use crate::hooks::use_log_state;
use yew::prelude::*;

/// What happened, newest first.
#[component]
pub fn EventLog() -> Html {
    let log = use_log_state();
    html! {
        <section class="panel" aria-labelledby="log-title">
            <h2 id="log-title">{ super::EVENT_LOG_TITLE }</h2>
            <ol class="event-log" data-testid="event-log" aria-live="polite">
                { for log.entries.iter().map(|entry| html! {
                    <li key={entry.seq} data-kind={entry.kind.key()} class={entry.kind.key()}>
                        <time class="muted">{ clock(entry.at_ms) }</time>{ " " }{ entry.text.clone() }
                    </li>
                }) }
            </ol>
        </section>
    }
}
