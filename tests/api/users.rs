//! Users in the store: a name and an id are each taken once, however many adds race, and an add
//! that stopped part-way leaves nothing that blocks the next one; a new password or a deletion
//! ends the user's sessions and refuses every token issued before; an import is idempotent.

use refreshd::domain::{UserId, Username};
use refreshd::store::StoreError;

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    racing_adds_of_one_username_leave_exactly_one_user,
    an_id_is_taken_once_and_a_refused_add_leaves_its_name_free,
    a_new_password_ends_every_session_and_refuses_older_tokens,
    a_deleted_user_is_an_invalid_user_and_its_id_stays_cut_off,
    an_import_is_idempotent_and_keeps_a_hash_upgraded_at_login,
);

/// A token minted by a Django app sharing the key, issued `ago` seconds back.
fn foreign(token_type: &str, user_id: &str, ago: u64) -> String {
    sign_with(
        test_key(),
        jsonwebtoken::Algorithm::HS256,
        &serde_json::json!({
            "token_type": token_type, "exp": now_s() + 3600, "iat": now_s() - ago,
            "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": user_id,
        }),
    )
}

async fn a_new_password_ends_every_session_and_refuses_older_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, tokens) = app.logged_in().await;
    // Foreign tokens issued before the change, one a second earlier (not the store's epoch: that
    // of the in-process store is its start).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let django_access = foreign("access", user.id.as_str(), 1);
    let django_refresh = foreign("refresh", user.id.as_str(), 1);
    let hash = refreshd::auth::passwords::hash_password("new-pw-9");
    let ended = app.store.set_password(&user.username, &hash).await.unwrap();
    assert_eq!(ended, Some(1));
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
    assert_detail(
        &app.me_with_cookie(&django_access).await,
        401,
        INVALID_ACCESS,
    );
    assert_detail(
        &app.refresh_with_body(&django_refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.login(user.username.as_str(), "pw-1234").await,
        401,
        BAD_CREDENTIALS,
    );
    assert_detail(
        &app.login(user.username.as_str(), "new-pw-9").await,
        200,
        LOGGED_IN,
    );
    let nobody = Username::parse(&unique("ghost")).unwrap();
    assert_eq!(app.store.set_password(&nobody, &hash).await.unwrap(), None);
}

async fn a_deleted_user_is_an_invalid_user_and_its_id_stays_cut_off(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, tokens) = app.logged_in().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let django_access = foreign("access", user.id.as_str(), 1);
    assert_eq!(
        app.store.delete_user(&user.username).await.unwrap(),
        Some(1)
    );
    assert_eq!(app.store.delete_user(&user.username).await.unwrap(), None);
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        401,
        INVALID_TOKEN_USER,
    );
    assert_detail(
        &app.me_with_cookie(&tokens.access).await,
        401,
        INVALID_ACCESS,
    );
    let verify = app
        .post_json(
            "/api/token/verify/",
            &serde_json::json!({"token": django_access}),
        )
        .await;
    assert_eq!(
        verify.json["detail"], NO_ACTIVE_ACCOUNT_FOR_TOKEN,
        "{}",
        verify.text
    );
    assert_detail(
        &app.login(user.username.as_str(), "pw-1234").await,
        401,
        BAD_CREDENTIALS,
    );
    assert!(
        app.store
            .list_users()
            .await
            .unwrap()
            .iter()
            .all(|u| u.id != user.id)
    );
    // The name is free again, and the id too; a token from before the deletion is not.
    let again = app
        .add_user_with_id(user.username.as_str(), "pw-2", Some(user.id.as_str()))
        .await;
    assert_eq!(again.id, user.id);
    assert_detail(
        &app.me_with_cookie(&django_access).await,
        401,
        INVALID_ACCESS,
    );
    // One issued in a later second than the deletion stands.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        app.me_with_cookie(&foreign("access", user.id.as_str(), 0))
            .await
            .status,
        200
    );
}

async fn an_import_is_idempotent_and_keeps_a_hash_upgraded_at_login(backend: Backend) {
    use refreshd::store::Imported;
    let app = spawn_app(backend).await;
    let django_hash = "pbkdf2_sha1$1000$saltsaltsalt$AfgtMrEevVW2zUMSbypJIm7ZKYk=";
    let mut u = user(&unique("imp"), &unique("4"));
    u.password_hash = django_hash.into();
    assert_eq!(app.store.import_user(&u).await.unwrap(), Imported::Created);
    assert_eq!(app.store.import_user(&u).await.unwrap(), Imported::Updated);
    let name = u.username.as_str().to_owned();
    let tokens = app.login(&name, "correct horse \u{fc}").await.tokens();
    let stored = || async {
        app.store
            .user_by_username(&u.username)
            .await
            .unwrap()
            .unwrap()
    };
    let upgraded = stored().await.password_hash;
    assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
    // A re-run with the same Django hash leaves the upgraded one alone.
    assert_eq!(app.store.import_user(&u).await.unwrap(), Imported::Updated);
    assert_eq!(stored().await.password_hash, upgraded);
    assert_eq!(app.me_with_cookie(&tokens.access).await.status, 200);
    // Renamed and made inactive in Django: one user still, under the new name, sessions ended.
    let mut renamed = u.clone();
    renamed.username = Username::parse(&unique("imp-renamed")).unwrap();
    renamed.is_active = false;
    assert_eq!(
        app.store.import_user(&renamed).await.unwrap(),
        Imported::Updated
    );
    assert!(
        app.store
            .user_by_username(&u.username)
            .await
            .unwrap()
            .is_none()
    );
    let now = app
        .store
        .user_by_username(&renamed.username)
        .await
        .unwrap()
        .unwrap();
    assert!(!now.is_active);
    assert_eq!(now.password_hash, upgraded);
    renamed.is_active = true;
    app.store.import_user(&renamed).await.unwrap();
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        401,
        INVALID_REFRESH,
    );
    // A name another id holds is refused, and changes nothing.
    let mut clash = user(renamed.username.as_str(), &unique("4"));
    clash.password_hash = django_hash.into();
    assert_eq!(
        app.store.import_user(&clash).await,
        Err(StoreError::UsernameTaken)
    );
    assert_eq!(
        app.store
            .user_by_username(&renamed.username)
            .await
            .unwrap()
            .unwrap()
            .id,
        renamed.id
    );
    // A new hash from Django (a password changed there) replaces the one here.
    let mut changed = renamed.clone();
    changed.password_hash =
        "pbkdf2_sha256$1000$saltsaltsalt$z7ra2+XqzhrNw4lcriWCBBUiNujmV4W08bZ3yCqcO3o=".into();
    app.store.import_user(&changed).await.unwrap();
    assert_eq!(
        app.store
            .user_by_username(&changed.username)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        changed.password_hash
    );
}

fn user(name: &str, id: &str) -> refreshd::domain::User {
    refreshd::domain::User {
        id: UserId::parse(id).unwrap(),
        username: Username::parse(name).unwrap(),
        // Hashing is not what is tested; any PHC string will do.
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        is_active: true,
    }
}

async fn racing_adds_of_one_username_leave_exactly_one_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("race");
    let ids: Vec<String> = (0..12).map(|i| unique(&format!("id{i}"))).collect();
    let results = futures_util::future::join_all(ids.iter().map(|id| {
        let store = app.store.clone();
        let u = user(&name, id);
        async move { store.add_user(&u).await }
    }))
    .await;
    let winners: Vec<&String> = ids
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        assert!(
            matches!(r, Ok(()) | Err(StoreError::UsernameTaken)),
            "{r:?}"
        );
    }
    let found = app
        .store
        .user_by_username(&Username::parse(&name).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id.as_str(), winners[0].as_str());
    let listed = app.store.list_users().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .filter(|u| u.username.as_str() == name)
            .count(),
        1
    );
}

async fn an_id_is_taken_once_and_a_refused_add_leaves_its_name_free(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = unique("id");
    let first = unique("first");
    let second = unique("second");
    app.store.add_user(&user(&first, &id)).await.unwrap();
    assert!(matches!(
        app.store.add_user(&user(&second, &id)).await,
        Err(StoreError::IdTaken)
    ));
    assert!(matches!(
        app.store.add_user(&user(&first, &unique("other"))).await,
        Err(StoreError::UsernameTaken)
    ));
    // The refused name was not kept: it can be added with a free id.
    app.store
        .add_user(&user(&second, &unique("id")))
        .await
        .unwrap();
}

/// A claim left by an add that stopped before writing the record lapses by itself, and a user
/// whose add stopped before it was listed is listed by the next attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_that_stopped_part_way_blocks_nothing_for_long() {
    use redis::AsyncCommands;
    let app = spawn_app(Backend::Redis).await;
    let mut redis = redis_conn(app.redis_url.as_deref().unwrap()).await;
    let name = unique("stopped");
    // As if an add had claimed the name and died: a claim with a (here short) lease, no record.
    let _: () = redis::cmd("SET")
        .arg(format!("refreshd:username:{name}"))
        .arg("ghost")
        .arg("PX")
        .arg(300)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(matches!(
        app.store.add_user(&user(&name, &unique("id"))).await,
        Err(StoreError::UsernameTaken)
    ));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let id = unique("id");
    app.store.add_user(&user(&name, &id)).await.unwrap();
    let ttl: i64 = redis
        .pttl(format!("refreshd:username:{name}"))
        .await
        .unwrap();
    assert_eq!(ttl, -1, "a finished add keeps its name for good");

    // As if an add had stopped after the record but before the listing.
    let _: i64 = redis.srem("refreshd:users", &id).await.unwrap();
    let listed = |users: Vec<refreshd::domain::User>| users.iter().any(|u| u.id.as_str() == id);
    assert!(!listed(app.store.list_users().await.unwrap()));
    assert!(matches!(
        app.store.add_user(&user(&name, &unique("id"))).await,
        Err(StoreError::UsernameTaken)
    ));
    assert!(listed(app.store.list_users().await.unwrap()), "repaired");

    // As if an add with `--id` had written the record and died before keeping its claim: the
    // retry of the same user, same id, completes; another name cannot take that id.
    let name = unique("retried");
    let id = unique("id");
    let _: () = redis
        .hset_multiple(
            format!("refreshd:{{u:{id}}}:user"),
            &[("id", id.as_str()), ("username", name.as_str())],
        )
        .await
        .unwrap();
    assert!(matches!(
        app.store.add_user(&user(&unique("thief"), &id)).await,
        Err(StoreError::IdTaken)
    ));
    app.store.add_user(&user(&name, &id)).await.unwrap();
    let found = app
        .store
        .user_by_username(&Username::parse(&name).unwrap())
        .await
        .unwrap()
        .expect("the retried user exists");
    assert_eq!(found.id.as_str(), id);
}
