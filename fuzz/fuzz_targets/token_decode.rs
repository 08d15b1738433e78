//! The token decode path (header, algorithm pinning, kid, signature, claims) never panics and
//! never accepts a token it did not sign.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use refreshd::config::Settings;
use refreshd::tokens::TokenCodec;

fn codec() -> &'static TokenCodec {
    static CODEC: OnceLock<TokenCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let settings = Settings::from_lookup(|k| {
            (k == "SIGNING_KEY").then(|| "fuzz-signing-key-0123456789-0123456789".to_owned())
        })
        .unwrap();
        TokenCodec::new(&settings).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    assert!(codec().decode_any(&token).is_err(), "accepted a forged token: {token:?}");
});
