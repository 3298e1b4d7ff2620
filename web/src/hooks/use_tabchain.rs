use crate::browser::driver::{Driver, DriverHandle};
use crate::state::{LogState, NodeAction, NodeState};
use yew::prelude::*;

/// What the app root holds and hands down through contexts.
pub struct Tabchain {
    pub node: UseReducerHandle<NodeState>,
    pub log: UseReducerHandle<LogState>,
    pub driver: Option<DriverHandle>,
}

/// Creates the reducers and boots the driver once.
#[hook]
pub fn use_tabchain() -> Tabchain {
    let node = use_reducer(NodeState::default);
    let log = use_reducer(LogState::default);
    let driver = use_state(|| None::<DriverHandle>);
    {
        let node_dispatch = node.dispatcher();
        let log_dispatch = log.dispatcher();
        let driver = driver.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                match Driver::boot(node_dispatch.clone(), log_dispatch).await {
                    Ok(booted) => driver.set(Some(DriverHandle(booted))),
                    Err(why) => node_dispatch.dispatch(NodeAction::Failed(why)),
                }
            });
        });
    }
    Tabchain {
        node,
        log,
        driver: (*driver).clone(),
    }
}

#[hook]
pub fn use_node_state() -> UseReducerHandle<NodeState> {
    use_context::<UseReducerHandle<NodeState>>().expect("the app provides the node state")
}

#[hook]
pub fn use_log_state() -> UseReducerHandle<LogState> {
    use_context::<UseReducerHandle<LogState>>().expect("the app provides the log state")
}

#[hook]
pub fn use_driver() -> DriverHandle {
    use_context::<DriverHandle>().expect("components under the app get the driver")
}
