//! Many instances on one Redis: two refreshd processes share every session.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_redis_rotate_once_and_share_revocation() {
    // Users are added through the store both processes read.
    let admin = spawn_app(Backend::Redis).await;
    let name = unique("multi");
    admin.add_user(&name, "pw").await;
    let env = [
        ("REDIS_URL", shared_redis_url()),
        ("SIGNING_KEY", test_key().to_owned()),
        ("WORKERS", "2".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = ServerProcess::start(&env);
    let b = ServerProcess::start(&env);
    let client = reqwest::Client::new();
    let login = |server: &ServerProcess| {
        let request = client
            .post(server.url("/api/auth/login/"))
            .json(&json!({"username": name, "password": "pw"}));
        async move { Reply::read(request.send().await.unwrap()).await.tokens() }
    };
    let refresh = |server: &ServerProcess, token: &str| {
        let request = client
            .post(server.url("/api/auth/token/refresh/"))
            .header("cookie", format!("refresh_token={token}"));
        async move { Reply::read(request.send().await.unwrap()).await }
    };

    // One token raced across both processes: one rotation, one successor.
    let t = login(&a).await;
    let replies =
        join_all((0..24).map(|i| refresh(if i % 2 == 0 { &a } else { &b }, &t.refresh))).await;
    for reply in &replies {
        assert_detail(reply, 200, REFRESHED);
    }
    let successor = replies[0].tokens().refresh;
    assert!(
        replies.iter().all(|r| r.tokens().refresh == successor),
        "two rotations happened"
    );

    // Revoked through one, refused by the other, at once.
    let logout = client
        .post(a.url("/api/auth/logout/"))
        .header("cookie", format!("refresh_token={successor}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    assert_detail(&refresh(&b, &successor).await, 401, INVALID_REFRESH);
    let me = client
        .get(b.url("/api/auth/me/"))
        .header(
            "authorization",
            format!("Bearer {}", replies[0].tokens().access),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);

    // A session started on one is refreshed by the other, and back.
    let t = login(&b).await;
    let t = refresh(&a, &t.refresh).await.tokens();
    assert_detail(&refresh(&b, &t.refresh).await, 200, REFRESHED);
}
