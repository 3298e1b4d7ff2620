use crate::config::query_param;
use crate::hooks::{use_driver, use_node_state};
use crate::lessons::{
    lesson, others_phrase, role_parts, share_phrase, LessonFacts, LessonProgress, TamperFacts,
    LESSONS,
};
use shared::shares::BlockShares;
use yew::prelude::*;

/// Miners a count since the lesson's mark names one by one; the rest are summed up in one
/// phrase, so a class of thirty tabs keeps the line short.
const SINCE_MINERS_SHOWN: usize = 4;

/// The lesson card `?lesson=…` opens: what to do and what to watch at each step, each ticked
/// when the node sees it happen. Ticks come from [`LessonProgress`]; this only renders.
#[component]
pub fn LessonCard() -> Html {
    let state = use_node_state();
    let driver = use_driver();
    let tamper = use_context::<UseStateHandle<TamperFacts>>()
        .map(|handle| *handle)
        .unwrap_or_default();
    let progress = use_mut_ref(LessonProgress::default);
    let search = web_sys::window()
        .and_then(|window| window.location().search().ok())
        .unwrap_or_default();
    let Some(id) = query_param(&search, "lesson") else {
        return html! {};
    };
    let Some(lesson) = lesson(&id) else {
        let known: Vec<&str> = LESSONS.iter().map(|lesson| lesson.id).collect();
        return html! {
            <section class="panel lesson" data-testid="lesson" data-lesson="unknown">
                <p class="error">{ format!("There is no lesson {id:?}. The lessons are: {}.", known.join(", ")) }</p>
            </section>
        };
    };
    let Some(snapshot) = state.snapshot.clone() else {
        return html! {};
    };
    // Who mined the blocks since the lesson's mark (the majority's dial), counted from the best
    // chain up to the height on screen: only the blocks above the mark are read.
    let since = lesson
        .since_height(&progress.borrow())
        .map(|height| (height, driver.shares_since(snapshot.height, height)));
    let mut facts =
        LessonFacts::from_snapshot(&snapshot, driver.is_online(), state.throttle, tamper);
    if let Some((_, shares)) = &since {
        facts = facts.with_shares_since(shares);
    }
    let (ticked, since) = {
        let mut progress = progress.borrow_mut();
        progress.advance(lesson, &facts);
        // The mark may have ticked just now: no block above it yet.
        let since = since.or_else(|| {
            lesson
                .since_height(&progress)
                .map(|height| (height, BlockShares::default()))
        });
        (progress.ticked, since)
    };
    let since_line = match (lesson.shares_since, since) {
        (Some(mark), Some((height, shares))) => Some((
            mark.shown_in_step,
            since_line(mark.heading, height, &shares),
        )),
        _ => None,
    };
    let finished = ticked >= lesson.steps.len();
    html! {
        <section class="panel lesson" aria-labelledby="lesson-title" data-testid="lesson"
            data-lesson={lesson.id} data-ticked={ticked.to_string()}>
            <h2 id="lesson-title">{ format!("Lesson: {}", lesson.title) }</h2>
            <p class="lesson-goal">{ lesson.goal }</p>
            <ol class="lesson-steps">
                { for lesson.steps.iter().enumerate().map(|(index, step)| {
                    let done = index < ticked;
                    let current = index == ticked;
                    html! {
                        <li key={index} data-testid="lesson-step" data-done={done.to_string()}
                            class={classes!(done.then_some("done"), current.then_some("current"))}
                            aria-current={current.then_some("step")}>
                            <span class="tick" aria-hidden="true">{ if done { "✓" } else { "" } }</span>
                            <div>
                                // Each role's part on a line of its own, its role in bold.
                                { for role_parts(step.do_this, lesson.roles).into_iter().map(|(role, text)| html! {
                                    <p class="do">{ role_label(role) }{ text }</p>
                                }) }
                                <p class="watch"><b>{ "Watch for: " }</b>
                                    { for role_parts(step.watch_for, lesson.roles).into_iter().map(|(role, text)| html! {
                                        <span class="part">{ role_label(role) }{ text }</span>
                                    }) }
                                </p>
                                { for since_line.as_ref().filter(|(shown_in, _)| *shown_in == index).map(|(_, line)| line.clone()) }
                            </div>
                            <span class="sr-only">{ if done { "done" } else if current { "to do now" } else { "later" } }</span>
                        </li>
                    }
                }) }
            </ol>
            if finished {
                <p class="ok" data-testid="lesson-finished">{ "Every step done. Well done!" }</p>
            }
        </section>
    }
}

/// "Since your dial moved (at block 14): tab-ab12 (ab12cd34) 9 of 12 blocks (75 %), you 3 (25 %)."
fn since_line(heading: &str, height: u64, shares: &BlockShares) -> Html {
    let counted = shares.counted;
    let shown = shares.miners.iter().take(SINCE_MINERS_SHOWN).enumerate();
    let rest = shares.miners.get(SINCE_MINERS_SHOWN..).unwrap_or_default();
    html! {
        <p class="lesson-since" data-testid="lesson-since" data-since-height={height.to_string()}
            data-counted={counted.to_string()}>
            <b>{ format!("{heading} (at block {height}): ") }</b>
            if counted == 0 {
                { "no block yet." }
            } else {
                { for shown.map(|(index, share)| html! {
                    <>
                        if index > 0 { { ", " } }
                        <span data-testid="lesson-since-miner" data-miner={share.miner.to_hex()}
                            data-percent={share.percent.to_string()} data-us={share.is_us.to_string()}
                            class={classes!(share.is_us.then_some("self"))}>
                            { share_phrase(share, counted, index == 0) }
                        </span>
                    </>
                }) }
                if !rest.is_empty() {
                    { format!(", {}", others_phrase(rest)) }
                }
                { "." }
            }
        </p>
    }
}

/// "Attacker: " in bold before a role's part of a step; nothing before a part for every tab.
fn role_label(role: Option<&str>) -> Html {
    match role {
        Some(role) => html! { <b class="role">{ format!("{role}: ") }</b> },
        None => html! {},
    }
}
