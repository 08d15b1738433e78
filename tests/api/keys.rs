//! Signing keys: every algorithm, kid in every header, the JWKS, rotation through
//! RETIRED_KEYS_DIR, and pinning against forged headers.

use std::path::PathBuf;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use refreshd::config::Algorithm;
use refreshd::tokens::keys::generate;
use serde_json::{Value, json};

use crate::helpers::*;

fn header_of(token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    json!({"alg": format!("{:?}", header.alg), "kid": header.kid, "typ": header.typ})
}

async fn jwks(app: &TestApp) -> (Reply, JwkSet) {
    let reply = Reply::read(
        app.client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let set: JwkSet = serde_json::from_str(&reply.text).unwrap();
    (reply, set)
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);
impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("refreshd-keys"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_asymmetric_algorithm_signs_verifies_and_publishes_its_key() {
    for alg in ["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"] {
        let (private, public) = generate(Algorithm::parse(alg).unwrap()).unwrap();
        let public = public.unwrap();
        let app = spawn_app_with(
            Backend::Memory,
            &[
                ("ALGORITHM", alg),
                ("SIGNING_KEY", &private),
                ("VERIFYING_KEY", &public),
            ],
        )
        .await;
        let (_, tokens) = app.logged_in().await;
        let next = app.refresh_with_cookie(&tokens.refresh).await;
        assert_detail(&next, 200, REFRESHED);
        assert_eq!(
            app.me_with_cookie(&next.tokens().access).await.status,
            200,
            "{alg}"
        );

        let (reply, set) = jwks(&app).await;
        assert_eq!(reply.header("cache-control"), Some("public, max-age=300"));
        assert_eq!(set.keys.len(), 1, "{alg}");
        let header = header_of(&tokens.access);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["typ"], "JWT");
        let kid = header["kid"].as_str().unwrap();
        let jwk: &Jwk = set
            .find(kid)
            .unwrap_or_else(|| panic!("{alg}: kid {kid} is not in the JWKS"));
        // A stateless verifier holding only the JWKS accepts the token.
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation =
            Validation::new(jsonwebtoken::decode_header(&tokens.access).unwrap().alg);
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(&tokens.access, &key, &validation)
            .unwrap_or_else(|e| panic!("{alg}: the JWKS key does not verify: {e}"));
        assert!(
            !reply.text.contains("\"d\""),
            "{alg}: a private member leaked into the JWKS"
        );
    }
}

#[tokio::test]
async fn hmac_tokens_carry_a_kid_and_publish_nothing() {
    let app = spawn_app(Backend::Memory).await;
    let (_, tokens) = app.logged_in().await;
    let kid = header_of(&tokens.refresh)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid.len(), 43, "a base64url SHA-256 thumbprint");
    assert!(!kid.contains(test_key()));
    let (_, set) = jwks(&app).await;
    assert!(set.keys.is_empty());
}

async fn rotation_keeps_everyone_logged_in(alg: &str) {
    let algorithm = Algorithm::parse(alg).unwrap();
    let (old_private, old_public) = generate(algorithm).unwrap();
    let (new_private, _) = generate(algorithm).unwrap();
    // HMAC retires its old secret as is; the others retire the public key.
    let retired = old_public.unwrap_or_else(|| old_private.clone());
    let before = spawn_app_with(
        Backend::Redis,
        &[("ALGORITHM", alg), ("SIGNING_KEY", &old_private)],
    )
    .await;
    let (_, tokens) = before.logged_in().await;
    let old_kid = header_of(&tokens.refresh)["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    // Step 2: the new key signs; the old one only verifies.
    let dir = TempDir::new();
    std::fs::write(dir.0.join("2026-11-old.pem"), &retired).unwrap();
    let after = spawn_app_with(
        Backend::Redis,
        &[
            ("ALGORITHM", alg),
            ("SIGNING_KEY", &new_private),
            ("RETIRED_KEYS_DIR", dir.0.to_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        after.me_with_cookie(&tokens.access).await.status,
        200,
        "{alg}: old access token"
    );
    let next = after.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&next, 200, REFRESHED);
    let new_kid = header_of(&next.tokens().refresh)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, old_kid, "{alg}: new tokens name the new key");
    if !algorithm.is_hmac() {
        let (_, set) = jwks(&after).await;
        assert!(
            set.find(&new_kid).is_some() && set.find(&old_kid).is_some(),
            "{alg}: both keys published"
        );
    }

    // Step 3: once the old key is removed, its tokens stop working.
    let (_, other) = before.logged_in().await;
    let removed = spawn_app_with(
        Backend::Redis,
        &[("ALGORITHM", alg), ("SIGNING_KEY", &new_private)],
    )
    .await;
    assert_detail(
        &removed.refresh_with_cookie(&other.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &removed.me_with_cookie(&other.access).await,
        401,
        INVALID_ACCESS,
    );
    assert_detail(
        &removed.refresh_with_cookie(&next.tokens().refresh).await,
        200,
        REFRESHED,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_an_es256_key_through_retired_keys_logs_nobody_out() {
    rotation_keeps_everyone_logged_in("ES256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_an_hs256_secret_through_retired_keys_logs_nobody_out() {
    rotation_keeps_everyone_logged_in("HS256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_headers_are_refused() {
    let (private, public) = generate(Algorithm::RS256).unwrap();
    let public = public.unwrap();
    let app = spawn_app_with(
        Backend::Memory,
        &[("ALGORITHM", "RS256"), ("SIGNING_KEY", &private)],
    )
    .await;
    let (_, tokens) = app.logged_in().await;
    let claims = claims_of(&tokens.refresh);
    let kid = header_of(&tokens.refresh)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rsa = jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).unwrap();
    let sign = |header: jsonwebtoken::Header, key: &jsonwebtoken::EncodingKey| {
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    };
    let with_kid = |alg, kid: Option<&str>| {
        let mut h = jsonwebtoken::Header::new(alg);
        h.kid = kid.map(str::to_owned);
        h
    };
    let body = tokens.refresh.split('.').nth(1).unwrap().to_owned();
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let cases = [
        ("alg none", format!("{none_header}.{body}.")),
        // Algorithm confusion: HMAC keyed with the public key a verifier might hold.
        (
            "HS256 keyed with the RSA public key",
            sign(
                with_kid(jsonwebtoken::Algorithm::HS256, Some(&kid)),
                &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
            ),
        ),
        (
            "another RSA algorithm",
            sign(with_kid(jsonwebtoken::Algorithm::RS512, Some(&kid)), &rsa),
        ),
        (
            "an unknown kid",
            sign(
                with_kid(jsonwebtoken::Algorithm::RS256, Some("not-a-key-of-ours")),
                &rsa,
            ),
        ),
        ("a kid of the wrong key", {
            let (other, _) = generate(Algorithm::RS256).unwrap();
            sign(
                with_kid(jsonwebtoken::Algorithm::RS256, Some(&kid)),
                &jsonwebtoken::EncodingKey::from_rsa_pem(other.as_bytes()).unwrap(),
            )
        }),
    ];
    for (what, token) in cases {
        let reply = app.refresh_with_body(&token).await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.text);
        assert_detail(&reply, 401, INVALID_REFRESH);
    }
    // The genuine token, even without its kid (as SimpleJWT would send it), still works.
    let without_kid = sign(with_kid(jsonwebtoken::Algorithm::RS256, None), &rsa);
    assert_detail(&app.refresh_with_body(&without_kid).await, 200, REFRESHED);
}

#[tokio::test]
async fn unusable_keys_refuse_to_start_and_say_which_variable() {
    let (es_private, _) = generate(Algorithm::ES256).unwrap();
    let (_, other_public) = generate(Algorithm::ES256).unwrap();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[
                ("ALGORITHM", "RS256"),
                ("SIGNING_KEY", "a plain secret, not a PEM key"),
            ],
            "SIGNING_KEY",
        ),
        (
            &[
                ("ALGORITHM", "ES256"),
                ("SIGNING_KEY", &es_private),
                ("VERIFYING_KEY", other_public.as_deref().unwrap()),
            ],
            "VERIFYING_KEY",
        ),
        (
            &[
                ("ALGORITHM", "ES256"),
                ("SIGNING_KEY", &es_private),
                ("RETIRED_KEYS_DIR", "/nonexistent/refreshd-keys"),
            ],
            "RETIRED_KEYS_DIR",
        ),
    ];
    for (vars, variable) in cases {
        let err = match refreshd::startup::Application::build(settings_with(Backend::Memory, vars))
            .await
        {
            Ok(_) => panic!("started with a bad {variable}"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(variable), "{variable}: {err}");
    }
}

#[test]
fn keys_generate_writes_a_private_file_and_its_public_half() {
    let dir = TempDir::new();
    let out = dir.0.join("signing.pem");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .args([
                "keys",
                "generate",
                "--alg",
                "ES256",
                "--out",
                out.to_str().unwrap(),
            ])
            .env_clear()
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let private = std::fs::read_to_string(&out).unwrap();
    let public = std::fs::read_to_string(dir.0.join("signing.pem.pub")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(
        !run().status.success(),
        "an existing key file is never overwritten"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"))
        .args(["keys", "generate", "--alg", "none"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    // Every kind it makes, printed, is a key the server starts with.
    for alg in ["HS256", "HS512", "RS256", "ES384", "EdDSA"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .args(["keys", "generate", "--alg", alg])
            .env_clear()
            .output()
            .unwrap();
        assert!(out.status.success(), "{alg}");
        let text = String::from_utf8(out.stdout).unwrap();
        let (signing, verifying) = match text.find("-----BEGIN PUBLIC KEY-----") {
            Some(at) => (
                text[..at].trim().to_owned(),
                Some(text[at..].trim().to_owned()),
            ),
            None => (text.trim().to_owned(), None),
        };
        if alg.starts_with("HS") {
            assert!(verifying.is_none(), "{alg}: a secret has no public half");
            assert!(signing.len() >= 32, "{alg}: {} bytes", signing.len());
        } else {
            assert!(signing.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg}");
        }
        let mut check = std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"));
        check
            .arg("check-config")
            .env_clear()
            .env("APP_ENV", "production")
            .env("REDIS_URL", "redis://127.0.0.1:1/")
            .env("COOKIE_SECURE", "true")
            .env("ALGORITHM", alg)
            .env("SIGNING_KEY", &signing)
            .current_dir(&dir.0);
        if let Some(public) = &verifying {
            check.env("VERIFYING_KEY", public);
        }
        let checked = check.output().unwrap();
        assert!(
            checked.status.success(),
            "{alg}: {}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}

/// A foreign refresh token for `user_id`, HMAC-signed with `secret` and no kid, as a forger
/// holding that secret would make it.
fn forged_refresh(secret: &[u8], user_id: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({
            "token_type": "refresh", "exp": now_s() + 600, "iat": now_s(),
            "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": user_id,
        }),
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_keys_that_would_forge_tokens_refuse_to_start_and_name_the_file() {
    let (_, rsa_public) = generate(Algorithm::RS256).unwrap();
    let rsa_public = rsa_public.unwrap();
    let (old_secret, _) = generate(Algorithm::HS256).unwrap();
    let refused = [
        // A public key is published (in a JWKS, in a repository): as an HMAC secret it signs.
        ("2026-10-rs256.pub.pem", rsa_public.as_str()),
        ("2026-11.key", ""),
        ("2026-12.key", "ten-bytes!"),
        ("2027-01.key", "\n"),
    ];
    for (name, content) in refused {
        let dir = TempDir::new();
        std::fs::write(dir.0.join(name), content).unwrap();
        let dir_var = dir.0.to_str().unwrap();
        for env in ["development", "production"] {
            let settings = settings_with(
                Backend::Redis,
                &[("APP_ENV", env), ("RETIRED_KEYS_DIR", dir_var)],
            );
            let err = match refreshd::startup::Application::build(settings).await {
                Ok(_) => panic!("{env}: started with {name} as a retired HS256 secret"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains("RETIRED_KEYS_DIR") && err.contains(name),
                "{env}, {name}: {err}"
            );
        }
    }
    // An ES256 server refuses a retired key of another family, naming it too.
    let (es_private, _) = generate(Algorithm::ES256).unwrap();
    let dir = TempDir::new();
    std::fs::write(dir.0.join("old-rsa.pem"), &rsa_public).unwrap();
    let err = match refreshd::startup::Application::build(settings_with(
        Backend::Memory,
        &[
            ("ALGORITHM", "ES256"),
            ("SIGNING_KEY", &es_private),
            ("RETIRED_KEYS_DIR", dir.0.to_str().unwrap()),
        ],
    ))
    .await
    {
        Ok(_) => panic!("started with an RSA key retired on an ES256 server"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("old-rsa.pem"), "{err}");

    // Dotfiles are not keys: an empty .gitkeep beside a real retired secret is ignored, so a
    // token signed with the empty secret is refused while the retired secret's tokens still work.
    let dir = TempDir::new();
    std::fs::write(dir.0.join(".gitkeep"), "").unwrap();
    std::fs::write(dir.0.join(".old.swp"), "short").unwrap();
    std::fs::write(dir.0.join("2026-11.key"), format!("{old_secret}\n")).unwrap();
    let app = spawn_app_with(
        Backend::Memory,
        &[("RETIRED_KEYS_DIR", dir.0.to_str().unwrap())],
    )
    .await;
    let user = app.add_user(&unique("user"), "pw-1234").await;
    for forger in [&b""[..], b"short"] {
        assert_detail(
            &app.refresh_with_body(&forged_refresh(forger, user.id.as_str()))
                .await,
            401,
            INVALID_REFRESH,
        );
    }
    assert_detail(
        &app.refresh_with_body(&forged_refresh(old_secret.as_bytes(), user.id.as_str()))
            .await,
        200,
        REFRESHED,
    );
}

/// The same ES256 token with its signature's s replaced by n − s: ECDSA's malleable twin,
/// valid for the same key and payload.
fn malleable_twin(token: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    // The order of the P-256 group.
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut sig = B64.decode(signature).unwrap();
    assert_eq!(sig.len(), 64, "r || s");
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = N[i] as i16 - sig[32 + i] as i16 - borrow;
        borrow = (d < 0) as i16;
        sig[32 + i] = d.rem_euclid(256) as u8;
    }
    format!("{signed}.{}", B64.encode(sig))
}

/// ECDSA signatures are malleable: (r, s) and (r, n − s) both verify. They are accepted here
/// (SimpleJWT signs through OpenSSL, which does not make s low, so refusing high-s would refuse
/// half of its ES256 tokens, and half of those issued here before), which is harmless because
/// nothing is keyed by a token's text or signature: the blacklist, sessions and reuse detection
/// go by jti and sid, which the twin shares. The twin is the same token to every check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malleable_es256_twin_is_the_same_token_to_every_check() {
    let (private, _) = generate(Algorithm::ES256).unwrap();
    let app = spawn_app_with(
        Backend::Redis,
        &[
            ("ALGORITHM", "ES256"),
            ("SIGNING_KEY", &private),
            ("REFRESH_TOKEN_REUSE_INTERVAL", "0"),
        ],
    )
    .await;
    // A retired token's twin is reuse, exactly as the token itself would be: the whole
    // session ends, its newest token included.
    let (_, tokens) = app.logged_in().await;
    let twin = malleable_twin(&tokens.refresh);
    assert_ne!(twin, tokens.refresh);
    let verify = app
        .post_json("/api/token/verify/", &json!({ "token": twin }))
        .await;
    assert_eq!(verify.status, 200, "the twin verifies: {}", verify.text);
    let successor = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&successor, 200, REFRESHED);
    // Presenting the successor retires the token (and so its twin).
    let newest = app.refresh_with_cookie(&successor.tokens().refresh).await;
    assert_detail(&newest, 200, REFRESHED);
    assert_detail(&app.refresh_with_cookie(&twin).await, 401, INVALID_REFRESH);
    assert_detail(
        &app.refresh_with_cookie(&newest.tokens().refresh).await,
        401,
        INVALID_REFRESH,
    );
    // Logged out, neither the refresh token's twin nor the access token's twin works.
    let (_, tokens) = app.logged_in().await;
    assert_detail(
        &app.logout_with_cookie(&tokens.refresh).await,
        200,
        LOGGED_OUT,
    );
    assert_detail(
        &app.refresh_with_cookie(&malleable_twin(&tokens.refresh))
            .await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.me_with_cookie(&malleable_twin(&tokens.access)).await,
        401,
        INVALID_ACCESS,
    );
    // Two twins raced against each other rotate once, as two copies of one token do.
    let app = spawn_app_with(
        Backend::Redis,
        &[("ALGORITHM", "ES256"), ("SIGNING_KEY", &private)],
    )
    .await;
    let (_, tokens) = app.logged_in().await;
    let twin = malleable_twin(&tokens.refresh);
    let (a, b) = futures_util::join!(
        app.refresh_with_body(&tokens.refresh),
        app.refresh_with_body(&twin)
    );
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.text, b.text);
    assert_eq!(a.tokens().refresh, b.tokens().refresh, "one successor");
}
