//! The container files. No Docker engine runs where the tests run, so these check the structure
//! that `docker compose up` relies on.

use serde_yaml::Value;

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

#[test]
fn compose_starts_refreshd_after_a_healthy_redis_with_a_volume() {
    let compose: Value = serde_yaml::from_str(&repo_file("docker-compose.yml")).unwrap();
    let services = &compose["services"];
    let app = &services["refreshd"];
    assert_eq!(app["build"], Value::from("."));
    let ports: Vec<&str> = app["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(ports.contains(&"8000:8000"), "{ports:?}");
    assert_eq!(
        app["depends_on"]["redis"]["condition"],
        Value::from("service_healthy")
    );
    assert_eq!(
        app["environment"]["REDIS_URL"],
        Value::from("redis://redis:6379/0")
    );
    assert_eq!(app["environment"]["BIND_ADDR"], Value::from("0.0.0.0:8000"));
    assert_eq!(app["env_file"][0]["path"], Value::from(".env"));
    assert_eq!(app["env_file"][0]["required"], Value::from(false));

    let redis = &services["redis"];
    assert!(redis["image"].as_str().unwrap().starts_with("redis:7"));
    let test: Vec<&str> = redis["healthcheck"]["test"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(test, ["CMD", "redis-cli", "ping"]);
    let volume = redis["volumes"][0].as_str().unwrap();
    let (name, path) = volume.split_once(':').unwrap();
    assert_eq!(path, "/data");
    assert!(
        compose["volumes"].get(name).is_some(),
        "volume {name} is declared"
    );
    let command: Vec<&str> = redis["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        command.windows(2).any(|w| w == ["--appendonly", "yes"]),
        "Redis keeps its data"
    );

    // The demo user exists before refreshd starts.
    assert_eq!(
        app["depends_on"]["demo-user"]["condition"],
        Value::from("service_completed_successfully")
    );
    assert!(
        services["demo-user"]["entrypoint"][2]
            .as_str()
            .unwrap()
            .contains("refreshd user add demo")
    );
    assert_eq!(
        services["demo-user"]["env_file"][0]["path"],
        Value::from(".env")
    );
}

#[test]
fn the_image_is_multi_stage_non_root_and_checks_its_health() {
    let dockerfile = repo_file("Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        instructions
            .iter()
            .filter(|l| l.starts_with("FROM "))
            .count(),
        2
    );
    assert!(
        instructions
            .iter()
            .any(|l| l.starts_with("COPY --from=build"))
    );
    let user = instructions
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .unwrap();
    assert!(!user.contains("root") && *user != "USER 0", "{user}");
    assert!(
        instructions
            .iter()
            .any(|l| l.starts_with("HEALTHCHECK ") && l.contains("refreshd\", \"healthcheck"))
    );
    assert!(instructions.contains(&"EXPOSE 8000"));
    // The build stage copies every input of the build: the manifest and lock, the source, every
    // file the source pulls in at compile time (include_str!, askama's templates/), and the
    // target paths the manifest names.
    let copied: Vec<&str> = instructions
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.starts_with("COPY --from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[1..words.len() - 1].to_vec()
        })
        .collect();
    let inputs = build_inputs();
    assert!(inputs.contains("templates"), "{inputs:?}");
    assert!(inputs.contains("static"), "{inputs:?}");
    for input in &inputs {
        assert!(
            copied.contains(&input.as_str()),
            "the Dockerfile does not copy {input}, which the build reads; it copies {copied:?}"
        );
        assert!(root().join(input).exists(), "{input}");
    }
}

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The top-level files and directories `cargo build` of this package reads.
fn build_inputs() -> std::collections::BTreeSet<String> {
    let root = root();
    let mut inputs: std::collections::BTreeSet<String> =
        ["Cargo.toml", "Cargo.lock", "src"].map(String::from).into();
    let top = |path: &std::path::Path| -> String {
        let relative = path.strip_prefix(&root).unwrap_or(path);
        let first = relative
            .components()
            .next()
            .expect("a path inside the repository");
        first.as_os_str().to_string_lossy().into_owned()
    };
    // Target paths named in the manifest.
    for line in repo_file("Cargo.toml").lines() {
        if let Some(path) = line.trim().strip_prefix("path = \"") {
            inputs.insert(top(&root.join(path.trim_end_matches('"'))));
        }
    }
    // Files included at compile time, and askama's template directory.
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let whole = std::fs::read_to_string(&path).unwrap();
            // Unit tests are not part of a release build.
            let text = whole.split("#[cfg(test)]\nmod tests").next().unwrap();
            for piece in text.split("include_str!(\"").skip(1) {
                let included = piece.split('"').next().unwrap();
                let resolved = path.parent().unwrap().join(included);
                let normal: std::path::PathBuf =
                    resolved
                        .components()
                        .fold(std::path::PathBuf::new(), |mut acc, c| {
                            match c {
                                std::path::Component::ParentDir => {
                                    acc.pop();
                                }
                                other => acc.push(other),
                            }
                            acc
                        });
                inputs.insert(top(&normal));
            }
            if text.contains("#[template(") {
                inputs.insert("templates".into());
            }
        }
    }
    inputs
}

#[test]
fn the_demo_user_service_adds_demo_once_and_never_in_production() {
    let compose: Value = serde_yaml::from_str(&repo_file("docker-compose.yml")).unwrap();
    let script = compose["services"]["demo-user"]["entrypoint"][2]
        .as_str()
        .unwrap()
        // Compose turns $$ into $.
        .replace("$$", "$");
    let redis = crate::helpers::RedisProcess::start(false);
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_refreshd"))
        .parent()
        .unwrap()
        .to_owned();
    let run = |app_env: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("REDIS_URL", redis.url())
            .env("APP_ENV", app_env)
            .env("RUST_LOG", "error")
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let users = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .args(["user", "list"])
            .env_clear()
            .env("REDIS_URL", redis.url())
            .env("RUST_LOG", "error")
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run("production").contains("no demo user"));
    assert!(
        run("Production").contains("no demo user"),
        "APP_ENV is read without regard to case, by the server and so here"
    );
    assert_eq!(users(), "", "no user in production");
    run("development");
    assert!(users().contains("\tdemo\tactive"), "{}", users());
    assert!(run("development").contains("user demo exists"));
    assert_eq!(users().lines().count(), 1);
    // Without a Redis the service fails, so refreshd does not start without its demo user.
    redis.stop();
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("REDIS_URL", redis.url())
        .env("RUST_LOG", "error")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_healthcheck_command_answers_for_a_running_server_and_fails_without_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .arg("healthcheck")
            .env_clear()
            .env("BIND_ADDR", format!("0.0.0.0:{port}"))
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    assert!(!check().status.success(), "nothing listens yet");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"))
        .env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("WORKERS", "1")
        .current_dir(std::env::temp_dir())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let healthy = loop {
        if check().status.success() {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(healthy, "refreshd healthcheck never passed");
}

/// SPEC 5: the compose demo leaves `demo`/`demo` in a persistent Redis; a production server on
/// that Redis must not start while that login would succeed, and must say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_to_start_while_demo_demo_would_log_in() {
    use crate::helpers::*;
    let redis = RedisProcess::start(false);
    add_user_by_cli(&redis.url(), "demo", "demo");
    let production: Vec<(&str, String)> = vec![
        ("APP_ENV", "production".into()),
        ("REDIS_URL", redis.url()),
        (
            "SIGNING_KEY",
            "a-production-signing-key-0123456789-0123456789".into(),
        ),
    ];
    // The real binary, as an operator starts it: it exits, naming the user and the way out.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"))
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .envs(production.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a production server started with demo/demo in its Redis");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("APP_ENV=production: the user demo is active and its password is demo")
            && log.contains("refreshd user deactivate demo"),
        "{log}"
    );

    let settings = |redis: &RedisProcess| {
        let vars: Vec<(&str, String)> = production
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    if *k == "REDIS_URL" {
                        redis.url()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        settings_with(Backend::Memory, &vars)
    };
    // Deactivated, the account logs nobody in: the server starts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"))
        .args(["user", "deactivate", "demo"])
        .env_clear()
        .env("REDIS_URL", redis.url())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    let app = refreshd::startup::Application::build(settings(&redis)).await;
    assert!(app.is_ok(), "{:?}", app.err());
    // A user named demo with a real password is no demo account.
    let other = RedisProcess::start(false);
    add_user_by_cli(&other.url(), "demo", "a-real-password-of-the-operator");
    let app = refreshd::startup::Application::build(settings(&other)).await;
    assert!(app.is_ok(), "{:?}", app.err());
    // Outside production, the demo user is what it is for.
    let mut dev = settings(&redis);
    dev.production = false;
    add_user_by_cli(&other.url(), "demo2", "demo");
    assert!(refreshd::startup::Application::build(dev).await.is_ok());
}
