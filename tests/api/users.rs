//! Adding users in the store: a name and an id are each taken once, however many adds race, and
//! an add that stopped part-way leaves nothing that blocks the next one.

use refreshd::domain::{UserId, Username};
use refreshd::store::StoreError;

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    racing_adds_of_one_username_leave_exactly_one_user,
    an_id_is_taken_once_and_a_refused_add_leaves_its_name_free,
);

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
