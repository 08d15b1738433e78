//! Beside a Django app: users carrying Django's password hashes log in, and their first login
//! replaces the hash with refreshd's own; failures cost the same whatever the hash.

use std::time::{Duration, Instant};

use refreshd::domain::{User, UserId, Username};

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    each_django_hash_logs_in_and_is_replaced_by_argon2id_at_the_first_login,
    a_failure_takes_as_long_whatever_the_hash_and_costs_one_check,
);

const PASSWORD: &str = "correct horse \u{fc}";

/// Made by Django 5.2's hashers for PASSWORD, with low work factors so that the tests are quick
/// (the interop tests check Django's defaults end to end).
const HASHES: &[(&str, &str)] = &[
    (
        "pbkdf2_sha256",
        "pbkdf2_sha256$1000$saltsaltsalt$z7ra2+XqzhrNw4lcriWCBBUiNujmV4W08bZ3yCqcO3o=",
    ),
    (
        "pbkdf2_sha1",
        "pbkdf2_sha1$1000$saltsaltsalt$AfgtMrEevVW2zUMSbypJIm7ZKYk=",
    ),
    (
        "argon2id",
        "argon2$argon2id$v=19$m=64,t=1,p=2$c2FsdHNhbHRzYWx0$Kk2wmSFBS89ne/8gUGj1g7zevF1z/jXnAXVA8PfOPkc",
    ),
    (
        "argon2i",
        "argon2$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$6ULshmW9PKM2UwyQNOPQMkSHwnBZ/ZHj77rD7Exz9w8",
    ),
    (
        "bcrypt_sha256",
        "bcrypt_sha256$$2b$04$x1Xce5AplLqNIzW09hVBLutrd8b8szYvXfoZwSbGbBUEot/aBqccu",
    ),
    (
        "bcrypt",
        "bcrypt$$2b$04$1ZqCbsEzomiLyAF0K/Wm/OSNzmpJTxqea/VxUbGO9R38EUZbxl0p2",
    ),
    (
        "scrypt",
        "scrypt$1024$saltsaltsalt$8$1$hLSKvYa0MYg8+Ba0b69UlRMzeWM8WUU/thQUvOyerqwgBiaJdKqx/vQZwwRQrDfPojDGfAjs8N27yrinMGfgdw==",
    ),
];

/// A user as an import leaves it: Django's hash, stored as it is.
async fn add_django_user(app: &TestApp, hash: &str) -> User {
    let user = User {
        id: UserId::parse(&unique("5")).unwrap(),
        username: Username::parse(&unique("dj")).unwrap(),
        password_hash: hash.to_owned(),
        is_active: true,
    };
    app.store.add_user(&user).await.unwrap();
    user
}

async fn stored_hash(app: &TestApp, user: &User) -> String {
    app.store
        .user_by_username(&user.username)
        .await
        .unwrap()
        .unwrap()
        .password_hash
}

async fn each_django_hash_logs_in_and_is_replaced_by_argon2id_at_the_first_login(backend: Backend) {
    let app = spawn_app(backend).await;
    for (kind, hash) in HASHES {
        let user = add_django_user(&app, hash).await;
        let name = user.username.as_str();
        assert_detail(
            &app.login(name, "correct horse u").await,
            401,
            BAD_CREDENTIALS,
        );
        assert_eq!(
            stored_hash(&app, &user).await,
            *hash,
            "{kind}: a failure changes nothing"
        );
        assert_detail(&app.login(name, PASSWORD).await, 200, LOGGED_IN);
        let upgraded = stored_hash(&app, &user).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$"),
            "{kind}: {upgraded}"
        );
        // The new hash holds the same password, and only it.
        assert_detail(&app.login(name, PASSWORD).await, 200, LOGGED_IN);
        assert_eq!(
            stored_hash(&app, &user).await,
            upgraded,
            "{kind}: upgraded once"
        );
        assert_detail(
            &app.login(name, "correct horse u").await,
            401,
            BAD_CREDENTIALS,
        );
    }
    // Django's unusable password never logs in.
    let user = add_django_user(&app, "!GkXvc7EG9HrYtqg4iMjV569AcR37w8jHzHnVAziG").await;
    for password in ["x", "!GkXvc7EG9HrYtqg4iMjV569AcR37w8jHzHnVAziG", PASSWORD] {
        assert_detail(
            &app.login(user.username.as_str(), password).await,
            401,
            BAD_CREDENTIALS,
        );
    }
}

async fn a_failure_takes_as_long_whatever_the_hash_and_costs_one_check(backend: Backend) {
    let app = spawn_app(backend).await;
    // 100 000 iterations: far slower than refreshd's argon2id.
    let slow = add_django_user(
        &app,
        "pbkdf2_sha256$100000$saltsaltsalt$0NeK7Jo3o5blWbDQxcyvLyWV7846uCM6Ems904sXJW4=",
    )
    .await;
    let checks = || app.metric("refreshd_password_checks_total");
    let timed = |name: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            assert_detail(&app.login(&name, "wrong").await, 401, BAD_CREDENTIALS);
            started.elapsed()
        }
    };
    let before = checks().await;
    let wrong_password = timed(slow.username.as_str().to_owned()).await;
    let unknown_user = timed(unique("nobody")).await;
    let fast = add_django_user(&app, HASHES[5].1).await;
    let fast_hash = timed(fast.username.as_str().to_owned()).await;
    assert_eq!(
        checks().await,
        before + 3,
        "one verification per failed login"
    );
    // The failures that follow are held to the time of the slowest.
    for (what, took) in [("unknown user", unknown_user), ("bcrypt cost 4", fast_hash)] {
        assert!(
            took + Duration::from_millis(20) >= wrong_password.mul_f64(0.7),
            "{what} took {took:?}, a wrong PBKDF2 password {wrong_password:?}"
        );
    }
}
