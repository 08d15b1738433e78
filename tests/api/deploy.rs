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
    // What the build copies exists.
    for path in ["Cargo.toml", "Cargo.lock", "src", "tests"] {
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(path)
                .exists(),
            "{path}"
        );
    }
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
