//! Rotation commits on use (SPEC 4): the pending successor, the reuse interval counted from each
//! token's own retirement, reuse detection, and honest clients that are never logged out.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    racing_refreshes_of_one_token_all_get_its_one_pending_successor,
    a_lost_response_is_answered_with_the_same_successor_however_much_later,
    presenting_the_successor_retires_its_parent_which_is_forgiven_within_the_interval,
    any_ancestor_retired_within_the_interval_is_forgiven,
    a_retired_token_after_its_interval_revokes_the_whole_session,
    the_interval_counts_from_the_tokens_own_retirement_and_is_never_extended,
    a_forgiven_replay_carries_a_fresh_access_token_that_opens_me,
    a_token_its_session_never_issued_is_reuse,
    reuse_in_one_session_leaves_other_sessions_alone,
    without_blacklisting_a_rotated_out_token_stays_valid,
    five_threads_sharing_one_token_pair_are_never_logged_out,
);

/// Refreshes by cookie and returns the new pair, asserting a 200.
async fn rotate(app: &TestApp, refresh: &str) -> Tokens {
    let reply = app.refresh_with_cookie(refresh).await;
    assert_detail(&reply, 200, REFRESHED);
    reply.tokens()
}

async fn racing_refreshes_of_one_token_all_get_its_one_pending_successor(backend: Backend) {
    let app = spawn_app_with(backend, &[("WORKERS", "2")]).await;
    let (_, tokens) = app.logged_in().await;
    let replies = join_all((0..25).map(|i| {
        let app = &app;
        let token = tokens.refresh.clone();
        async move {
            if i % 2 == 0 {
                app.refresh_with_cookie(&token).await
            } else {
                app.refresh_with_body(&token).await
            }
        }
    }))
    .await;
    let mut successors = HashSet::new();
    let mut access_jtis = HashSet::new();
    for reply in &replies {
        assert_detail(reply, 200, REFRESHED);
        let t = reply.tokens();
        successors.insert(t.refresh);
        access_jtis.insert(claims_of(&t.access)["jti"].as_str().unwrap().to_owned());
    }
    assert_eq!(successors.len(), 1, "exactly one successor for every racer");
    assert_eq!(
        access_jtis.len(),
        25,
        "each answer a freshly issued access token"
    );
    let successor = successors.into_iter().next().unwrap();
    assert_ne!(successor, tokens.refresh);
    // The successor is presented: it rotates normally, and nobody was taken for a thief.
    let next = rotate(&app, &successor).await;
    rotate(&app, &next.refresh).await;
}

async fn a_lost_response_is_answered_with_the_same_successor_however_much_later(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "1s")]).await;
    let (_, tokens) = app.logged_in().await;
    // The answer is lost (a dropped Set-Cookie, a killed app): the client keeps its token.
    let lost = rotate(&app, &tokens.refresh).await;
    // Well past the reuse interval, the same token is still current and gets the same successor.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = rotate(&app, &tokens.refresh).await;
    assert_eq!(again.refresh, lost.refresh, "the same pending successor");
    assert_ne!(again.access, lost.access, "a fresh access token");
    assert_eq!(app.me_with_cookie(&again.access).await.status, 200);
    let next = rotate(&app, &again.refresh).await;
    assert_eq!(app.me_with_cookie(&next.access).await.status, 200);
}

async fn presenting_the_successor_retires_its_parent_which_is_forgiven_within_the_interval(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (_, t0) = app.logged_in().await;
    let t1 = rotate(&app, &t0.refresh).await;
    let t2 = rotate(&app, &t1.refresh).await;
    assert_ne!(t2.refresh, t1.refresh);
    // t0 is retired now; inside the interval it is answered with the session's newest token.
    let replay = rotate(&app, &t0.refresh).await;
    assert_eq!(replay.refresh, t2.refresh);
    // The newest token rotates on as usual.
    let t3 = rotate(&app, &t2.refresh).await;
    assert_ne!(t3.refresh, t2.refresh);
}

async fn any_ancestor_retired_within_the_interval_is_forgiven(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, t0) = app.logged_in().await;
    let t1 = rotate(&app, &t0.refresh).await;
    let t2 = rotate(&app, &t1.refresh).await;
    let t3 = rotate(&app, &t2.refresh).await;
    // A slow tab holding a token two rotations old is not a thief.
    for old in [&t0.refresh, &t1.refresh] {
        assert_eq!(rotate(&app, old).await.refresh, t3.refresh);
    }
    rotate(&app, &t3.refresh).await;
}

async fn a_retired_token_after_its_interval_revokes_the_whole_session(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "1s")]).await;
    let (_, t0) = app.logged_in().await;
    let t1 = rotate(&app, &t0.refresh).await;
    let t2 = rotate(&app, &t1.refresh).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The thief (or the victim) presents the retired token: the family ends.
    let reply = app.refresh_with_cookie(&t0.refresh).await;
    assert_detail(&reply, 401, INVALID_REFRESH);
    assert_cookies_expired(&reply);
    // The newest tokens, current and pending, stop working too, at once.
    for token in [&t1.refresh, &t2.refresh] {
        assert_detail(&app.refresh_with_cookie(token).await, 401, INVALID_REFRESH);
    }
    assert_detail(&app.me_with_cookie(&t2.access).await, 401, INVALID_ACCESS);
    assert_eq!(
        app.metric("refreshd_refreshes_total{outcome=\"reuse_revoked\"}")
            .await,
        1
    );
}

async fn the_interval_counts_from_the_tokens_own_retirement_and_is_never_extended(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "2s")]).await;
    let (_, t0) = app.logged_in().await;
    // Issued long before its retirement: the interval does not count from the issue.
    let t1 = rotate(&app, &t0.refresh).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t2 = rotate(&app, &t1.refresh).await;
    // Replays inside the interval succeed, and none of them extends it.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(rotate(&app, &t0.refresh).await.refresh, t2.refresh);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_detail(
        &app.refresh_with_cookie(&t0.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.refresh_with_cookie(&t2.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

async fn a_forgiven_replay_carries_a_fresh_access_token_that_opens_me(backend: Backend) {
    // The access lifetime is shorter than the reuse interval. Two seconds, not one: times are
    // whole seconds, so a token minted late in a second with one second to live may be expired
    // by the next request.
    let app = spawn_app_with(
        backend,
        &[
            ("ACCESS_TOKEN_LIFETIME", "2s"),
            ("REFRESH_TOKEN_REUSE_INTERVAL", "10s"),
        ],
    )
    .await;
    let (_, t0) = app.logged_in().await;
    let t1 = rotate(&app, &t0.refresh).await;
    let t2 = rotate(&app, &t1.refresh).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_detail(&app.me_with_cookie(&t2.access).await, 401, INVALID_ACCESS);
    // A forgiven replay (t0 retired) and a repeated answer (t2's pending) both carry an access
    // token that works now.
    for presented in [&t0.refresh, &t1.refresh] {
        let replay = rotate(&app, presented).await;
        let me = app.me_with_cookie(&replay.access).await;
        assert_eq!(me.status, 200, "{}", me.text);
        let exp = claims_of(&replay.access)["exp"].as_u64().unwrap();
        assert!(exp > now_s(), "an access token that is not yet expired");
    }
}

async fn a_token_its_session_never_issued_is_reuse(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, t0) = app.logged_in().await;
    let mut forged = claims_of(&t0.refresh);
    forged["jti"] = serde_json::json!(uuid::Uuid::new_v4().simple().to_string());
    let forged = sign_with(test_key(), jsonwebtoken::Algorithm::HS256, &forged);
    // Validly signed, of this session, but never issued by it: only a copy of the key or a lost
    // store could make one. The session ends.
    assert_detail(
        &app.refresh_with_cookie(&forged).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.refresh_with_cookie(&t0.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

async fn reuse_in_one_session_leaves_other_sessions_alone(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "0")]).await;
    let name = unique("gina");
    app.add_user(&name, "pw").await;
    let laptop = app.login(&name, "pw").await.tokens();
    let phone = app.login(&name, "pw").await.tokens();
    let laptop1 = rotate(&app, &laptop.refresh).await;
    let laptop2 = rotate(&app, &laptop1.refresh).await;
    assert_detail(
        &app.refresh_with_cookie(&laptop.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.refresh_with_cookie(&laptop2.refresh).await,
        401,
        INVALID_REFRESH,
    );
    rotate(&app, &phone.refresh).await;
}

async fn without_blacklisting_a_rotated_out_token_stays_valid(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("BLACKLIST_AFTER_ROTATION", "false"),
            ("REFRESH_TOKEN_REUSE_INTERVAL", "0"),
        ],
    )
    .await;
    let (_, t0) = app.logged_in().await;
    let t1 = rotate(&app, &t0.refresh).await;
    let t2 = rotate(&app, &t1.refresh).await;
    // SimpleJWT's behaviour with BLACKLIST_AFTER_ROTATION=False: the old token still refreshes.
    assert_eq!(rotate(&app, &t0.refresh).await.refresh, t2.refresh);
    rotate(&app, &t2.refresh).await;
    // Logout still ends the session for every token in it.
    assert_detail(&app.logout_with_cookie(&t2.refresh).await, 200, LOGGED_OUT);
    assert_detail(
        &app.refresh_with_cookie(&t0.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

/// Five threads of one client sharing one cookie jar, each refreshing with whatever the jar holds
/// and storing what it gets back, as a `requests.Session` shared by a thread pool does.
async fn five_threads_sharing_one_token_pair_are_never_logged_out(backend: Backend) {
    let app = Arc::new(spawn_app_with(backend, &[("WORKERS", "2")]).await);
    let (_, tokens) = app.logged_in().await;
    let jar = Arc::new(Mutex::new(tokens));
    let threads = (0..5).map(|_| {
        let app = app.clone();
        let jar = jar.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..20 {
                let held = jar.lock().unwrap().refresh.clone();
                let reply = app.refresh_with_cookie(&held).await;
                statuses.push(reply.status);
                if reply.status == 200 {
                    *jar.lock().unwrap() = reply.tokens();
                }
            }
            statuses
        })
    });
    for statuses in join_all(threads).await {
        assert!(
            statuses.unwrap().iter().all(|s| *s == 200),
            "a refresh of an honest client failed"
        );
    }
    let held = jar.lock().unwrap().clone();
    assert_eq!(app.me_with_cookie(&held.access).await.status, 200);
    rotate(&app, &held.refresh).await;
    assert_eq!(
        app.metric("refreshd_refreshes_total{outcome=\"reuse_revoked\"}")
            .await,
        0
    );
}
