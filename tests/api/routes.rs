//! Route-table behaviour shared by every route: trailing slashes, methods, unknown paths, health.

use crate::helpers::*;

#[tokio::test]
async fn every_route_answers_with_and_without_its_trailing_slash() {
    let app = spawn_app(Backend::Memory).await;
    let (_, tokens) = app.logged_in().await;
    for path in ["/healthz", "/healthz/", "/api/auth/me", "/api/auth/me/"] {
        let reply = Reply::read(
            app.client
                .get(app.url(path))
                .header("cookie", format!("access_token={}", tokens.access))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert_json_headers(&reply);
    }
    for path in [
        "/api/auth/login",
        "/api/auth/login/",
        "/api/auth/token/refresh",
        "/api/auth/token/refresh/",
        "/api/auth/logout",
        "/api/auth/logout/",
    ] {
        let reply = Reply::read(app.client.post(app.url(path)).send().await.unwrap()).await;
        assert!(
            matches!(reply.status, 200 | 400 | 401),
            "{path}: {}",
            reply.status
        );
        assert_json_headers(&reply);
    }
}

/// Every operation of the OpenAPI document (which a test keeps equal to the route table), asked
/// both ways: the two spellings answer alike, and neither is a 404, a 405 or a redirect.
#[tokio::test]
async fn every_documented_route_answers_alike_with_and_without_its_trailing_slash() {
    let app = spawn_app(Backend::Memory).await;
    let mut checked = 0;
    for (method, path, _) in crate::openapi::operations(&app).await {
        if path == "/" {
            continue;
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let bare = path.trim_end_matches('/');
        let mut answers = Vec::new();
        for spelling in [bare.to_owned(), format!("{bare}/")] {
            // A fresh session each time: a DELETE of a session, or a logout, spends one.
            let (_, tokens) = app.logged_in().await;
            let sid = claims_of(&tokens.refresh)["sid"]
                .as_str()
                .unwrap()
                .to_owned();
            let url = app.url(
                &spelling
                    .replace("{id}", &sid)
                    .replace("{file}", "refreshd-client.js"),
            );
            let reply = Reply::read(
                app.client
                    .request(method.clone(), url)
                    .header("authorization", format!("Bearer {}", tokens.access))
                    .header(
                        "cookie",
                        format!(
                            "access_token={}; refresh_token={}",
                            tokens.access, tokens.refresh
                        ),
                    )
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert!(
                !matches!(reply.status, 301..=308 | 404 | 405),
                "{method} {spelling}: {} {}",
                reply.status,
                reply.text
            );
            answers.push(reply.status);
        }
        assert_eq!(answers[0], answers[1], "{method} {path}: {answers:?}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} operations checked");
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_answer_json() {
    let app = spawn_app(Backend::Memory).await;
    let reply = Reply::read(
        app.client
            .get(app.url("/api/auth/token/refresh/"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 405, "Method \"GET\" not allowed.");
    let reply = Reply::read(
        app.client
            .delete(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 405, "Method \"DELETE\" not allowed.");
    let reply = Reply::read(
        app.client
            .get(app.url("/api/auth/nope/"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 404, NOT_FOUND);
}

#[tokio::test]
async fn healthz_says_ok() {
    let app = spawn_app(Backend::Redis).await;
    let reply = Reply::read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(reply.json, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn the_in_process_store_has_the_demo_user_outside_production() {
    let app = spawn_app(Backend::Memory).await;
    assert_detail(&app.login("demo", "demo").await, 200, LOGGED_IN);
    let app = spawn_app(Backend::Redis).await;
    assert_detail(&app.login("demo", "demo").await, 401, BAD_CREDENTIALS);
}

/// The demo page as served, with `cookie` sent when given.
async fn page(app: &TestApp, cookie: Option<&str>) -> String {
    let mut request = app.client.get(app.url("/"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let reply = Reply::read(request.send().await.unwrap()).await;
    assert_eq!(reply.status, 200);
    reply.text
}

#[tokio::test]
async fn the_page_offers_the_demo_login_whenever_an_active_demo_user_exists() {
    const HINT: &str = r#"id="demo-hint""#;
    assert!(
        page(&spawn_app(Backend::Memory).await, None)
            .await
            .contains(HINT)
    );

    // A Redis of its own: as `docker compose` leaves one, the demo user made by its one-shot
    // service, not by the server.
    let redis = RedisProcess::start(false);
    let app = spawn_app_with(Backend::Redis, &[("REDIS_URL", &redis.url())]).await;
    assert!(!page(&app, None).await.contains(HINT), "no demo user yet");
    app.add_user("demo", "demo").await;
    assert!(page(&app, None).await.contains(HINT));
    let demo = refreshd::domain::Username::parse("demo").unwrap();
    app.store.set_user_active(&demo, false).await.unwrap();
    assert!(
        !page(&app, None).await.contains(HINT),
        "an inactive one cannot log in"
    );
    // A store that does not answer hides the hint; the page still loads.
    app.store.set_user_active(&demo, true).await.unwrap();
    redis.stop();
    assert!(!page(&app, None).await.contains(HINT));
}

#[tokio::test]
async fn the_page_knows_which_session_cookies_came_with_it() {
    let app = spawn_app(Backend::Memory).await;
    let (_, tokens) = app.logged_in().await;
    let session = |html: String| {
        html.split("data-session=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
            .unwrap()
    };
    assert_eq!(session(page(&app, None).await), "none");
    let access = format!("access_token={}", tokens.access);
    let refresh = format!("refresh_token={}", tokens.refresh);
    assert_eq!(session(page(&app, Some(&access)).await), "access");
    assert_eq!(session(page(&app, Some(&refresh)).await), "refresh");
    // A refresh cookie confined to the refresh route never comes with the page: it may be there.
    let app = spawn_app_with(
        Backend::Memory,
        &[("REFRESH_COOKIE_PATH", "/api/auth/token/refresh/")],
    )
    .await;
    assert_eq!(session(page(&app, None).await), "refresh");
}
