//! Interop with the real djangorestframework-simplejwt (tests/interop/requirements.txt, in the
//! virtualenv that ./scripts/test creates): its tokens refresh here through both APIs, and ours
//! validate there (AccessToken, RefreshToken, JWTAuthentication), for HS256, HS384, HS512, and for
//! RS256 and ES256 (SimpleJWT given the PEM key pair, VERIFYING_KEY the public half).
//! Ignored by a plain `cargo test`; `./scripts/test` runs them.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::*;

/// A Django-style SECRET_KEY: SimpleJWT signs with its UTF-8 bytes.
const DJANGO_SECRET_KEY: &str = "django-insecure-7#x!f$z@(k)q&^v%r*w+e=t_y-u0i9o8p7=ä";

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-interop/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: ./scripts/test creates it (python3 -m venv .venv-interop && .venv-interop/bin/pip install -r tests/interop/requirements.txt)",
        venv.display()
    );
    venv
}

/// Runs one of the Python drivers in tests/interop/ with one JSON request; its JSON answer.
fn driver(script: &str, request: &Value) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script);
    let out = run_with_stdin(
        Command::new(python()).arg(path),
        request.to_string().as_bytes(),
    );
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs the SimpleJWT driver with one request (see tests/interop/simplejwt_interop.py).
fn simplejwt(request: Value) -> Value {
    driver("simplejwt_interop.py", &request)
}

async fn tokens_travel_both_ways(alg: &str) {
    // HS*: Django's SECRET_KEY is the shared secret. RS*/ES*: a key pair both sides are given.
    let algorithm = refreshd::config::Algorithm::parse(alg).unwrap();
    let (signing_key, verifying_key) = if algorithm.is_hmac() {
        (DJANGO_SECRET_KEY.to_owned(), None)
    } else {
        refreshd::tokens::keys::generate(algorithm).unwrap()
    };
    let app = spawn_app_with(
        Backend::Redis,
        &[("SIGNING_KEY", &signing_key), ("ALGORITHM", alg)],
    )
    .await;
    // A user both sides know under one id, as `refreshd user add --id` mirrors a Django user.
    let id: u32 = 100_000
        + u32::from(uuid::Uuid::new_v4().as_bytes()[0]) * 256
        + u32::from(uuid::Uuid::new_v4().as_bytes()[1]);
    let username = unique("django");
    app.add_user_with_id(&username, "pw-1", Some(&id.to_string()))
        .await;
    let base = json!({
        "key": DJANGO_SECRET_KEY, "alg": alg, "user_id": id, "username": username,
        "signing_key": verifying_key.as_ref().map(|_| signing_key.clone()),
        "verifying_key": verifying_key,
    });

    // SimpleJWT -> refreshd.
    let mut request = base.clone();
    request["mint"] = json!(["str", "int", "str-json", "int-cookie"]);
    let minted = simplejwt(request)["minted"].clone();
    let str_token = minted["str"]["refresh"].as_str().unwrap().to_owned();
    let int_token = minted["int"]["refresh"].as_str().unwrap().to_owned();
    assert_eq!(
        claims_of(&str_token)["user_id"],
        id.to_string(),
        "5.5 writes a string"
    );
    assert_eq!(claims_of(&int_token)["user_id"], id, "5.4 wrote an integer");
    assert!(claims_of(&str_token).get("sid").is_none());

    let by_cookie = app.refresh_with_cookie(&str_token).await;
    assert_detail(&by_cookie, 200, REFRESHED);
    let ours = by_cookie.tokens();
    assert_eq!(claims_of(&ours.refresh)["user_id"], id.to_string());
    let by_json = app
        .post_json("/api/token/refresh/", &json!({"refresh": int_token}))
        .await;
    assert_eq!(by_json.status, 200, "{alg}: {}", by_json.text);
    // And each form through the other API too.
    let str_by_json = app
        .post_json(
            "/api/token/refresh/",
            &json!({"refresh": minted["str-json"]["refresh"]}),
        )
        .await;
    assert_eq!(str_by_json.status, 200, "{alg}: {}", str_by_json.text);
    assert_eq!(
        claims_of(str_by_json.json["refresh"].as_str().unwrap())["user_id"],
        id.to_string()
    );
    let int_by_cookie = app
        .refresh_with_cookie(minted["int-cookie"]["refresh"].as_str().unwrap())
        .await;
    assert_detail(&int_by_cookie, 200, REFRESHED);
    let me = Reply::read(
        app.client
            .get(app.url("/api/auth/me/"))
            .header(
                "authorization",
                format!("Bearer {}", minted["str"]["access"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        me.status, 200,
        "{alg}: SimpleJWT's access token: {}",
        me.text
    );
    assert_eq!(me.json["id"], id.to_string());

    // refreshd -> SimpleJWT: a fresh login's pair, a rotated pair, and one through the JSON API.
    let login = app.login(&username, "pw-1").await.tokens();
    let obtained = app
        .post_json(
            "/api/token/",
            &json!({"username": username, "password": "pw-1"}),
        )
        .await
        .json;
    let tampered = {
        let mut parts: Vec<String> = login.access.split('.').map(str::to_owned).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    let mut request = base.clone();
    request["check"] = json!({
        "login_access": login.access, "login_refresh": login.refresh,
        "rotated_access": ours.access, "rotated_refresh": ours.refresh,
        "json_access": obtained["access"], "json_refresh": obtained["refresh"],
        "tampered": tampered,
    });
    let checked = simplejwt(request)["checked"].clone();
    for name in ["login_access", "rotated_access", "json_access"] {
        let c = &checked[name];
        assert_eq!(c["ok"], true, "{alg} {name}: {c}");
        assert_eq!(c["type"], "access");
        assert_eq!(
            c["authenticated_user_id"], id,
            "{alg} {name}: JWTAuthentication found the user"
        );
    }
    for name in ["login_refresh", "rotated_refresh", "json_refresh"] {
        let c = &checked[name];
        assert_eq!(c["ok"], true, "{alg} {name}: {c}");
        assert_eq!(c["type"], "refresh");
        assert_eq!(c["claims"]["user_id"], id.to_string());
    }
    // The checker does refuse what it should: a broken signature.
    assert_eq!(checked["tampered"]["ok"], false, "{}", checked["tampered"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SimpleJWT virtualenv that ./scripts/test creates"]
async fn simplejwt_interop_hs256() {
    tokens_travel_both_ways("HS256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SimpleJWT virtualenv that ./scripts/test creates"]
async fn simplejwt_interop_hs384() {
    tokens_travel_both_ways("HS384").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SimpleJWT virtualenv that ./scripts/test creates"]
async fn simplejwt_interop_hs512() {
    tokens_travel_both_ways("HS512").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SimpleJWT virtualenv that ./scripts/test creates"]
async fn simplejwt_interop_rs256() {
    tokens_travel_both_ways("RS256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SimpleJWT virtualenv that ./scripts/test creates"]
async fn simplejwt_interop_es256() {
    tokens_travel_both_ways("ES256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SimpleJWT virtualenv that ./scripts/test creates"]
async fn simplejwt_refuses_our_tokens_when_the_key_differs() {
    let app = spawn_app_with(
        Backend::Memory,
        &[("SIGNING_KEY", "a-key-django-does-not-have-0123456789")],
    )
    .await;
    let (_, tokens) = app.logged_in().await;
    let checked = simplejwt(json!({
        "key": DJANGO_SECRET_KEY, "alg": "HS256", "user_id": 1, "username": "x",
        "check": {"access": tokens.access, "refresh": tokens.refresh},
    }))["checked"]
        .clone();
    assert_eq!(checked["access"]["ok"], false, "{checked}");
    assert_eq!(checked["refresh"]["ok"], false, "{checked}");
}

/// Runs tests/interop/django_users.py (Django's make_password and dumpdata) with one request.
fn django(request: Value) -> Value {
    driver("django_users.py", &request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SimpleJWT virtualenv that ./scripts/test creates"]
async fn every_django_hasher_logs_in_and_is_upgraded_on_every_store() {
    use refreshd::domain::{User, UserId, Username};
    let password = "Tr0ub4dor&3 \u{e9}t\u{e9}";
    let made = django(json!({"password": password}));
    for backend in [Backend::Memory, Backend::Redis, Backend::Cluster] {
        let app = spawn_app(backend).await;
        for (hasher, hash) in made["hashes"].as_object().unwrap() {
            let user = User {
                id: UserId::parse(&unique("dj")).unwrap(),
                username: Username::parse(&unique(hasher)).unwrap(),
                password_hash: hash.as_str().unwrap().to_owned(),
                is_active: true,
            };
            app.store.import_user(&user).await.unwrap();
            let name = user.username.as_str();
            assert_detail(&app.login(name, "wrong").await, 401, BAD_CREDENTIALS);
            assert_detail(&app.login(name, password).await, 200, LOGGED_IN);
            let stored = app
                .store
                .user_by_username(&user.username)
                .await
                .unwrap()
                .unwrap()
                .password_hash;
            assert!(
                stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
                "{backend:?} {hasher}: {stored}"
            );
            assert_detail(&app.login(name, password).await, 200, LOGGED_IN);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SimpleJWT virtualenv that ./scripts/test creates"]
async fn a_real_django_projects_dumpdata_imports_and_its_users_log_in() {
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));
    let made = django(json!({"password": "unused", "users": [
        {"username": alice, "password": "alice-pw \u{fc}", "is_active": true},
        {"username": bob, "password": "bob-pw", "is_active": false},
        {"username": carol, "password": null, "is_active": true},
    ]}));
    // Django numbered them 1, 2, 3; other tests share this Redis, so give them ids of their own.
    let mut dump = made["dumpdata"].clone();
    let mut ids = Vec::new();
    for record in dump.as_array_mut().unwrap() {
        let id = format!("{}{}", record["pk"], unique("x"));
        record["pk"] = json!(id);
        ids.push(id);
    }
    let dir = std::env::temp_dir().join(unique("dumpdata"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users.json");
    std::fs::write(&file, dump.to_string()).unwrap();
    let url = shared_redis_url();
    let import = || {
        Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .args(["user", "import", "--django", file.to_str().unwrap()])
            .env_clear()
            .env("REDIS_URL", &url)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let out = import();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim(),
        "imported 3, updated 0, skipped 0",
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("record 3 ({carol}): unusable password")),
        "{stderr}"
    );
    let out = import();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "imported 0, updated 3, skipped 0"
    );

    let app = spawn_app(Backend::Redis).await;
    let login = app.login(&alice, "alice-pw \u{fc}").await;
    assert_detail(&login, 200, LOGGED_IN);
    assert_eq!(
        claims_of(&login.tokens().access)["user_id"],
        ids[0].as_str()
    );
    let stored = app
        .store
        .user_by_username(&refreshd::domain::Username::parse(&alice).unwrap())
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        stored.starts_with("$argon2id$"),
        "rehashed at login: {stored}"
    );
    assert_detail(&app.login(&bob, "bob-pw").await, 401, BAD_CREDENTIALS);
    // An unusable password logs in with nothing, not even its own text.
    let unusable = dump[2]["fields"]["password"].as_str().unwrap();
    assert!(unusable.starts_with('!'));
    for attempt in [unusable, "unused", "x"] {
        assert_detail(&app.login(&carol, attempt).await, 401, BAD_CREDENTIALS);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SimpleJWT virtualenv that ./scripts/test creates"]
async fn simplejwt_custom_claims_survive_a_refresh_here_and_its_sliding_token_verifies() {
    let app = spawn_app_with(
        Backend::Redis,
        &[("SIGNING_KEY", DJANGO_SECRET_KEY), ("ALGORITHM", "HS256")],
    )
    .await;
    let id: u32 = 200_000 + u32::from(uuid::Uuid::new_v4().as_bytes()[0]) * 256;
    let username = unique("django-claims");
    app.add_user_with_id(&username, "pw-1", Some(&id.to_string()))
        .await;
    let custom = json!({"name": "Zo\u{eb}", "email": "zoe@example.com", "roles": ["admin"]});
    let base =
        json!({"key": DJANGO_SECRET_KEY, "alg": "HS256", "user_id": id, "username": username});
    let mut request = base.clone();
    request["mint"] = json!(["str"]);
    request["claims"] = custom.clone();
    request["sliding"] = json!(true);
    let minted = simplejwt(request)["minted"].clone();

    let reply = app
        .post_json(
            "/api/token/refresh/",
            &json!({"refresh": minted["str"]["refresh"]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let verified = app
        .post_json("/api/token/verify/", &json!({"token": minted["sliding"]}))
        .await;
    assert_eq!(
        (verified.status, &verified.json),
        (200, &json!({})),
        "{}",
        verified.text
    );

    let mut request = base.clone();
    request["check"] = json!({"access": reply.json["access"], "refresh": reply.json["refresh"]});
    let checked = simplejwt(request)["checked"].clone();
    for name in ["access", "refresh"] {
        let c = &checked[name];
        assert_eq!(c["ok"], true, "{name}: {c}");
        for (claim, value) in custom.as_object().unwrap() {
            assert_eq!(&c["claims"][claim], value, "{name} lost {claim}: {c}");
        }
    }
    assert_eq!(checked["access"]["authenticated_user_id"], id);
}
