//! Key material: loading SIGNING_KEY, VERIFYING_KEY and RETIRED_KEYS_DIR for every supported
//! algorithm, key ids (RFC 7638 thumbprints), the public JWKS, and generating fresh keys. What
//! differs by algorithm is in one table, `ALGORITHMS`. Nothing here knows about HTTP or the store.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::Algorithm as J;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::elliptic_curve as ec;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand::rngs::OsRng;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{Algorithm, MIN_HMAC_KEY_BYTES};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct KeyError(pub String);

/// One key that verifies tokens: the current one or a retired one.
pub struct VerifyingKey {
    pub kid: String,
    pub decoding: DecodingKey,
    /// The public JWK (with `kid`, `alg` and `use`); `None` for HMAC secrets, which are never
    /// published.
    pub jwk: Option<Value>,
}

/// The signing key and every key that verifies.
pub struct KeySet {
    pub algorithm: jsonwebtoken::Algorithm,
    pub encoding: EncodingKey,
    pub kid: String,
    /// The current key first, then the retired ones.
    pub verifying: Vec<VerifyingKey>,
}

/// Everything the code decides by algorithm, one row each: adding an algorithm is one row (and,
/// for a new kind of key pair, one `PairKind`). A unit test checks the rows against
/// `Algorithm::ALL` and jsonwebtoken's names.
const ALGORITHMS: [Row; 9] = [
    Row::secret(Algorithm::HS256, J::HS256),
    Row::secret(Algorithm::HS384, J::HS384),
    Row::secret(Algorithm::HS512, J::HS512),
    Row::pair(Algorithm::RS256, J::RS256, &RSA),
    Row::pair(Algorithm::RS384, J::RS384, &RSA),
    Row::pair(Algorithm::RS512, J::RS512, &RSA),
    Row::pair(Algorithm::ES256, J::ES256, &P256),
    Row::pair(Algorithm::ES384, J::ES384, &P384),
    Row::pair(Algorithm::EdDSA, J::EdDSA, &ED25519),
];

struct Row {
    alg: Algorithm,
    jwt: J,
    /// How its keys are read and made; `None` for HMAC, whose key is one shared secret that
    /// signs and verifies and is never published.
    pair: Option<&'static PairKind>,
}

impl Row {
    const fn secret(alg: Algorithm, jwt: J) -> Row {
        Row {
            alg,
            jwt,
            pair: None,
        }
    }

    const fn pair(alg: Algorithm, jwt: J, kind: &'static PairKind) -> Row {
        Row {
            alg,
            jwt,
            pair: Some(kind),
        }
    }
}

fn row(alg: Algorithm) -> &'static Row {
    ALGORITHMS
        .iter()
        .find(|r| r.alg == alg)
        .expect("every algorithm has a row")
}

/// A kind of key pair (RSA, a curve): how its PEM keys are read, checked and made. Several
/// algorithms may share one (RS256, RS384 and RS512 sign with the same RSA keys).
struct PairKind {
    /// The public key in a PEM that holds a public key or (for convenience) a private one.
    public: fn(&str) -> Result<PublicKey, KeyError>,
    /// The signing key in a private PEM, or why it is not one.
    signing: fn(&str) -> Result<EncodingKey, String>,
    /// The verifying key, from the SPKI PEM that `public` made.
    verifying: fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>,
    /// A fresh pair: a PKCS#8 PEM private key and its SPKI PEM public key.
    generate: fn() -> Result<(String, String), KeyError>,
}

const RSA: PairKind = PairKind {
    public: |pem| {
        let key = rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
            .or_else(|_| private_rsa(pem).map(|k| k.to_public_key()))
            .map_err(|_| not_pem("RSA"))?;
        rsa_public(&key)
    },
    signing: |pem| {
        private_rsa(pem).map_err(|e| e.0)?;
        EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())
    },
    verifying: DecodingKey::from_rsa_pem,
    generate: || {
        let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| KeyError(e.to_string()))?;
        pem_pair(&key, &key.to_public_key())
    },
};

const P256: PairKind = PairKind {
    public: |pem| ec_public_from_pem::<p256::NistP256>(pem, "P-256"),
    signing: ec_signing::<p256::NistP256>,
    verifying: DecodingKey::from_ec_pem,
    generate: ec_generate::<p256::NistP256>,
};

const P384: PairKind = PairKind {
    public: |pem| ec_public_from_pem::<p384::NistP384>(pem, "P-384"),
    signing: ec_signing::<p384::NistP384>,
    verifying: DecodingKey::from_ec_pem,
    generate: ec_generate::<p384::NistP384>,
};

const ED25519: PairKind = PairKind {
    public: |pem| {
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .or_else(|_| ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map(|k| k.verifying_key()))
            .map_err(|_| not_pem("Ed25519"))?;
        ed_public(&key)
    },
    signing: |pem| {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
        EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| e.to_string())
    },
    verifying: DecodingKey::from_ed_pem,
    generate: || {
        let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
        pem_pair(&key, &key.verifying_key())
    },
};

fn not_pem(what: &str) -> KeyError {
    KeyError(format!("not a PEM {what} key"))
}

/// The public half of a key, in the form each use needs.
struct PublicKey {
    pem: String,
    /// The RFC 7638 required members, in lexicographic order, as JSON values.
    members: Vec<(&'static str, String)>,
}

impl PublicKey {
    /// RFC 7638: SHA-256 over the required members in lexicographic order, base64url.
    fn thumbprint(&self) -> String {
        let body: Vec<String> = self
            .members
            .iter()
            .map(|(k, v)| format!("\"{k}\":\"{v}\""))
            .collect();
        B64.encode(Sha256::digest(format!("{{{}}}", body.join(",")).as_bytes()))
    }

    fn jwk(&self, kid: &str, alg: Algorithm) -> Value {
        let mut jwk = serde_json::Map::new();
        for (k, v) in &self.members {
            jwk.insert((*k).into(), Value::String(v.clone()));
        }
        jwk.insert("kid".into(), kid.into());
        jwk.insert("alg".into(), alg.as_str().into());
        jwk.insert("use".into(), "sig".into());
        Value::Object(jwk)
    }

    fn decoding(&self, kind: &PairKind) -> Result<DecodingKey, KeyError> {
        (kind.verifying)(self.pem.as_bytes())
            .map_err(|e| KeyError(format!("unusable public key: {e}")))
    }
}

fn rsa_public(key: &rsa::RsaPublicKey) -> Result<PublicKey, KeyError> {
    Ok(PublicKey {
        pem: key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError(e.to_string()))?,
        members: vec![
            ("e", B64.encode(key.e().to_bytes_be())),
            ("kty", "RSA".into()),
            ("n", B64.encode(key.n().to_bytes_be())),
        ],
    })
}

/// The public key of curve `C` (named `crv` in its JWK) in a PEM holding a public key, or a
/// PKCS#8 or SEC1 private key.
fn ec_public_from_pem<C>(pem: &str, crv: &str) -> Result<PublicKey, KeyError>
where
    C: ec::CurveArithmetic + ec::pkcs8::AssociatedOid + ec::point::PointCompression,
    ec::AffinePoint<C>: ec::sec1::FromEncodedPoint<C> + ec::sec1::ToEncodedPoint<C>,
    ec::FieldBytesSize<C>: ec::sec1::ModulusSize,
{
    let key = ec::PublicKey::<C>::from_public_key_pem(pem)
        .or_else(|_| ec::SecretKey::<C>::from_pkcs8_pem(pem).map(|k| k.public_key()))
        .or_else(|_| ec::SecretKey::<C>::from_sec1_pem(pem).map(|k| k.public_key()))
        .map_err(|_| not_pem(crv))?;
    let pem = key
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError(e.to_string()))?;
    // An uncompressed SEC1 point: 0x04 || x || y.
    let point = key.to_sec1_bytes();
    let half = (point.len() - 1) / 2;
    Ok(PublicKey {
        pem,
        members: vec![
            ("crv", crv.into()),
            ("kty", "EC".into()),
            ("x", B64.encode(&point[1..1 + half])),
            ("y", B64.encode(&point[1 + half..])),
        ],
    })
}

/// A signing key of curve `C` from a PKCS#8 or SEC1 PEM, handed to jsonwebtoken as PKCS#8 (the
/// only form it reads).
fn ec_signing<C>(pem: &str) -> Result<EncodingKey, String>
where
    C: ec::CurveArithmetic + ec::pkcs8::AssociatedOid,
    ec::AffinePoint<C>: ec::sec1::FromEncodedPoint<C> + ec::sec1::ToEncodedPoint<C>,
    ec::FieldBytesSize<C>: ec::sec1::ModulusSize,
{
    let key = ec::SecretKey::<C>::from_pkcs8_pem(pem)
        .or_else(|_| ec::SecretKey::<C>::from_sec1_pem(pem))
        .map_err(|e| e.to_string())?;
    let pkcs8 = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?;
    EncodingKey::from_ec_pem(pkcs8.as_bytes()).map_err(|e| e.to_string())
}

fn ec_generate<C>() -> Result<(String, String), KeyError>
where
    C: ec::CurveArithmetic + ec::pkcs8::AssociatedOid,
    ec::AffinePoint<C>: ec::sec1::FromEncodedPoint<C> + ec::sec1::ToEncodedPoint<C>,
    ec::FieldBytesSize<C>: ec::sec1::ModulusSize,
{
    let key = ec::SecretKey::<C>::random(&mut OsRng);
    pem_pair(&key, &key.public_key())
}

fn ed_public(key: &ed25519_dalek::VerifyingKey) -> Result<PublicKey, KeyError> {
    Ok(PublicKey {
        pem: key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError(e.to_string()))?,
        members: vec![
            ("crv", "Ed25519".into()),
            ("kty", "OKP".into()),
            ("x", B64.encode(key.as_bytes())),
        ],
    })
}

fn private_rsa(pem: &str) -> Result<rsa::RsaPrivateKey, KeyError> {
    rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| KeyError("not a PEM RSA private key".into()))
}

fn hmac_kid(secret: &[u8]) -> String {
    PublicKey {
        pem: String::new(),
        members: vec![("k", B64.encode(secret)), ("kty", "oct".into())],
    }
    .thumbprint()
}

/// PKCS#8 PEM of a private key and SPKI PEM of its public key.
fn pem_pair(
    private: &impl EncodePrivateKey,
    public: &impl EncodePublicKey,
) -> Result<(String, String), KeyError> {
    let err = |e: &dyn std::fmt::Display| KeyError(e.to_string());
    Ok((
        private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| err(&e))?
            .to_string(),
        public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| err(&e))?,
    ))
}

/// A fresh key: a PKCS#8 PEM private key and its SPKI PEM public key, or for HMAC a random
/// 64-byte secret (base64url) and no public key.
pub fn generate(alg: Algorithm) -> Result<(String, Option<String>), KeyError> {
    match row(alg).pair {
        None => {
            use rand::RngCore;
            let mut secret = [0u8; 64];
            OsRng.fill_bytes(&mut secret);
            Ok((B64.encode(secret), None))
        }
        Some(kind) => {
            let (private, public) = (kind.generate)()?;
            Ok((private, Some(public)))
        }
    }
}

impl KeySet {
    /// Loads the keys the settings name. `signing_key` is the raw SIGNING_KEY (a secret for
    /// HMAC, a PEM for the others); `generated` means it was made up for this process, in which
    /// case an asymmetric algorithm gets a fresh key pair instead.
    pub fn load(
        alg: Algorithm,
        signing_key: &[u8],
        generated: bool,
        verifying_key: Option<&[u8]>,
        retired_dir: Option<&Path>,
    ) -> Result<KeySet, KeyError> {
        let row = row(alg);
        let mut verifying = Vec::new();
        let (encoding, kid) = match row.pair {
            None => {
                let kid = hmac_kid(signing_key);
                verifying.push(VerifyingKey {
                    kid: kid.clone(),
                    decoding: DecodingKey::from_secret(signing_key),
                    jwk: None,
                });
                (EncodingKey::from_secret(signing_key), kid)
            }
            Some(kind) => {
                let private = if generated {
                    (kind.generate)()?.0
                } else {
                    String::from_utf8(signing_key.to_vec())
                        .map_err(|_| KeyError("SIGNING_KEY is not PEM text".into()))?
                };
                let encoding = (kind.signing)(&private).map_err(|e| {
                    KeyError(format!(
                        "SIGNING_KEY is not a usable {} private key: {e}",
                        alg.as_str()
                    ))
                })?;
                let derived =
                    (kind.public)(&private).map_err(|e| KeyError(format!("SIGNING_KEY: {e}")))?;
                let public = match verifying_key {
                    Some(pem) => {
                        let pem = std::str::from_utf8(pem)
                            .map_err(|_| KeyError("VERIFYING_KEY is not PEM text".into()))?;
                        let given = (kind.public)(pem)
                            .map_err(|e| KeyError(format!("VERIFYING_KEY: {e}")))?;
                        if given.members != derived.members {
                            return Err(KeyError(
                                "VERIFYING_KEY is not the public half of SIGNING_KEY".into(),
                            ));
                        }
                        given
                    }
                    None => derived,
                };
                let kid = public.thumbprint();
                verifying.push(VerifyingKey {
                    kid: kid.clone(),
                    decoding: public.decoding(kind)?,
                    jwk: Some(public.jwk(&kid, alg)),
                });
                (encoding, kid)
            }
        };
        if let Some(dir) = retired_dir {
            verifying.extend(load_retired(dir, alg)?);
        }
        Ok(KeySet {
            algorithm: row.jwt,
            encoding,
            kid,
            verifying,
        })
    }

    /// The public keys, as a JWK Set (empty for HMAC).
    pub fn jwks(&self) -> Value {
        let keys: Vec<&Value> = self
            .verifying
            .iter()
            .filter_map(|k| k.jwk.as_ref())
            .collect();
        json!({ "keys": keys })
    }
}

/// Every file in RETIRED_KEYS_DIR, in name order, except dotfiles (`.gitkeep`, editor
/// leftovers): an old HMAC secret, or a PEM key of the configured algorithm. A retired key must be
/// as strong as a live one: for HMAC, every accepted secret is a key that can sign tokens, so an
/// empty or short file, or a public key that is published in a JWKS anyway, would let anyone forge
/// them. Each refusal names the file.
fn load_retired(dir: &Path, alg: Algorithm) -> Result<Vec<VerifyingKey>, KeyError> {
    let problem = |what: String| KeyError(format!("RETIRED_KEYS_DIR={}: {what}", dir.display()));
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| problem(e.to_string()))?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut keys = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| problem(format!("{}: {e}", path.display())))?;
        let key =
            retired_key(&text, alg).map_err(|why| problem(format!("{}: {why}", path.display())))?;
        keys.push(key);
    }
    Ok(keys)
}

/// One retired key from the text of its file: an HMAC secret at least as strong as a live one,
/// or a PEM key of ALGORITHM's family. The error says why not, for a message naming the file.
pub fn retired_key(text: &str, alg: Algorithm) -> Result<VerifyingKey, String> {
    let text = text.trim_end_matches(['\r', '\n']);
    let Some(kind) = row(alg).pair else {
        if let Some(why) = retired_secret_problem(text, alg) {
            return Err(why);
        }
        return Ok(VerifyingKey {
            kid: hmac_kid(text.as_bytes()),
            decoding: DecodingKey::from_secret(text.as_bytes()),
            jwk: None,
        });
    };
    let public = (kind.public)(text).map_err(|e| {
        format!(
            "{e} for ALGORITHM={} (a key of another algorithm family cannot verify its tokens)",
            alg.as_str()
        )
    })?;
    let kid = public.thumbprint();
    Ok(VerifyingKey {
        kid: kid.clone(),
        decoding: public.decoding(kind).map_err(|e| e.0)?,
        jwk: Some(public.jwk(&kid, alg)),
    })
}

/// Why a retired file cannot serve as an HMAC secret, if it cannot.
fn retired_secret_problem(text: &str, alg: Algorithm) -> Option<String> {
    if text.contains("-----BEGIN") {
        return Some(format!(
            "holds PEM text, not a secret: a PEM key is of another algorithm family than ALGORITHM={}, and a public key used as an HMAC secret lets anyone who has read it sign tokens",
            alg.as_str()
        ));
    }
    if text.len() < MIN_HMAC_KEY_BYTES {
        return Some(format!(
            "is {} bytes; a retired {} secret must be at least {MIN_HMAC_KEY_BYTES} (an empty or short secret lets anyone guess it and sign tokens)",
            text.len(),
            alg.as_str()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_has_one_row_that_agrees_with_its_name() {
        for alg in Algorithm::ALL {
            let rows: Vec<&Row> = ALGORITHMS.iter().filter(|r| r.alg == alg).collect();
            assert_eq!(rows.len(), 1, "{}", alg.as_str());
            let row = rows[0];
            assert_eq!(
                Ok(row.jwt),
                alg.as_str().parse::<J>(),
                "{}: jsonwebtoken's algorithm of the same name",
                alg.as_str()
            );
            assert_eq!(row.pair.is_none(), alg.is_hmac(), "{}", alg.as_str());
        }
        assert_eq!(ALGORITHMS.len(), Algorithm::ALL.len());
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 §3.1's example key and thumbprint.
        let key = PublicKey {
            pem: String::new(),
            members: vec![
                ("e", "AQAB".into()),
                ("kty", "RSA".into()),
                ("n", "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            ],
        };
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generated_keys_load_and_name_themselves() {
        for alg in [
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
            Algorithm::RS256,
        ] {
            let (private, public) = generate(alg).unwrap();
            assert!(
                private.starts_with("-----BEGIN PRIVATE KEY-----"),
                "{}",
                alg.as_str()
            );
            let public = public.unwrap();
            let set = KeySet::load(
                alg,
                private.as_bytes(),
                false,
                Some(public.as_bytes()),
                None,
            )
            .unwrap();
            assert_eq!(set.verifying.len(), 1);
            let jwks = set.jwks();
            assert_eq!(jwks["keys"][0]["kid"], set.kid.as_str());
            assert_eq!(jwks["keys"][0]["alg"], alg.as_str());
            // The public key alone gives the same kid.
            assert_eq!(
                (row(alg).pair.unwrap().public)(&public)
                    .unwrap()
                    .thumbprint(),
                set.kid
            );
        }
        let (secret, public) = generate(Algorithm::HS256).unwrap();
        assert!(public.is_none() && secret.len() >= 64);
        let set = KeySet::load(Algorithm::HS256, secret.as_bytes(), false, None, None).unwrap();
        assert_eq!(
            set.jwks(),
            json!({"keys": []}),
            "secrets are never published"
        );
    }

    #[test]
    fn a_verifying_key_of_another_pair_is_refused() {
        let (private, _) = generate(Algorithm::ES256).unwrap();
        let (_, other_public) = generate(Algorithm::ES256).unwrap();
        let err = KeySet::load(
            Algorithm::ES256,
            private.as_bytes(),
            false,
            Some(other_public.unwrap().as_bytes()),
            None,
        )
        .err()
        .unwrap();
        assert_eq!(err.0, "VERIFYING_KEY is not the public half of SIGNING_KEY");
        let err = KeySet::load(Algorithm::RS256, private.as_bytes(), false, None, None)
            .err()
            .unwrap();
        assert!(
            err.0
                .starts_with("SIGNING_KEY is not a usable RS256 private key"),
            "{}",
            err.0
        );
    }

    #[test]
    fn retired_hmac_secrets_must_be_long_secrets_not_pem() {
        let (rsa_public, _) = generate(Algorithm::RS256)
            .map(|(_, p)| (p.unwrap(), ()))
            .unwrap();
        assert!(retired_secret_problem(&rsa_public, Algorithm::HS256).is_some());
        assert!(retired_secret_problem("", Algorithm::HS256).is_some());
        assert!(retired_secret_problem(&"k".repeat(31), Algorithm::HS512).is_some());
        assert_eq!(
            retired_secret_problem(&"k".repeat(32), Algorithm::HS256),
            None
        );
    }
}
