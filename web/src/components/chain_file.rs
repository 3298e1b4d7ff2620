use crate::browser::driver::DriverHandle;
use crate::browser::page::download_pieces;
use crate::hooks::use_driver;
use shared::export::{ChainFileReader, ImportError, ImportReport};
use shared::node::ChainImport;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// A file is read this many bytes at a time: neither the file nor its blocks are ever all in
/// the tab's memory, and the page stays responsive between pieces.
const READ_PIECE_BYTES: f64 = 1024.0 * 1024.0;

/// Reads `file` a piece at a time through a [`ChainFileReader`] into the node; `progress` hears
/// the blocks taken so far.
async fn import_file(
    driver: &DriverHandle,
    file: &web_sys::File,
    progress: impl Fn(usize),
) -> Result<ImportReport, ImportError> {
    let mut reader = ChainFileReader::new();
    let mut import: Option<ChainImport> = None;
    let size = file.size();
    let mut start = 0.0;
    let result: Result<(), ImportError> = async {
        loop {
            let finished = start >= size;
            let blocks = if finished {
                reader.finish()?
            } else {
                let end = (start + READ_PIECE_BYTES).min(size);
                let bytes = read_slice(file, start, end).await?;
                start = end;
                reader.feed(&bytes)?
            };
            if import.is_none() {
                if let Some(header) = reader.header() {
                    import = Some(driver.begin_import(header)?);
                }
            }
            if let Some(import) = import.as_mut() {
                driver.import_blocks(import, blocks)?;
                progress(import.blocks_taken());
            }
            if finished {
                return Ok(());
            }
        }
    }
    .await;
    driver.end_import(import, result)
}

/// The bytes of `file` from `start` to `end`.
async fn read_slice(file: &web_sys::File, start: f64, end: f64) -> Result<Vec<u8>, ImportError> {
    let unreadable = |error: wasm_bindgen::JsValue| {
        let why = error
            .dyn_ref::<js_sys::Error>()
            .map(|error| String::from(error.message()))
            .unwrap_or_else(|| "it could not be read".into());
        ImportError::BadJson(format!("the file could not be read: {why}"))
    };
    let slice = file
        .slice_with_f64_and_f64(start, end)
        .map_err(unreadable)?;
    let buffer = JsFuture::from(slice.array_buffer())
        .await
        .map_err(unreadable)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Save the best chain as a file, or load one (a prepared chain for a lesson): every block of
/// the file is checked as if a peer had sent it.
#[component]
pub fn ChainFilePanel() -> Html {
    let driver = use_driver();
    // `None` while a file loads, then whether it did.
    let outcome = use_state(|| None::<(Option<bool>, String)>);
    let download = {
        let driver = driver.clone();
        Callback::from(move |_| {
            if let Some((name, pieces)) = driver.export_chain() {
                download_pieces(&name, &pieces);
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
                outcome.set(Some((None, "Loading…".into())));
                let progress = {
                    let outcome = outcome.clone();
                    move |blocks: usize| {
                        outcome.set(Some((
                            None,
                            format!("Loading… {blocks} blocks checked so far"),
                        )));
                    }
                };
                outcome.set(Some(match import_file(&driver, &file, progress).await {
                    Ok(report) => (
                        Some(true),
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
                    Err(error) => (Some(false), format!("Not loaded: {error}.")),
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
                    <input type="file" accept=".jsonl,.json,application/json" data-testid="chain-upload" onchange={load} />
                </label>
            </div>
            { match &*outcome {
                Some((ok, text)) => html! {
                    <p class={classes!("hint", match ok { Some(true) => "ok", Some(false) => "error", None => "" })}
                        data-testid="chain-file-outcome"
                        data-ok={ok.map_or("loading".to_string(), |ok| ok.to_string())}
                        aria-live="polite">{ text.clone() }</p>
                },
                None => html! {
                    <p class="hint">{ "A file holds every block of the best chain. Loading one checks each block as if a peer sent it; nothing this tab holds is lost. The file is read a piece at a time, so a semester's chain loads too." }</p>
                },
            } }
        </section>
    }
}
