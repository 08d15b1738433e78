//! Duration settings: `900`, `15m`, `30d` or a clear error, for any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refreshd::config::parse_duration;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_duration(text);
    }
});
