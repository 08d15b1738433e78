//! POST /api/auth/logout/

use serde_json::json;

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    logout_revokes_the_session_and_expires_both_cookies,
    logout_revokes_every_later_rotation_of_the_token,
    logout_is_idempotent,
    logout_takes_the_token_from_the_body,
    logout_with_a_hostile_body_still_answers_cleanly,
    a_simplejwt_token_logged_out_before_its_first_refresh_stays_revoked,
);

async fn logout_revokes_the_session_and_expires_both_cookies(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, tokens) = app.logged_in().await;
    let reply = app.logout_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 200, LOGGED_OUT);
    assert_cookies_expired(&reply);
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

async fn logout_revokes_every_later_rotation_of_the_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, t0) = app.logged_in().await;
    let t1 = app.refresh_with_cookie(&t0.refresh).await.tokens();
    // Logging out with the parent (still inside the reuse interval) ends the whole family.
    assert_detail(&app.logout_with_cookie(&t0.refresh).await, 200, LOGGED_OUT);
    assert_detail(
        &app.refresh_with_cookie(&t1.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

async fn logout_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, tokens) = app.logged_in().await;
    for _ in 0..2 {
        let reply = app.logout_with_cookie(&tokens.refresh).await;
        assert_detail(&reply, 200, LOGGED_OUT);
        assert_cookies_expired(&reply);
    }
    let none = Reply::read(
        app.client
            .post(app.url("/api/auth/logout"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&none, 200, LOGGED_OUT);
    assert_cookies_expired(&none);
    let garbage = app.logout_with_cookie("not-a-token").await;
    assert_detail(&garbage, 200, LOGGED_OUT);
    assert_cookies_expired(&garbage);
}

async fn logout_takes_the_token_from_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, tokens) = app.logged_in().await;
    let reply = app
        .post_json(
            "/api/auth/logout/",
            &json!({"refresh": format!("Bearer {}", tokens.refresh)}),
        )
        .await;
    assert_detail(&reply, 200, LOGGED_OUT);
    assert_detail(
        &app.refresh_with_body(&tokens.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

async fn logout_with_a_hostile_body_still_answers_cleanly(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        "\u{0}\u{1}",
        r#"{"refresh": {"$gt": ""}}"#,
    ] {
        let reply = Reply::read(
            app.client
                .post(app.url("/api/auth/logout/"))
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_detail(&reply, 200, LOGGED_OUT);
    }
    let huge = json!({"refresh": "x".repeat(20_000)});
    assert_detail(
        &app.post_json("/api/auth/logout/", &huge).await,
        413,
        BODY_TOO_LARGE,
    );
}

async fn a_simplejwt_token_logged_out_before_its_first_refresh_stays_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user_with_id(&unique("dj"), "pw", Some(&unique("id")))
        .await;
    let user = app.add_user_with_id(&unique("dj"), "pw", None).await;
    let token = sign_with(
        test_key(),
        jsonwebtoken::Algorithm::HS256,
        &json!({"token_type": "refresh", "exp": now_s() + 600, "iat": now_s(),
                "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": user.id.as_str()}),
    );
    assert_detail(&app.logout_with_cookie(&token).await, 200, LOGGED_OUT);
    assert_detail(&app.refresh_with_body(&token).await, 401, INVALID_REFRESH);
}
