//! Rotation, the reuse interval and reuse detection (theft handling).

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    concurrent_refreshes_of_one_token_all_succeed_with_one_rotation,
    a_replay_inside_the_interval_gets_the_same_successor,
    a_replay_after_the_interval_revokes_the_whole_session,
    an_older_ancestor_is_reuse_even_inside_the_interval,
    the_interval_counts_from_the_first_rotation_and_is_never_extended,
    reuse_in_one_session_leaves_other_sessions_alone,
    without_blacklisting_a_rotated_out_token_stays_valid,
);

async fn concurrent_refreshes_of_one_token_all_succeed_with_one_rotation(backend: Backend) {
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
    let mut accesses = HashSet::new();
    for reply in &replies {
        assert_detail(reply, 200, REFRESHED);
        let t = reply.tokens();
        successors.insert(t.refresh);
        accesses.insert(t.access);
    }
    assert_eq!(
        successors.len(),
        1,
        "exactly one rotation: every racer got the same successor"
    );
    assert_eq!(accesses.len(), 1, "and the same access token");
    let successor = successors.into_iter().next().unwrap();
    assert_ne!(successor, tokens.refresh);
    // The successor is the session's newest token and rotates normally.
    assert_detail(&app.refresh_with_cookie(&successor).await, 200, REFRESHED);
}

async fn a_replay_inside_the_interval_gets_the_same_successor(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, tokens) = app.logged_in().await;
    let first = app.refresh_with_cookie(&tokens.refresh).await.tokens();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replay = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&replay, 200, REFRESHED);
    assert_eq!(replay.tokens().refresh, first.refresh);
    assert_eq!(replay.tokens().access, first.access);
    // The replay did not revoke anything.
    assert_detail(
        &app.refresh_with_cookie(&first.refresh).await,
        200,
        REFRESHED,
    );
}

async fn a_replay_after_the_interval_revokes_the_whole_session(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "1s")]).await;
    let (_, tokens) = app.logged_in().await;
    let newest = app.refresh_with_cookie(&tokens.refresh).await.tokens();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The thief (or the victim) presents the retired token: the family ends.
    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 401, INVALID_REFRESH);
    assert_cookies_expired(&reply);
    // The newest token, which nobody had used yet, stops working too.
    assert_detail(
        &app.refresh_with_cookie(&newest.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.me_with_cookie(&newest.access).await,
        401,
        INVALID_ACCESS,
    );
}

async fn an_older_ancestor_is_reuse_even_inside_the_interval(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, t0) = app.logged_in().await;
    let t1 = app.refresh_with_cookie(&t0.refresh).await.tokens();
    let t2 = app.refresh_with_cookie(&t1.refresh).await.tokens();
    // t0 is the grandparent of the newest token: only the immediate parent is forgiven.
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
    assert_detail(
        &app.refresh_with_cookie(&t1.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

async fn the_interval_counts_from_the_first_rotation_and_is_never_extended(backend: Backend) {
    let app = spawn_app_with(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "3s")]).await;
    let (_, tokens) = app.logged_in().await;
    let first = app.refresh_with_cookie(&tokens.refresh).await.tokens();
    // Keep replaying inside the interval: each replay succeeds but none extends it.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = app.refresh_with_cookie(&tokens.refresh).await;
        assert_detail(&r, 200, REFRESHED);
        assert_eq!(r.tokens().refresh, first.refresh);
    }
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.refresh_with_cookie(&first.refresh).await,
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
    let laptop2 = app.refresh_with_cookie(&laptop.refresh).await.tokens();
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
    assert_detail(
        &app.refresh_with_cookie(&phone.refresh).await,
        200,
        REFRESHED,
    );
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
    let (_, tokens) = app.logged_in().await;
    let next = app.refresh_with_cookie(&tokens.refresh).await.tokens();
    // SimpleJWT's behaviour with BLACKLIST_AFTER_ROTATION=False: the old token still refreshes.
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        200,
        REFRESHED,
    );
    assert_detail(
        &app.refresh_with_cookie(&next.refresh).await,
        200,
        REFRESHED,
    );
    // Logout still ends the session for every token in it.
    assert_detail(
        &app.logout_with_cookie(&next.refresh).await,
        200,
        LOGGED_OUT,
    );
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        401,
        INVALID_REFRESH,
    );
}
