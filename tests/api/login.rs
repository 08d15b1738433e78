//! POST /api/auth/login/

use serde_json::json;

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    login_sets_both_cookies_with_the_contract_attributes,
    wrong_password_unknown_user_and_inactive_user_get_the_same_401,
    missing_and_malformed_fields_are_400s_naming_the_field,
    a_body_that_is_not_json_is_a_400,
    an_oversized_body_is_413,
    too_many_failures_for_a_username_answer_429_until_the_window_passes,
    too_many_failures_from_one_address_answer_429,
    a_successful_login_resets_the_username_count,
    parallel_guesses_cannot_slip_past_the_limit,
    hostile_usernames_are_refused_cleanly,
    a_cross_site_login_is_refused_and_sets_nothing,
    an_ipv6_host_counts_by_its_64_and_a_mapped_ipv4_as_the_ipv4_address,
);

async fn login_sets_both_cookies_with_the_contract_attributes(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user("alice-login", "s3cret").await;
    let reply = app.login("alice-login", "s3cret").await;
    assert_detail(&reply, 200, LOGGED_IN);

    let access = reply.cookie("access_token").unwrap();
    assert_eq!(
        access.raw,
        format!(
            "access_token={}; HttpOnly; Path=/; Max-Age=900; SameSite=Lax",
            access.value
        )
    );
    let refresh = reply.cookie("refresh_token").unwrap();
    assert_eq!(
        refresh.raw,
        format!(
            "refresh_token={}; HttpOnly; Path=/; Max-Age=2592000; SameSite=Lax",
            refresh.value
        )
    );
    let a = claims_of(&access.value);
    let r = claims_of(&refresh.value);
    assert_eq!(a["token_type"], "access");
    assert_eq!(r["token_type"], "refresh");
    assert_eq!(a["user_id"], user.id.as_str());
    assert_eq!(r["user_id"], user.id.as_str());
    assert_eq!(a["sid"], r["sid"], "both tokens name the same session");
    assert_eq!(
        r["exp"].as_u64().unwrap() - r["iat"].as_u64().unwrap(),
        30 * 86400
    );
    assert_eq!(a["exp"].as_u64().unwrap() - a["iat"].as_u64().unwrap(), 900);
    for t in [&a, &r] {
        let jti = t["jti"].as_str().unwrap();
        assert!(
            jti.len() == 32
                && jti
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
    assert!(!reply.text.contains(&access.value), "no token in the body");
}

async fn wrong_password_unknown_user_and_inactive_user_get_the_same_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = unique("bob");
    app.add_user(&name, "right").await;
    // Each failure costs one password verification, whether or not the user exists, so that
    // the time taken does not tell which usernames are real.
    let checks = || app.metric("refreshd_password_checks_total");
    let mut before = checks().await;
    let mut one_check_each = |label: &str, now: u64| {
        assert_eq!(now, before + 1, "{label}: one verification");
        before = now;
    };
    assert_detail(&app.login(&name, "wrong").await, 401, BAD_CREDENTIALS);
    one_check_each("wrong password", checks().await);
    assert_detail(
        &app.login(&unique("nobody"), "right").await,
        401,
        BAD_CREDENTIALS,
    );
    one_check_each("unknown user", checks().await);
    assert_detail(
        &app.login(&"x".repeat(200), "right").await,
        401,
        BAD_CREDENTIALS,
    );
    one_check_each("impossible username", checks().await);
    app.store
        .set_user_active(&refreshd::domain::Username::parse(&name).unwrap(), false)
        .await
        .unwrap();
    let reply = app.login(&name, "right").await;
    assert_detail(&reply, 401, BAD_CREDENTIALS);
    assert_no_cookies(&reply);
    one_check_each("inactive user", checks().await);
}

async fn missing_and_malformed_fields_are_400s_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (
            json!({}),
            json!({"username": ["This field is required."], "password": ["This field is required."]}),
        ),
        (
            json!({"username": "a"}),
            json!({"password": ["This field is required."]}),
        ),
        (
            json!({"password": "a"}),
            json!({"username": ["This field is required."]}),
        ),
        (
            json!({"username": null, "password": "a"}),
            json!({"username": ["This field may not be null."]}),
        ),
        (
            json!({"username": "", "password": "a"}),
            json!({"username": ["This field may not be blank."]}),
        ),
        (
            json!({"username": ["a"], "password": {"b": 1}}),
            json!({"username": ["Not a valid string."], "password": ["Not a valid string."]}),
        ),
        (
            json!(["username", "password"]),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ),
    ];
    for (body, expected) in cases {
        let reply = app.post_json("/api/auth/login/", &body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json, expected, "{body}");
        assert_json_headers(&reply);
    }
    // No body at all reads as an empty object.
    let reply = Reply::read(
        app.client
            .post(app.url("/api/auth/login"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["username"], json!(["This field is required."]));
}

async fn a_body_that_is_not_json_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        &b"{\"username\": "[..],
        b"username=a&password=b",
        b"\xff\xfe\x00",
    ] {
        let reply = Reply::read(
            app.client
                .post(app.url("/api/auth/login/"))
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 400, "{body:?}");
        assert!(
            reply.json["detail"]
                .as_str()
                .unwrap()
                .starts_with("JSON parse error - "),
            "{}",
            reply.text
        );
        assert_json_headers(&reply);
    }
}

async fn an_oversized_body_is_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let big = json!({"username": "a", "password": "x".repeat(17 * 1024)});
    assert_detail(
        &app.post_json("/api/auth/login/", &big).await,
        413,
        BODY_TOO_LARGE,
    );
    // A body streamed without Content-Length is cut off too.
    let reply = app
        .post_streamed("/api/auth/login/", &[], vec![b' '; 40 * 1024])
        .await;
    assert_detail(&reply, 413, BODY_TOO_LARGE);
}

async fn too_many_failures_for_a_username_answer_429_until_the_window_passes(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("LOGIN_MAX_FAILURES", "3"), ("LOGIN_FAILURE_WINDOW", "2s")],
    )
    .await;
    let name = unique("carol");
    app.add_user(&name, "right").await;
    for _ in 0..3 {
        assert_detail(&app.login(&name, "wrong").await, 401, BAD_CREDENTIALS);
    }
    // Locked: even the right password is refused, and the client is told when to come back.
    let reply = app.login(&name, "right").await;
    assert_detail(&reply, 429, TOO_MANY_LOGINS);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_detail(&app.login(&name, "right").await, 200, LOGGED_IN);
}

async fn too_many_failures_from_one_address_answer_429(backend: Backend) {
    // Behind a trusted proxy, the address is the one X-Forwarded-For names.
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES", "3"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let attacker = format!("198.51.100.{}", rand_octet());
    let victim = unique("dave");
    app.add_user(&victim, "right").await;
    let attempt = |username: String, addr: String| {
        let app = &app;
        async move {
            Reply::read(
                app.client
                    .post(app.url("/api/auth/login/"))
                    .header("x-forwarded-for", addr)
                    .json(&json!({"username": username, "password": "guess"}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // Three different usernames from one address.
    for _ in 0..3 {
        assert_eq!(attempt(unique("spray"), attacker.clone()).await.status, 401);
    }
    assert_detail(
        &attempt(unique("spray"), attacker.clone()).await,
        429,
        TOO_MANY_LOGINS,
    );
    // The victim, from another address, still logs in.
    let ok = Reply::read(
        app.client
            .post(app.url("/api/auth/login/"))
            .header("x-forwarded-for", format!("203.0.113.{}", rand_octet()))
            .json(&json!({"username": victim, "password": "right"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&ok, 200, LOGGED_IN);
}

fn rand_octet() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0] | 1
}

async fn a_successful_login_resets_the_username_count(backend: Backend) {
    let mut app = spawn_app_with(backend, &[("LOGIN_MAX_FAILURES", "3")]).await;
    let name = unique("erin");
    app.add_user(&name, "right").await;
    for _ in 0..2 {
        assert_eq!(app.login(&name, "wrong").await.status, 401);
    }
    assert_eq!(app.login(&name, "right").await.status, 200);
    // The address keeps its count (only the username's is reset), so carry on from another one.
    app.client_ip = format!("198.19.0.{}", rand_octet());
    for _ in 0..2 {
        assert_eq!(app.login(&name, "wrong").await.status, 401);
    }
    assert_eq!(
        app.login(&name, "right").await.status,
        200,
        "the count was reset"
    );
}

async fn hostile_usernames_are_refused_cleanly(backend: Backend) {
    let app = spawn_app(backend).await;
    for name in [
        "x".repeat(5000),
        "a\u{0}b".into(),
        "{u:1}:user".into(),
        "refreshd:users".into(),
        "' OR 1=1 --".into(),
        "\u{202e}admin".into(),
    ] {
        assert_detail(&app.login(&name, "pw").await, 401, BAD_CREDENTIALS);
    }
}

async fn parallel_guesses_cannot_slip_past_the_limit(backend: Backend) {
    let app = spawn_app_with(backend, &[("LOGIN_MAX_FAILURES", "3"), ("WORKERS", "2")]).await;
    let name = unique("henry");
    app.add_user(&name, "right").await;
    let guess = |username: String, addr: String| {
        let app = &app;
        async move {
            Reply::read(
                app.client
                    .post(app.url("/api/auth/login/"))
                    .header("x-forwarded-for", addr)
                    .json(&json!({"username": username, "password": "guess"}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
            .status
        }
    };
    let count = |statuses: &[u16]| {
        let tried = statuses.iter().filter(|s| **s == 401).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        (tried, refused)
    };
    // Twenty parallel guesses at one username, each from its own address.
    let base = rand_octet();
    let statuses = futures_util::future::join_all(
        (0..20).map(|i| guess(name.clone(), format!("198.18.{base}.{}", i + 1))),
    )
    .await;
    assert_eq!(
        count(&statuses),
        (3, 17),
        "only LOGIN_MAX_FAILURES guesses reach the check"
    );
    assert_detail(&app.login(&name, "right").await, 429, TOO_MANY_LOGINS);
    // Twenty parallel guesses from one address, each at its own username.
    let addr = format!("198.19.{}.{}", rand_octet(), rand_octet());
    let statuses =
        futures_util::future::join_all((0..20).map(|_| guess(unique("spray"), addr.clone()))).await;
    assert_eq!(count(&statuses), (3, 17));
}

async fn a_cross_site_login_is_refused_and_sets_nothing(backend: Backend) {
    let app = spawn_app_with(backend, &[("CORS_ALLOWED_ORIGINS", "https://app.example")]).await;
    // The attacker's own account: logging the victim's browser into it is the attack.
    let name = unique("attacker");
    app.add_user(&name, "pw-1234").await;
    let creds = json!({"username": name, "password": "pw-1234"}).to_string();
    let post = |path: &'static str, headers: Vec<(&'static str, String)>| {
        let app = &app;
        let creds = creds.clone();
        async move {
            let mut request = app
                .client
                .post(app.url(path))
                .header("x-forwarded-for", &app.client_ip)
                .body(creds);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            Reply::read(request.send().await.unwrap()).await
        }
    };
    let refused: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "a text/plain fetch from another site",
            vec![
                ("content-type", "text/plain;charset=UTF-8".into()),
                ("origin", "https://evil.example".into()),
                ("sec-fetch-site", "cross-site".into()),
            ],
        ),
        (
            "a form post from another site",
            vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("origin", "https://evil.example".into()),
            ],
        ),
        (
            "a form post from a sandboxed frame",
            vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("origin", "null".into()),
            ],
        ),
        (
            "a JSON post whose Referer is another site",
            vec![
                ("content-type", "application/json".into()),
                ("referer", "https://evil.example/login.html".into()),
            ],
        ),
        (
            "no Origin or Referer, but cross-site Fetch Metadata",
            vec![
                ("content-type", "text/plain".into()),
                ("sec-fetch-site", "cross-site".into()),
            ],
        ),
    ];
    let checks_before = app.metric("refreshd_password_checks_total").await;
    for (what, headers) in &refused {
        let reply = post("/api/auth/login/", headers.clone()).await;
        assert_eq!(reply.status, 403, "{what}: {}", reply.text);
        assert_detail(&reply, 403, CSRF_FAILED);
        assert_no_cookies(&reply);
    }
    assert_eq!(
        app.metric("refreshd_password_checks_total").await,
        checks_before,
        "a refused login checks no password"
    );
    // The JSON API sets no cookie and answers tokens only to a reader of its response: no check.
    for (what, headers) in refused {
        let reply = post("/api/token/", headers).await;
        assert_ne!(reply.status, 403, "{what} to /api/token/: {}", reply.text);
        assert_no_cookies(&reply);
    }
    let own = app.address.clone();
    let allowed: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "a client without Origin or Referer (curl, a mobile app)",
            vec![],
        ),
        (
            "curl -d, whose Content-Type is a form's",
            vec![("content-type", "application/x-www-form-urlencoded".into())],
        ),
        (
            "this server's own page",
            vec![
                ("content-type", "application/json".into()),
                ("origin", own.clone()),
                ("sec-fetch-site", "same-origin".into()),
            ],
        ),
        (
            "this server's own page, by Referer",
            vec![("referer", format!("{own}/"))],
        ),
        (
            "an origin in CORS_ALLOWED_ORIGINS",
            vec![
                ("content-type", "application/json".into()),
                ("origin", "https://app.example".into()),
            ],
        ),
    ];
    for (what, headers) in allowed {
        let reply = post("/api/auth/login/", headers).await;
        assert_eq!(reply.status, 200, "{what}: {}", reply.text);
        assert_detail(&reply, 200, LOGGED_IN);
        reply.tokens();
    }
}

async fn an_ipv6_host_counts_by_its_64_and_a_mapped_ipv4_as_the_ipv4_address(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES", "3"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let attempt = |username: String, password: &'static str, addr: String| {
        let app = &app;
        async move {
            Reply::read(
                app.client
                    .post(app.url("/api/auth/login/"))
                    .header("x-forwarded-for", addr)
                    .json(&json!({"username": username, "password": password}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let id = uuid::Uuid::new_v4();
    let b = id.as_bytes();
    let net = format!(
        "2001:db8:{:x}{:02x}:{:x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3] & 0xfe
    );
    let neighbour_net = format!("2001:db8:{:x}{:02x}:{:x}{:02x}", b[0], b[1], b[2], b[3] | 1);
    // A host with a /64 guesses from a fresh address every time: one count.
    for host in [":1", ":aaaa:bbbb:cccc", ":ffff:0:2"] {
        let reply = attempt(unique("spray"), "guess", format!("{net}:{host}")).await;
        assert_detail(&reply, 401, BAD_CREDENTIALS);
    }
    let reply = attempt(unique("spray"), "guess", format!("{net}:9:9:9:9")).await;
    assert_detail(&reply, 429, TOO_MANY_LOGINS);
    // Another /64 is another client, and its session lists its own full address.
    let name = unique("ivy");
    app.add_user(&name, "right").await;
    let full = format!("{neighbour_net}:1:2:3:4");
    let reply = attempt(name, "right", full.clone()).await;
    assert_detail(&reply, 200, LOGGED_IN);
    let sessions = Reply::read(
        app.client
            .get(app.url("/api/auth/sessions/"))
            .header("cookie", format!("access_token={}", reply.tokens().access))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let listed: std::net::IpAddr = sessions.json[0]["client_address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(listed, full.parse::<std::net::IpAddr>().unwrap());

    // ::ffff:a.b.c.d is the IPv4 client a.b.c.d, spelled either way.
    let v4 = format!("198.51.{}.{}", b[4], rand_octet());
    for addr in [v4.clone(), format!("::ffff:{v4}"), v4.clone()] {
        let reply = attempt(unique("spray"), "guess", addr).await;
        assert_detail(&reply, 401, BAD_CREDENTIALS);
    }
    for addr in [format!("::ffff:{v4}"), v4.clone()] {
        let reply = attempt(unique("spray"), "guess", addr).await;
        assert_detail(&reply, 429, TOO_MANY_LOGINS);
    }
}
