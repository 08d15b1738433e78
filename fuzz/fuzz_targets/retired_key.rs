//! A RETIRED_KEYS_DIR file, whatever it holds, never panics the loader, and for an HMAC server
//! is accepted only as a secret of at least 32 bytes that is not PEM text: anything weaker would
//! let whoever can guess or read it sign tokens.
//!
//! The first byte picks the algorithm; the rest is the file's text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refreshd::config::{Algorithm, MIN_HMAC_KEY_BYTES};
use refreshd::tokens::keys::retired_key;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let alg = Algorithm::ALL[pick as usize % Algorithm::ALL.len()];
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(key) = retired_key(text, alg) else {
        return;
    };
    if alg.is_hmac() {
        let secret = text.trim_end_matches(['\r', '\n']);
        assert!(
            secret.len() >= MIN_HMAC_KEY_BYTES && !secret.contains("-----BEGIN"),
            "accepted a weak retired secret: {secret:?}"
        );
        assert!(key.jwk.is_none(), "a secret was published");
    } else {
        assert!(key.jwk.is_some(), "a public key went unpublished");
    }
});
