use crate::qr::QrMatrix;
use crate::room_link::{join_url, LanInfo};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use yew::prelude::*;

/// What the copy button did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Copy {
    NotYet,
    Copied,
    /// No clipboard on this page (not a secure context).
    NoClipboard,
    /// The browser refused the write.
    Refused,
}

impl Copy {
    fn key(self) -> &'static str {
        match self {
            Copy::NotYet => "idle",
            Copy::Copied => "copied",
            Copy::NoClipboard => "no-clipboard",
            Copy::Refused => "refused",
        }
    }

    fn problem(self) -> Option<&'static str> {
        match self {
            Copy::NoClipboard => Some("This browser lets a page copy only over https or on its own computer: select the link above (a tap selects it all) and copy it yourself, or show the code."),
            Copy::Refused => Some("The browser refused to copy: select the link above (a tap selects it all) and copy it yourself."),
            _ => None,
        }
    }
}

/// "Join this room": the room's link as text, a copy button and a QR code a phone's camera
/// opens. When the page was opened as 127.0.0.1 and the relay listens on the local network
/// (`cargo xtask run -- --lan`), the link is the relay's LAN address instead.
#[component]
pub fn JoinPanel() -> Html {
    let lan = use_state(LanInfo::default);
    let copied = use_state(|| Copy::NotYet);
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
            let Some(window) = web_sys::window() else {
                return;
            };
            // Browsers give pages a clipboard only in a secure context (https, or this
            // computer): the LAN address a phone opens is neither, and there it is undefined.
            let navigator = window.navigator();
            let has_clipboard = js_sys::Reflect::get(&navigator, &"clipboard".into())
                .is_ok_and(|clipboard| !clipboard.is_undefined());
            if !has_clipboard {
                copied.set(Copy::NoClipboard);
                return;
            }
            let promise = navigator.clipboard().write_text(&url);
            let copied = copied.clone();
            wasm_bindgen_futures::spawn_local(async move {
                copied.set(match JsFuture::from(promise).await {
                    Ok(_) => Copy::Copied,
                    Err(_) => Copy::Refused,
                });
            });
        })
    };
    let qr = QrMatrix::encode(&url);
    html! {
        <section class="panel" aria-labelledby="join-title" data-testid="join">
            <h2 id="join-title">{ super::JOIN_TITLE }</h2>
            <p class="hint">{ "Open this link on another computer or phone (or point its camera at the code) to add it to the room as one more node." }</p>
            <code class="address" data-testid="join-url">{ url.clone() }</code>
            <div class="row">
                <button data-testid="join-copy" data-state={copied.key()} onclick={copy}>
                    { if *copied == Copy::Copied { "Copied" } else { "Copy the link" } }
                </button>
            </div>
            if let Some(why) = copied.problem() {
                <p class="hint" data-testid="join-copy-problem">{ why }</p>
            }
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
