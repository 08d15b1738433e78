//! SimpleJWT's own rules, restated over HTTP: a refresh copies the refresh token's custom claims,
//! verify takes a token of any type, a token is expired from the second of its `exp` on, and
//! times that are not integers are refused.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    a_refresh_copies_custom_claims_and_every_rotation_keeps_them,
    verify_accepts_a_token_of_any_type_whose_signature_and_expiry_hold,
    a_token_is_expired_from_the_second_of_its_exp,
    times_that_are_not_integers_are_refused_never_a_500,
);

/// A Django app's refresh token with the claims a custom TokenObtainPairSerializer adds.
fn django_refresh(user_id: &str, extra: Value) -> String {
    let mut claims = json!({
        "token_type": "refresh", "exp": now_s() + 3600, "iat": now_s(),
        "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": user_id,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    sign_with(test_key(), Algorithm::HS256, &claims)
}

#[track_caller]
fn assert_custom_claims(token: &str, expected: &Value, token_type: &str) {
    let c = claims_of(token);
    assert_eq!(c["token_type"], token_type);
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&c[k], v, "{token_type} token lost {k}: {c}");
    }
}

async fn a_refresh_copies_custom_claims_and_every_rotation_keeps_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = unique("9");
    app.add_user_with_id(&unique("django"), "pw", Some(&id))
        .await;
    let custom = json!({
        "name": "Zoë O'Brien", "email": "zoe@example.com", "roles": ["admin", "staff"],
        "tenant": {"id": 7, "plan": "pro"},
    });
    let foreign = django_refresh(&id, custom.clone());

    // The JSON API: the access token and the pending successor carry them.
    let first = app
        .post_json("/api/token/refresh/", &json!({"refresh": foreign}))
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let access = first.json["access"].as_str().unwrap();
    let pending = first.json["refresh"].as_str().unwrap().to_owned();
    assert_custom_claims(access, &custom, "access");
    assert_custom_claims(&pending, &custom, "refresh");
    assert_ne!(claims_of(access)["jti"], claims_of(&pending)["jti"]);

    // Asked again (a lost response), through either API: the very same successor, claims and all.
    let again = app
        .post_json("/api/token/refresh/", &json!({"refresh": foreign}))
        .await;
    assert_eq!(again.json["refresh"], pending.as_str(), "{}", again.text);
    assert_custom_claims(again.json["access"].as_str().unwrap(), &custom, "access");
    let by_cookie = app.refresh_with_cookie(&foreign).await;
    assert_detail(&by_cookie, 200, REFRESHED);
    assert_eq!(by_cookie.tokens().refresh, pending);
    assert_custom_claims(&by_cookie.tokens().access, &custom, "access");

    // The successor presented: the next one keeps them too.
    let promoted = app.refresh_with_cookie(&pending).await.tokens();
    assert_custom_claims(&promoted.refresh, &custom, "refresh");
    assert_custom_claims(&promoted.access, &custom, "access");

    // The retired parent, within its reuse interval: forgiven with the newest token, the same
    // string again.
    let forgiven = app
        .post_json("/api/token/refresh/", &json!({"refresh": foreign}))
        .await;
    assert_eq!(forgiven.status, 200, "{}", forgiven.text);
    assert_eq!(forgiven.json["refresh"], promoted.refresh.as_str());
    assert_custom_claims(forgiven.json["access"].as_str().unwrap(), &custom, "access");

    // Every access token keeps working here; the claims we write are never doubled.
    assert_eq!(app.me_with_cookie(&promoted.access).await.status, 200);
    let c = claims_of(&promoted.refresh);
    assert_eq!(c["user_id"], id.as_str());
    assert_eq!(c["sid"], claims_of(&pending)["sid"]);

    // A login's tokens carry none of a family's claims.
    let name = unique("plain");
    app.add_user(&name, "pw").await;
    let own = app.login(&name, "pw").await.tokens();
    assert!(claims_of(&own.refresh).get("email").is_none());
    let rotated = app.refresh_with_cookie(&own.refresh).await.tokens();
    let keys: Vec<String> = claims_of(&rotated.refresh)
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["exp", "iat", "jti", "sid", "token_type", "user_id"]);
}

async fn verify_accepts_a_token_of_any_type_whose_signature_and_expiry_hold(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = unique("9");
    let user = app
        .add_user_with_id(&unique("django"), "pw", Some(&id))
        .await;
    let base = |token_type: Option<&str>, exp: u64| {
        let mut c = json!({
            "exp": exp, "iat": now_s(), "jti": uuid::Uuid::new_v4().simple().to_string(),
            "user_id": id, "refresh_exp": now_s() + 86_400,
        });
        if let Some(t) = token_type {
            c["token_type"] = json!(t);
        }
        c
    };
    let verify = |token: String| {
        let app = &app;
        async move {
            app.post_json("/api/token/verify/", &json!({"token": token}))
                .await
        }
    };
    let ok = json!({});
    // SimpleJWT's sliding token, a type nobody here knows, none at all, and one naming no user.
    for (what, claims) in [
        ("sliding", base(Some("sliding"), now_s() + 300)),
        ("another type", base(Some("id"), now_s() + 300)),
        ("no type", base(None, now_s() + 300)),
        (
            "no user",
            json!({"exp": now_s() + 300, "token_type": "sliding"}),
        ),
    ] {
        let reply = verify(sign_with(test_key(), Algorithm::HS256, &claims)).await;
        assert_eq!(
            (reply.status, &reply.json),
            (200, &ok),
            "{what}: {}",
            reply.text
        );
    }
    // Expired, or signed with another key: refused like any token.
    let not_valid = json!({"detail": TOKEN_NOT_VALID, "code": TOKEN_NOT_VALID_CODE});
    for token in [
        sign_with(
            test_key(),
            Algorithm::HS256,
            &base(Some("sliding"), now_s() - 1),
        ),
        sign_with(
            "another-key-another-key-another-key",
            Algorithm::HS256,
            &base(Some("sliding"), now_s() + 300),
        ),
    ] {
        let reply = verify(token).await;
        assert_eq!(
            (reply.status, &reply.json),
            (401, &not_valid),
            "{}",
            reply.text
        );
    }
    // Its user deactivated: the invalid-user answer, as for an access or refresh token.
    let sliding = sign_with(
        test_key(),
        Algorithm::HS256,
        &base(Some("sliding"), now_s() + 300),
    );
    app.store
        .set_user_active(&user.username, false)
        .await
        .unwrap();
    let reply = verify(sliding).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.json, json!({"detail": NO_ACTIVE_ACCOUNT_FOR_TOKEN}));
}

async fn a_token_is_expired_from_the_second_of_its_exp(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = unique("9");
    app.add_user_with_id(&unique("django"), "pw", Some(&id))
        .await;
    let token = |token_type: &str, exp: u64| {
        sign_with(
            test_key(),
            Algorithm::HS256,
            &json!({"token_type": token_type, "exp": exp, "iat": now_s(),
                    "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": id}),
        )
    };
    // During the second of its exp (or any later one), refused on every route.
    let now = now_s();
    assert_detail(
        &app.refresh_with_body(&token("refresh", now)).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.me_with_cookie(&token("access", now)).await,
        401,
        INVALID_ACCESS,
    );
    let reply = app
        .post_json(
            "/api/token/verify/",
            &json!({"token": token("access", now)}),
        )
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    // A second before it, accepted.
    assert_detail(
        &app.refresh_with_body(&token("refresh", now_s() + 5)).await,
        200,
        REFRESHED,
    );
    // LEEWAY moves the boundary by exactly its length.
    let lenient = spawn_app_with(backend, &[("LEEWAY", "30")]).await;
    if backend == Backend::Memory {
        lenient
            .add_user_with_id(&unique("django"), "pw", Some(&id))
            .await;
    }
    assert_detail(
        &lenient.me_with_cookie(&token("access", now_s() - 30)).await,
        401,
        INVALID_ACCESS,
    );
    assert_eq!(
        lenient
            .me_with_cookie(&token("access", now_s() - 20))
            .await
            .status,
        200
    );
}

async fn times_that_are_not_integers_are_refused_never_a_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = unique("9");
    app.add_user_with_id(&unique("django"), "pw", Some(&id))
        .await;
    let later = now_s() + 3600;
    for (what, times) in [
        (
            "fractional exp",
            json!({"exp": later as f64 + 0.5, "iat": now_s()}),
        ),
        (
            "exp written as a float",
            json!({"exp": later as f64, "iat": now_s()}),
        ),
        (
            "fractional iat",
            json!({"exp": later, "iat": now_s() as f64 + 0.25}),
        ),
        ("iat a string", json!({"exp": later, "iat": "now"})),
        ("negative iat", json!({"exp": later, "iat": -1})),
        (
            "fractional nbf",
            json!({"exp": later, "iat": now_s(), "nbf": 1.5}),
        ),
    ] {
        for token_type in ["refresh", "access", "sliding"] {
            let mut claims = json!({
                "token_type": token_type, "user_id": id,
                "jti": uuid::Uuid::new_v4().simple().to_string(),
            });
            for (k, v) in times.as_object().unwrap() {
                claims[k] = v.clone();
            }
            let token = sign_with(test_key(), Algorithm::HS256, &claims);
            let replies = [
                app.refresh_with_body(&token).await,
                app.me_with_cookie(&token).await,
                app.post_json("/api/token/verify/", &json!({"token": token}))
                    .await,
                app.post_json("/api/token/refresh/", &json!({"refresh": token}))
                    .await,
            ];
            for reply in replies {
                assert_eq!(reply.status, 401, "{what} {token_type}: {}", reply.text);
            }
        }
    }
}
