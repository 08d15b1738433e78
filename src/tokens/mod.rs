//! Signing and verifying JWTs in djangorestframework-simplejwt's claim layout. Knows the
//! algorithm, the keys and the claims; nothing about HTTP, cookies or the store. Depends on
//! `config` and `domain` only.
//!
//! Every refresh verifies one token and signs two, so this is the server's hot path: the JWS
//! (RFC 7515 compact form) is split, checked and read here in one pass, with jsonwebtoken's
//! header type, key types and public-key signatures, and its validation rules kept as they were.

pub mod keys;

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, Header};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::Error as _};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};

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

fn invalid(why: impl fmt::Display) -> TokenError {
    TokenError::Invalid(why.to_string())
}

pub struct TokenCodec {
    keys: KeySet,
    /// The base64url of the header and its dot: the same for every token signed here.
    header_prefix: String,
    /// The configured `iss` and `aud` claims, as JSON: the same in every token signed here.
    issuer_and_audience: String,
    /// The signing key, keyed once, for HMAC; `None` signs through jsonwebtoken.
    signer: Option<PreparedMac>,
    /// For each of `keys.verifying`, in its order: the key, keyed once, for HMAC.
    verifiers: Vec<Option<PreparedMac>>,
    leeway: u64,
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
        let mut header = Header::new(alg);
        header.kid = Some(keys.kid.clone());
        let header_json = serde_json::to_vec(&header).map_err(|e| KeyError(e.to_string()))?;
        let mut header_prefix = URL_SAFE_NO_PAD.encode(header_json);
        header_prefix.push('.');
        let signer = keys
            .encoding
            .try_get_hmac_secret()
            .ok()
            .and_then(|secret| PreparedMac::new(alg, secret));
        let verifiers = keys
            .verifying
            .iter()
            .map(|k| {
                let secret = k.decoding.try_get_hmac_secret().ok()?;
                PreparedMac::new(alg, secret)
            })
            .collect();
        Ok(Self {
            keys,
            header_prefix,
            issuer_and_audience: issuer_and_audience(
                settings.issuer.as_deref(),
                settings.audience.as_deref(),
            ),
            signer,
            verifiers,
            // SimpleJWT's LEEWAY defaults to 0 (jsonwebtoken's own default would be 60 s).
            leeway: settings.leeway.as_secs(),
            user_id_claim: settings.user_id_claim.clone(),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        })
    }

    /// LEEWAY in seconds: the clock skew allowed on `exp` and `nbf`.
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// The public keys that verify this server's tokens, as a JWK Set (empty for HMAC).
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }

    /// Signs the claims: the same claims always give the same string.
    pub fn encode(&self, claims: &Claims) -> Result<String, TokenError> {
        let json = self
            .payload(claims)
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        // Header, payload and an HMAC-SHA512 signature, base64url: one allocation.
        let mut token = String::with_capacity(self.header_prefix.len() + json.len() * 4 / 3 + 92);
        token.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(&json, &mut token);
        let signature = match &self.signer {
            Some(mac) => mac.sign(token.as_bytes()),
            None => jsonwebtoken::crypto::sign(
                token.as_bytes(),
                &self.keys.encoding,
                self.keys.algorithm,
            )
            .map_err(|e| TokenError::Signing(e.to_string()))?,
        };
        token.push('.');
        token.push_str(&signature);
        Ok(token)
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
        let json = self.verified_payload(token)?;
        read_claims(self.read(&json)?, &self.user_id_claim)
    }

    /// SimpleJWT's `UntypedToken`: a token of any `token_type` (access, refresh, sliding, another,
    /// or none) whose signature, algorithm, times, issuer and audience hold.
    pub fn decode_untyped(&self, token: &str) -> Result<Untyped, TokenError> {
        let json = self.verified_payload(token)?;
        let payload = self.read(&json)?;
        let typed = payload.token_type.as_ref().and_then(Scalar::as_str);
        if typed.and_then(TokenType::parse).is_some() {
            // An access or refresh token must be one in full: our layout, our rules.
            return read_claims(payload, &self.user_id_claim).map(Untyped::Typed);
        }
        let bad = |what: &str| invalid(format_args!("bad claim {what}"));
        let user_id = match &payload.user_id {
            None | Some(Scalar::Null) => None,
            Some(v) => Some(user_id_of(v).ok_or_else(|| bad(&self.user_id_claim))?),
        };
        let jti = match &payload.jti {
            None | Some(Scalar::Null) => None,
            Some(Scalar::Str(s)) => Some(Jti::parse(s).ok_or_else(|| bad("jti"))?),
            Some(_) => return Err(bad("jti")),
        };
        let iat = match payload.iat {
            Some(Scalar::U64(iat)) => iat,
            _ => 0,
        };
        Ok(Untyped::Other { user_id, jti, iat })
    }

    /// Checks the algorithm, the key and the signature; the payload's JSON. Splits as
    /// jsonwebtoken does: the signature after the last dot, the payload before it, the header
    /// before that (a header with a dot in it then fails to decode).
    fn verified_payload(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid("token too long"));
        }
        let malformed = || invalid("not three dot-separated parts");
        let (message, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (header, payload) = message.rsplit_once('.').ok_or_else(malformed)?;
        // The header this server writes, byte for byte, says what it says without parsing.
        let parsed: Header;
        let kid = if Some(header) == self.header_prefix.strip_suffix('.') {
            Some(self.keys.kid.as_str())
        } else {
            parsed = serde_json::from_slice(&base64url(header)?).map_err(invalid)?;
            // Pinning: only the configured algorithm, whatever the header asks for.
            if parsed.alg != self.keys.algorithm {
                return Err(invalid(format_args!(
                    "algorithm {:?} not allowed",
                    parsed.alg
                )));
            }
            parsed.kid.as_deref()
        };
        // A token names its key; one without a kid (SimpleJWT's) is tried against each key.
        let mut candidates = self
            .keys
            .verifying
            .iter()
            .zip(&self.verifiers)
            .filter(|(k, _)| kid.is_none_or(|kid| kid == k.kid))
            .peekable();
        if candidates.peek().is_none() {
            return Err(invalid("unknown kid"));
        }
        let mut mac_signature = None;
        for (key, mac) in candidates {
            let verified = match mac {
                Some(mac) => {
                    let signature = match &mac_signature {
                        Some(s) => s,
                        None => mac_signature.insert(base64url(signature)?),
                    };
                    mac.verify(message.as_bytes(), signature)
                }
                None => jsonwebtoken::crypto::verify(
                    signature,
                    message.as_bytes(),
                    &key.decoding,
                    self.keys.algorithm,
                )
                .map_err(invalid)?,
            };
            if verified {
                return base64url(payload);
            }
        }
        Err(invalid("InvalidSignature"))
    }

    /// Reads a verified payload in one pass and checks its times, issuer and audience.
    fn read<'a>(&self, json: &'a [u8]) -> Result<Payload<'a>, TokenError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let payload = Reader {
            user_id_claim: &self.user_id_claim,
            issuer: self.issuer.is_some(),
            audience: self.audience.is_some(),
        }
        .deserialize(&mut de)
        .and_then(|p| de.end().map(|()| p))
        .map_err(invalid)?;
        check_times(&payload, self.leeway, unix_now())?;
        // With no ISSUER, any `iss` is a claim like another; with no AUDIENCE, a token that
        // names an audience is refused, as PyJWT does for SimpleJWT.
        if let Some(issuer) = &self.issuer
            && !payload.iss.as_ref().is_some_and(|iss| iss.names(issuer))
        {
            return Err(invalid("bad or missing iss"));
        }
        match (&self.audience, &payload.aud) {
            (Some(audience), aud) if !aud.as_ref().is_some_and(|aud| aud.names(audience)) => {
                Err(invalid("bad or missing aud"))
            }
            (None, Some(Scalar::Str(_) | Scalar::Strings(_))) => {
                Err(invalid("the token names an audience; none is configured"))
            }
            _ => Ok(payload),
        }
    }
}

fn base64url(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(part).map_err(invalid)
}

/// An HMAC key with its inner and outer pads already hashed: a clone signs or checks a token
/// without hashing the key again (two SHA-2 blocks a token otherwise).
#[derive(Clone)]
enum PreparedMac {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

impl PreparedMac {
    fn new(alg: Algorithm, secret: &[u8]) -> Option<Self> {
        Some(match alg {
            Algorithm::HS256 => Self::Hs256(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS384 => Self::Hs384(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS512 => Self::Hs512(Hmac::new_from_slice(secret).ok()?),
            _ => return None,
        })
    }

    /// The signature of `message`, base64url.
    fn sign(&self, message: &[u8]) -> String {
        match self {
            Self::Hs256(mac) => {
                URL_SAFE_NO_PAD.encode(mac.clone().chain_update(message).finalize().into_bytes())
            }
            Self::Hs384(mac) => {
                URL_SAFE_NO_PAD.encode(mac.clone().chain_update(message).finalize().into_bytes())
            }
            Self::Hs512(mac) => {
                URL_SAFE_NO_PAD.encode(mac.clone().chain_update(message).finalize().into_bytes())
            }
        }
    }

    /// Compares in constant time.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Hs256(mac) => mac
                .clone()
                .chain_update(message)
                .verify_slice(signature)
                .is_ok(),
            Self::Hs384(mac) => mac
                .clone()
                .chain_update(message)
                .verify_slice(signature)
                .is_ok(),
            Self::Hs512(mac) => mac
                .clone()
                .chain_update(message)
                .verify_slice(signature)
                .is_ok(),
        }
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

/// A claim this server reads itself, as the JSON held it; a string without escapes is borrowed
/// from the payload.
#[derive(Clone, Debug, PartialEq)]
enum Scalar<'a> {
    Null,
    Str(Cow<'a, str>),
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// An array of strings only (what `iss` and `aud` may be).
    Strings(Vec<Cow<'a, str>>),
    /// A fraction, a boolean, an object or any other array.
    Other,
}

impl Scalar<'_> {
    /// A copied claim's value, for the checks made on it too.
    fn of(v: &Value) -> Scalar<'static> {
        match v {
            Value::Null => Scalar::Null,
            Value::String(s) => Scalar::Str(Cow::Owned(s.clone())),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Scalar::U64(u),
                (None, Some(i)) => Scalar::I64(i),
                _ => Scalar::Other,
            },
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(|s| Cow::Owned(s.to_owned())))
                .collect::<Option<_>>()
                .map_or(Scalar::Other, Scalar::Strings),
            Value::Bool(_) | Value::Object(_) => Scalar::Other,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// `iss` or `aud` naming `who`: the string itself, or an array holding it.
    fn names(&self, who: &str) -> bool {
        match self {
            Scalar::Str(s) => s == who,
            Scalar::Strings(all) => all.iter().any(|s| s == who),
            _ => false,
        }
    }

    /// A time claim: an integer of seconds, from the epoch to the end of the year 9999. A
    /// fraction (`1.5e9`), a negative number, a string, null or a later time is not one.
    fn epoch_seconds(&self) -> Option<u64> {
        match self {
            Scalar::U64(s) if *s <= MAX_EPOCH_SECONDS => Some(*s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(u64::try_from(v).map_or(Scalar::I64(v), Scalar::U64))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        let mut strings = Some(Vec::new());
        while let Some(item) = seq.next_element::<Scalar<'de>>()? {
            match (item, &mut strings) {
                (Scalar::Str(s), Some(all)) => all.push(s),
                _ => strings = None,
            }
        }
        Ok(strings.map_or(Scalar::Other, Scalar::Strings))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// A claim's name; borrowed from the payload unless it has escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A verified token's claims, read in one pass over its JSON: those this server reads itself
/// borrowed where they can be, every other claim kept whole for the tokens a refresh signs.
/// A name given twice counts once, the last (as PyJWT reads JSON), except the claims
/// jsonwebtoken validated, which it refused twice (`DUPLICATE_REFUSED`).
#[derive(Default)]
struct Payload<'a> {
    token_type: Option<Scalar<'a>>,
    jti: Option<Scalar<'a>>,
    user_id: Option<Scalar<'a>>,
    sid: Option<Scalar<'a>>,
    exp: Option<Scalar<'a>>,
    iat: Option<Scalar<'a>>,
    nbf: Option<Scalar<'a>>,
    iss: Option<Scalar<'a>>,
    aud: Option<Scalar<'a>>,
    /// Every claim not written here (`written_here`), as SimpleJWT copies them.
    extra: Map<String, Value>,
}

const DUPLICATE_REFUSED: [&str; 5] = ["exp", "nbf", "sub", "iss", "aud"];

/// Reads a `Payload` out of the claims object.
struct Reader<'c> {
    user_id_claim: &'c str,
    issuer: bool,
    audience: bool,
}

impl<'de> DeserializeSeed<'de> for Reader<'_> {
    type Value = Payload<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Reader<'_> {
    type Value = Payload<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload<'de>, A::Error> {
        let mut p = Payload::default();
        let mut seen = [false; DUPLICATE_REFUSED.len()];
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            if let Some(i) = DUPLICATE_REFUSED.iter().position(|n| *n == name)
                && std::mem::replace(&mut seen[i], true)
            {
                return Err(A::Error::custom(format_args!("duplicate claim {name}")));
            }
            if written_here(&name, self.user_id_claim, self.issuer, self.audience) {
                let slot = match &*name {
                    n if n == self.user_id_claim => &mut p.user_id,
                    "token_type" => &mut p.token_type,
                    "exp" => &mut p.exp,
                    "iat" => &mut p.iat,
                    "jti" => &mut p.jti,
                    "sid" => &mut p.sid,
                    "iss" => &mut p.iss,
                    _ => &mut p.aud,
                };
                *slot = Some(map.next_value()?);
                continue;
            }
            let value: Value = map.next_value()?;
            match &*name {
                "nbf" => p.nbf = Some(Scalar::of(&value)),
                "iss" => p.iss = Some(Scalar::of(&value)),
                "aud" => p.aud = Some(Scalar::of(&value)),
                // jsonwebtoken read `sub` as a string and could not step over an object or an
                // array there: such a token was refused, and still is.
                "sub" if matches!(value, Value::Array(_) | Value::Object(_)) => {
                    return Err(A::Error::custom("claim sub is an object or an array"));
                }
                _ => {}
            }
            p.extra.insert(name.into_owned(), value);
        }
        Ok(p)
    }
}

/// The time claims, read as PyJWT reads them (RFC 7519): `exp`, `iat` and `nbf` are integers
/// (and no later than the year 9999), `exp` is required, a token is expired from the second of
/// its `exp` on (now >= exp + leeway) and not valid before `nbf` (now < nbf - leeway).
fn check_times(p: &Payload<'_>, leeway: u64, now: u64) -> Result<(), TokenError> {
    for (name, claim) in [("exp", &p.exp), ("iat", &p.iat), ("nbf", &p.nbf)] {
        if claim.as_ref().is_some_and(|v| v.epoch_seconds().is_none()) {
            return Err(invalid(format_args!(
                "claim {name} is not integer seconds before the year 10000"
            )));
        }
    }
    match p.exp.as_ref().and_then(Scalar::epoch_seconds) {
        Some(exp) if now < exp.saturating_add(leeway) => {}
        Some(_) => return Err(invalid("token expired")),
        None => return Err(invalid("missing claim exp")),
    }
    match p.nbf.as_ref().and_then(Scalar::epoch_seconds) {
        Some(nbf) if nbf > now.saturating_add(leeway) => Err(invalid("token not yet valid")),
        _ => Ok(()),
    }
}

fn user_id_of(v: &Scalar<'_>) -> Option<UserId> {
    // SimpleJWT 5.5 writes the id as a string, 5.4 and earlier as the primary key's own type.
    match v {
        Scalar::Str(s) => UserId::parse(s),
        Scalar::U64(n) => UserId::parse(&n.to_string()),
        Scalar::I64(n) => UserId::parse(&n.to_string()),
        _ => None,
    }
}

fn read_claims(p: Payload<'_>, user_id_claim: &str) -> Result<Claims, TokenError> {
    let bad = |what: &str| invalid(format_args!("bad or missing claim {what}"));
    let token_type = p
        .token_type
        .as_ref()
        .and_then(Scalar::as_str)
        .and_then(TokenType::parse)
        .ok_or_else(|| bad("token_type"))?;
    let jti = p
        .jti
        .as_ref()
        .and_then(Scalar::as_str)
        .and_then(Jti::parse)
        .ok_or_else(|| bad("jti"))?;
    let user_id = p
        .user_id
        .as_ref()
        .and_then(user_id_of)
        .ok_or_else(|| bad(user_id_claim))?;
    let exp = p
        .exp
        .as_ref()
        .and_then(Scalar::epoch_seconds)
        .ok_or_else(|| bad("exp"))?;
    let iat = match &p.iat {
        None => 0,
        Some(v) => v.epoch_seconds().ok_or_else(|| bad("iat"))?,
    };
    let sid = match &p.sid {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) => Some(SessionId::parse(s).ok_or_else(|| bad("sid"))?),
        Some(_) => return Err(bad("sid")),
    };
    Ok(Claims {
        token_type,
        user_id,
        jti,
        iat,
        exp,
        sid,
        extra: p.extra,
    })
}

/// 9999-12-31T23:59:59Z: the last second a time claim may name. Later times are no date anyone
/// means, and overflow the store's expiry arithmetic.
pub const MAX_EPOCH_SECONDS: u64 = 253_402_300_799;

/// The claims this server writes itself into every token it signs (`TokenCodec::payload`):
/// never copied from the presented token. SimpleJWT copies all but `token_type`, `exp`, `iat`
/// and `jti`; the rest of these it would copy unchanged, as they are the same.
fn written_here(name: &str, user_id_claim: &str, issuer: bool, audience: bool) -> bool {
    matches!(name, "token_type" | "exp" | "iat" | "jti" | "sid")
        || name == user_id_claim
        || (name == "iss" && issuer)
        || (name == "aud" && audience)
}

impl TokenCodec {
    /// The claims as SimpleJWT writes them, in compact JSON: ours first, then the copied ones
    /// in name order. Written by hand, byte for byte what serde_json writes, which is what
    /// the tokens already issued hold.
    fn payload(&self, c: &Claims) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(256);
        // Ids, token types and USER_ID_CLAIM hold no character JSON escapes (`domain`,
        // `config`): they are copied as they are.
        let field = |out: &mut Vec<u8>, name: &str| {
            out.push(if out.is_empty() { b'{' } else { b',' });
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        let quoted = |out: &mut Vec<u8>, value: &str| {
            out.push(b'"');
            out.extend_from_slice(value.as_bytes());
            out.push(b'"');
        };
        field(&mut out, "token_type");
        quoted(&mut out, c.token_type.as_str());
        field(&mut out, "exp");
        push_integer(&mut out, c.exp);
        field(&mut out, "iat");
        push_integer(&mut out, c.iat);
        field(&mut out, "jti");
        quoted(&mut out, c.jti.as_str());
        field(&mut out, &self.user_id_claim);
        quoted(&mut out, c.user_id.as_str());
        if let Some(sid) = &c.sid {
            field(&mut out, "sid");
            quoted(&mut out, sid.as_str());
        }
        out.extend_from_slice(self.issuer_and_audience.as_bytes());
        // Copied claims; never one written above.
        let (issuer, audience) = (self.issuer.is_some(), self.audience.is_some());
        for (name, value) in &c.extra {
            if !written_here(name, &self.user_id_claim, issuer, audience) {
                out.push(b',');
                serde_json::to_writer(&mut out, name)?;
                out.push(b':');
                serde_json::to_writer(&mut out, value)?;
            }
        }
        out.push(b'}');
        Ok(out)
    }
}

/// `,"iss":…,"aud":…` as the payload carries them, for those configured.
fn issuer_and_audience(issuer: Option<&str>, audience: Option<&str>) -> String {
    let mut json = String::new();
    for (name, value) in [("iss", issuer), ("aud", audience)] {
        if let Some(value) = value {
            json.push_str(&format!(",\"{name}\":{}", Value::from(value)));
        }
    }
    json
}

/// An integer in decimal, as JSON writes it.
fn push_integer(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
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
    fn the_payload_is_compact_json_byte_for_byte() {
        // Every refresh re-signs the claims it read: the bytes must never drift between
        // versions, or a repeated answer would differ from the token first issued.
        let c = codec(&[
            ("ISSUER", "https://auth.example/\"q\""),
            ("AUDIENCE", "api"),
        ]);
        let mut claims = Claims {
            token_type: TokenType::Refresh,
            user_id: UserId::parse("42").unwrap(),
            jti: Jti::parse("0123456789abcdef0123456789abcdef").unwrap(),
            iat: 1_999_999_000,
            exp: 2_000_000_000,
            sid: Some(SessionId::parse("fedcba9876543210fedcba9876543210").unwrap()),
            extra: Map::new(),
        };
        let extra = serde_json::json!({
            "email": "z@example.com", "roles": ["a", "b"], "name": "Zo\u{eb} \"Z\"\n\u{1}",
            "n": 1.5, "user_id": "ignored", "aud": "ignored", "sid": null, "nbf": 1
        });
        claims.extra = extra.as_object().unwrap().clone();
        let token = c.encode(&claims).unwrap();
        let json = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            concat!(
                r#"{"token_type":"refresh","exp":2000000000,"iat":1999999000,"#,
                r#""jti":"0123456789abcdef0123456789abcdef","user_id":"42","#,
                r#""sid":"fedcba9876543210fedcba9876543210","#,
                r#""iss":"https://auth.example/\"q\"","aud":"api","#,
                r#""email":"z@example.com","n":1.5,"name":"Zoë \"Z\"\n\u0001","nbf":1,"#,
                r#""roles":["a","b"]}"#
            )
        );
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
        let check_times = |v: &Value, leeway, now| {
            let json = serde_json::to_vec(v).unwrap();
            let reader = Reader {
                user_id_claim: "user_id",
                issuer: false,
                audience: false,
            };
            let payload = reader
                .deserialize(&mut serde_json::Deserializer::from_slice(&json))
                .unwrap();
            super::check_times(&payload, leeway, now)
        };
        assert!(check_times(&serde_json::json!({"exp": 100}), 0, 99).is_ok());
        assert!(check_times(&serde_json::json!({"exp": 100}), 0, 100).is_err());
        assert!(check_times(&serde_json::json!({"exp": 100}), 5, 104).is_ok());
        assert!(check_times(&serde_json::json!({"exp": 100}), 5, 105).is_err());
        for bad in [
            serde_json::json!({"exp": 100.0}),
            serde_json::json!({"exp": 100, "iat": 1.5}),
            serde_json::json!({"exp": 100, "nbf": "1"}),
            serde_json::json!({"exp": 100, "iat": -1}),
            serde_json::json!({}),
        ] {
            assert!(check_times(&bad, 0, 1).is_err(), "{bad}");
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

    /// The reading this module's one-pass reader replaced: jsonwebtoken's validating `decode`
    /// into a JSON map, then the same time rules and claim reads on the map. The reader must
    /// accept and read exactly what it did.
    mod reference {
        use super::super::{MAX_EPOCH_SECONDS, written_here};
        use crate::domain::{Claims, Jti, SessionId, TokenType, UserId};
        use jsonwebtoken::{Algorithm, DecodingKey, Validation};
        use serde_json::{Map, Value};

        pub struct Config<'a> {
            pub key: &'a [u8],
            pub leeway: u64,
            pub user_id_claim: &'a str,
            pub issuer: Option<&'a str>,
            pub audience: Option<&'a str>,
        }

        pub fn decode_any(c: &Config<'_>, token: &str, now: u64) -> Option<Claims> {
            let mut validation = Validation::new(Algorithm::HS256);
            validation.leeway = c.leeway;
            validation.validate_nbf = true;
            let mut required = vec!["exp"];
            if let Some(aud) = c.audience {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            if let Some(iss) = c.issuer {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            validation.set_required_spec_claims(&required);
            let key = DecodingKey::from_secret(c.key);
            let map = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
                .ok()?
                .claims;
            let epoch = |v: &Value| v.as_u64().filter(|s| *s <= MAX_EPOCH_SECONDS);
            for name in ["exp", "iat", "nbf"] {
                if map.get(name).is_some_and(|v| epoch(v).is_none()) {
                    return None;
                }
            }
            if now >= map.get("exp")?.as_u64()?.saturating_add(c.leeway) {
                return None;
            }
            let user_id = match map.get(c.user_id_claim)? {
                Value::String(s) => UserId::parse(s),
                Value::Number(n) if n.is_i64() || n.is_u64() => UserId::parse(&n.to_string()),
                _ => None,
            }?;
            Some(Claims {
                token_type: TokenType::parse(map.get("token_type")?.as_str()?)?,
                user_id,
                jti: Jti::parse(map.get("jti")?.as_str()?)?,
                iat: match map.get("iat") {
                    None => 0,
                    Some(v) => epoch(v)?,
                },
                exp: epoch(map.get("exp")?)?,
                sid: match map.get("sid") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(SessionId::parse(v.as_str()?)?),
                },
                extra: map
                    .iter()
                    .filter(|(n, _)| {
                        !written_here(n, c.user_id_claim, c.issuer.is_some(), c.audience.is_some())
                    })
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect(),
            })
        }
    }

    /// Signs any payload text (duplicate names, escapes, non-objects) and header text.
    fn sign_raw(header: &str, payload: &str, key: &[u8]) -> String {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let message = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &jsonwebtoken::EncodingKey::from_secret(key),
            jsonwebtoken::Algorithm::HS256,
        )
        .unwrap();
        format!("{message}.{signature}")
    }

    #[test]
    fn the_one_pass_reader_accepts_and_reads_exactly_what_jsonwebtoken_did() {
        const KEY: &str = "unit-test-key-unit-test-key-0123456789";
        let t = now();
        let (later, past, too_late) = (t + 600, t - 600, MAX_EPOCH_SECONDS + 1);
        let values = [
            "null".to_owned(),
            "true".into(),
            "0".into(),
            "42".into(),
            "-7".into(),
            "1.5".into(),
            format!("{later}"),
            format!("{later}.0"),
            format!("{past}"),
            format!("{too_late}"),
            "1e400".into(),
            "18446744073709551616".into(),
            r#""""#.into(),
            r#""7""#.into(),
            r#""refresh""#.into(),
            r#""access""#.into(),
            r#""sliding""#.into(),
            r#""api""#.into(),
            r#""me""#.into(),
            r#""a:b""#.into(),
            r#""\u0037""#.into(),
            r#""0123456789abcdef0123456789abcdef""#.into(),
            r#""0123456789abcdef\u0030123456789abcdef""#.into(),
            "[]".into(),
            r#"["api"]"#.into(),
            r#"["other", "api"]"#.into(),
            r#"["api", 1]"#.into(),
            r#"[["api"]]"#.into(),
            "{}".into(),
            r#"{"a": [1, {"b": null}]}"#.into(),
        ];
        let names = [
            "token_type",
            "jti",
            "user_id",
            "sub",
            "sid",
            "exp",
            "iat",
            "nbf",
            "iss",
            "aud",
            "email",
            "\\u0065xp",
        ];
        let base = [
            ("token_type", r#""refresh""#.to_owned()),
            ("exp", format!("{later}")),
            ("iat", format!("{t}")),
            ("jti", r#""0123456789abcdef0123456789abcdef""#.into()),
            ("user_id", r#""7""#.into()),
            ("sub", r#""7""#.into()),
            ("sid", r#""fedcba9876543210fedcba9876543210""#.into()),
            ("iss", r#""me""#.into()),
            ("aud", r#""api""#.into()),
        ];
        let object = |pairs: &[(&str, String)]| {
            let fields: Vec<String> = pairs
                .iter()
                .map(|(n, v)| format!(r#""{n}": {v}"#))
                .collect();
            format!("{{{}}}", fields.join(", "))
        };
        let mut payloads = vec![
            "[]".to_owned(),
            "1".into(),
            r#""x""#.into(),
            "{}".into(),
            "{".into(),
            object(&base[..5]) + " x",
            object(&base[..5]) + " ",
        ];
        for keep in [5, 6, 7, 9] {
            let kept = &base[..keep];
            payloads.push(object(kept));
            for name in names {
                let without: Vec<_> = kept.iter().filter(|(n, _)| *n != name).cloned().collect();
                for value in &values {
                    let mut pairs = without.clone();
                    pairs.push((name, value.clone()));
                    payloads.push(object(&pairs));
                    // Given twice: first as the good value, then this one.
                    if let Some(good) = kept.iter().find(|(n, _)| *n == name) {
                        let mut twice = kept.to_vec();
                        twice.push((name, value.clone()));
                        payloads.push(object(&twice));
                        twice.swap(kept.iter().position(|(n, _)| *n == name).unwrap(), keep);
                        twice[keep] = good.clone();
                        payloads.push(object(&twice));
                    }
                }
            }
        }
        let own = |c: &TokenCodec| {
            let b64 = c.header_prefix.strip_suffix('.').unwrap();
            String::from_utf8(URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
        };
        let own_header = own(&codec(&[]));
        let headers = [
            r#"{"alg":"HS256"}"#,
            &own_header,
            r#"{"typ":"JWT","alg":"HS256"}"#,
            r#"{"alg":"HS256","typ":5}"#,
            r#"{"alg":"HS256","kid":7}"#,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"{"alg":"HS384"}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS256","alg":"HS256"}"#,
            r#"[]"#,
        ];
        let configs = [
            (vec![], None, None, "user_id", 0),
            (vec![("AUDIENCE", "api")], None, Some("api"), "user_id", 0),
            (vec![("ISSUER", "me")], Some("me"), None, "user_id", 0),
            (vec![("USER_ID_CLAIM", "sub")], None, None, "sub", 0),
            (vec![("LEEWAY", "900")], None, None, "user_id", 900),
        ];
        let mut compared = 0;
        let mut accepted = 0;
        for (pairs, issuer, audience, user_id_claim, leeway) in &configs {
            let codec = codec(pairs);
            let config = reference::Config {
                key: KEY.as_bytes(),
                leeway: *leeway,
                user_id_claim,
                issuer: *issuer,
                audience: *audience,
            };
            for (i, header) in headers.iter().enumerate() {
                // Every payload under a plain header and ours; a few under the others.
                let step = if i <= 1 { 1 } else { 97 };
                for payload in payloads.iter().step_by(step) {
                    let token = sign_raw(header, payload, KEY.as_bytes());
                    let ours = codec.decode_any(&token).ok();
                    let theirs = reference::decode_any(&config, &token, now());
                    assert_eq!(ours, theirs, "{pairs:?}: {header} {payload}");
                    compared += 1;
                    accepted += usize::from(ours.is_some());
                    if ours.is_some() && i == 0 {
                        let (message, signature) = token.rsplit_once('.').unwrap();
                        let other =
                            sign_raw(header, payload, b"another-key-another-key-0123456789");
                        for forged in [
                            format!("{message}.{}", &signature[1..]),
                            format!("{message}.{signature}="),
                            format!("{message}.{signature}A"),
                            format!("{message}."),
                            format!("{message}.{}", other.rsplit_once('.').unwrap().1),
                            format!("{message}.{signature}.{signature}"),
                            format!("x.{token}"),
                            message.to_owned(),
                        ] {
                            assert!(codec.decode_any(&forged).is_err(), "{forged}");
                            assert!(reference::decode_any(&config, &forged, now()).is_none());
                        }
                    }
                }
            }
        }
        assert!(compared > 10_000 && accepted > 500, "{compared} {accepted}");
    }
}
