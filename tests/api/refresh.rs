//! POST /api/auth/token/refresh/: extraction, normalisation, validation, cookies, CSRF.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    refresh_by_cookie_answers_only_the_detail_and_sets_new_cookies,
    refresh_by_body_works_for_cookieless_clients,
    every_spelling_of_a_bearer_token_is_accepted,
    the_cookie_is_preferred_over_the_body,
    the_body_is_optional_when_the_cookie_is_there,
    no_token_is_401_not_provided_and_expires_the_cookies,
    invalid_tokens_are_401_and_expire_the_cookies,
    an_expired_refresh_token_is_refused,
    the_presented_token_is_blacklisted_after_rotation,
    a_deactivated_user_cannot_refresh,
    a_token_for_a_user_that_does_not_exist_is_invalid_token_user,
    an_oversized_body_is_413_and_leaves_the_cookies_alone,
    a_cross_site_cookie_refresh_is_refused_and_consumes_nothing,
    allowed_origins_and_body_tokens_pass_the_csrf_check,
    with_rotation_off_the_same_refresh_token_comes_back_with_its_remaining_life,
    a_simplejwt_token_without_sid_refreshes_and_starts_a_session,
    the_session_max_lifetime_caps_rotation,
    cookie_attributes_follow_the_settings,
    time_claims_that_are_not_integers_or_lie_past_9999_are_401_never_500,
    a_token_is_expired_from_the_second_of_its_exp,
);

async fn refresh_by_cookie_answers_only_the_detail_and_sets_new_cookies(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, tokens) = app.logged_in().await;
    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 200, REFRESHED);
    assert_eq!(reply.text, r#"{"detail":"Token refreshed."}"#);
    let fresh = reply.tokens();
    assert_ne!(fresh.refresh, tokens.refresh, "rotated");
    assert_ne!(fresh.access, tokens.access);
    let access = reply.cookie("access_token").unwrap();
    assert_eq!(
        access.raw,
        format!(
            "access_token={}; HttpOnly; Path=/; Max-Age=900; SameSite=Lax",
            access.value
        )
    );
    let refresh = reply.cookie("refresh_token").unwrap();
    assert_eq!(
        refresh.raw,
        format!(
            "refresh_token={}; HttpOnly; Path=/; Max-Age=2592000; SameSite=Lax",
            refresh.value
        )
    );
    let (old, new) = (claims_of(&tokens.refresh), claims_of(&fresh.refresh));
    assert_eq!(new["sid"], old["sid"], "same session");
    assert_eq!(new["user_id"], user.id.as_str());
    assert_ne!(new["jti"], old["jti"]);
    // The new pair works.
    assert_eq!(app.me_with_cookie(&fresh.access).await.status, 200);
    assert_detail(
        &app.refresh_with_cookie(&fresh.refresh).await,
        200,
        REFRESHED,
    );
}

async fn refresh_by_body_works_for_cookieless_clients(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, tokens) = app.logged_in().await;
    let reply = app.refresh_with_body(&tokens.refresh).await;
    assert_detail(&reply, 200, REFRESHED);
    assert_ne!(reply.tokens().refresh, tokens.refresh);
}

async fn every_spelling_of_a_bearer_token_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, tokens) = app.logged_in().await;
    let mut current = tokens.refresh;
    let cookie_forms: [fn(&str) -> String; 8] = [
        |t| format!("Bearer {t}"),
        |t| format!("bearer    {t}"),
        |t| format!("\"Bearer {t}\""),
        |t| format!("Bearer%20{t}"),
        |t| format!("\"{t}\""),
        |t| format!("bEaReR\t{t}"),
        |t| format!("\"BEARER%20{t}\""),
        |t| format!("Bearer%20%20%20{t}"),
    ];
    for form in cookie_forms {
        let value = form(&current);
        let reply = app
            .post_with_cookie(
                "/api/auth/token/refresh/",
                &format!("refresh_token={value}"),
            )
            .await;
        assert_detail(&reply, 200, REFRESHED);
        current = reply.tokens().refresh;
    }
    let reply = app.refresh_with_body(&format!("Bearer {current}")).await;
    assert_detail(&reply, 200, REFRESHED);
    current = reply.tokens().refresh;
    let reply = app.refresh_with_body(&format!("BEARER\t {current}")).await;
    assert_detail(&reply, 200, REFRESHED);
}

async fn the_cookie_is_preferred_over_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, a) = app.logged_in().await;
    let (_, b) = app.logged_in().await;
    let reply = Reply::read(
        app.client
            .post(app.url("/api/auth/token/refresh/"))
            .header("cookie", format!("refresh_token={}", a.refresh))
            .json(&json!({"refresh": "garbage"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 200, REFRESHED);
    assert_eq!(
        claims_of(&reply.tokens().refresh)["sid"],
        claims_of(&a.refresh)["sid"]
    );
    let reply = Reply::read(
        app.client
            .post(app.url("/api/auth/token/refresh/"))
            .header("cookie", "refresh_token=garbage")
            .json(&json!({"refresh": b.refresh}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 401, INVALID_REFRESH);
}

async fn the_body_is_optional_when_the_cookie_is_there(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, tokens) = app.logged_in().await;
    let mut current = tokens.refresh;
    for (content_type, body) in [
        ("application/json", ""),
        ("application/json", "{}"),
        ("application/json", "[]"),
        ("application/json", r#"{"refresh": 5}"#),
        ("application/json", "{not json"),
        ("text/plain", "hello"),
        ("application/x-www-form-urlencoded", "refresh=abc"),
    ] {
        let reply = Reply::read(
            app.client
                .post(app.url("/api/auth/token/refresh/"))
                .header("cookie", format!("refresh_token={current}"))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_detail(&reply, 200, REFRESHED);
        current = reply.tokens().refresh;
    }
}

async fn no_token_is_401_not_provided_and_expires_the_cookies(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.url("/api/auth/token/refresh/");
    let requests = [
        app.client.post(&url),
        app.client.post(&url).json(&json!({})),
        app.client.post(&url).json(&json!({"refresh": 123})),
        app.client.post(&url).json(&json!({"refresh": null})),
        app.client.post(&url).json(&json!({"refresh": ""})),
        app.client.post(&url).json(&json!({"token": "abc"})),
        app.client.post(&url).body("not json at all"),
        app.client.post(&url).header("cookie", "refresh_token="),
        app.client
            .post(&url)
            .header("cookie", "refresh_token=Bearer%20"),
        app.client
            .post(&url)
            .header("cookie", "access_token=abc; other=1"),
    ];
    for request in requests {
        let reply = Reply::read(request.send().await.unwrap()).await;
        assert_detail(&reply, 401, REFRESH_NOT_PROVIDED);
        assert_cookies_expired(&reply);
    }
}

async fn invalid_tokens_are_401_and_expire_the_cookies(backend: Backend) {
    let app = spawn_app_with(backend, &[("ISSUER", "refreshd-test")]).await;
    let (user, tokens) = app.logged_in().await;
    let good = claims_of(&tokens.refresh);
    let with = |changes: serde_json::Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let key = test_key();
    let hs = Algorithm::HS256;
    let other = app.add_user(&unique("other"), "pw").await;
    let header_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let body_part = tokens.refresh.split('.').nth(1).unwrap().to_owned();
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-jwt".into()),
        ("three dots", "a.b.c".into()),
        (
            "another key",
            sign_with("another-key-another-key-another-key", hs, &good),
        ),
        ("another algorithm", sign_with(key, Algorithm::HS512, &good)),
        ("alg none", format!("{header_none}.{body_part}.")),
        ("tampered payload", {
            let mut parts: Vec<&str> = tokens.refresh.split('.').collect();
            let forged = tokens.access.split('.').nth(1).unwrap();
            parts[1] = forged;
            parts.join(".")
        }),
        ("an access token", tokens.access.clone()),
        (
            "token_type missing",
            sign_with(key, hs, &with(json!({"token_type": null}))),
        ),
        (
            "token_type unknown",
            sign_with(key, hs, &with(json!({"token_type": "id"}))),
        ),
        (
            "jti missing",
            sign_with(key, hs, &with(json!({"jti": null}))),
        ),
        (
            "user_id missing",
            sign_with(key, hs, &with(json!({"user_id": null}))),
        ),
        (
            "user_id an object",
            sign_with(key, hs, &with(json!({"user_id": {"id": 1}}))),
        ),
        (
            "exp missing",
            sign_with(key, hs, &with(json!({"exp": null}))),
        ),
        (
            "exp a string",
            sign_with(key, hs, &with(json!({"exp": "tomorrow"}))),
        ),
        (
            "not yet valid",
            sign_with(key, hs, &with(json!({"nbf": now_s() + 3600}))),
        ),
        (
            "wrong issuer",
            sign_with(key, hs, &with(json!({"iss": "someone-else"}))),
        ),
        ("no issuer", sign_with(key, hs, &with(json!({"iss": null})))),
        (
            "an audience nobody asked for",
            sign_with(key, hs, &with(json!({"aud": "other"}))),
        ),
        (
            "unknown session",
            sign_with(
                key,
                hs,
                &with(json!({"sid": "0123456789abcdef0123456789abcdef"})),
            ),
        ),
        (
            "a hostile sid",
            sign_with(key, hs, &with(json!({"sid": "x}:bl:*"}))),
        ),
        (
            "a hostile user id",
            sign_with(key, hs, &with(json!({"user_id": "1}:s:*"}))),
        ),
        (
            "another user's session",
            sign_with(key, hs, &with(json!({"user_id": other.id.as_str()}))),
        ),
        ("huge", "a".repeat(10_000)),
    ];
    assert_eq!(good["user_id"], user.id.as_str());
    for (what, token) in cases {
        for reply in [
            app.refresh_with_cookie(&token).await,
            app.refresh_with_body(&token).await,
        ] {
            assert_eq!(reply.status, 401, "{what}: {}", reply.text);
            assert_detail(&reply, 401, INVALID_REFRESH);
            assert_cookies_expired(&reply);
        }
    }
    // None of that harmed the real session.
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        200,
        REFRESHED,
    );
}

async fn an_expired_refresh_token_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_LIFETIME", "1s")]).await;
    let (_, tokens) = app.logged_in().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 401, INVALID_REFRESH);
    assert_cookies_expired(&reply);
}

async fn the_presented_token_is_blacklisted_after_rotation(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "0")]).await;
    let (_, tokens) = app.logged_in().await;
    let pending = app.refresh_with_cookie(&tokens.refresh).await;
    assert_eq!(pending.status, 200);
    // Presenting the successor retires its parent.
    let successor = pending.tokens().refresh;
    assert_eq!(app.refresh_with_cookie(&successor).await.status, 200);
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.refresh_with_body(&tokens.refresh).await,
        401,
        INVALID_REFRESH,
    );
    if let Some(url) = &app.redis_url {
        // What refuses it, the session's record, expires by itself when the token it blocks
        // would have (with the seconds its successors were issued later), not before, and not
        // never.
        let c = claims_of(&tokens.refresh);
        let mut conn = redis_conn(url).await;
        let (record, pttl) = crate::redis_layout::record_of(&mut conn, &tokens.refresh).await;
        let record = record.expect("a record");
        let exp_ms = c["exp"].as_u64().unwrap() * 1000;
        assert!(
            record.keep_ms >= exp_ms && record.keep_ms - exp_ms < 5_000,
            "kept until {} for a token expiring at {exp_ms}",
            record.keep_ms
        );
        let remaining_ms = (c["exp"].as_u64().unwrap() - now_s()) as i64 * 1000;
        assert!(
            pttl > 0 && (pttl - remaining_ms).abs() < 5_000,
            "PTTL {pttl} vs {remaining_ms}"
        );
    }
}

async fn a_deactivated_user_cannot_refresh(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, tokens) = app.logged_in().await;
    app.store
        .set_user_active(&user.username, false)
        .await
        .unwrap();
    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 401, INVALID_TOKEN_USER);
    assert_cookies_expired(&reply);
    assert_detail(
        &app.me_with_cookie(&tokens.access).await,
        401,
        INVALID_ACCESS,
    );
    // Deactivation ended the session for good: re-activated, the old token is simply invalid.
    app.store
        .set_user_active(&user.username, true)
        .await
        .unwrap();
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.me_with_cookie(&tokens.access).await,
        401,
        INVALID_ACCESS,
    );
}

async fn a_token_for_a_user_that_does_not_exist_is_invalid_token_user(backend: Backend) {
    let app = spawn_app(backend).await;
    // Minted by another service with the shared key, for an id this server has never seen.
    let token = sign_with(
        test_key(),
        Algorithm::HS256,
        &json!({"token_type": "refresh", "exp": now_s() + 600, "iat": now_s(),
                "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": 987654321}),
    );
    let reply = app.refresh_with_body(&token).await;
    assert_detail(&reply, 401, INVALID_TOKEN_USER);
    assert_cookies_expired(&reply);
    // Nothing was stored for the stranger: no session, no index entry.
    let stranger = refreshd::domain::UserId::parse("987654321").unwrap();
    assert_eq!(app.store.session_footprint(&stranger).await.unwrap(), 0);
}

async fn an_oversized_body_is_413_and_leaves_the_cookies_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, tokens) = app.logged_in().await;
    let body = json!({"refresh": tokens.refresh, "pad": "x".repeat(16 * 1024)});
    let reply = app.post_json("/api/auth/token/refresh/", &body).await;
    assert_detail(&reply, 413, BODY_TOO_LARGE);
    assert_no_cookies(&reply);
    // The same streamed without a Content-Length, on both APIs, with the cookie there too.
    for path in ["/api/auth/token/refresh/", "/api/token/refresh/"] {
        let cookie = format!("refresh_token={}", tokens.refresh);
        let headers = [
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
        ];
        let reply = app
            .post_streamed(path, &headers, body.to_string().into_bytes())
            .await;
        assert_detail(&reply, 413, BODY_TOO_LARGE);
        assert_no_cookies(&reply);
    }
    // Nothing was consumed, and a body of exactly 16 KiB is still within bounds.
    let pad = 16 * 1024
        - json!({"refresh": tokens.refresh, "pad": ""})
            .to_string()
            .len();
    let body = json!({"refresh": tokens.refresh, "pad": "x".repeat(pad)});
    assert_eq!(body.to_string().len(), 16 * 1024);
    assert_detail(
        &app.post_json("/api/auth/token/refresh/", &body).await,
        200,
        REFRESHED,
    );
}

async fn a_cross_site_cookie_refresh_is_refused_and_consumes_nothing(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("CORS_ALLOWED_ORIGINS", "https://app.example.com")],
    )
    .await;
    let (_, tokens) = app.logged_in().await;
    let cookie = format!("refresh_token={}", tokens.refresh);
    let attacks: [(&str, &str); 5] = [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("origin", "https://app.example.com.evil.example"),
        ("referer", "https://evil.example/page"),
        ("sec-fetch-site", "cross-site"),
    ];
    for (name, value) in attacks {
        for path in ["/api/auth/token/refresh/", "/api/auth/logout/"] {
            let reply = Reply::read(
                app.client
                    .post(app.url(path))
                    .header("cookie", &cookie)
                    .header(name, value)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_detail(&reply, 403, CSRF_FAILED);
            assert_no_cookies(&reply);
        }
    }
    // The session survived every attempt.
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        200,
        REFRESHED,
    );
}

async fn allowed_origins_and_body_tokens_pass_the_csrf_check(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("CORS_ALLOWED_ORIGINS", "https://app.example.com")],
    )
    .await;
    let (_, tokens) = app.logged_in().await;
    let own = app.address.clone();
    let mut current = tokens.refresh;
    for (name, value) in [
        ("origin", "https://app.example.com"),
        ("origin", own.as_str()),
        ("referer", "https://app.example.com/some/page"),
        ("sec-fetch-site", "same-origin"),
    ] {
        let reply = Reply::read(
            app.client
                .post(app.url("/api/auth/token/refresh/"))
                .header("cookie", format!("refresh_token={current}"))
                .header(name, value)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_detail(&reply, 200, REFRESHED);
        current = reply.tokens().refresh;
    }
    // A token in the body needs no CSRF check: a forged request cannot know it.
    let reply = Reply::read(
        app.client
            .post(app.url("/api/auth/token/refresh/"))
            .header("origin", "https://evil.example")
            .json(&json!({"refresh": current}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 200, REFRESHED);
}

async fn with_rotation_off_the_same_refresh_token_comes_back_with_its_remaining_life(
    backend: Backend,
) {
    let app = spawn_app_with(
        backend,
        &[
            ("ROTATE_REFRESH_TOKENS", "false"),
            ("REFRESH_TOKEN_LIFETIME", "1h"),
        ],
    )
    .await;
    let (_, tokens) = app.logged_in().await;
    for _ in 0..3 {
        let reply = app.refresh_with_cookie(&tokens.refresh).await;
        assert_detail(&reply, 200, REFRESHED);
        let refresh = reply.cookie("refresh_token").unwrap();
        assert_eq!(refresh.value, tokens.refresh, "the same token string");
        let max_age: u64 = refresh.attr("Max-Age").unwrap().parse().unwrap();
        let remaining = claims_of(&tokens.refresh)["exp"].as_u64().unwrap() - now_s();
        assert!(
            max_age <= 3600 && max_age + 2 >= remaining,
            "Max-Age {max_age}, remaining {remaining}"
        );
        assert_ne!(reply.tokens().access, tokens.access);
    }
}

async fn a_simplejwt_token_without_sid_refreshes_and_starts_a_session(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "1s")]).await;
    let user = app
        .add_user_with_id(&unique("django"), "pw", Some("42"))
        .await
        .id;
    // As SimpleJWT 5.4 wrote it: integer user_id, no sid.
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let foreign = sign_with(
        test_key(),
        Algorithm::HS256,
        &json!({"token_type": "refresh", "exp": now_s() + 3600, "iat": now_s(), "jti": jti, "user_id": 42}),
    );
    let reply = app.refresh_with_body(&foreign).await;
    assert_detail(&reply, 200, REFRESHED);
    let successor = reply.tokens();
    let c = claims_of(&successor.refresh);
    assert_eq!(c["user_id"], user.as_str());
    assert_eq!(
        c["sid"],
        jti.as_str(),
        "the foreign token's jti names its session"
    );
    // Its successor presented, the foreign token is retired; replayed after the reuse
    // interval, it revokes the session it started.
    let successor = app.refresh_with_body(&successor.refresh).await.tokens();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_detail(&app.refresh_with_body(&foreign).await, 401, INVALID_REFRESH);
    assert_detail(
        &app.refresh_with_body(&successor.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

async fn the_session_max_lifetime_caps_rotation(backend: Backend) {
    let app = spawn_app_with(backend, &[("SESSION_MAX_LIFETIME", "3s")]).await;
    let (_, tokens) = app.logged_in().await;
    let end = claims_of(&tokens.refresh)["exp"].as_u64().unwrap();
    assert!(
        end <= now_s() + 3,
        "the first refresh token ends with the session"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 200, REFRESHED);
    let next = reply.tokens();
    assert_eq!(
        claims_of(&next.refresh)["exp"].as_u64().unwrap(),
        end,
        "rotation does not extend the session"
    );
    assert!(claims_of(&next.access)["exp"].as_u64().unwrap() <= end);
    tokio::time::sleep(Duration::from_millis((end + 1 - now_s()) * 1000 + 100)).await;
    assert_detail(
        &app.refresh_with_cookie(&next.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

async fn cookie_attributes_follow_the_settings(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("ACCESS_COOKIE_NAME", "__Host-at"),
            ("REFRESH_COOKIE_NAME", "rt"),
            ("REFRESH_COOKIE_PATH", "/api/auth/"),
            ("COOKIE_SAMESITE", "Strict"),
            ("COOKIE_SECURE", "true"),
            ("ACCESS_TOKEN_LIFETIME", "5m"),
            ("REFRESH_TOKEN_LIFETIME", "1d"),
        ],
    )
    .await;
    let name = unique("frank");
    app.add_user(&name, "pw").await;
    let login = app.login(&name, "pw").await;
    let at = login.cookie("__Host-at").unwrap();
    assert_eq!(
        at.raw,
        format!(
            "__Host-at={}; HttpOnly; Path=/; Max-Age=300; SameSite=Strict; Secure",
            at.value
        )
    );
    let rt = login.cookie("rt").unwrap();
    assert_eq!(
        rt.raw,
        format!(
            "rt={}; HttpOnly; Path=/api/auth/; Max-Age=86400; SameSite=Strict; Secure",
            rt.value
        )
    );
    let refreshed = app
        .post_with_cookie("/api/auth/token/refresh/", &format!("rt={}", rt.value))
        .await;
    assert_detail(&refreshed, 200, REFRESHED);
    let failed = app
        .post_with_cookie("/api/auth/token/refresh/", "rt=garbage")
        .await;
    assert_detail(&failed, 401, INVALID_REFRESH);
    assert_eq!(
        failed.cookie("__Host-at").unwrap().raw,
        "__Host-at=; HttpOnly; Path=/; Max-Age=0; SameSite=Strict; Secure"
    );
    assert_eq!(
        failed.cookie("rt").unwrap().raw,
        "rt=; HttpOnly; Path=/api/auth/; Max-Age=0; SameSite=Strict; Secure"
    );

    // A cookie domain, set and expired alike (a cookie expired without its Domain stays).
    let app = spawn_app_with(
        backend,
        &[
            ("COOKIE_DOMAIN", "example.com"),
            ("COOKIE_SAMESITE", "None"),
            ("COOKIE_SECURE", "true"),
            ("ACCESS_TOKEN_LIFETIME", "5m"),
        ],
    )
    .await;
    let (_, tokens) = app.logged_in().await;
    let refreshed = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&refreshed, 200, REFRESHED);
    let at = refreshed.cookie("access_token").unwrap();
    assert_eq!(
        at.raw,
        format!(
            "access_token={}; HttpOnly; Path=/; Max-Age=300; SameSite=None; Secure; Domain=example.com",
            at.value
        )
    );
    let failed = app.refresh_with_cookie("garbage").await;
    assert_detail(&failed, 401, INVALID_REFRESH);
    for name in ["access_token", "refresh_token"] {
        assert_eq!(
            failed.cookie(name).unwrap().raw,
            format!(
                "{name}=; HttpOnly; Path=/; Max-Age=0; SameSite=None; Secure; Domain=example.com"
            )
        );
    }
}

/// Claims of a token minted elsewhere (no sid) for `user_id`, with `changes` applied (null
/// removes a claim).
fn foreign_claims(user_id: &str, changes: serde_json::Value) -> serde_json::Value {
    let mut c = json!({
        "token_type": "refresh", "exp": now_s() + 600, "iat": now_s(),
        "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": user_id,
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

async fn time_claims_that_are_not_integers_or_lie_past_9999_are_401_never_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, tokens) = app.logged_in().await;
    let own = claims_of(&tokens.refresh);
    let now = now_s();
    let year_10000 = 253_402_300_800_u64;
    let cases = [
        // Past what Redis can expire: it answered "invalid expire time", and the server a 500.
        ("exp 9.3e15", json!({"exp": 9_300_000_000_000_000_u64})),
        ("exp u64::MAX", json!({"exp": u64::MAX})),
        ("exp in the year 10000", json!({"exp": year_10000})),
        ("iat in the year 10000", json!({"iat": year_10000})),
        ("nbf 9.3e15", json!({"nbf": 9_300_000_000_000_000_u64})),
        ("exp a fraction", json!({"exp": now as f64 + 600.5})),
        ("exp a float", json!({"exp": (now + 600) as f64})),
        ("exp in exponent form", json!({"exp": 9.3e15})),
        ("iat a fraction", json!({"iat": now as f64 - 0.5})),
        ("nbf a fraction", json!({"nbf": now as f64 - 10.5})),
        ("exp negative", json!({"exp": -1})),
    ];
    let key = test_key();
    let hs = Algorithm::HS256;
    for (what, changes) in cases {
        // Minted elsewhere (adopted on first use), and one of this server's own sessions.
        let foreign = sign_with(key, hs, &foreign_claims(user.id.as_str(), changes.clone()));
        let mut ours = own.clone();
        for (k, v) in changes.as_object().unwrap() {
            ours[k] = v.clone();
        }
        let ours = sign_with(key, hs, &ours);
        for token in [&foreign, &ours] {
            for reply in [
                app.refresh_with_cookie(token).await,
                app.refresh_with_body(token).await,
            ] {
                assert_detail(&reply, 401, INVALID_REFRESH);
                assert_cookies_expired(&reply);
            }
            let simplejwt = app
                .post_json("/api/token/refresh/", &json!({ "refresh": token }))
                .await;
            assert_eq!(simplejwt.status, 401, "{what}: {}", simplejwt.text);
            let verify = app
                .post_json("/api/token/verify/", &json!({ "token": token }))
                .await;
            assert_eq!(verify.status, 401, "{what}: {}", verify.text);
        }
        let mut access = claims_of(&tokens.access);
        for (k, v) in changes.as_object().unwrap() {
            access[k] = v.clone();
        }
        let reply = app.me_with_cookie(&sign_with(key, hs, &access)).await;
        assert_detail(&reply, 401, INVALID_ACCESS);
    }
    // The session itself was never touched.
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        200,
        REFRESHED,
    );
}

async fn a_token_is_expired_from_the_second_of_its_exp(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user(&unique("user"), "pw-1234").await;
    let key = test_key();
    let hs = Algorithm::HS256;
    // exp = now: refused at once (now >= exp), as PyJWT refuses it.
    let at_exp = foreign_claims(user.id.as_str(), json!({"exp": now_s(), "iat": now_s()}));
    let reply = app.refresh_with_body(&sign_with(key, hs, &at_exp)).await;
    assert_detail(&reply, 401, INVALID_REFRESH);
    // With LEEWAY=30: refused from exp + 30 on, accepted just before.
    let lenient = spawn_app_with(backend, &[("LEEWAY", "30")]).await;
    let user = lenient.add_user(&unique("user"), "pw-1234").await;
    // (Issued now: a foreign token issued before the store's epoch is refused for that alone.)
    let past = foreign_claims(
        user.id.as_str(),
        json!({"exp": now_s() - 30, "iat": now_s()}),
    );
    let reply = lenient.refresh_with_body(&sign_with(key, hs, &past)).await;
    assert_detail(&reply, 401, INVALID_REFRESH);
    let within = foreign_claims(
        user.id.as_str(),
        json!({"exp": now_s() - 25, "iat": now_s()}),
    );
    let reply = lenient
        .refresh_with_body(&sign_with(key, hs, &within))
        .await;
    assert_detail(&reply, 200, REFRESHED);
}
