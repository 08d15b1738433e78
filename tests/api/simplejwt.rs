//! The SimpleJWT-compatible JSON API under /api/token/: the same flows as the cookie API, with
//! SimpleJWT's bodies.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    obtain_returns_both_tokens_in_json_and_sets_no_cookies,
    obtain_refuses_bad_credentials_and_names_missing_fields,
    obtain_accepts_a_form_body_as_django_rest_framework_does,
    refresh_rotates_and_returns_both_tokens,
    with_rotation_off_refresh_returns_the_access_token_alone,
    refresh_answers_drf_style_400s_for_bad_bodies,
    refresh_answers_token_not_valid_for_bad_tokens,
    a_rotated_out_token_is_blacklisted,
    reuse_detected_through_one_api_revokes_the_session_in_the_other,
    an_inactive_user_gets_no_active_account_found_for_the_given_token,
    verify_accepts_live_tokens_and_refuses_dead_ones,
    blacklist_ends_the_session_once,
    both_apis_share_one_rotation_when_racing,
    the_prefix_is_configurable,
);

async fn post(app: &TestApp, path: &str, body: Value) -> Reply {
    app.post_json(path, &body).await
}

#[track_caller]
fn assert_body(reply: &Reply, status: u16, body: Value) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.json, body);
    assert_json_headers(reply);
}

fn token_not_valid() -> Value {
    json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
}

fn blacklisted() -> Value {
    json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
}

async fn obtain(app: &TestApp) -> (refreshd::domain::User, String, String) {
    let name = unique("mobile");
    let user = app.add_user(&name, "pw-1").await;
    let reply = post(
        app,
        "/api/token/",
        json!({"username": name, "password": "pw-1"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let access = reply.json["access"].as_str().unwrap().to_owned();
    let refresh = reply.json["refresh"].as_str().unwrap().to_owned();
    (user, access, refresh)
}

async fn obtain_returns_both_tokens_in_json_and_sets_no_cookies(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("mobile");
    let user = app.add_user(&name, "pw-1").await;
    for path in ["/api/token/", "/api/token"] {
        let reply = post(&app, path, json!({"username": name, "password": "pw-1"})).await;
        assert_eq!(reply.status, 200);
        assert_json_headers(&reply);
        assert_no_cookies(&reply);
        let keys: Vec<&String> = reply.json.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{}", reply.text);
        assert_eq!(
            claims_of(reply.json["access"].as_str().unwrap())["token_type"],
            "access"
        );
        let refresh = claims_of(reply.json["refresh"].as_str().unwrap());
        assert_eq!(refresh["token_type"], "refresh");
        assert_eq!(refresh["user_id"], user.id.as_str());
    }
}

async fn obtain_refuses_bad_credentials_and_names_missing_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = post(
        &app,
        "/api/token/",
        json!({"username": unique("x"), "password": "y"}),
    )
    .await;
    assert_body(
        &reply,
        401,
        json!({"detail": "No active account found with the given credentials"}),
    );
    let reply = post(&app, "/api/token/", json!({"username": "x"})).await;
    assert_body(
        &reply,
        400,
        json!({"password": ["This field is required."]}),
    );
}

async fn obtain_accepts_a_form_body_as_django_rest_framework_does(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("form user");
    app.add_user(&name, "p&w=1").await;
    let reply = Reply::read(
        app.client
            .post(app.url("/api/token/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "username={}&password=p%26w%3D1",
                name.replace(' ', "+")
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.json["refresh"].is_string());
}

async fn refresh_rotates_and_returns_both_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, _, refresh) = obtain(&app).await;
    let reply = post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_no_cookies(&reply);
    let new_refresh = reply.json["refresh"].as_str().unwrap();
    assert_ne!(new_refresh, refresh);
    assert_eq!(claims_of(new_refresh)["sid"], claims_of(&refresh)["sid"]);
    assert_eq!(
        claims_of(reply.json["access"].as_str().unwrap())["token_type"],
        "access"
    );
}

async fn with_rotation_off_refresh_returns_the_access_token_alone(backend: Backend) {
    let app = spawn_app_with(backend, &[("ROTATE_REFRESH_TOKENS", "false")]).await;
    let (_, _, refresh) = obtain(&app).await;
    let reply = post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(reply.status, 200);
    let keys: Vec<&String> = reply.json.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["access"]);
}

async fn refresh_answers_drf_style_400s_for_bad_bodies(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_body(
        &post(&app, "/api/token/refresh/", json!({})).await,
        400,
        json!({"refresh": ["This field is required."]}),
    );
    assert_body(
        &post(&app, "/api/token/refresh/", json!({"refresh": ["a"]})).await,
        400,
        json!({"refresh": ["Not a valid string."]}),
    );
    assert_body(
        &post(&app, "/api/token/refresh/", json!({"refresh": ""})).await,
        400,
        json!({"refresh": ["This field may not be blank."]}),
    );
    assert_body(
        &post(&app, "/api/token/refresh/", json!({"refresh": null})).await,
        400,
        json!({"refresh": ["This field may not be null."]}),
    );
    let reply = Reply::read(
        app.client
            .post(app.url("/api/token/refresh/"))
            .header("content-type", "application/json")
            .body("{\"refresh\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "),
        "{}",
        reply.text
    );
    let huge = json!({"refresh": "x".repeat(17 * 1024)});
    assert_detail(
        &post(&app, "/api/token/refresh/", huge).await,
        413,
        BODY_TOO_LARGE,
    );
}

async fn refresh_answers_token_not_valid_for_bad_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, access, _) = obtain(&app).await;
    for token in [
        "garbage".to_owned(),
        access,
        "a.b.c".to_owned(),
        "x".repeat(9000),
    ] {
        assert_body(
            &post(&app, "/api/token/refresh/", json!({"refresh": token})).await,
            401,
            token_not_valid(),
        );
    }
}

async fn a_rotated_out_token_is_blacklisted(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "0")]).await;
    let (_, _, refresh) = obtain(&app).await;
    let pending = post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(pending.status, 200);
    // Presenting the successor retires (blacklists) its parent.
    let successor = pending.json["refresh"].as_str().unwrap().to_owned();
    assert_eq!(
        post(&app, "/api/token/refresh/", json!({"refresh": successor}))
            .await
            .status,
        200
    );
    assert_body(
        &post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await,
        401,
        blacklisted(),
    );
}

async fn reuse_detected_through_one_api_revokes_the_session_in_the_other(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "0")]).await;
    let (_, cookies) = app.logged_in().await;
    let pending = app.refresh_with_cookie(&cookies.refresh).await.tokens();
    let next = app.refresh_with_cookie(&pending.refresh).await.tokens();
    // The stolen, retired token replayed through the JSON API...
    assert_body(
        &post(
            &app,
            "/api/token/refresh/",
            json!({"refresh": cookies.refresh}),
        )
        .await,
        401,
        blacklisted(),
    );
    // ...ends the session the browser holds.
    assert_detail(
        &app.refresh_with_cookie(&next.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_body(
        &post(
            &app,
            "/api/token/refresh/",
            json!({"refresh": next.refresh}),
        )
        .await,
        401,
        blacklisted(),
    );
}

async fn an_inactive_user_gets_no_active_account_found_for_the_given_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, access, refresh) = obtain(&app).await;
    app.store
        .set_user_active(&user.username, false)
        .await
        .unwrap();
    let expected = json!({"detail": "No active account found for the given token."});
    assert_body(
        &post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await,
        401,
        expected.clone(),
    );
    assert_body(
        &post(&app, "/api/token/verify/", json!({"token": access})).await,
        401,
        expected,
    );
}

async fn verify_accepts_live_tokens_and_refuses_dead_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, access, refresh) = obtain(&app).await;
    for token in [&access, &refresh] {
        assert_body(
            &post(&app, "/api/token/verify/", json!({"token": token})).await,
            200,
            json!({}),
        );
    }
    assert_body(
        &post(&app, "/api/token/verify/", json!({})).await,
        400,
        json!({"token": ["This field is required."]}),
    );
    assert_body(
        &post(&app, "/api/token/verify/", json!({"token": "nope"})).await,
        401,
        token_not_valid(),
    );
    // Rotated out (its successor presented): the old refresh token is blacklisted; the
    // session's access token still stands.
    let pending = post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await;
    let pending = pending.json["refresh"].as_str().unwrap().to_owned();
    let rotated = post(&app, "/api/token/refresh/", json!({"refresh": pending})).await;
    assert_body(
        &post(&app, "/api/token/verify/", json!({"token": refresh})).await,
        401,
        blacklisted(),
    );
    let newest = rotated.json["refresh"].as_str().unwrap().to_owned();
    assert_body(
        &post(&app, "/api/token/verify/", json!({"token": newest})).await,
        200,
        json!({}),
    );
    // Once the session is revoked, its access token is refused at once.
    assert_body(
        &post(&app, "/api/token/blacklist/", json!({"refresh": newest})).await,
        200,
        json!({}),
    );
    assert_body(
        &post(&app, "/api/token/verify/", json!({"token": access})).await,
        401,
        blacklisted(),
    );
}

async fn blacklist_ends_the_session_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, access, refresh) = obtain(&app).await;
    assert_body(
        &post(&app, "/api/token/blacklist/", json!({"refresh": refresh})).await,
        200,
        json!({}),
    );
    assert_body(
        &post(&app, "/api/token/blacklist/", json!({"refresh": refresh})).await,
        401,
        blacklisted(),
    );
    assert_body(
        &post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await,
        401,
        blacklisted(),
    );
    assert_body(
        &post(&app, "/api/token/blacklist/", json!({"refresh": access})).await,
        401,
        token_not_valid(),
    );
    assert_body(
        &post(&app, "/api/token/blacklist/", json!({"refresh": "x"})).await,
        401,
        token_not_valid(),
    );
    assert_detail(&app.me_with_cookie(&access).await, 401, INVALID_ACCESS);
}

async fn both_apis_share_one_rotation_when_racing(backend: Backend) {
    let app = spawn_app_with(backend, &[("WORKERS", "2")]).await;
    let (_, tokens) = app.logged_in().await;
    let replies = join_all((0..24).map(|i| {
        let app = &app;
        let token = tokens.refresh.clone();
        async move {
            if i % 2 == 0 {
                app.refresh_with_cookie(&token).await.tokens().refresh
            } else {
                let r = post(app, "/api/token/refresh/", json!({"refresh": token})).await;
                assert_eq!(r.status, 200, "{}", r.text);
                r.json["refresh"].as_str().unwrap().to_owned()
            }
        }
    }))
    .await;
    assert!(
        replies.iter().all(|r| *r == replies[0]),
        "one rotation, one successor"
    );
}

async fn the_prefix_is_configurable(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("TOKEN_API_PREFIX", "/api/user/token/"),
            ("COOKIE_API_PREFIX", "/auth/"),
        ],
    )
    .await;
    let name = unique("prefixed");
    app.add_user(&name, "pw").await;
    let reply = post(
        &app,
        "/api/user/token/",
        json!({"username": name, "password": "pw"}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let refresh = reply.json["refresh"].as_str().unwrap();
    assert_eq!(
        post(&app, "/api/user/token/refresh", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
    assert_detail(
        &post(
            &app,
            "/api/token/",
            json!({"username": name, "password": "pw"}),
        )
        .await,
        404,
        NOT_FOUND,
    );
    let login = post(
        &app,
        "/auth/login/",
        json!({"username": name, "password": "pw"}),
    )
    .await;
    assert_detail(&login, 200, LOGGED_IN);
    assert_detail(
        &app.post_with_cookie(
            "/auth/token/refresh/",
            &format!("refresh_token={}", login.tokens().refresh),
        )
        .await,
        200,
        REFRESHED,
    );
    assert_detail(
        &post(&app, "/api/auth/login/", json!({})).await,
        404,
        NOT_FOUND,
    );
}
