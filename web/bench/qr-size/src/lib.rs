//! Size probe: the bytes the `qrcode` crate adds to a wasm module, as the web app uses it.
static mut OUT: [u8; 4096] = [0; 4096];

#[no_mangle]
pub extern "C" fn encode(ptr: *const u8, len: usize) -> usize {
    let text = unsafe { core::slice::from_raw_parts(ptr, len) };
    #[cfg(feature = "qr")]
    {
        use qrcode::bits::Bits;
        use qrcode::{Color, EcLevel, QrCode, Version};
        let code = (1..=40).find_map(|version| {
            let mut bits = Bits::new(Version::Normal(version));
            bits.push_byte_data(text).ok()?;
            bits.push_terminator(EcLevel::M).ok()?;
            QrCode::with_bits(bits, EcLevel::M).ok()
        });
        let Some(code) = code else { return 0 };
        let colors = code.to_colors();
        for (i, c) in colors.iter().enumerate().take(4096) {
            unsafe { OUT[i] = (*c == Color::Dark) as u8 };
        }
        return code.width();
    }
    #[cfg(not(feature = "qr"))]
    {
        unsafe { OUT[0] = text.first().copied().unwrap_or(0) };
        text.len()
    }
}
