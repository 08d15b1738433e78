//! Token extraction: any cookie or body value reduces to a bare token or to nothing, without
//! panicking, and what it returns is never blank or padded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refreshd::http::extract::normalize_token;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Some(token) = normalize_token(&raw) {
        assert!(!token.is_empty());
        assert_eq!(token.trim(), token);
        assert!(!token.eq_ignore_ascii_case("bearer"));
    }
});
