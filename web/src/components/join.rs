use crate::qr::QrMatrix;
use crate::room_link::{join_url, LanInfo};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use yew::prelude::*;

/// "Join this room": the room's link as text, a copy button and a QR code a phone's camera
/// opens. When the page was opened as 127.0.0.1 and the relay listens on the local network
/// (`cargo xtask run -- --lan`), the link is the relay's LAN address instead.
#[component]
pub fn JoinPanel() -> Html {
    let lan = use_state(LanInfo::default);
    let copied = use_state(|| false);
    {
        let lan = lan.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(info) = fetch_lan_info().await {
                    lan.set(info);
                }
            });
        });
    }
    let Some(location) = web_sys::window().map(|window| window.location()) else {
        return html! {};
    };
    let href = location.href().unwrap_or_default();
    let hostname = location.hostname().unwrap_or_default();
    let path_and_query = format!(
        "{}{}",
        location.pathname().unwrap_or_default(),
        location.search().unwrap_or_default()
    );
    let url = join_url(&href, &hostname, &path_and_query, &lan);
    let copy = {
        let url = url.clone();
        let copied = copied.clone();
        Callback::from(move |_| {
            if let Some(window) = web_sys::window() {
                let _ = window.navigator().clipboard().write_text(&url);
                copied.set(true);
            }
        })
    };
    let qr = QrMatrix::encode(&url);
    html! {
        <section class="panel" aria-labelledby="join-title" data-testid="join">
            <h2 id="join-title">{ "Join this room" }</h2>
            <p class="hint">{ "Open this link on another computer or phone (or point its camera at the code) to add it to the room as one more node." }</p>
            <code class="address" data-testid="join-url">{ url.clone() }</code>
            <div class="row">
                <button data-testid="join-copy" onclick={copy}>
                    { if *copied { "Copied" } else { "Copy the link" } }
                </button>
            </div>
            if lan.urls.is_empty() && crate::room_link::is_loopback_host(&hostname) {
                <p class="hint" data-testid="join-loopback">
                    { "This address works on this computer only. For phones on the same network, start the relay with cargo xtask run --lan." }
                </p>
            }
            { match qr {
                Some(matrix) => html! {
                    <svg class="qr" data-testid="join-qr" data-text={url.clone()} role="img"
                        aria-label={format!("QR code of {url}")}
                        viewBox={format!("0 0 {0} {0}", matrix.side())} shape-rendering="crispEdges">
                        <rect width="100%" height="100%" fill="#fff" />
                        <path d={matrix.svg_path()} fill="#000" />
                    </svg>
                },
                None => html! {},
            } }
        </section>
    }
}

/// The relay's `/lan.json`; `None` from a server that does not have it (trunk serve).
async fn fetch_lan_info() -> Option<LanInfo> {
    let window = web_sys::window()?;
    let response = JsFuture::from(window.fetch_with_str("/lan.json"))
        .await
        .ok()?;
    let response: web_sys::Response = response.dyn_into().ok()?;
    if !response.ok() {
        return None;
    }
    let text = JsFuture::from(response.text().ok()?).await.ok()?;
    LanInfo::parse(&text.as_string()?)
}
