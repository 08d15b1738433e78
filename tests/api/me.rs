//! GET /api/auth/me/

use std::time::Duration;

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    me_answers_the_user_from_the_access_cookie,
    me_accepts_an_authorization_bearer_header,
    me_without_a_token_is_401_not_provided,
    me_with_a_bad_or_expired_token_is_401_invalid,
    me_refuses_a_refresh_token,
);

async fn me_answers_the_user_from_the_access_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, tokens) = app.logged_in().await;
    let reply = app.me_with_cookie(&tokens.access).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text,
        format!(
            r#"{{"id":"{}","username":"{}","is_active":true}}"#,
            user.id, user.username
        )
    );
    assert_json_headers(&reply);
}

async fn me_accepts_an_authorization_bearer_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, tokens) = app.logged_in().await;
    for header in [
        format!("Bearer {}", tokens.access),
        format!("bearer   {}", tokens.access),
    ] {
        let reply = Reply::read(
            app.client
                .get(app.url("/api/auth/me"))
                .header("authorization", header)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["id"], user.id.as_str());
    }
}

async fn me_without_a_token_is_401_not_provided(backend: Backend) {
    let app = spawn_app(backend).await;
    for request in [
        app.client.get(app.url("/api/auth/me/")),
        app.client
            .get(app.url("/api/auth/me/"))
            .header("cookie", "access_token="),
        app.client
            .get(app.url("/api/auth/me/"))
            .header("authorization", "Basic dXNlcjpwYXNz"),
        app.client
            .get(app.url("/api/auth/me/"))
            .header("authorization", "Bearer "),
    ] {
        assert_detail(
            &Reply::read(request.send().await.unwrap()).await,
            401,
            ACCESS_NOT_PROVIDED,
        );
    }
}

async fn me_with_a_bad_or_expired_token_is_401_invalid(backend: Backend) {
    let app = spawn_app_with(backend, &[("ACCESS_TOKEN_LIFETIME", "1s")]).await;
    let (_, tokens) = app.logged_in().await;
    assert_eq!(app.me_with_cookie(&tokens.access).await.status, 200);
    assert_detail(&app.me_with_cookie("garbage").await, 401, INVALID_ACCESS);
    assert_detail(
        &app.me_with_cookie(&"x".repeat(9000)).await,
        401,
        INVALID_ACCESS,
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_detail(
        &app.me_with_cookie(&tokens.access).await,
        401,
        INVALID_ACCESS,
    );
}

async fn me_refuses_a_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, tokens) = app.logged_in().await;
    assert_detail(
        &app.me_with_cookie(&tokens.refresh).await,
        401,
        INVALID_ACCESS,
    );
}
