//! Looking inside tokens and making them as another service would: claims, signatures, the
//! clock they are measured against.

use serde_json::Value;

/// The payload of a JWT, for looking at claims: its middle segment, unpadded base64url
/// (RFC 7515), holding JSON.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("a base64url payload");
    serde_json::from_slice(&json).expect("a JSON payload")
}

/// Signs arbitrary claims with the test key, as another service sharing the key would.
pub fn sign_with(key: &str, alg: jsonwebtoken::Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
