//! The Redis store's layout: one sessions hash per user holding packed records, and the upgrade
//! from the previous layout (a hash per session, a key per blacklisted jti, an index), whose
//! sessions keep working. The previous layout is written by its own scripts (`legacy/`, as they
//! were when it was replaced), straight into a Redis the application then uses.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use refreshd::domain::{SessionId, UserId};
use refreshd::store::{SessionRecord, session_record_at};
use serde_json::json;

use crate::helpers::*;

/// The record of a refresh token's session, read behind the application's back, and the time
/// to live of the hash that holds it (ms).
pub async fn record_of(
    conn: &mut redis::aio::MultiplexedConnection,
    refresh: &str,
) -> (Option<SessionRecord>, i64) {
    let c = claims_of(refresh);
    let user = UserId::parse(&json_text(&c["user_id"])).unwrap();
    let sid = SessionId::parse(c["sid"].as_str().unwrap_or(c["jti"].as_str().unwrap())).unwrap();
    let (key, field) = session_record_at(&user, &sid);
    let raw: Option<Vec<u8>> = redis::cmd("HGET")
        .arg(&key)
        .arg(&field)
        .query_async(conn)
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(conn)
        .await
        .unwrap();
    (
        raw.map(|r| SessionRecord::decode(&r).expect("a record of this layout")),
        pttl,
    )
}

/// SimpleJWT's answer for a blacklisted token.
#[track_caller]
fn assert_blacklisted(reply: &Reply) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.json,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
    );
}

fn json_text(v: &serde_json::Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

fn hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A refresh token as this server signs one.
fn refresh_token(user: &str, sid: Option<&str>, jti: &str, iat: u64, exp: u64) -> String {
    let mut claims = json!({"token_type": "refresh", "exp": exp, "iat": iat, "jti": jti,
                            "user_id": user});
    if let Some(sid) = sid {
        claims["sid"] = json!(sid);
    }
    sign_with(test_key(), Algorithm::HS256, &claims)
}

/// When the tokens of the previous version were issued: before the upgrade (and after the
/// store's epoch, which that version set; see `app_after_upgrade`).
fn before_upgrade() -> u64 {
    now_s() - 60
}

fn access_token(user: &str, sid: &str) -> String {
    let iat = before_upgrade();
    sign_with(
        test_key(),
        Algorithm::HS256,
        &json!({"token_type": "access", "exp": iat + 600, "iat": iat, "jti": hex_id(),
                "user_id": user, "sid": sid}),
    )
}

/// The previous layout's scripts, run as its store ran them.
struct Legacy {
    conn: redis::aio::MultiplexedConnection,
    user: String,
}

/// One refresh token of a session: its jti, iat and exp.
#[derive(Clone)]
struct Claims {
    jti: String,
    iat: u64,
    exp: u64,
}

impl Claims {
    fn new() -> Self {
        let iat = before_upgrade();
        Self {
            jti: hex_id(),
            iat,
            exp: iat + 3600,
        }
    }

    fn token(&self, user: &str, sid: Option<&str>) -> String {
        refresh_token(user, sid, &self.jti, self.iat, self.exp)
    }
}

impl Legacy {
    async fn new(redis: &RedisProcess, user: &str) -> Self {
        Self {
            conn: redis_conn(&redis.url()).await,
            user: user.to_owned(),
        }
    }

    fn key(&self, tail: &str) -> String {
        format!("refreshd:{{u:{}}}:{tail}", self.user)
    }

    async fn create(&mut self, sid: &str, first: &Claims) {
        let keep = first.exp * 1000;
        let _: i64 = redis::Script::new(include_str!("legacy/create.lua"))
            .key(self.key(&format!("s:{sid}")))
            .key(self.key("sessions"))
            .arg(sid)
            .arg(&first.jti)
            .arg(first.exp)
            .arg("")
            .arg("0")
            .arg("Legacy browser")
            .arg("10.1.2.3")
            .arg(keep)
            .invoke_async(&mut self.conn)
            .await
            .unwrap();
    }

    /// A refresh as the previous layout answered it (rotation and blacklist on, a 10 s reuse
    /// interval): its kind and the jti it answered with.
    async fn refresh(&mut self, sid: &str, presented: &Claims, next: &Claims) -> (String, String) {
        let reply: Vec<String> = redis::Script::new(include_str!("legacy/refresh.lua"))
            .key(self.key("user"))
            .key(self.key(&format!("s:{sid}")))
            .key(self.key(&format!("bl:{}", presented.jti)))
            .key(self.key("sessions"))
            .arg(&presented.jti)
            .arg(presented.iat)
            .arg(presented.exp)
            .arg("0")
            .arg("1")
            .arg(0)
            .arg("1")
            .arg("1")
            .arg(10_000)
            .arg("")
            .arg(0)
            .arg(&next.jti)
            .arg(next.iat)
            .arg(next.exp)
            .arg("")
            .arg(sid)
            .arg("")
            .arg("")
            .arg(self.key("bl:"))
            .invoke_async(&mut self.conn)
            .await
            .unwrap();
        (reply[0].clone(), reply[1].clone())
    }

    /// A logout of a token minted elsewhere (no sid) that never started a session.
    async fn log_out_foreign(&mut self, token: &Claims) {
        let outcome: String = redis::Script::new(include_str!("legacy/revoke.lua"))
            .key(self.key(&format!("s:{}", token.jti)))
            .key(self.key("sessions"))
            .key(self.key(&format!("bl:{}", token.jti)))
            .arg(&token.jti)
            .arg(&token.jti)
            .arg(token.exp)
            .arg(0)
            .arg("1")
            .arg("0")
            .arg("1")
            .arg(10_000)
            .arg(self.key("s:"))
            .invoke_async(&mut self.conn)
            .await
            .unwrap();
        assert_eq!(outcome, "revoked");
    }

    /// A session of the previous layout rotated once: its login token retired (blacklisted now),
    /// its second token current, its third pending.
    async fn rotated_session(&mut self) -> (String, [Claims; 3]) {
        let sid = hex_id();
        let chain = [Claims::new(), Claims::new(), Claims::new()];
        self.create(&sid, &chain[0]).await;
        assert_eq!(
            self.refresh(&sid, &chain[0], &chain[1]).await,
            ("issued".to_owned(), chain[1].jti.clone())
        );
        assert_eq!(
            self.refresh(&sid, &chain[1], &chain[2]).await,
            ("promoted".to_owned(), chain[2].jti.clone())
        );
        (sid, chain)
    }

    async fn exists(&mut self, tail: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(self.key(tail))
            .query_async::<i64>(&mut self.conn)
            .await
            .unwrap()
            == 1
    }
}

/// This version, started on a Redis the previous version has been using for an hour (its epoch).
async fn app_after_upgrade(redis: &RedisProcess, vars: &[(&str, &str)]) -> TestApp {
    let mut conn = redis_conn(&redis.url()).await;
    let _: () = redis::cmd("SET")
        .arg("refreshd:epoch")
        .arg(now_s() - 3600)
        .query_async(&mut conn)
        .await
        .unwrap();
    app_on(redis, vars).await
}

async fn app_on(redis: &RedisProcess, vars: &[(&str, &str)]) -> TestApp {
    let url = redis.url();
    let mut all = vec![("REDIS_URL", url.as_str())];
    all.extend_from_slice(vars);
    spawn_app_with(Backend::Redis, &all).await
}

fn jti_of(reply: &Reply) -> String {
    claims_of(&reply.tokens().refresh)["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_one_packed_record_in_its_users_hash_and_nothing_else() {
    let redis = RedisProcess::start(false);
    let app = app_on(&redis, &[]).await;
    let (user, tokens) = app.logged_in().await;
    let pending = app.refresh_with_cookie(&tokens.refresh).await.tokens();
    let next = app.refresh_with_cookie(&pending.refresh).await.tokens();
    let mut conn = redis_conn(&redis.url()).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("refreshd:{{u:{}}}:*", user.id.as_str()))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut keys: Vec<&str> = keys.iter().map(|k| k.rsplit(':').next().unwrap()).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["s", "user"],
        "the user's record and its sessions hash"
    );

    let (record, pttl) = record_of(&mut conn, &next.refresh).await;
    let record = record.unwrap();
    let jti = |t: &str| claims_of(t)["jti"].as_str().unwrap().to_owned();
    assert_eq!(record.current.unwrap().as_str(), jti(&pending.refresh));
    let successor = record.pending.unwrap();
    assert_eq!(successor.jti.as_str(), jti(&next.refresh));
    assert_eq!(
        successor.exp,
        claims_of(&next.refresh)["exp"].as_u64().unwrap()
    );
    // The login token was retired now, and is remembered with that moment.
    assert_eq!(record.retired.len(), 1);
    assert_eq!(record.retired[0].0.as_str(), jti(&tokens.refresh));
    assert!(record.keep_ms >= successor.exp * 1000);
    assert!(pttl > 0 && pttl as u64 <= record.keep_ms);
    assert!(!record.revoked && record.remember);
    // A hex jti or sid takes 16 bytes, not 32: beside the client's address and user agent, a
    // live record with a pending successor and one retirement takes under 90 bytes.
    let sid = SessionId::parse(claims_of(&next.refresh)["sid"].as_str().unwrap()).unwrap();
    let (key, field) = session_record_at(&user.id, &sid);
    assert_eq!(field.len(), 16);
    let size: usize = redis::cmd("HSTRLEN")
        .arg(&key)
        .arg(&field)
        .query_async(&mut conn)
        .await
        .unwrap();
    let client = record.client_address.len() + record.user_agent.len();
    assert!(
        size - client < 90,
        "{size} bytes, {client} of them the client's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retirement_is_forgotten_after_its_interval_and_the_token_stays_refused() {
    let redis = RedisProcess::start(false);
    let app = app_on(&redis, &[("REFRESH_TOKEN_REUSE_INTERVAL", "1s")]).await;
    let (_, login) = app.logged_in().await;
    let pending = app.refresh_with_cookie(&login.refresh).await.tokens();
    let next = app.refresh_with_cookie(&pending.refresh).await.tokens();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let newest = app.refresh_with_cookie(&next.refresh).await.tokens();
    let mut conn = redis_conn(&redis.url()).await;
    let (record, _) = record_of(&mut conn, &newest.refresh).await;
    let retired: Vec<String> = record
        .unwrap()
        .retired
        .iter()
        .map(|(j, _)| j.as_str().to_owned())
        .collect();
    // The login token's retirement was over and is gone; the one retired just now is kept.
    assert_eq!(
        retired,
        [claims_of(&pending.refresh)["jti"].as_str().unwrap()]
    );
    // Forgotten is not forgiven: the login token is still blacklisted.
    let verify = app
        .post_json("/api/token/verify/", &json!({"token": login.refresh}))
        .await;
    assert_blacklisted(&verify);
    assert_detail(
        &app.refresh_with_body(&login.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.refresh_with_cookie(&newest.refresh).await,
        401,
        INVALID_REFRESH,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_of_the_previous_layout_keeps_working_and_moves_over_at_its_first_refresh() {
    let redis = RedisProcess::start(false);
    let app = app_after_upgrade(&redis, &[]).await;
    let user = app.add_user(&unique("legacy"), "pw").await;
    let id = user.id.as_str();
    let mut legacy = Legacy::new(&redis, id).await;
    let (sid, [login, current, pending]) = legacy.rotated_session().await;
    let access = access_token(id, &sid);

    // Before it moves: its access token works, the user sees it, its retired token is
    // blacklisted and its live ones are not.
    assert_eq!(app.me_with_cookie(&access).await.status, 200);
    let list = Reply::read(
        app.client
            .get(app.url("/api/auth/sessions/"))
            .header("cookie", format!("access_token={access}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let entry = &list.json.as_array().unwrap()[0];
    assert_eq!(entry["id"], sid.as_str());
    assert_eq!(entry["user_agent"], "Legacy browser");
    let verify = |t: String| {
        let app = &app;
        async move {
            app.post_json("/api/token/verify/", &json!({"token": t}))
                .await
        }
    };
    assert_blacklisted(&verify(login.token(id, Some(&sid))).await);
    assert_eq!(verify(current.token(id, Some(&sid))).await.status, 200);

    // The login token, retired within the interval: forgiven with the pending token, and the
    // session moves into the user's sessions hash.
    let reply = app.refresh_with_cookie(&login.token(id, Some(&sid))).await;
    assert_detail(&reply, 200, REFRESHED);
    assert_eq!(jti_of(&reply), pending.jti);
    assert!(!legacy.exists(&format!("s:{sid}")).await, "moved over");
    let mut conn = redis_conn(&redis.url()).await;
    let (record, _) = record_of(&mut conn, &pending.token(id, Some(&sid))).await;
    let record = record.expect("in the sessions hash");
    assert_eq!(record.current.unwrap().as_str(), current.jti);
    assert_eq!(record.user_agent, "Legacy browser");
    assert_eq!(record.client_address, "10.1.2.3");

    // And on it goes: the pending token is promoted, the chain continues, the access token
    // still works, the session is still listed.
    let reply = app
        .refresh_with_cookie(&pending.token(id, Some(&sid)))
        .await;
    assert_detail(&reply, 200, REFRESHED);
    let next = reply.tokens();
    assert_detail(
        &app.refresh_with_cookie(&next.refresh).await,
        200,
        REFRESHED,
    );
    assert_eq!(app.me_with_cookie(&access).await.status, 200);
    assert_eq!(app.me_with_cookie(&next.access).await.status, 200);
    assert_eq!(app.store.list_sessions(&user.id).await.unwrap().len(), 1);
    // A token retired before the upgrade stays retired: past its interval it is reuse.
    assert_blacklisted(&verify(current.token(id, Some(&sid))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_retired_under_the_previous_layout_is_reuse_after_its_interval() {
    let redis = RedisProcess::start(false);
    let app = app_after_upgrade(&redis, &[("REFRESH_TOKEN_REUSE_INTERVAL", "1s")]).await;
    let user = app.add_user(&unique("legacy"), "pw").await;
    let id = user.id.as_str();
    let mut legacy = Legacy::new(&redis, id).await;
    let (sid, [login, current, pending]) = legacy.rotated_session().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The parent of the current token was retired over a second ago: a thief's copy.
    assert_detail(
        &app.refresh_with_cookie(&login.token(id, Some(&sid))).await,
        401,
        INVALID_REFRESH,
    );
    for live in [&current, &pending] {
        assert_detail(
            &app.refresh_with_cookie(&live.token(id, Some(&sid))).await,
            401,
            INVALID_REFRESH,
        );
    }
    assert_eq!(
        app.me_with_cookie(&access_token(id, &sid)).await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_and_ending_every_session_reach_the_previous_layout() {
    let redis = RedisProcess::start(false);
    let app = app_after_upgrade(&redis, &[]).await;
    let user = app.add_user(&unique("legacy"), "pw").await;
    let id = user.id.as_str();
    let mut legacy = Legacy::new(&redis, id).await;
    let (one, [_, current_one, _]) = legacy.rotated_session().await;
    let (two, [_, current_two, pending_two]) = legacy.rotated_session().await;
    let three = hex_id();
    let first_three = Claims::new();
    legacy.create(&three, &first_three).await;
    // A session of the new layout beside them.
    let reply = app.login(user.username.as_str(), "pw").await;
    let fresh = reply.tokens();
    assert_eq!(app.store.list_sessions(&user.id).await.unwrap().len(), 4);

    // A logout with the current token of one: that session ends, the others stand.
    app.logout_with_cookie(&current_one.token(id, Some(&one)))
        .await;
    assert_eq!(
        app.me_with_cookie(&access_token(id, &one)).await.status,
        401
    );
    assert_eq!(
        app.me_with_cookie(&access_token(id, &two)).await.status,
        200
    );
    assert_eq!(app.store.list_sessions(&user.id).await.unwrap().len(), 3);

    // Ending every session reaches the previous layout's index too.
    assert_eq!(app.store.end_all_sessions(&user.id).await.unwrap(), 3);
    for (sid, token) in [
        (&two, current_two.token(id, Some(&two))),
        (&two, pending_two.token(id, Some(&two))),
        (&three, first_three.token(id, Some(&three))),
    ] {
        assert_detail(&app.refresh_with_cookie(&token).await, 401, INVALID_REFRESH);
        assert_eq!(app.me_with_cookie(&access_token(id, sid)).await.status, 401);
    }
    assert_detail(
        &app.refresh_with_cookie(&fresh.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert!(app.store.list_sessions(&user.id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_token_logged_out_under_the_previous_layout_stays_logged_out() {
    let redis = RedisProcess::start(false);
    let app = app_after_upgrade(&redis, &[]).await;
    let user = app.add_user(&unique("legacy"), "pw").await;
    let id = user.id.as_str();
    let mut legacy = Legacy::new(&redis, id).await;
    // Issued by SimpleJWT after the store's epoch, then logged out by the previous version.
    let foreign = Claims::new();
    legacy.log_out_foreign(&foreign).await;
    let token = foreign.token(id, None);
    let verify = app
        .post_json("/api/token/verify/", &json!({"token": token}))
        .await;
    assert_blacklisted(&verify);
    let reply = app.refresh_with_body(&token).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    // With blacklisting off too: what refuses it is its ended session.
    let lenient = app_on(&redis, &[("BLACKLIST_AFTER_ROTATION", "false")]).await;
    let verify = lenient
        .post_json("/api/token/verify/", &json!({"token": token}))
        .await;
    assert_blacklisted(&verify);
    // While one never logged out starts its session at its first refresh, as before.
    let other = Claims::new();
    assert_detail(
        &app.refresh_with_body(&other.token(id, None)).await,
        200,
        REFRESHED,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_layouts_keys_are_counted_until_they_expire() {
    let redis = RedisProcess::start(false);
    let app = app_after_upgrade(&redis, &[]).await;
    let user = app.add_user(&unique("legacy"), "pw").await;
    let mut legacy = Legacy::new(&redis, user.id.as_str()).await;
    let sid = hex_id();
    let now = now_s();
    let short = Claims {
        jti: hex_id(),
        iat: now,
        exp: now + 2,
    };
    legacy.create(&sid, &short).await;
    // Its record and its index.
    assert_eq!(app.store.session_footprint(&user.id).await.unwrap(), 2);
    while now_s() <= short.exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut left = usize::MAX;
    for _ in 0..20 {
        left = app.store.session_footprint(&user.id).await.unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(left, 0);
}

/// An access token names its session: when the session's record is gone (ended and expired, or
/// lost with its key), the token is refused, whatever its own expiry says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_whose_session_record_is_gone_is_refused() {
    let redis = RedisProcess::start(false);
    let app = app_on(&redis, &[]).await;
    // A token from the store's first second could be the previous layout's, which is checked
    // apart; this one must be plainly newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (user, tokens) = app.logged_in().await;
    assert_eq!(app.me_with_cookie(&tokens.access).await.status, 200);
    let sid = SessionId::parse(claims_of(&tokens.access)["sid"].as_str().unwrap()).unwrap();
    let (key, field) = session_record_at(&user.id, &sid);
    let mut conn = redis_conn(&redis.url()).await;
    let removed: i64 = redis::cmd("HDEL")
        .arg(&key)
        .arg(&field)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(removed, 1, "the session's record was there to remove");
    let reply = app.me_with_cookie(&tokens.access).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
}
