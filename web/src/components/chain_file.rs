use crate::browser::page::download_text;
use crate::hooks::use_driver;
use shared::export::MAX_CHAIN_FILE_BYTES;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Save the best chain as a file, or load one (a prepared chain for a lesson): every block of
/// the file is checked as if a peer had sent it.
#[component]
pub fn ChainFilePanel() -> Html {
    let driver = use_driver();
    let outcome = use_state(|| None::<(bool, String)>);
    let download = {
        let driver = driver.clone();
        Callback::from(move |_| {
            if let Some(file) = driver.export_chain() {
                download_text(&file.file_name(), &file.to_json());
            }
        })
    };
    let load = {
        let outcome = outcome.clone();
        Callback::from(move |event: Event| {
            let input: HtmlInputElement = event.target_unchecked_into();
            let Some(file) = input.files().and_then(|files| files.get(0)) else {
                return;
            };
            input.set_value("");
            let driver = driver.clone();
            let outcome = outcome.clone();
            wasm_bindgen_futures::spawn_local(async move {
                // The size is checked before the browser reads the file into memory.
                let size = file.size() as usize;
                if size > MAX_CHAIN_FILE_BYTES {
                    let error = shared::export::ImportError::TooLarge { size };
                    outcome.set(Some((false, error.to_string())));
                    return;
                }
                let text = match JsFuture::from(file.text()).await {
                    Ok(text) => text.as_string().unwrap_or_default(),
                    Err(error) => {
                        let why = error
                            .dyn_ref::<js_sys::Error>()
                            .map(|error| String::from(error.message()))
                            .unwrap_or_else(|| "it could not be read".into());
                        outcome.set(Some((false, format!("the file could not be read: {why}"))));
                        return;
                    }
                };
                outcome.set(Some(match driver.import_chain(&text) {
                    Ok(report) => (
                        true,
                        format!(
                            "Loaded: {} new blocks, {} already held.{}",
                            report.added,
                            report.known,
                            if report.became_best {
                                " It is now this tab's chain."
                            } else {
                                " This tab's own chain has more work and stays."
                            }
                        ),
                    ),
                    Err(error) => (false, format!("Not loaded: {error}.")),
                }));
            });
        })
    };
    html! {
        <section class="panel" aria-labelledby="chain-file-title" data-testid="chain-file">
            <h2 id="chain-file-title">{ super::CHAIN_FILE_TITLE }</h2>
            <div class="row">
                <button data-testid="chain-download" onclick={download}>{ "Download the chain" }</button>
                <label class="file-button">
                    { "Load a chain file" }
                    <input type="file" accept=".json,application/json" data-testid="chain-upload" onchange={load} />
                </label>
            </div>
            { match &*outcome {
                Some((ok, text)) => html! {
                    <p class={classes!("hint", if *ok { "ok" } else { "error" })} data-testid="chain-file-outcome"
                        data-ok={ok.to_string()}>{ text.clone() }</p>
                },
                None => html! {
                    <p class="hint">{ "A file holds every block of the best chain. Loading one checks each block as if a peer sent it; nothing this tab holds is lost. Files up to 32 MB." }</p>
                },
            } }
        </section>
    }
}
