//! The command line: `refreshd user ...` against a real Redis, and start-up refusals.

use std::process::{Command, Output};

use crate::helpers::*;

/// Runs the real binary with only the given environment, from an empty directory (so that no
/// developer's .env leaks in).
fn refreshd(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let dir = std::env::temp_dir().join(unique("refreshd-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(&dir),
        stdin.as_bytes(),
    );
    let _ = std::fs::remove_dir_all(dir);
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_added_deactivated_and_activated_from_the_command_line() {
    let url = shared_redis_url();
    let env = [("REDIS_URL", url.as_str())];
    let name = unique("cli");
    let out = refreshd(&["user", "add", &name], &env, "hunter2-secret\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let taken = refreshd(&["user", "add", &name], &env, "x\n");
    assert!(!taken.status.success());
    assert!(
        text(&taken.stderr).contains("is taken"),
        "{}",
        text(&taken.stderr)
    );

    // Logins trim the password, as SimpleJWT does: one that starts or ends with a space could
    // never be typed in, and is refused with the reason.
    for padded in [" leading\n", "trailing \n", "   \n"] {
        let out = refreshd(&["user", "add", &unique("cli-pad")], &env, padded);
        assert!(!out.status.success(), "{padded:?}");
        let err = text(&out.stderr);
        assert!(err.contains("whitespace") || err.contains("empty"), "{err}");
    }

    let mirrored_id = unique("77");
    let other = unique("cli-mirror");
    let out = refreshd(&["user", "add", &other, "--id", &mirrored_id], &env, "pw\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), mirrored_id);
    let dup = refreshd(
        &["user", "add", &unique("cli-dup"), "--id", &mirrored_id],
        &env,
        "pw\n",
    );
    assert!(
        text(&dup.stderr).contains(&format!("id {mirrored_id} is taken")),
        "{}",
        text(&dup.stderr)
    );

    let empty = refreshd(&["user", "add", &unique("cli-empty")], &env, "\n");
    assert!(!empty.status.success());
    assert!(
        text(&empty.stderr).contains("password"),
        "{}",
        text(&empty.stderr)
    );

    let list = text(&refreshd(&["user", "list"], &env, "").stdout);
    assert!(list.contains(&format!("{id}\t{name}\tactive")), "{list}");
    assert!(
        list.contains(&format!("{mirrored_id}\t{other}\tactive")),
        "{list}"
    );

    // The server sees the user; deactivation stops its refreshes at once.
    let app = spawn_app(Backend::Redis).await;
    let tokens = app.login(&name, "hunter2-secret").await.tokens();
    assert_eq!(claims_of(&tokens.refresh)["user_id"], id.as_str());
    let out = refreshd(&["user", "deactivate", &name], &env, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        401,
        INVALID_TOKEN_USER,
    );
    assert_detail(
        &app.login(&name, "hunter2-secret").await,
        401,
        BAD_CREDENTIALS,
    );
    assert!(
        text(&refreshd(&["user", "list"], &env, "").stdout)
            .contains(&format!("{id}\t{name}\tinactive"))
    );
    let out = refreshd(&["user", "activate", &name], &env, "");
    assert!(out.status.success());
    // Deactivation ended the session for good: the old token stays refused.
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        401,
        INVALID_REFRESH,
    );
    let again = app.login(&name, "hunter2-secret").await;
    assert_detail(&again, 200, LOGGED_IN);

    // An operator sees the user's sessions and ends them all.
    let second = app.login(&name, "hunter2-secret").await.tokens();
    let listed = text(&refreshd(&["user", "sessions", &name], &env, "").stdout);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains(claims_of(&second.refresh)["sid"].as_str().unwrap()),
        "{listed}"
    );
    let out = refreshd(&["user", "logout-all", &name], &env, "");
    assert_eq!(
        text(&out.stdout).trim(),
        "2 sessions ended",
        "{}",
        text(&out.stderr)
    );
    assert_detail(
        &app.refresh_with_cookie(&second.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_eq!(
        text(&refreshd(&["user", "sessions", &name], &env, "").stdout),
        ""
    );

    let missing = refreshd(&["user", "deactivate", &unique("ghost")], &env, "");
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no user named"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwd_delete_and_import_say_what_they_did() {
    let url = shared_redis_url();
    let env = [("REDIS_URL", url.as_str())];
    let name = unique("cli-pw");
    let out = refreshd(&["user", "add", &name], &env, "first-pw\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let app = spawn_app(Backend::Redis).await;
    let tokens = app.login(&name, "first-pw").await.tokens();

    let out = refreshd(&["user", "passwd", &name], &env, "second-pw\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("password of {name} changed; 1 sessions ended")
    );
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(&app.login(&name, "first-pw").await, 401, BAD_CREDENTIALS);
    assert_detail(&app.login(&name, "second-pw").await, 200, LOGGED_IN);

    let out = refreshd(&["user", "deactivate", &name], &env, "");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("user {name} deactivated; 1 sessions ended")
    );
    let out = refreshd(&["user", "activate", &name], &env, "");
    assert_eq!(text(&out.stdout).trim(), format!("user {name} activated"));
    let list = text(&refreshd(&["user", "list"], &env, "").stdout);
    assert_eq!(list.lines().next(), Some("ID\tUSERNAME\tSTATE"), "{list}");

    let out = refreshd(&["user", "delete", &name], &env, "");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("user {name} deleted; 0 sessions ended"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&refreshd(&["user", "list"], &env, "").stdout).contains(&name));
    let again = refreshd(&["user", "delete", &name], &env, "");
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("no user named"));

    // An import: one record unreadable, reported by position; exit 1; a re-run updates.
    let (alice, bob) = (unique("imp-a"), unique("imp-b"));
    let (alice_id, bob_id) = (unique("8"), unique("8"));
    let dump = serde_json::json!([
        {"model": "auth.user", "pk": alice_id, "fields": {"username": alice, "is_active": true,
         "password": "pbkdf2_sha256$1000$saltsaltsalt$z7ra2+XqzhrNw4lcriWCBBUiNujmV4W08bZ3yCqcO3o="}},
        {"model": "auth.user", "pk": bob_id, "fields": {"username": bob, "is_active": true,
         "password": "!unusable"}},
        {"model": "auth.user", "fields": {"username": "no-pk", "password": ""}},
    ]);
    let dir = std::env::temp_dir().join(unique("dump"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users.json");
    std::fs::write(&file, dump.to_string()).unwrap();
    let file = file.to_str().unwrap();
    for expected in [
        "imported 2, updated 0, skipped 1",
        "imported 0, updated 2, skipped 1",
    ] {
        let out = refreshd(&["user", "import", "--django", file], &env, "");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), expected, "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("record 3: skipped: no pk"), "{err}");
        assert!(
            err.contains(&format!("record 2 ({bob}): unusable password")),
            "{err}"
        );
    }
    assert_detail(
        &app.login(&alice, "correct horse \u{fc}").await,
        200,
        LOGGED_IN,
    );
    assert_detail(&app.login(&bob, "!unusable").await, 401, BAD_CREDENTIALS);
    // A file that is not a dump changes nothing.
    std::fs::write(dir.join("bad.json"), "{\"not\": \"a dump\"}").unwrap();
    let out = refreshd(
        &[
            "user",
            "import",
            "--django",
            dir.join("bad.json").to_str().unwrap(),
        ],
        &env,
        "",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nothing imported"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);

    // The help names where the settings come from.
    let help = text(&refreshd(&["user", "passwd", "--help"], &[], "").stdout);
    assert!(
        help.contains("REDIS_URL") && help.contains(".env"),
        "{help}"
    );
}

#[test]
fn user_commands_need_redis() {
    let out = refreshd(&["user", "list"], &[], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("REDIS_URL"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn production_refuses_to_start_and_names_every_problem() {
    let out = refreshd(
        &["serve"],
        &[
            ("APP_ENV", "production"),
            ("COOKIE_SECURE", "false"),
            ("ACCESS_TOKEN_LIFETIME", "soon"),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for needle in [
        "SIGNING_KEY",
        "REDIS_URL",
        "COOKIE_SECURE=true",
        "ACCESS_TOKEN_LIFETIME",
    ] {
        assert!(err.contains(needle), "{needle} not named in: {err}");
    }
}

#[test]
fn samesite_none_without_secure_is_refused_at_start() {
    let out = refreshd(&[], &[("COOKIE_SAMESITE", "None")], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("COOKIE_SAMESITE=None requires COOKIE_SECURE=true"));
}
