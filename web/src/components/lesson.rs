use crate::config::query_param;
use crate::hooks::{use_driver, use_node_state};
use crate::lessons::{lesson, LessonFacts, LessonProgress, TamperFacts, LESSONS};
use yew::prelude::*;

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
    let facts = LessonFacts::from_snapshot(&snapshot, driver.is_online(), state.throttle, tamper);
    let ticked = {
        let mut progress = progress.borrow_mut();
        progress.advance(lesson, &facts);
        progress.ticked
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
                                <p class="do">{ step.do_this }</p>
                                <p class="watch"><b>{ "Watch for: " }</b>{ step.watch_for }</p>
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
