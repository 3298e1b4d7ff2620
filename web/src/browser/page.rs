//! Small page services components need: a confirm dialog and a file download.

use wasm_bindgen::JsCast;

/// Asks the person; false when the dialog cannot be shown.
pub fn confirm(question: &str) -> bool {
    web_sys::window()
        .and_then(|window| window.confirm_with_message(question).ok())
        .unwrap_or(false)
}

/// Offers `text` as a file download named `file_name`.
pub fn download_text(file_name: &str, text: &str) {
    download_pieces(file_name, &[text.to_string()]);
}

/// Offers `pieces`, one after the other, as a download named `file_name` (a long chain file is
/// many strings, never one).
pub fn download_pieces(file_name: &str, pieces: &[String]) {
    let Some(document) = web_sys::window().and_then(|window| window.document()) else {
        return;
    };
    let parts = js_sys::Array::new();
    for piece in pieces {
        parts.push(&piece.into());
    }
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Ok(anchor) = document.create_element("a") {
        if let Ok(anchor) = anchor.dyn_into::<web_sys::HtmlAnchorElement>() {
            anchor.set_href(&url);
            anchor.set_download(file_name);
            anchor.click();
        }
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}
