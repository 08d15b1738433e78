//! Signing and verifying JWTs in djangorestframework-simplejwt's claim layout. Knows the
//! algorithm, the keys and the claims; nothing about HTTP, cookies or the store. Depends on
//! `config` and `domain` only.

pub mod keys;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::config::{SigningKey, TokenSettings};

use self::keys::{KeyError, KeySet};
use crate::domain::{Claims, Jti, SessionId, TokenType, UserId};

/// Longer inputs are refused before any parsing: a real token is a few hundred bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Signature, format, expiry, issuer, audience or a claim is wrong. The reason is for logs.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid token of the other type (an access token presented for refresh, say).
    #[error("wrong token type")]
    WrongType,
    #[error("could not sign a token: {0}")]
    Signing(String),
}

pub struct TokenCodec {
    header: Header,
    keys: KeySet,
    validation: Validation,
    user_id_claim: String,
    issuer: Option<String>,
    audience: Option<String>,
}

impl TokenCodec {
    /// Loads the keys; a key that cannot be used is an error naming its variable.
    pub fn new(settings: &TokenSettings) -> Result<Self, KeyError> {
        let (key, generated) = match &settings.signing_key {
            SigningKey::Generated { secret, .. } => (secret, true),
            SigningKey::Hmac { secret, .. } => (secret, false),
            SigningKey::Pem { private_key, .. } => (private_key, false),
        };
        let keys = KeySet::load(
            settings.algorithm(),
            key.expose(),
            generated,
            settings.verifying_key.as_ref().map(|k| k.expose()),
            settings.retired_keys_dir.as_deref(),
        )?;
        let alg = keys.algorithm;
        // `Validation::new` pins the algorithm: a header naming any other (or `none`) is refused.
        let mut validation = Validation::new(alg);
        // jsonwebtoken defaults to 60 s of leeway; SimpleJWT's LEEWAY defaults to 0.
        validation.leeway = settings.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        // Audience checking stays on: with no AUDIENCE, a token that carries an `aud` is refused,
        // as PyJWT does for SimpleJWT.
        if let Some(aud) = &settings.audience {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        if let Some(iss) = &settings.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let mut header = Header::new(alg);
        header.kid = Some(keys.kid.clone());
        Ok(Self {
            header,
            keys,
            validation,
            user_id_claim: settings.user_id_claim.clone(),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        })
    }

    /// LEEWAY in seconds: the clock skew allowed on `exp` and `nbf`.
    pub fn leeway(&self) -> u64 {
        self.validation.leeway
    }

    /// The public keys that verify this server's tokens, as a JWK Set (empty for HMAC).
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }

    pub fn encode(&self, claims: &Claims) -> Result<String, TokenError> {
        let outgoing = Outgoing {
            claims,
            user_id_claim: &self.user_id_claim,
            issuer: self.issuer.as_deref(),
            audience: self.audience.as_deref(),
        };
        jsonwebtoken::encode(&self.header, &outgoing, &self.keys.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Verifies signature, algorithm, expiry (with LEEWAY), `nbf`, issuer and audience, then reads
    /// the claims. A token of the other type is `WrongType`.
    pub fn decode(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let claims = self.decode_any(token)?;
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        Ok(claims)
    }

    /// Like `decode`, for a token of either type.
    pub fn decode_any(&self, token: &str) -> Result<Claims, TokenError> {
        let payload = self.verified_payload(token)?;
        self.read_claims(&payload)
    }

    /// SimpleJWT's `UntypedToken`: a token of any `token_type` (access, refresh, sliding, another,
    /// or none) whose signature, algorithm, times, issuer and audience hold.
    pub fn decode_untyped(&self, token: &str) -> Result<Untyped, TokenError> {
        let payload = self.verified_payload(token)?;
        let typed = payload
            .get("token_type")
            .and_then(Value::as_str)
            .and_then(TokenType::parse);
        if typed.is_some() {
            // An access or refresh token must be one in full: our layout, our rules.
            return self.read_claims(&payload).map(Untyped::Typed);
        }
        let bad = |what: &str| TokenError::Invalid(format!("bad claim {what}"));
        let user_id = match payload.get(&self.user_id_claim) {
            None | Some(Value::Null) => None,
            Some(v) => Some(user_id_of(v).ok_or_else(|| bad(&self.user_id_claim))?),
        };
        let jti = match payload.get("jti") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str().and_then(Jti::parse).ok_or_else(|| bad("jti"))?),
        };
        let iat = payload.get("iat").and_then(Value::as_u64).unwrap_or(0);
        Ok(Untyped::Other { user_id, jti, iat })
    }

    /// Checks signature, algorithm, times (with LEEWAY), issuer and audience; the payload.
    fn verified_payload(&self, token: &str) -> Result<Map<String, Value>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid("token too long".into()));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        // Pinning: only the configured algorithm, whatever the header asks for.
        if header.alg != self.keys.algorithm {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} not allowed",
                header.alg
            )));
        }
        // A token names its key; one without a kid (SimpleJWT's) is tried against each key.
        let mut candidates = self
            .keys
            .verifying
            .iter()
            .filter(|k| header.kid.as_deref().is_none_or(|kid| kid == k.kid))
            .peekable();
        if candidates.peek().is_none() {
            return Err(TokenError::Invalid("unknown kid".into()));
        }
        let mut last = TokenError::Invalid("no key".into());
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &self.validation)
            {
                Ok(data) => {
                    check_times(&data.claims, self.validation.leeway, unix_now())?;
                    return Ok(data.claims);
                }
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                    last = TokenError::Invalid(e.to_string());
                }
                Err(e) => return Err(TokenError::Invalid(e.to_string())),
            }
        }
        Err(last)
    }

    fn read_claims(&self, map: &Map<String, Value>) -> Result<Claims, TokenError> {
        let mut claims = read_claims(map, &self.user_id_claim)?;
        claims.extra = map
            .iter()
            .filter(|(name, _)| {
                !written_here(
                    name,
                    &self.user_id_claim,
                    self.issuer.is_some(),
                    self.audience.is_some(),
                )
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Ok(claims)
    }
}

/// A token read by verify, whatever its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untyped {
    /// An access or refresh token, read in full.
    Typed(Claims),
    /// Another type (SimpleJWT's sliding token, say) or none: what the store can check.
    Other {
        user_id: Option<UserId>,
        jti: Option<Jti>,
        iat: u64,
    },
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The time claims, read as PyJWT reads them (RFC 7519): `exp`, `iat` and `nbf` are integers
/// (and no later than the year 9999),
/// and a token is expired from the second of its `exp` on (now >= exp + leeway). jsonwebtoken,
/// checked before this, rounds a fractional time and still accepts a token during that second.
fn check_times(map: &Map<String, Value>, leeway: u64, now: u64) -> Result<(), TokenError> {
    for name in ["exp", "iat", "nbf"] {
        if map.get(name).is_some_and(|v| epoch_seconds(v).is_none()) {
            return Err(TokenError::Invalid(format!(
                "claim {name} is not integer seconds before the year 10000"
            )));
        }
    }
    match map.get("exp").and_then(Value::as_u64) {
        Some(exp) if now < exp.saturating_add(leeway) => Ok(()),
        _ => Err(TokenError::Invalid("token expired".into())),
    }
}

fn user_id_of(v: &Value) -> Option<UserId> {
    // SimpleJWT 5.5 writes the id as a string, 5.4 and earlier as the primary key's own type.
    match v {
        Value::String(s) => UserId::parse(s),
        Value::Number(n) if n.is_i64() || n.is_u64() => UserId::parse(&n.to_string()),
        _ => None,
    }
}

fn read_claims(map: &Map<String, Value>, user_id_claim: &str) -> Result<Claims, TokenError> {
    let bad = |what: &str| TokenError::Invalid(format!("bad or missing claim {what}"));
    let token_type = map
        .get("token_type")
        .and_then(Value::as_str)
        .and_then(TokenType::parse)
        .ok_or_else(|| bad("token_type"))?;
    let jti = map
        .get("jti")
        .and_then(Value::as_str)
        .and_then(Jti::parse)
        .ok_or_else(|| bad("jti"))?;
    let user_id = map
        .get(user_id_claim)
        .and_then(user_id_of)
        .ok_or_else(|| bad(user_id_claim))?;
    let exp = map
        .get("exp")
        .and_then(epoch_seconds)
        .ok_or_else(|| bad("exp"))?;
    let iat = match map.get("iat") {
        None => 0,
        Some(v) => epoch_seconds(v).ok_or_else(|| bad("iat"))?,
    };
    let sid = match map.get("sid") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .and_then(SessionId::parse)
                .ok_or_else(|| bad("sid"))?,
        ),
    };
    Ok(Claims {
        token_type,
        user_id,
        jti,
        iat,
        exp,
        sid,
        extra: Map::new(),
    })
}

/// 9999-12-31T23:59:59Z: the last second a time claim may name. Later times are no date anyone
/// means, and overflow the store's expiry arithmetic.
pub const MAX_EPOCH_SECONDS: u64 = 253_402_300_799;

/// A time claim: a JSON integer of seconds, from the epoch to the end of the year 9999. A
/// fraction (`1.5e9`), a negative number, a string or a later time is not one.
fn epoch_seconds(v: &Value) -> Option<u64> {
    v.as_u64().filter(|s| *s <= MAX_EPOCH_SECONDS)
}

/// The claims as SimpleJWT writes them, serialised without building an intermediate map.
struct Outgoing<'a> {
    claims: &'a Claims,
    user_id_claim: &'a str,
    issuer: Option<&'a str>,
    audience: Option<&'a str>,
}

/// The claims this server writes itself into every token it signs (below): never copied from
/// the presented token. SimpleJWT copies all but `token_type`, `exp`, `iat` and `jti`; the rest
/// of these it would copy unchanged, as they are the same.
fn written_here(name: &str, user_id_claim: &str, issuer: bool, audience: bool) -> bool {
    matches!(name, "token_type" | "exp" | "iat" | "jti" | "sid")
        || name == user_id_claim
        || (name == "iss" && issuer)
        || (name == "aud" && audience)
}

impl Outgoing<'_> {
    fn written(&self, name: &str) -> bool {
        written_here(
            name,
            self.user_id_claim,
            self.issuer.is_some(),
            self.audience.is_some(),
        )
    }
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.claims;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("token_type", c.token_type.as_str())?;
        m.serialize_entry("exp", &c.exp)?;
        m.serialize_entry("iat", &c.iat)?;
        m.serialize_entry("jti", c.jti.as_str())?;
        m.serialize_entry(self.user_id_claim, c.user_id.as_str())?;
        if let Some(sid) = &c.sid {
            m.serialize_entry("sid", sid.as_str())?;
        }
        if let Some(iss) = self.issuer {
            m.serialize_entry("iss", iss)?;
        }
        if let Some(aud) = self.audience {
            m.serialize_entry("aud", aud)?;
        }
        // Copied claims, in name order; never one written above.
        for (name, value) in &c.extra {
            if !self.written(name) {
                m.serialize_entry(name, value)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use std::collections::HashMap;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn codec(pairs: &[(&str, &str)]) -> TokenCodec {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("SIGNING_KEY".into())
            .or_insert_with(|| "unit-test-key-unit-test-key-0123456789".into());
        TokenCodec::new(
            &Settings::from_lookup(|k| map.get(k).cloned())
                .unwrap()
                .tokens,
        )
        .unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims(token_type: TokenType, exp: u64) -> Claims {
        Claims {
            token_type,
            user_id: UserId::parse("7").unwrap(),
            jti: Jti::new_random(),
            iat: now(),
            exp,
            sid: Some(SessionId::new_random()),
            extra: Map::new(),
        }
    }

    /// A token's claims as they were written: the middle segment, unpadded base64url.
    fn payload(token: &str) -> Map<String, Value> {
        use base64::Engine;
        let part = token.split('.').nth(1).unwrap();
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&json).unwrap()
    }

    #[test]
    fn round_trip_keeps_every_claim() {
        let c = codec(&[]);
        let original = claims(TokenType::Refresh, now() + 60);
        let token = c.encode(&original).unwrap();
        assert_eq!(c.decode(&token, TokenType::Refresh).unwrap(), original);
    }

    #[test]
    fn claims_are_laid_out_as_simplejwt_writes_them() {
        let c = codec(&[("ISSUER", "https://auth.example"), ("AUDIENCE", "api")]);
        let token = c.encode(&claims(TokenType::Access, now() + 60)).unwrap();
        let p = payload(&token);
        assert_eq!(p["token_type"], "access");
        assert!(p["exp"].is_u64() && p["iat"].is_u64());
        assert_eq!(p["user_id"], "7", "user_id is written as a string");
        assert_eq!(p["jti"].as_str().unwrap().len(), 32);
        assert_eq!(p["iss"], "https://auth.example");
        assert_eq!(p["aud"], "api");
        assert!(p["sid"].is_string());
    }

    #[test]
    fn copied_claims_sign_to_the_same_string_whatever_their_order() {
        let c = codec(&[]);
        let mut one = claims(TokenType::Refresh, now() + 60);
        one.extra
            .insert("roles".into(), serde_json::json!(["a", "b"]));
        one.extra
            .insert("email".into(), serde_json::json!("z@example.com"));
        let mut two = one.clone();
        two.extra = one
            .extra
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let token = c.encode(&one).unwrap();
        assert_eq!(token, c.encode(&two).unwrap());
        assert_eq!(c.decode(&token, TokenType::Refresh).unwrap(), one);
        // A claim we write ourselves is never written twice, whatever `extra` holds.
        let mut clash = claims(TokenType::Access, now() + 60);
        clash
            .extra
            .insert("user_id".into(), serde_json::json!("someone-else"));
        let p = payload(&c.encode(&clash).unwrap());
        assert_eq!(p["user_id"], "7");
    }

    #[test]
    fn times_are_integers_and_exp_ends_at_its_own_second() {
        let t = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert!(check_times(&t(serde_json::json!({"exp": 100})), 0, 99).is_ok());
        assert!(check_times(&t(serde_json::json!({"exp": 100})), 0, 100).is_err());
        assert!(check_times(&t(serde_json::json!({"exp": 100})), 5, 104).is_ok());
        assert!(check_times(&t(serde_json::json!({"exp": 100})), 5, 105).is_err());
        for bad in [
            serde_json::json!({"exp": 100.0}),
            serde_json::json!({"exp": 100, "iat": 1.5}),
            serde_json::json!({"exp": 100, "nbf": "1"}),
            serde_json::json!({"exp": 100, "iat": -1}),
            serde_json::json!({}),
        ] {
            assert!(check_times(&t(bad.clone()), 0, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_of_the_other_type_is_refused() {
        let c = codec(&[]);
        let token = c.encode(&claims(TokenType::Access, now() + 60)).unwrap();
        assert_eq!(
            c.decode(&token, TokenType::Refresh),
            Err(TokenError::WrongType)
        );
    }

    #[test]
    fn expiry_has_no_leeway_unless_configured() {
        let expired = claims(TokenType::Refresh, now() - 5);
        let token = codec(&[]).encode(&expired).unwrap();
        assert!(matches!(
            codec(&[]).decode(&token, TokenType::Refresh),
            Err(TokenError::Invalid(_))
        ));
        assert!(
            codec(&[("LEEWAY", "30")])
                .decode(&token, TokenType::Refresh)
                .is_ok()
        );
    }

    #[test]
    fn audience_and_issuer_are_checked() {
        let plain = codec(&[]);
        let with_aud = codec(&[("AUDIENCE", "api")]);
        let with_iss = codec(&[("ISSUER", "me")]);
        let t = claims(TokenType::Refresh, now() + 60);
        // No AUDIENCE configured, but the token names one: refused.
        assert!(
            plain
                .decode(&with_aud.encode(&t).unwrap(), TokenType::Refresh)
                .is_err()
        );
        // AUDIENCE configured, token without one: refused.
        assert!(
            with_aud
                .decode(&plain.encode(&t).unwrap(), TokenType::Refresh)
                .is_err()
        );
        assert!(
            with_iss
                .decode(&plain.encode(&t).unwrap(), TokenType::Refresh)
                .is_err()
        );
        assert!(
            with_iss
                .decode(&with_iss.encode(&t).unwrap(), TokenType::Refresh)
                .is_ok()
        );
    }

    #[test]
    fn another_key_or_algorithm_is_refused() {
        let t = claims(TokenType::Refresh, now() + 60);
        let other_key = codec(&[("SIGNING_KEY", "another-key-another-key-0123456789")]);
        let hs512 = codec(&[("ALGORITHM", "HS512")]);
        let ours = codec(&[]);
        assert!(
            ours.decode(&other_key.encode(&t).unwrap(), TokenType::Refresh)
                .is_err()
        );
        assert!(
            ours.decode(&hs512.encode(&t).unwrap(), TokenType::Refresh)
                .is_err()
        );
        // alg=none with the payload of a good token.
        let good = ours.encode(&t).unwrap();
        let body = good.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{body}.");
        assert!(ours.decode(&none, TokenType::Refresh).is_err());
    }

    #[test]
    fn integer_user_ids_and_tokens_without_sid_are_accepted() {
        let c = codec(&[]);
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("JWT".into());
        let body = serde_json::json!({
            "token_type": "refresh", "exp": now() + 60, "iat": now(),
            "jti": "0123456789abcdef0123456789abcdef", "user_id": 42
        });
        let token = jsonwebtoken::encode(
            &header,
            &body,
            &jsonwebtoken::EncodingKey::from_secret(b"unit-test-key-unit-test-key-0123456789"),
        )
        .unwrap();
        let claims = c.decode(&token, TokenType::Refresh).unwrap();
        assert_eq!(claims.user_id.as_str(), "42");
        assert_eq!(claims.sid, None);
        assert_eq!(
            claims.session_id().as_str(),
            "0123456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn time_claims_must_be_integer_seconds_before_the_year_10000() {
        let c = codec(&[]);
        let sign = |body: Value| {
            jsonwebtoken::encode(
                &Header::new(jsonwebtoken::Algorithm::HS256),
                &body,
                &jsonwebtoken::EncodingKey::from_secret(b"unit-test-key-unit-test-key-0123456789"),
            )
            .unwrap()
        };
        let with = |name: &str, v: Value| {
            let mut body = serde_json::json!({
                "token_type": "refresh", "exp": now() + 60, "iat": now(),
                "jti": "0123456789abcdef0123456789abcdef", "user_id": "7"
            });
            body[name] = v;
            sign(body)
        };
        assert!(c.decode_any(&with("iat", Value::from(now()))).is_ok());
        for (name, v) in [
            ("exp", Value::from(9_300_000_000_000_000_u64)),
            ("exp", Value::from(MAX_EPOCH_SECONDS + 1)),
            ("exp", Value::from(now() as f64 + 60.5)),
            ("iat", Value::from(now() as f64)),
            ("iat", Value::from(MAX_EPOCH_SECONDS + 1)),
            ("nbf", Value::from(now() as f64 - 1.5)),
            ("nbf", Value::from(-1)),
            ("exp", Value::from(now())),
        ] {
            assert!(
                matches!(
                    c.decode_any(&with(name, v.clone())),
                    Err(TokenError::Invalid(_))
                ),
                "{name}: {v}"
            );
        }
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let c = codec(&[]);
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            c.decode(&huge, TokenType::Refresh),
            Err(TokenError::Invalid("token too long".into()))
        );
    }
}
