//! Text from the network (peer names, a relay's error and close reasons) made safe to print on
//! a terminal. A peer chooses its name; printed raw, a name with escape sequences could clear
//! the screen, move the cursor, recolour or hide the text after it, or fake a line of output.

use std::borrow::Cow;

/// `text` with every character a terminal could act on written as a visible escape: C0 and C1
/// control characters (ESC, BEL, backspace, carriage return, newline...), DEL, and the Unicode
/// bidirectional overrides and isolates that reorder what follows them. Everything else,
/// letters of any script included, is kept. Borrows when nothing needs escaping.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
        // A backslash is escaped too, so an escape in the output always means one was made.
        || c == '\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped_and_the_rest_kept() {
        let cases = [
            ("bob", "bob"),
            ("zoë-李", "zoë-李"),
            ("\u{1b}[2J\u{1b}[Hroot", "\\u{1b}[2J\\u{1b}[Hroot"),
            ("a\rb\nc\u{7}", "a\\u{d}b\\u{a}c\\u{7}"),
            ("\u{7f}\u{9b}31m", "\\u{7f}\\u{9b}31m"),
            ("evil\u{202e}gnp.exe", "evil\\u{202e}gnp.exe"),
            ("back\\slash", "back\\u{5c}slash"),
        ];
        for (raw, shown) in cases {
            assert_eq!(printable(raw), shown, "{raw:?}");
            assert!(!printable(raw).chars().any(|c| c.is_control()));
        }
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
    }
}
