//! Small text helpers for the views.

use crate::snapshot::NodeSnapshot;
use shared::view::{self, AddressBook, Recipient, RecipientError};

/// "12s ago", "3m ago", "2h ago".
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    let seconds = now_ms.saturating_sub(then_ms) / 1000;
    match seconds {
        0..=59 => format!("{seconds}s ago"),
        60..=3599 => format!("{}m ago", seconds / 60),
        3600..=86_399 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

/// Wall-clock time of day in the viewer's time zone, "14:03:27".
pub fn clock(ms: u64) -> String {
    let (hours, minutes, seconds) = local_time_of_day(ms);
    format!("{hours:02}:{minutes:02}:{seconds:02}")
}

/// Hours, minutes and seconds of `ms` in the viewer's time zone (the browser's); UTC natively,
/// where only tests run.
#[cfg(target_arch = "wasm32")]
fn local_time_of_day(ms: u64) -> (u32, u32, u32) {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    (date.get_hours(), date.get_minutes(), date.get_seconds())
}

#[cfg(not(target_arch = "wasm32"))]
fn local_time_of_day(ms: u64) -> (u32, u32, u32) {
    let seconds = ((ms / 1000) % 86_400) as u32;
    (seconds / 3600, (seconds / 60) % 60, seconds % 60)
}

/// A round trip: "0.6 ms" below 10 ms (a loopback or LAN link), "42 ms" above.
pub fn round_trip(micros: u64) -> String {
    if micros < 10_000 {
        format!("{:.1} ms", micros as f64 / 1_000.0)
    } else {
        format!("{} ms", (micros + 500) / 1_000)
    }
}

/// "1 transaction", "2 transactions": a count with its noun, singular or plural.
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    view::plural(n, singular, plural)
}

/// A large number in words: "about 850", "about 4.1 thousand", "about 1.2 million". Beyond
/// trillions it is a power of two ("about 2^61"), which is how work is written elsewhere.
pub fn about(n: f64) -> String {
    const SCALES: [(f64, &str); 4] = [
        (1e12, "trillion"),
        (1e9, "billion"),
        (1e6, "million"),
        (1e3, "thousand"),
    ];
    if !n.is_finite() || n >= 1e15 {
        return format!("about 2^{:.1}", n.log2());
    }
    for (scale, word) in SCALES {
        if n >= scale {
            let value = n / scale;
            return if value >= 100.0 {
                format!("about {value:.0} {word}")
            } else {
                format!("about {:.1} {word}", (value * 10.0).round() / 10.0)
            };
        }
    }
    format!("about {:.0}", n.max(0.0))
}

/// "Tue, 3 Dec 2024, 14:03:27"-style date and time in the viewer's own time zone and locale.
#[cfg(target_arch = "wasm32")]
pub fn local_date_time(ms: u64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

/// Natively (tests) there is no viewer: the time in UTC.
#[cfg(not(target_arch = "wasm32"))]
pub fn local_date_time(ms: u64) -> String {
    format!("day {} of 1970, {} UTC", ms / 86_400_000 + 1, clock(ms))
}

/// "2^23.7": cumulative work is astronomically large, its logarithm reads well.
pub fn work(log2: f64) -> String {
    format!("2^{log2:.1}")
}

/// Who the person means by `text`: [`shared::view::resolve_recipient`] on this snapshot's
/// peers and the page's address book, the same resolver the console uses.
pub fn resolve_recipient(
    text: &str,
    snapshot: &NodeSnapshot,
    book: &AddressBook,
) -> Result<Recipient, RecipientError> {
    view::resolve_recipient(text, &snapshot.peer_views(), book, &snapshot.address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_well() {
        assert_eq!(ago(100_000, 40_000), "1m ago");
        assert_eq!(clock(3_723_000), "01:02:03");
    }

    #[test]
    fn round_trips_read_in_milliseconds() {
        let cases = [
            (0, "0.0 ms"),
            (640, "0.6 ms"),
            (9_949, "9.9 ms"),
            (10_000, "10 ms"),
            (41_600, "42 ms"),
        ];
        for (micros, text) in cases {
            assert_eq!(round_trip(micros), text);
        }
    }

    #[test]
    fn counts_and_large_numbers_read_as_words() {
        assert_eq!(count(1, "transaction", "transactions"), "1 transaction");
        assert_eq!(count(0, "transaction", "transactions"), "0 transactions");
        assert_eq!(count(2, "coin", "coins"), "2 coins");
        let cases = [
            (850.0, "about 850"),
            (4096.0, "about 4.1 thousand"),
            (1_234_567.0, "about 1.2 million"),
            (250_000_000.0, "about 250 million"),
            (3.2e9, "about 3.2 billion"),
            (2f64.powi(61), "about 2^61.0"),
        ];
        for (n, words) in cases {
            assert_eq!(about(n), words, "{n}");
        }
    }
}
