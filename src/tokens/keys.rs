//! Key material: loading SIGNING_KEY, VERIFYING_KEY and RETIRED_KEYS_DIR for every supported
//! algorithm, key ids (RFC 7638 thumbprints), the public JWKS, and generating fresh keys.
//! Nothing here knows about HTTP or the store.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
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

pub fn jwt_algorithm(alg: Algorithm) -> jsonwebtoken::Algorithm {
    use jsonwebtoken::Algorithm as J;
    match alg {
        Algorithm::HS256 => J::HS256,
        Algorithm::HS384 => J::HS384,
        Algorithm::HS512 => J::HS512,
        Algorithm::RS256 => J::RS256,
        Algorithm::RS384 => J::RS384,
        Algorithm::RS512 => J::RS512,
        Algorithm::ES256 => J::ES256,
        Algorithm::ES384 => J::ES384,
        Algorithm::EdDSA => J::EdDSA,
    }
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

    fn decoding(&self, alg: Algorithm) -> Result<DecodingKey, KeyError> {
        let pem = self.pem.as_bytes();
        let key = match alg {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
                DecodingKey::from_rsa_pem(pem)
            }
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            _ => unreachable!("HMAC keys have no public half"),
        };
        key.map_err(|e| KeyError(format!("unusable public key: {e}")))
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

fn ec_public(point: &[u8], crv: &str, pem: String) -> PublicKey {
    // An uncompressed SEC1 point: 0x04 || x || y.
    let half = (point.len() - 1) / 2;
    PublicKey {
        pem,
        members: vec![
            ("crv", crv.into()),
            ("kty", "EC".into()),
            ("x", B64.encode(&point[1..1 + half])),
            ("y", B64.encode(&point[1 + half..])),
        ],
    }
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

/// The public key in a PEM, which may hold a public key or (for convenience) a private one.
fn public_from_pem(pem: &str, alg: Algorithm) -> Result<PublicKey, KeyError> {
    let bad = |what: &str| KeyError(format!("not a PEM {what} key"));
    match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            let key = rsa::RsaPublicKey::from_public_key_pem(pem)
                .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
                .or_else(|_| private_rsa(pem).map(|k| k.to_public_key()))
                .map_err(|_| bad("RSA"))?;
            rsa_public(&key)
        }
        Algorithm::ES256 => {
            let key = p256::PublicKey::from_public_key_pem(pem)
                .or_else(|_| p256::SecretKey::from_pkcs8_pem(pem).map(|k| k.public_key()))
                .or_else(|_| p256::SecretKey::from_sec1_pem(pem).map(|k| k.public_key()))
                .map_err(|_| bad("P-256"))?;
            let pem = key
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| KeyError(e.to_string()))?;
            Ok(ec_public(key.to_sec1_bytes().as_ref(), "P-256", pem))
        }
        Algorithm::ES384 => {
            let key = p384::PublicKey::from_public_key_pem(pem)
                .or_else(|_| p384::SecretKey::from_pkcs8_pem(pem).map(|k| k.public_key()))
                .or_else(|_| p384::SecretKey::from_sec1_pem(pem).map(|k| k.public_key()))
                .map_err(|_| bad("P-384"))?;
            let pem = key
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| KeyError(e.to_string()))?;
            Ok(ec_public(key.to_sec1_bytes().as_ref(), "P-384", pem))
        }
        Algorithm::EdDSA => {
            let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
                .or_else(|_| {
                    ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map(|k| k.verifying_key())
                })
                .map_err(|_| bad("Ed25519"))?;
            ed_public(&key)
        }
        _ => unreachable!("HMAC keys have no public half"),
    }
}

fn private_rsa(pem: &str) -> Result<rsa::RsaPrivateKey, KeyError> {
    rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| KeyError("not a PEM RSA private key".into()))
}

/// The signing key, in PKCS#8 PEM (what jsonwebtoken reads for EC and EdDSA).
fn encoding_from_pem(pem: &str, alg: Algorithm) -> Result<EncodingKey, KeyError> {
    let bad = |e: String| {
        KeyError(format!(
            "SIGNING_KEY is not a usable {} private key: {e}",
            alg.as_str()
        ))
    };
    match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            private_rsa(pem).map_err(|e| bad(e.0))?;
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| bad(e.to_string()))
        }
        Algorithm::ES256 => {
            let key = p256::SecretKey::from_pkcs8_pem(pem)
                .or_else(|_| p256::SecretKey::from_sec1_pem(pem))
                .map_err(|e| bad(e.to_string()))?;
            let pkcs8 = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| bad(e.to_string()))?;
            EncodingKey::from_ec_pem(pkcs8.as_bytes()).map_err(|e| bad(e.to_string()))
        }
        Algorithm::ES384 => {
            let key = p384::SecretKey::from_pkcs8_pem(pem)
                .or_else(|_| p384::SecretKey::from_sec1_pem(pem))
                .map_err(|e| bad(e.to_string()))?;
            let pkcs8 = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| bad(e.to_string()))?;
            EncodingKey::from_ec_pem(pkcs8.as_bytes()).map_err(|e| bad(e.to_string()))
        }
        Algorithm::EdDSA => {
            ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| bad(e.to_string()))?;
            EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| bad(e.to_string()))
        }
        _ => unreachable!("HMAC keys are secrets"),
    }
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
    use rand::rngs::OsRng;
    let err = |e: &dyn std::fmt::Display| KeyError(e.to_string());
    let (private, public) = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            use rand::RngCore;
            let mut secret = [0u8; 64];
            OsRng.fill_bytes(&mut secret);
            return Ok((B64.encode(secret), None));
        }
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| err(&e))?;
            pem_pair(&key, &key.to_public_key())?
        }
        Algorithm::ES256 => {
            let key = p256::SecretKey::random(&mut OsRng);
            pem_pair(&key, &key.public_key())?
        }
        Algorithm::ES384 => {
            let key = p384::SecretKey::random(&mut OsRng);
            pem_pair(&key, &key.public_key())?
        }
        Algorithm::EdDSA => {
            let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
            pem_pair(&key, &key.verifying_key())?
        }
    };
    Ok((private, Some(public)))
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
        let algorithm = jwt_algorithm(alg);
        let mut verifying = Vec::new();
        let (encoding, kid) = if alg.is_hmac() {
            let kid = hmac_kid(signing_key);
            verifying.push(VerifyingKey {
                kid: kid.clone(),
                decoding: DecodingKey::from_secret(signing_key),
                jwk: None,
            });
            (EncodingKey::from_secret(signing_key), kid)
        } else {
            let private = if generated {
                generate(alg)?.0
            } else {
                String::from_utf8(signing_key.to_vec())
                    .map_err(|_| KeyError("SIGNING_KEY is not PEM text".into()))?
            };
            let encoding = encoding_from_pem(&private, alg)?;
            let derived = public_from_pem(&private, alg)
                .map_err(|e| KeyError(format!("SIGNING_KEY: {e}")))?;
            let public = match verifying_key {
                Some(pem) => {
                    let pem = std::str::from_utf8(pem)
                        .map_err(|_| KeyError("VERIFYING_KEY is not PEM text".into()))?;
                    let given = public_from_pem(pem, alg)
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
                decoding: public.decoding(alg)?,
                jwk: Some(public.jwk(&kid, alg)),
            });
            (encoding, kid)
        };
        if let Some(dir) = retired_dir {
            verifying.extend(load_retired(dir, alg)?);
        }
        Ok(KeySet {
            algorithm,
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
    if alg.is_hmac() {
        if let Some(why) = retired_secret_problem(text, alg) {
            return Err(why);
        }
        return Ok(VerifyingKey {
            kid: hmac_kid(text.as_bytes()),
            decoding: DecodingKey::from_secret(text.as_bytes()),
            jwk: None,
        });
    }
    let public = public_from_pem(text, alg).map_err(|e| {
        format!(
            "{e} for ALGORITHM={} (a key of another algorithm family cannot verify its tokens)",
            alg.as_str()
        )
    })?;
    let kid = public.thumbprint();
    Ok(VerifyingKey {
        kid: kid.clone(),
        decoding: public.decoding(alg).map_err(|e| e.0)?,
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
            assert_eq!(public_from_pem(&public, alg).unwrap().thumbprint(), set.kid);
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
