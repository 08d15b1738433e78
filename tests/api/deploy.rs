//! The container and deployment files. No Docker engine runs where the tests run, so these check
//! the structure that `docker compose up`, the production compose file, Caddy, nginx and systemd
//! rely on.

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
    // Published on this machine only: a demo with a demo user is not for the network.
    assert_eq!(ports, ["127.0.0.1:8000:8000"]);
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
    assert_pinned(redis["image"].as_str().unwrap());
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

/// An image named by a release (or a digest), not by a moving tag such as `latest` or `1`.
fn assert_pinned(image: &str) {
    if image.contains("@sha256:") {
        return;
    }
    let (_, tag) = image
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{image} has no tag"));
    let version = tag.split('-').next().unwrap();
    assert!(
        version.split('.').count() >= 2
            && version
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "{image} is not pinned to a release (like 1.95.0 or 12.12)"
    );
}

#[test]
fn the_image_builds_its_dependencies_in_a_layer_of_their_own_from_pinned_bases() {
    // One entry per instruction, continuation lines joined.
    let dockerfile = repo_file("Dockerfile").replace("\\\n", " ");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for from in instructions.iter().filter(|l| l.starts_with("FROM ")) {
        assert_pinned(from.split_whitespace().nth(1).unwrap());
    }
    let at = |prefix: &str| {
        instructions
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in the Dockerfile"))
    };
    let manifest = at("COPY Cargo.toml Cargo.lock");
    let source = at("COPY src");
    let dependencies = instructions
        .iter()
        .position(|l| l.starts_with("RUN ") && l.contains("cargo build"))
        .expect("a cargo build");
    assert!(
        manifest < dependencies && dependencies < source,
        "the dependencies are built after the manifest is copied and before the source is"
    );
    assert!(
        instructions[source..]
            .iter()
            .any(|l| l.starts_with("RUN cargo build --release --locked")),
        "and the crate after it"
    );

    // The build context leaves out build output everywhere (fuzz/target too) and local secrets.
    let ignored: Vec<String> = repo_file(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    for needed in ["**/target", ".env", ".git", "deploy/secrets"] {
        assert!(ignored.iter().any(|l| l == needed), "{needed}: {ignored:?}");
    }
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
    // Target paths named in the manifest, and the other workspace members, whose manifests and
    // targets cargo reads even to build this package alone.
    for line in repo_file("Cargo.toml").lines() {
        if let Some(path) = line.trim().strip_prefix("path = \"") {
            inputs.insert(top(&root.join(path.trim_end_matches('"'))));
        }
        if let Some(members) = line.trim().strip_prefix("members = [") {
            for member in members.trim_end_matches(']').split(',') {
                let member = member.trim().trim_matches('"');
                if member != "." {
                    inputs.insert(member.to_owned());
                }
            }
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
    assert_eq!(users(), "ID\tUSERNAME\tSTATE\n", "no user in production");
    run("development");
    assert!(users().contains("\tdemo\tactive"), "{}", users());
    assert!(run("development").contains("user demo exists"));
    assert_eq!(users().lines().count(), 2, "a header and demo");
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

/// Every variable a deployment file sets is one refreshd reads.
fn assert_known_variable(name: &str, file: &str) {
    assert!(
        refreshd::config::is_variable(name),
        "{file} sets {name}, which refreshd does not read"
    );
}

#[test]
fn the_production_compose_file_puts_refreshd_behind_caddy_on_a_redis_that_never_evicts() {
    let compose: Value = serde_yaml::from_str(&repo_file("deploy/compose.production.yml")).unwrap();
    let services = &compose["services"];
    let seq = |v: &Value| -> Vec<String> {
        v.as_sequence()
            .unwrap_or_else(|| panic!("not a list: {v:?}"))
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    };

    // Redis: every write in the append-only file, no eviction, reachable from refreshd only.
    let redis = &services["redis"];
    assert_pinned(redis["image"].as_str().unwrap());
    let command = seq(&redis["command"]);
    assert!(
        command.windows(2).any(|w| w == ["--appendonly", "yes"]),
        "{command:?}"
    );
    assert!(
        command
            .windows(2)
            .any(|w| w == ["--maxmemory-policy", "noeviction"]),
        "{command:?}"
    );
    assert!(redis.get("ports").is_none(), "Redis is not published");
    assert!(redis["volumes"][0].as_str().unwrap().ends_with(":/data"));
    let backend = redis["networks"][0].as_str().unwrap();
    assert_eq!(compose["networks"][backend]["internal"], Value::from(true));

    // refreshd: production, its key a Docker secret read through SIGNING_KEY_FILE, behind the
    // proxy only, metrics on their own listener.
    let app = &services["refreshd"];
    let env = app["environment"].as_mapping().unwrap();
    let var = |name: &str| {
        env.get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("refreshd has no {name}"))
    };
    for (name, _) in env {
        assert_known_variable(name.as_str().unwrap(), "compose.production.yml");
    }
    assert_eq!(var("APP_ENV"), "production");
    assert!(
        env.get("SIGNING_KEY").is_none(),
        "the key is never in the environment"
    );
    let key_file = var("SIGNING_KEY_FILE");
    let secret = key_file.strip_prefix("/run/secrets/").unwrap();
    assert!(seq(&app["secrets"]).contains(&secret.to_owned()));
    assert!(compose["secrets"][secret]["file"].as_str().is_some());
    assert!(var("PUBLIC_ORIGIN").starts_with("https://"));
    assert!(!var("TRUSTED_PROXIES").is_empty());
    assert!(var("REDIS_URL").starts_with("redis://redis:"));
    assert!(
        app.get("ports").is_none(),
        "refreshd is reached through Caddy only"
    );
    let metrics_port = var("METRICS_ADDR").rsplit_once(':').unwrap().1;
    let bind_port = var("BIND_ADDR").rsplit_once(':').unwrap().1;
    assert_ne!(metrics_port, bind_port);
    let trusted: ipnet::IpNet = var("TRUSTED_PROXIES").parse().unwrap();
    let edge_subnet: ipnet::IpNet = compose["networks"]["edge"]["ipam"]["config"][0]["subnet"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        trusted, edge_subnet,
        "the proxy's network, and only it, is trusted"
    );

    // Caddy: the only published service, HTTPS, in front of refreshd's public port only.
    let caddy = &services["caddy"];
    assert_pinned(caddy["image"].as_str().unwrap());
    assert!(caddy["image"].as_str().unwrap().starts_with("caddy:2"));
    let ports = seq(&caddy["ports"]);
    assert!(ports.contains(&"443:443".to_owned()), "{ports:?}");
    assert!(seq(&caddy["networks"]).contains(&"edge".to_owned()));
    let caddyfile = repo_file("deploy/Caddyfile");
    assert!(caddyfile.contains(&format!("reverse_proxy refreshd:{bind_port}")));
    assert!(!caddyfile.contains(&format!(":{metrics_port}")));
    assert!(caddyfile.contains("{$REFRESHD_DOMAIN} {"));
    let mounted = seq(&caddy["volumes"]);
    assert!(mounted.contains(&"./Caddyfile:/etc/caddy/Caddyfile:ro".to_owned()));
}

#[test]
fn the_nginx_snippet_terminates_tls_and_tells_refreshd_who_asked() {
    let conf = repo_file("deploy/nginx.conf");
    for needed in [
        "listen 443 ssl;",
        "ssl_certificate ",
        "proxy_pass http://127.0.0.1:8000;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-Host $host;",
        "location = /metrics { return 404; }",
        "TRUSTED_PROXIES=127.0.0.1",
        "PUBLIC_ORIGIN=https://",
        "METRICS_ADDR=127.0.0.1:",
    ] {
        assert!(conf.contains(needed), "deploy/nginx.conf lacks {needed:?}");
    }
}

#[test]
fn the_systemd_unit_is_hardened_and_takes_its_secrets_as_credentials() {
    let unit = repo_file("deploy/refreshd.service");
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect();
    let has = |key: &str, value: &str| settings.contains(&(key, value));
    for (key, value) in [
        ("ExecStart", "/usr/local/bin/refreshd serve"),
        ("EnvironmentFile", "/etc/refreshd/refreshd.env"),
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallArchitectures", "native"),
        ("KillSignal", "SIGTERM"),
        ("Environment", "SIGNING_KEY_FILE=%d/signing_key"),
    ] {
        assert!(has(key, value), "refreshd.service lacks {key}={value}");
    }
    assert!(
        settings
            .iter()
            .any(|(k, v)| *k == "LoadCredential" && v.starts_with("signing_key:")),
        "the key comes as a credential"
    );
    assert!(!unit.contains("SIGNING_KEY="), "no key in the unit");

    // The settings file it reads: production, behind a proxy, metrics private.
    let env = repo_file("deploy/refreshd.env");
    let vars: Vec<(&str, &str)> = env
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    for (name, _) in &vars {
        assert_known_variable(name, "deploy/refreshd.env");
    }
    for pair in [
        ("APP_ENV", "production"),
        ("BIND_ADDR", "127.0.0.1:8000"),
        ("METRICS_ADDR", "127.0.0.1:9100"),
    ] {
        assert!(vars.contains(&pair), "deploy/refreshd.env lacks {pair:?}");
    }
    assert!(vars.iter().any(|(k, _)| *k == "TRUSTED_PROXIES"));
    assert!(vars.iter().any(|(k, _)| *k == "PUBLIC_ORIGIN"));
}

#[test]
fn the_readme_leads_to_each_deployment_file_and_names_what_compose_needs() {
    let readme = repo_file("README.md");
    for file in [
        "deploy/compose.production.yml",
        "deploy/Caddyfile",
        "deploy/nginx.conf",
        "deploy/refreshd.service",
        "deploy/refreshd.env",
    ] {
        assert!(
            readme.contains(&format!("]({file})")),
            "the README does not link {file}"
        );
        assert!(root().join(file).exists(), "{file}");
    }
    assert!(
        readme.contains("Compose 2.24"),
        "the Compose version it needs"
    );
    assert!(readme.contains("docker compose exec refreshd refreshd user"));
    assert!(readme.contains("keys generate --alg HS256"));
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
    dev.server.production = false;
    add_user_by_cli(&other.url(), "demo2", "demo");
    assert!(refreshd::startup::Application::build(dev).await.is_ok());
}
