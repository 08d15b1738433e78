//! Sessions a user can see and end: GET/DELETE /api/auth/sessions/, logout {"all": true}.

use std::time::Duration;

use refreshd::domain::{Jti, SessionId};
use refreshd::store::{ClientInfo, NewSession, RefreshClaims};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    the_list_shows_each_live_session_and_marks_the_current_one,
    each_session_names_its_device_and_keeps_the_raw_user_agent,
    a_capped_session_shows_its_end_and_a_deactivated_user_sees_nothing,
    ending_one_session_leaves_the_others_working,
    ending_the_current_session_expires_its_cookies,
    nobody_can_list_or_end_another_users_sessions,
    logout_all_ends_every_session_of_the_user,
    a_retired_refresh_token_cannot_log_the_user_out_everywhere,
    a_revoked_sessions_tokens_are_refused_on_every_route,
    a_logout_racing_a_refresh_never_leaves_the_session_alive,
    a_cross_site_session_deletion_is_refused,
    the_store_forgets_expired_sessions_by_itself,
);

impl TestApp {
    async fn login_as(&self, name: &str, user_agent: &str) -> Tokens {
        let reply = Reply::read(
            self.client
                .post(self.url("/api/auth/login/"))
                .header("x-forwarded-for", &self.client_ip)
                .header("user-agent", user_agent)
                .json(&json!({"username": name, "password": "pw"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_detail(&reply, 200, LOGGED_IN);
        reply.tokens()
    }

    /// Log out everywhere, with the refresh cookie.
    async fn logout_all(&self, refresh: &str) -> Reply {
        Reply::read(
            self.client
                .post(self.url("/api/auth/logout/"))
                .header("cookie", format!("refresh_token={refresh}"))
                .json(&json!({"all": true}))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn list(&self, access: &str) -> Reply {
        Reply::read(
            self.client
                .get(self.url("/api/auth/sessions/"))
                .header("cookie", format!("access_token={access}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn end(&self, access: &str, sid: &str) -> Reply {
        Reply::read(
            self.client
                .delete(self.url(&format!("/api/auth/sessions/{sid}/")))
                .header("authorization", format!("Bearer {access}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

fn sid(t: &Tokens) -> String {
    claims_of(&t.refresh)["sid"].as_str().unwrap().to_owned()
}

async fn the_list_shows_each_live_session_and_marks_the_current_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("ivy");
    app.add_user(&name, "pw").await;
    let laptop = app.login_as(&name, "Firefox on a laptop").await;
    let phone = app.login_as(&name, "Safari on a phone").await;
    let phone = app.refresh_with_cookie(&phone.refresh).await.tokens();

    let reply = app.list(&laptop.access).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_json_headers(&reply);
    let list = reply.json.as_array().unwrap();
    assert_eq!(list.len(), 2, "{}", reply.text);
    let entry = |s: &str| list.iter().find(|e| e["id"] == s).unwrap().clone();
    let l = entry(&sid(&laptop));
    let p = entry(&sid(&phone));
    assert_eq!(l["current"], true);
    assert_eq!(p["current"], false);
    assert_eq!(l["user_agent"], "Firefox on a laptop");
    assert_eq!(p["user_agent"], "Safari on a phone");
    assert_eq!(
        l["client_address"],
        app.client_ip.as_str(),
        "X-Forwarded-For from a trusted proxy"
    );
    assert_eq!(l["last_refreshed"], Value::Null);
    assert!(p["last_refreshed"].as_str().unwrap().ends_with('Z'));
    assert!(l["created"].as_str().unwrap().starts_with("20"));
    assert_eq!(l["ends_at"], Value::Null);
    let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 8, "{keys:?}");
}

async fn each_session_names_its_device_and_keeps_the_raw_user_agent(backend: Backend) {
    const CHROME_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1";
    let app = spawn_app(backend).await;
    let name = unique("ivy");
    app.add_user(&name, "pw").await;
    let desktop = app.login_as(&name, CHROME_LINUX).await;
    let phone = app.login_as(&name, SAFARI_IPHONE).await;
    let script = app.login_as(&name, "curl/8.14.1").await;

    let reply = app.list(&desktop.access).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let list = reply.json.as_array().unwrap();
    let entry = |t: &Tokens| {
        list.iter()
            .find(|e| e["id"] == sid(t).as_str())
            .unwrap()
            .clone()
    };
    assert_eq!(entry(&desktop)["device"], "Chrome 156 on Linux");
    assert_eq!(entry(&desktop)["user_agent"], CHROME_LINUX);
    assert_eq!(entry(&phone)["device"], "Safari on iPhone");
    assert_eq!(entry(&phone)["user_agent"], SAFARI_IPHONE);
    assert_eq!(entry(&script)["device"], "curl 8.14.1");
}

async fn a_capped_session_shows_its_end_and_a_deactivated_user_sees_nothing(backend: Backend) {
    let app = spawn_app_with(backend, &[("SESSION_MAX_LIFETIME", "1h")]).await;
    let name = unique("ivy");
    let user = app.add_user(&name, "pw").await;
    let t = app.login_as(&name, "a").await;
    let list = app.list(&t.access).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let entry = &list.json[0];
    let seconds = |field: &str| {
        let text = entry[field].as_str().unwrap();
        humantime::parse_rfc3339(text)
            .unwrap_or_else(|e| panic!("{field}={text}: {e}"))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let lifetime = seconds("ends_at") - seconds("created");
    assert!(
        (3599..=3601).contains(&lifetime),
        "ends {lifetime} s after it began"
    );

    // Deactivated, the user's own access token no longer lists or ends anything.
    app.store
        .set_user_active(&user.username, false)
        .await
        .unwrap();
    assert_detail(&app.list(&t.access).await, 401, INVALID_ACCESS);
    assert_detail(&app.end(&t.access, &sid(&t)).await, 401, INVALID_ACCESS);
    app.store
        .set_user_active(&user.username, true)
        .await
        .unwrap();
    // Deactivation ended the session for good: re-activation revives none of it.
    assert_detail(&app.list(&t.access).await, 401, INVALID_ACCESS);
    let again = app.login_as(&name, "a").await;
    assert_eq!(app.list(&again.access).await.status, 200, "active again");
}

async fn ending_one_session_leaves_the_others_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("jack");
    app.add_user(&name, "pw").await;
    let a = app.login_as(&name, "a").await;
    let b = app.login_as(&name, "b").await;
    assert_detail(&app.end(&a.access, &sid(&b)).await, 200, SESSION_ENDED);
    // B is refused at once, everywhere; A goes on.
    assert_detail(&app.me_with_cookie(&b.access).await, 401, INVALID_ACCESS);
    assert_detail(
        &app.refresh_with_cookie(&b.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(&app.refresh_with_cookie(&a.refresh).await, 200, REFRESHED);
    let list = app
        .list(
            &app.refresh_with_body(&app.login_as(&name, "c").await.refresh)
                .await
                .tokens()
                .access,
        )
        .await;
    let ids: Vec<&str> = list
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&sid(&a).as_str()) && !ids.contains(&sid(&b).as_str()),
        "{ids:?}"
    );
    // Ending it again: it is no longer there.
    let again = app.end(&list_access(&app, &name).await, &sid(&b)).await;
    assert_detail(&again, 404, NOT_FOUND);
}

async fn list_access(app: &TestApp, name: &str) -> String {
    app.login_as(name, "x").await.access
}

async fn ending_the_current_session_expires_its_cookies(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, t) = app.logged_in().await;
    let reply = Reply::read(
        app.client
            .delete(app.url(&format!("/api/auth/sessions/{}", sid(&t))))
            .header("cookie", format!("access_token={}", t.access))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 200, SESSION_ENDED);
    assert_cookies_expired(&reply);
    assert_detail(
        &app.refresh_with_cookie(&t.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

async fn nobody_can_list_or_end_another_users_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, alice) = app.logged_in().await;
    let (_, mallory) = app.logged_in().await;
    // Mallory's list holds Mallory's session only.
    let list = app.list(&mallory.access).await;
    assert_eq!(list.json.as_array().unwrap().len(), 1);
    assert_eq!(list.json[0]["id"], sid(&mallory).as_str());
    // Alice's id answers exactly as an unknown id does.
    let theirs = app.end(&mallory.access, &sid(&alice)).await;
    let unknown = app
        .end(&mallory.access, "0123456789abcdef0123456789abcdef")
        .await;
    let hostile = app.end(&mallory.access, "x}:s:*").await;
    for reply in [&theirs, &unknown, &hostile] {
        assert_detail(reply, 404, NOT_FOUND);
    }
    assert_eq!(theirs.text, unknown.text);
    assert_detail(
        &app.refresh_with_cookie(&alice.refresh).await,
        200,
        REFRESHED,
    );
    // No token: not provided.
    let anonymous = Reply::read(
        app.client
            .get(app.url("/api/auth/sessions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&anonymous, 401, ACCESS_NOT_PROVIDED);
    let anonymous = Reply::read(
        app.client
            .delete(app.url(&format!("/api/auth/sessions/{}/", sid(&alice))))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&anonymous, 401, ACCESS_NOT_PROVIDED);
}

async fn logout_all_ends_every_session_of_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("kim");
    app.add_user(&name, "pw").await;
    let sessions: Vec<Tokens> = vec![
        app.login_as(&name, "1").await,
        app.login_as(&name, "2").await,
        app.login_as(&name, "3").await,
    ];
    let (_, bystander) = app.logged_in().await;
    // The first device's refresh token was just rotated out (its client lost the answer): within
    // the reuse interval its session is live, so it may still log out everywhere.
    let rotated = app.refresh_with_cookie(&sessions[0].refresh).await.tokens();
    let reply = app.logout_all(&sessions[0].refresh).await;
    assert_detail(&reply, 200, LOGGED_OUT);
    assert_cookies_expired(&reply);
    assert_detail(
        &app.me_with_cookie(&rotated.access).await,
        401,
        INVALID_ACCESS,
    );
    for t in &sessions {
        assert_detail(
            &app.refresh_with_cookie(&t.refresh).await,
            401,
            INVALID_REFRESH,
        );
        assert_detail(&app.me_with_cookie(&t.access).await, 401, INVALID_ACCESS);
    }
    assert_detail(
        &app.refresh_with_cookie(&bystander.refresh).await,
        200,
        REFRESHED,
    );
    // A fresh login afterwards is a new session of its own.
    let fresh = app.login_as(&name, "4").await;
    assert_eq!(
        app.list(&fresh.access).await.json.as_array().unwrap().len(),
        1
    );
}

async fn a_retired_refresh_token_cannot_log_the_user_out_everywhere(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "0")]).await;
    let name = unique("lee");
    app.add_user(&name, "pw").await;
    let phone = app.login_as(&name, "phone").await;
    // The laptop rotates; a stolen copy of its old refresh token is replayed, reuse detection
    // ends the laptop's session, and the thief is left holding a dead token.
    let stolen = app.login_as(&name, "laptop").await;
    let pending = app.refresh_with_cookie(&stolen.refresh).await;
    assert_detail(&pending, 200, REFRESHED);
    assert_detail(
        &app.refresh_with_cookie(&pending.tokens().refresh).await,
        200,
        REFRESHED,
    );
    assert_detail(
        &app.refresh_with_cookie(&stolen.refresh).await,
        401,
        INVALID_REFRESH,
    );
    let reply = app.logout_all(&stolen.refresh).await;
    assert_detail(&reply, 200, LOGGED_OUT);
    assert_cookies_expired(&reply);
    // The dead token ended nothing: the phone's session lives on.
    assert_eq!(app.me_with_cookie(&phone.access).await.status, 200);
    assert_detail(
        &app.refresh_with_cookie(&phone.refresh).await,
        200,
        REFRESHED,
    );
}

async fn a_revoked_sessions_tokens_are_refused_on_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, t) = app.logged_in().await;
    assert_detail(&app.logout_with_cookie(&t.refresh).await, 200, LOGGED_OUT);
    assert_detail(
        &app.refresh_with_cookie(&t.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.refresh_with_body(&t.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(&app.me_with_cookie(&t.access).await, 401, INVALID_ACCESS);
    assert_detail(&app.list(&t.access).await, 401, INVALID_ACCESS);
    assert_detail(&app.end(&t.access, &sid(&t)).await, 401, INVALID_ACCESS);
    let blacklisted = json!({"detail": "Token is blacklisted", "code": "token_not_valid"});
    for (path, body) in [
        ("/api/token/refresh/", json!({"refresh": t.refresh})),
        ("/api/token/verify/", json!({"token": t.refresh})),
        ("/api/token/verify/", json!({"token": t.access})),
        ("/api/token/blacklist/", json!({"refresh": t.refresh})),
    ] {
        let reply = app.post_json(path, &body).await;
        assert_eq!((reply.status, &reply.json), (401, &blacklisted), "{path}");
    }
}

async fn a_logout_racing_a_refresh_never_leaves_the_session_alive(backend: Backend) {
    let app = spawn_app_with(backend, &[("WORKERS", "2")]).await;
    for _ in 0..15 {
        let (_, t) = app.logged_in().await;
        let (refreshed, logged_out) = tokio::join!(
            app.refresh_with_cookie(&t.refresh),
            app.logout_with_cookie(&t.refresh)
        );
        assert_detail(&logged_out, 200, LOGGED_OUT);
        // Whichever ran first, nothing of the session works afterwards.
        assert_detail(
            &app.refresh_with_cookie(&t.refresh).await,
            401,
            INVALID_REFRESH,
        );
        if refreshed.status == 200 {
            let next = refreshed.tokens();
            assert_detail(
                &app.refresh_with_cookie(&next.refresh).await,
                401,
                INVALID_REFRESH,
            );
            assert_detail(&app.me_with_cookie(&next.access).await, 401, INVALID_ACCESS);
        } else {
            assert_detail(&refreshed, 401, INVALID_REFRESH);
        }
    }
}

async fn a_cross_site_session_deletion_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, victim) = app.logged_in().await;
    let (_, other) = app.logged_in().await;
    let reply = Reply::read(
        app.client
            .delete(app.url(&format!("/api/auth/sessions/{}/", sid(&victim))))
            .header("cookie", format!("access_token={}", victim.access))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 403, CSRF_FAILED);
    assert_detail(
        &app.refresh_with_cookie(&victim.refresh).await,
        200,
        REFRESHED,
    );
    // A bearer token is no ambient credential: no CSRF check.
    let reply = Reply::read(
        app.client
            .delete(app.url(&format!("/api/auth/sessions/{}/", sid(&other))))
            .header("authorization", format!("Bearer {}", other.access))
            .header("origin", "https://elsewhere.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 200, SESSION_ENDED);
}

async fn the_store_forgets_expired_sessions_by_itself(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("REFRESH_TOKEN_LIFETIME", "2s"),
            ("ACCESS_TOKEN_LIFETIME", "1s"),
        ],
    )
    .await;
    let name = unique("many");
    let user = app.add_user(&name, "pw").await;
    // A few sessions the long way: rotated (blacklist entries), logged out (revoked records)...
    for _ in 0..3 {
        let t = app.login_as(&name, "browser").await;
        let pending = app.refresh_with_cookie(&t.refresh).await.tokens();
        // Presenting the successor retires its parent (a blacklist entry).
        let next = app.refresh_with_cookie(&pending.refresh).await.tokens();
        app.logout_with_cookie(&next.refresh).await;
    }
    // ...and a thousand more straight into the store (with time to spare on a loaded machine).
    let exp = now_s() + 6;
    for _ in 0..1000 {
        app.store
            .create_session(&NewSession {
                user_id: user.id.clone(),
                sid: SessionId::new_random(),
                client: ClientInfo::default(),
                refresh: RefreshClaims {
                    jti: Jti::new_random(),
                    iat: now_s(),
                    exp,
                },
                end: None,
                remember: true,
                leeway: 0,
            })
            .await
            .unwrap();
    }
    let before = app.store.session_footprint(&user.id).await.unwrap();
    assert!(before > 1000, "{before} entries before expiry");
    assert_eq!(app.store.list_sessions(&user.id).await.unwrap().len(), 1000);
    while now_s() <= exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give Redis's active expiry a moment; nothing is flushed by hand.
    let mut after = usize::MAX;
    for _ in 0..20 {
        after = app.store.session_footprint(&user.id).await.unwrap();
        if after == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(after, 0, "entries left after every session expired");
}
