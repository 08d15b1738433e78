//! The session rules of SPEC 4 around rotation: the idle timeout, "remember me", log out
//! everywhere only with a live token, deactivation that ends sessions for good, and tokens minted
//! elsewhere (adoption, ADOPT_FOREIGN_TOKENS, the store's epoch).

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    a_session_idle_past_the_timeout_ends_and_a_busy_one_lives_on,
    remember_false_gives_browser_session_cookies_after_every_refresh,
    log_out_everywhere_with_a_live_token_ends_every_session,
    log_out_everywhere_with_a_long_retired_token_ends_only_its_own_session,
    deactivation_ends_every_session_for_good,
    a_foreign_token_issued_before_a_deactivation_stays_refused,
    foreign_tokens_are_refused_when_adoption_is_off,
    a_foreign_token_issued_before_the_stores_epoch_is_refused,
);

async fn login_with(app: &TestApp, name: &str, body: serde_json::Value) -> Reply {
    let mut body = body;
    body["username"] = json!(name);
    body["password"] = json!("pw");
    Reply::read(
        app.client
            .post(app.url("/api/auth/login/"))
            .header("x-forwarded-for", &app.client_ip)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn logout_all(app: &TestApp, refresh: &str) -> Reply {
    app.post_json(
        "/api/auth/logout/",
        &json!({"refresh": refresh, "all": true}),
    )
    .await
}

fn foreign_refresh(user_id: &str, iat: u64) -> String {
    sign_with(
        test_key(),
        Algorithm::HS256,
        &json!({"token_type": "refresh", "exp": now_s() + 3600, "iat": iat,
                "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": user_id}),
    )
}

async fn a_session_idle_past_the_timeout_ends_and_a_busy_one_lives_on(backend: Backend) {
    let app = spawn_app_with(backend, &[("SESSION_IDLE_TIMEOUT", "2s")]).await;
    let (_, idle) = app.logged_in().await;
    let (_, busy) = app.logged_in().await;
    let mut busy = busy;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let reply = app.refresh_with_cookie(&busy.refresh).await;
        assert_detail(&reply, 200, REFRESHED);
        busy = reply.tokens();
    }
    // 2.8 s without a refresh: the idle session has ended, whatever token it is shown.
    let reply = app.refresh_with_cookie(&idle.refresh).await;
    assert_detail(&reply, 401, INVALID_REFRESH);
    assert_cookies_expired(&reply);
    // Its access token, still unexpired, is refused at once as well.
    assert_detail(&app.me_with_cookie(&idle.access).await, 401, INVALID_ACCESS);
    assert_eq!(app.me_with_cookie(&busy.access).await.status, 200);
}

async fn remember_false_gives_browser_session_cookies_after_every_refresh(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("brief");
    app.add_user(&name, "pw").await;
    let reply = login_with(&app, &name, json!({"remember": false})).await;
    assert_detail(&reply, 200, LOGGED_IN);
    let session_cookies = |reply: &Reply| {
        for name in ["access_token", "refresh_token"] {
            let c = reply.cookie(name).expect("a cookie");
            assert!(
                !c.has("Max-Age") && !c.has("Expires"),
                "a browser-session cookie: {}",
                c.raw
            );
            assert!(c.has("HttpOnly"), "{}", c.raw);
        }
    };
    session_cookies(&reply);
    let mut tokens = reply.tokens();
    for _ in 0..2 {
        let r = app.refresh_with_cookie(&tokens.refresh).await;
        assert_detail(&r, 200, REFRESHED);
        session_cookies(&r);
        tokens = r.tokens();
    }
    // The default (and "remember": true) stays persistent.
    for body in [json!({}), json!({"remember": true})] {
        let r = login_with(&app, &name, body).await;
        assert!(r.cookie("refresh_token").unwrap().has("Max-Age"));
        let next = app.refresh_with_cookie(&r.tokens().refresh).await;
        assert!(next.cookie("refresh_token").unwrap().has("Max-Age"));
        assert!(next.cookie("access_token").unwrap().has("Max-Age"));
    }
    // Logging out still expires both cookies with Max-Age=0.
    assert_cookies_expired(&app.logout_with_cookie(&tokens.refresh).await);
}

async fn log_out_everywhere_with_a_live_token_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("mia");
    app.add_user(&name, "pw").await;
    let phone = login_with(&app, &name, json!({})).await.tokens();
    let laptop = login_with(&app, &name, json!({})).await.tokens();
    let t1 = app.refresh_with_cookie(&laptop.refresh).await.tokens();
    let t2 = app.refresh_with_cookie(&t1.refresh).await.tokens();
    // laptop.refresh is retired but within its interval: still live, so it may end them all.
    let reply = logout_all(&app, &laptop.refresh).await;
    assert_detail(&reply, 200, LOGGED_OUT);
    assert_cookies_expired(&reply);
    for token in [&phone.refresh, &t2.refresh] {
        assert_detail(&app.refresh_with_cookie(token).await, 401, INVALID_REFRESH);
    }
    assert_detail(
        &app.me_with_cookie(&phone.access).await,
        401,
        INVALID_ACCESS,
    );
}

async fn log_out_everywhere_with_a_long_retired_token_ends_only_its_own_session(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "1s")]).await;
    let name = unique("noa");
    app.add_user(&name, "pw").await;
    let phone = login_with(&app, &name, json!({})).await.tokens();
    let laptop = login_with(&app, &name, json!({})).await.tokens();
    let t1 = app.refresh_with_cookie(&laptop.refresh).await.tokens();
    let t2 = app.refresh_with_cookie(&t1.refresh).await.tokens();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A stolen copy retired past its interval, posted with {"all": true}.
    let reply = logout_all(&app, &laptop.refresh).await;
    assert_detail(&reply, 200, LOGGED_OUT);
    // Reuse: the laptop's own session ends...
    assert_detail(
        &app.refresh_with_cookie(&t2.refresh).await,
        401,
        INVALID_REFRESH,
    );
    // ...and no other.
    assert_eq!(app.me_with_cookie(&phone.access).await.status, 200);
    assert_detail(
        &app.refresh_with_cookie(&phone.refresh).await,
        200,
        REFRESHED,
    );
}

async fn deactivation_ends_every_session_for_good(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("otto");
    let user = app.add_user(&name, "pw").await;
    let a = login_with(&app, &name, json!({})).await.tokens();
    let b = login_with(&app, &name, json!({})).await.tokens();
    let b1 = app.refresh_with_cookie(&b.refresh).await.tokens();
    app.store
        .set_user_active(&user.username, false)
        .await
        .unwrap();
    // While inactive: the invalid-user answer, on every token.
    for token in [&a.refresh, &b.refresh, &b1.refresh] {
        assert_detail(
            &app.refresh_with_cookie(token).await,
            401,
            INVALID_TOKEN_USER,
        );
    }
    app.store
        .set_user_active(&user.username, true)
        .await
        .unwrap();
    // Re-activated: nothing comes back; the old tokens are simply invalid.
    for token in [&a.refresh, &b.refresh, &b1.refresh] {
        assert_detail(&app.refresh_with_cookie(token).await, 401, INVALID_REFRESH);
    }
    for access in [&a.access, &b1.access] {
        assert_detail(&app.me_with_cookie(access).await, 401, INVALID_ACCESS);
    }
    assert!(app.store.list_sessions(&user.id).await.unwrap().is_empty());
    // A new login works as usual.
    let fresh = login_with(&app, &name, json!({})).await;
    assert_detail(&fresh, 200, LOGGED_IN);
    assert_detail(
        &app.refresh_with_cookie(&fresh.tokens().refresh).await,
        200,
        REFRESHED,
    );
}

async fn a_foreign_token_issued_before_a_deactivation_stays_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = unique("dj");
    let user = app
        .add_user_with_id(&unique("django"), "pw", Some(&id))
        .await;
    let before = foreign_refresh(&id, now_s());
    app.store
        .set_user_active(&user.username, false)
        .await
        .unwrap();
    app.store
        .set_user_active(&user.username, true)
        .await
        .unwrap();
    // Issued (by the Django app sharing the key) before the deactivation: refused, also after
    // re-activation.
    assert_detail(&app.refresh_with_body(&before).await, 401, INVALID_REFRESH);
    // One issued after it is adopted as usual.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = foreign_refresh(&id, now_s());
    assert_detail(&app.refresh_with_body(&after).await, 200, REFRESHED);
}

async fn foreign_tokens_are_refused_when_adoption_is_off(backend: Backend) {
    let app = spawn_app_with(backend, &[("ADOPT_FOREIGN_TOKENS", "false")]).await;
    let id = unique("dj");
    app.add_user_with_id(&unique("django"), "pw", Some(&id))
        .await;
    let foreign = foreign_refresh(&id, now_s());
    assert_detail(&app.refresh_with_body(&foreign).await, 401, INVALID_REFRESH);
    // Our own sessions are unaffected.
    let (_, tokens) = app.logged_in().await;
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        200,
        REFRESHED,
    );
}

async fn a_foreign_token_issued_before_the_stores_epoch_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = unique("dj");
    app.add_user_with_id(&unique("django"), "pw", Some(&id))
        .await;
    // Issued a day before this store was first used: it may have been retired or logged out in
    // a store that has since lost its data.
    let old = foreign_refresh(&id, now_s() - 86_400);
    assert_detail(&app.refresh_with_body(&old).await, 401, INVALID_REFRESH);
    let new = foreign_refresh(&id, now_s());
    assert_detail(&app.refresh_with_body(&new).await, 200, REFRESHED);
}
