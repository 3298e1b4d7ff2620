use super::chain_file::ChainFilePanel;
use super::class_view::{ClassView, CLASS_VIEW};
use super::event_log::EventLog;
use super::explorer::Explorer;
use super::hash_power::HashPowerPanel;
use super::identity::IdentityPanel;
use super::join::JoinPanel;
use super::lesson::LessonCard;
use super::mining::MiningPanel;
use super::peers::PeersPanel;
use super::status_bar::StatusBar;
use super::tamper::TamperSandbox;
use super::tree::BlockTreeView;
use super::wallet::Wallet;
use crate::browser::driver::DriverHandle;
use crate::hooks::use_tabchain;
use crate::lessons::TamperFacts;
use crate::state::{Boot, LogState, NodeState};
use yew::prelude::*;

#[component]
pub fn App() -> Html {
    let tabchain = use_tabchain();
    // What the tamper sandbox shows, for the lesson card (the sandbox keeps its own state).
    let tamper_facts = use_state(TamperFacts::default);
    let ready = matches!(tabchain.node.boot, Boot::Ready) && tabchain.node.snapshot.is_some();
    let (Some(driver), true) = (tabchain.driver.clone(), ready) else {
        let message = match &tabchain.node.boot {
            Boot::Loading(what) => what.clone(),
            Boot::Failed(why) => format!("This tab could not start its node: {why}"),
            Boot::Ready => "starting…".into(),
        };
        return html! {
            <main class="boot" data-testid="boot">
                <h1>{ "tabchain" }</h1>
                <p>{ message }</p>
            </main>
        };
    };
    // The projector view (`?view=class`) replaces the page: the room, read-only, in large type.
    let class_view = web_sys::window()
        .and_then(|window| window.location().search().ok())
        .and_then(|search| crate::config::query_param(&search, "view"))
        .is_some_and(|view| view == CLASS_VIEW);
    if class_view {
        return html! {
            <ContextProvider<DriverHandle> context={driver}>
            <ContextProvider<UseReducerHandle<NodeState>> context={tabchain.node.clone()}>
            <ContextProvider<UseReducerHandle<LogState>> context={tabchain.log.clone()}>
                <ClassView />
            </ContextProvider<UseReducerHandle<LogState>>>
            </ContextProvider<UseReducerHandle<NodeState>>>
            </ContextProvider<DriverHandle>>
        };
    }
    html! {
        <ContextProvider<DriverHandle> context={driver}>
        <ContextProvider<UseReducerHandle<NodeState>> context={tabchain.node.clone()}>
        <ContextProvider<UseReducerHandle<LogState>> context={tabchain.log.clone()}>
        <ContextProvider<UseStateHandle<TamperFacts>> context={tamper_facts}>
            <StatusBar />
            <LessonCard />
            <main class="layout">
                <div class="column side">
                    <IdentityPanel />
                    <MiningPanel />
                    <HashPowerPanel />
                    <Wallet />
                    <JoinPanel />
                    <EventLog />
                </div>
                <div class="column wide">
                    <PeersPanel />
                    <BlockTreeView />
                    <Explorer />
                    <TamperSandbox />
                    <ChainFilePanel />
                </div>
            </main>
        </ContextProvider<UseStateHandle<TamperFacts>>>
        </ContextProvider<UseReducerHandle<LogState>>>
        </ContextProvider<UseReducerHandle<NodeState>>>
        </ContextProvider<DriverHandle>>
    }
}
