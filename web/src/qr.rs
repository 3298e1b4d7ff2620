//! The "join this room" QR code: the module matrix from the `qrcode` crate (default features
//! off, so no image or SVG renderer comes in) drawn as one SVG path, so the page needs no
//! image and the code stays sharp at any size.

use qrcode::bits::Bits;
use qrcode::{Color, EcLevel, QrCode, Version};

/// Light modules around the code, as the standard asks (a reader needs them to find it).
pub const QUIET_ZONE: usize = 4;

/// A square of dark and light modules, row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrMatrix {
    pub width: usize,
    /// `width * width` modules, true for dark.
    pub dark: Vec<bool>,
}

impl QrMatrix {
    /// The code for `text` at error correction level M (15 % of the code may be unreadable,
    /// say a glare on a projector screen), the smallest version that holds it. `None` only
    /// for text longer than a QR code can hold (over 2,331 bytes at level M).
    ///
    /// The whole text goes in one byte-mode segment, as most encoders write a URL (the
    /// crate's own segment optimizer would put digit runs in numeric mode: a few modules
    /// smaller, but then no common reference encoder makes the same matrix to test against).
    pub fn encode(text: &str) -> Option<QrMatrix> {
        let code = (1..=40).find_map(|version| {
            let mut bits = Bits::new(Version::Normal(version));
            bits.push_byte_data(text.as_bytes()).ok()?;
            bits.push_terminator(EcLevel::M).ok()?;
            QrCode::with_bits(bits, EcLevel::M).ok()
        })?;
        Some(QrMatrix {
            width: code.width(),
            dark: code
                .to_colors()
                .into_iter()
                .map(|color| color == Color::Dark)
                .collect(),
        })
    }

    /// The SVG path of the dark modules, one unit per module, offset by the quiet zone: runs of
    /// dark modules in a row become one rectangle, which keeps the path short.
    pub fn svg_path(&self) -> String {
        let mut path = String::new();
        for y in 0..self.width {
            let row = &self.dark[y * self.width..(y + 1) * self.width];
            let mut x = 0;
            while x < self.width {
                if !row[x] {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.width && row[x] {
                    x += 1;
                }
                path.push_str(&format!(
                    "M{} {}h{}v1h-{}z",
                    start + QUIET_ZONE,
                    y + QUIET_ZONE,
                    x - start,
                    x - start
                ));
            }
        }
        path
    }

    /// The side of the drawing in modules, quiet zone included (the SVG's viewBox).
    pub fn side(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matrix Python's `qrcode` 8.2 makes for this URL at level M, one byte-mode segment,
    /// its own choice of version (3) and mask: `q = qrcode.QRCode(error_correction=M, border=0);
    /// q.add_data(QRData(url, mode=MODE_8BIT_BYTE), optimize=0); q.make(fit=True);
    /// q.get_matrix()`. (`segno` 1.6.6 makes another matrix for it, differing in its last
    /// codewords and its mask, so it is no reference for this crate.)
    const SEGNO_VECTOR: &str = include_str!("qr_vector.txt");

    #[test]
    fn the_matrix_matches_an_independent_encoder() {
        let url = "http://192.168.1.20:3030/?room=class-3";
        let matrix = QrMatrix::encode(url).unwrap();
        let expected: Vec<&str> = SEGNO_VECTOR.lines().collect();
        assert_eq!(matrix.width, 29, "version 3");
        assert_eq!(expected.len(), 29);
        for (y, row) in expected.iter().enumerate() {
            let ours: String = matrix.dark[y * 29..(y + 1) * 29]
                .iter()
                .map(|dark| if *dark { '1' } else { '0' })
                .collect();
            assert_eq!(&ours, row, "row {y}");
        }
    }

    #[test]
    fn the_path_draws_every_dark_module_once() {
        let matrix = QrMatrix::encode("http://10.0.0.7:3030/?room=lobby").unwrap();
        let drawn: usize = matrix
            .svg_path()
            .split('M')
            .skip(1)
            .map(|rect| {
                let run = rect.split('h').nth(1).unwrap();
                run.split('v').next().unwrap().parse::<usize>().unwrap()
            })
            .sum();
        assert_eq!(drawn, matrix.dark.iter().filter(|dark| **dark).count());
        assert_eq!(matrix.side(), matrix.width + 8);
        assert!(QrMatrix::encode(&"x".repeat(3_000)).is_none());
    }
}
