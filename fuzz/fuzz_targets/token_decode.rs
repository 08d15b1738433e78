//! The token decode path (header, algorithm pinning, kid, signature, claims) never panics, never
//! accepts a token it did not sign, and of the tokens it did sign accepts only unexpired ones
//! whose ids are safe to put in a store key and whose time claims are integers before 10000.
//!
//! The first byte picks the mode. Forged: the rest is the token text, as an attacker sends it.
//! Signed: the rest is a claims object, signed with the server's own key, so that the fuzzer gets
//! past the signature to the claim checks.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use refreshd::config::Settings;
use refreshd::tokens::{MAX_EPOCH_SECONDS, TokenCodec};

const KEY: &str = "fuzz-signing-key-0123456789-0123456789";

fn codec() -> &'static TokenCodec {
    static CODEC: OnceLock<TokenCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let settings = Settings::from_lookup(|k| (k == "SIGNING_KEY").then(|| KEY.to_owned()))
            .unwrap();
        TokenCodec::new(&settings.tokens).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let token = String::from_utf8_lossy(rest);
        assert!(
            codec().decode_any(&token).is_err(),
            "accepted a forged token: {token:?}"
        );
        return;
    }
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    // Signed as SimpleJWT signs: no kid, so the server tries its key.
    let Ok(token) = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
    ) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if let Ok(read) = codec().decode_any(&token) {
        // Expired from the second of exp on; time claims are integers up to the year 9999.
        assert!(read.exp > now, "accepted an expired token: {claims}");
        assert!(read.exp <= MAX_EPOCH_SECONDS, "accepted an exp past 9999: {claims}");
        for name in ["exp", "iat", "nbf"] {
            if let Some(v) = claims.get(name) {
                assert!(
                    v.as_u64().is_some_and(|s| s <= MAX_EPOCH_SECONDS),
                    "accepted a {name} that is no integer second before 10000: {claims}"
                );
            }
        }
        // Ids become parts of store keys: nothing that could reshape a key or its hash tag.
        for id in [read.jti.as_str(), read.user_id.as_str()] {
            assert!(
                !id.is_empty() && !id.contains(['{', '}', ':', ' ']),
                "accepted a key-unsafe id {id:?}: {claims}"
            );
        }
    }
});
