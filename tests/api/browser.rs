//! End-to-end in real headless Chromium, driven over WebDriver (chromedriver) with plain HTTP:
//! the demo page, silent refresh, two tabs sharing one refresh, an SPA on another origin, a page
//! on a disallowed origin, and logout. Ignored by a plain `cargo test` (it needs Debian's
//! chromium and chromium-driver, which ./scripts/test installs); ./scripts/test runs it.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::helpers::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// One browser, through chromedriver's W3C WebDriver endpoints.
struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    base: String,
    profile: PathBuf,
}

impl Browser {
    async fn start() -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing: apt-get install chromium chromium-driver (./scripts/test does)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // In a process group of its own, so that a failed test can kill chromedriver and every
        // Chromium process it started at once (killing chromedriver alone orphans them).
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(unique("refreshd-chromium"));
        // The flags keep Chromium off the network it cannot reach and out of the sandbox a root
        // CI cannot give it.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // The console, for the tests that want it clean.
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1100,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let reply: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_owned();
        Browser {
            http,
            session,
            driver,
            base,
            profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request.send().await.unwrap().json().await.unwrap();
        if reply["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", reply["value"]);
        }
        reply["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` as an async function body; its `return` value comes back.
    async fn run(&self, script: &str) -> Value {
        let wrapped = format!(
            "const done = arguments[arguments.length - 1];
             (async () => {{ {script} }})().then(done, (e) => done({{error: String(e)}}));"
        );
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": wrapped, "args": []})),
        )
        .await
    }

    /// Polls `condition` (a JS expression) until it is true.
    async fn wait_for(&self, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.run(&format!("return Boolean({condition});")).await == json!(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {condition}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn new_tab(&self) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/window/new",
                Some(json!({"type": "tab"})),
            )
            .await;
        v["handle"].as_str().unwrap().to_owned()
    }

    async fn current_tab(&self) -> String {
        self.call(reqwest::Method::GET, "/window", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn switch_to(&self, handle: &str) {
        self.call(
            reqwest::Method::POST,
            "/window",
            Some(json!({"handle": handle})),
        )
        .await;
    }

    async fn set_size(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    /// The console messages of errors since the last call (chromedriver's log, which also
    /// holds the failed loads a script cannot see: a 404 favicon, a 401 fetch).
    async fn console_errors(&self) -> Vec<String> {
        let entries = self
            .call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    async fn close(self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
        // Drop kills what is left.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The ok-refresh count from /metrics.
async fn rotations(app: &TestApp) -> u64 {
    app.metric("refreshd_refreshes_total{outcome=\"ok\"}").await
}

/// Logs in through the demo page's form, as a person would.
async fn log_in_on_the_page(browser: &Browser, app: &TestApp) {
    browser.goto(&app.url("/")).await;
    browser
        .wait_for("window.refreshdDemo && !document.getElementById('login').hidden")
        .await;
    browser
        .run(
            "document.getElementById('username').value = 'demo';
             document.getElementById('password').value = 'demo';
             document.getElementById('login-button').click();",
        )
        .await;
    browser
        .wait_for("!document.getElementById('session').hidden")
        .await;
}

/// A server whose access tokens live 2 s, a browser logged in on its page, and a wait until the
/// access token has expired; with the rotation count at that point.
async fn logged_in_past_access_expiry() -> (TestApp, Browser, u64) {
    let app = spawn_app_with(Backend::Memory, &[("ACCESS_TOKEN_LIFETIME", "2s")]).await;
    let browser = Browser::start().await;
    log_in_on_the_page(&browser, &app).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let before = rotations(&app).await;
    (app, browser, before)
}

/// Logs in on the page, then opens it in a second tab of the same browser (logged in too,
/// through the shared cookies); the second tab is current. Returns both tabs' handles.
async fn two_logged_in_tabs(browser: &Browser, app: &TestApp) -> (String, String) {
    log_in_on_the_page(browser, app).await;
    let first = browser.current_tab().await;
    let second = browser.new_tab().await;
    browser.switch_to(&second).await;
    browser.goto(&app.url("/")).await;
    browser
        .wait_for("window.refreshdDemo && !document.getElementById('session').hidden")
        .await;
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver, which ./scripts/test installs"]
async fn the_page_logs_in_and_refreshes_silently_when_the_access_token_expires() {
    let app = spawn_app_with(Backend::Memory, &[("ACCESS_TOKEN_LIFETIME", "2s")]).await;
    let browser = Browser::start().await;
    log_in_on_the_page(&browser, &app).await;
    assert_eq!(
        browser
            .run("return document.getElementById('user').textContent;")
            .await,
        "demo"
    );
    assert_eq!(
        browser
            .run("return document.getElementById('sessions').rows.length;")
            .await,
        1
    );
    let before = rotations(&app).await;

    tokio::time::sleep(Duration::from_millis(3100)).await;
    browser
        .run("document.getElementById('call').click();")
        .await;
    browser
        .wait_for("document.getElementById('result').textContent.startsWith('200')")
        .await;
    let log = browser
        .run("return document.getElementById('log').textContent;")
        .await;
    assert!(log.as_str().unwrap().contains("silent refresh"), "{log}");
    assert_eq!(rotations(&app).await, before + 1, "one silent refresh");
    browser.screenshot("logged-in.png").await;

    // Logged out, the protected call fails and the page asks to log in again.
    browser
        .run("document.getElementById('logout').click();")
        .await;
    browser
        .wait_for("!document.getElementById('login').hidden")
        .await;
    let status = browser
        .run("const r = await window.refreshdDemo.client.fetch(window.refreshdDemo.api + 'me/'); return r.status;")
        .await;
    assert_eq!(status, 401);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver, which ./scripts/test installs"]
async fn two_tabs_meeting_an_expired_token_together_both_stay_logged_in() {
    let app = spawn_app_with(
        Backend::Memory,
        &[("ACCESS_TOKEN_LIFETIME", "3s"), ("WORKERS", "2")],
    )
    .await;
    let browser = Browser::start().await;
    let (first, second) = two_logged_in_tabs(&browser, &app).await;

    tokio::time::sleep(Duration::from_millis(3600)).await;
    let before = rotations(&app).await;
    let start = "window.__call = window.refreshdDemo.client.fetch(window.refreshdDemo.api + 'me/').then(r => r.status); return true;";
    browser.run(start).await;
    browser.switch_to(&first).await;
    browser.run(start).await;
    for tab in [&first, &second] {
        browser.switch_to(tab).await;
        assert_eq!(
            browser.run("return await window.__call;").await,
            200,
            "both tabs stay logged in"
        );
    }
    // The tabs do not coordinate: racing with one cookie, they get one successor (a rotation and
    // a repeated answer); one after the other, the second uses the new cookie (two rotations).
    let refreshes = rotations(&app).await - before
        + app
            .metric("refreshd_refreshes_total{outcome=\"grace_replay\"}")
            .await;
    assert!((1..=2).contains(&refreshes), "{refreshes} refreshes");
    assert_eq!(
        app.metric("refreshd_refreshes_total{outcome=\"reuse_revoked\"}")
            .await,
        0,
        "nobody taken for a thief"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver, which ./scripts/test installs"]
async fn concurrent_401s_in_one_tab_share_one_refresh_and_the_page_fits_a_phone() {
    let (app, browser, before) = logged_in_past_access_expiry().await;
    let statuses = browser
        .run(
            "const { client, api } = window.refreshdDemo;
             const calls = Array.from({ length: 6 }, () => client.fetch(api + 'me/').then((r) => r.status));
             return await Promise.all(calls);",
        )
        .await;
    assert_eq!(statuses, json!([200, 200, 200, 200, 200, 200]));
    assert_eq!(
        rotations(&app).await,
        before + 1,
        "one refresh for six 401s"
    );
    assert_eq!(
        app.metric("refreshd_refreshes_total{outcome=\"grace_replay\"}")
            .await,
        0
    );

    // On a phone's width the page needs no sideways scrolling.
    browser.set_size(390, 844).await;
    browser.wait_for("window.innerWidth <= 400").await;
    let overflow = browser
        .run("return document.documentElement.scrollWidth - window.innerWidth;")
        .await;
    assert!(overflow.as_i64().unwrap() <= 0, "{overflow} px too wide");
    browser.screenshot("phone.png").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver, which ./scripts/test installs"]
async fn without_web_locks_racing_clients_stay_logged_in_and_nobody_is_taken_for_a_thief() {
    // Two tabs may refresh at the same moment (the client takes no lock; this page also hides
    // navigator.locks, as some embedded browsers do). Two clients in
    // one page stand for them (each has its own single-flight, as two tabs do), and the page's
    // fetch holds each refresh until both have been asked for, so that they race for certain:
    // both present the same refresh cookie, and the server's reuse interval gives both the same
    // successor. (Left to chance, the second may start just after the first has finished, with
    // the new cookie, and rotate once more.)
    let (app, browser, before) = logged_in_past_access_expiry().await;
    let statuses = browser
        .run(
            "Object.defineProperty(navigator, 'locks', { value: undefined });
             const realFetch = window.fetch;
             const held = [];
             window.fetch = (url, options) => {
               if (!String(url).includes('token/refresh')) return realFetch(url, options);
               const go = new Promise((release) => held.push(release));
               if (held.length === 2) held.forEach((release) => release());
               setTimeout(() => held.forEach((release) => release()), 10000);
               return go.then(() => realFetch(url, options));
             };
             const { createClient } = await import('/static/refreshd-client.js');
             const api = window.refreshdDemo.api;
             const tabs = [0, 1].map(() => createClient({ refreshPath: api + 'token/refresh/' }));
             return await Promise.all(tabs.map((c) => c.fetch(api + 'me/').then((r) => r.status)));",
        )
        .await;
    assert_eq!(statuses, json!([200, 200]), "both stay logged in");
    // Racing with one cookie: one rotation, and the same successor repeated to the other. (Should
    // a very slow machine let the 10 s fallback release one alone, the other presents the new
    // cookie and rotates once more; either way two refreshes, and nobody is a thief.)
    let rotated = rotations(&app).await - before;
    let repeated = app
        .metric("refreshd_refreshes_total{outcome=\"grace_replay\"}")
        .await;
    assert_eq!(
        rotated + repeated,
        2,
        "{rotated} rotations, {repeated} repeated"
    );
    assert_eq!(
        app.metric("refreshd_refreshes_total{outcome=\"reuse_revoked\"}")
            .await,
        0
    );
    browser.close().await;
}

/// A static site on its own port: an SPA that copied refreshd-client.js.
async fn spa_server() -> (u16, actix_web::dev::ServerHandle) {
    let client_module = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static/refreshd-client.js"),
    )
    .unwrap();
    let server = HttpServer::new(move || {
        let module = client_module.clone();
        App::new()
            .route("/", web::get().to(|| async {
                HttpResponse::Ok().content_type("text/html").body(
                    "<!doctype html><title>SPA</title><script type=module>\
                     import { createClient } from '/refreshd-client.js'; window.createClient = createClient;\
                     </script>",
                )
            }))
            .route("/refreshd-client.js", web::get().to(move || {
                let module = module.clone();
                async move { HttpResponse::Ok().content_type("text/javascript").body(module) }
            }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (port, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver, which ./scripts/test installs"]
async fn an_spa_on_another_origin_works_and_a_disallowed_origin_cannot_refresh() {
    let (spa_port, spa) = spa_server().await;
    let (evil_port, evil) = spa_server().await;
    let spa_origin = format!("http://127.0.0.1:{spa_port}");
    let app = spawn_app_with(
        Backend::Memory,
        &[
            ("ACCESS_TOKEN_LIFETIME", "2s"),
            ("CORS_ALLOWED_ORIGINS", &spa_origin),
        ],
    )
    .await;
    let browser = Browser::start().await;

    // The SPA logs in cross-origin (a CORS preflight for the JSON body), with credentials.
    browser.goto(&format!("{spa_origin}/")).await;
    browser.wait_for("window.createClient").await;
    let api = app.address.clone();
    let login = browser
        .run(&format!(
            "const r = await fetch('{api}/api/auth/login/', {{method: 'POST', credentials: 'include',
               headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{username: 'demo', password: 'demo'}})}});
             return r.status;"
        ))
        .await;
    assert_eq!(login, 200);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let before = rotations(&app).await;
    let me = browser
        .run(&format!(
            "const api = window.createClient({{baseUrl: '{api}'}});
             const r = await api.fetch('/api/auth/me/'); return [r.status, (await r.json()).username];"
        ))
        .await;
    assert_eq!(me, json!([200, "demo"]), "silent refresh across origins");
    assert_eq!(rotations(&app).await, before + 1);

    // A page on an origin that is not allowed sends the cookie along, but the CSRF check refuses
    // it, and the browser keeps the answer from the page.
    browser
        .goto(&format!("http://127.0.0.1:{evil_port}/"))
        .await;
    browser.wait_for("window.createClient").await;
    let refused_before = app.metric("refreshd_csrf_refusals_total").await;
    let attempt = browser
        .run(&format!(
            "try {{ const r = await fetch('{api}/api/auth/token/refresh/', {{method: 'POST', credentials: 'include'}}); return r.status; }}
             catch (e) {{ return 'blocked'; }}"
        ))
        .await;
    assert_eq!(
        attempt, "blocked",
        "no CORS headers for a disallowed origin"
    );
    assert_eq!(
        app.metric("refreshd_csrf_refusals_total").await,
        refused_before + 1,
        "the server answered 403"
    );
    assert_eq!(rotations(&app).await, before + 1, "no rotation happened");

    // Login CSRF: the page posts the attacker's credentials as text/plain (a simple request, no
    // preflight, so the browser sends it). Refused, it cannot swap the victim's cookies for a
    // session in the attacker's account.
    let mallory = unique("mallory");
    app.add_user(&mallory, "pw-1234").await;
    let refused_before = app.metric("refreshd_csrf_refusals_total").await;
    browser
        .run(&format!(
            "try {{ await fetch('{api}/api/auth/login/', {{method: 'POST', credentials: 'include',
               headers: {{'Content-Type': 'text/plain'}}, body: JSON.stringify({{username: '{mallory}', password: 'pw-1234'}})}}); }}
             catch (e) {{}}
             return null;"
        ))
        .await;
    assert_eq!(
        app.metric("refreshd_csrf_refusals_total").await,
        refused_before + 1,
        "the cross-site login was refused"
    );
    browser.goto(&format!("{spa_origin}/")).await;
    browser.wait_for("window.createClient").await;
    let me = browser
        .run(&format!(
            "const api = window.createClient({{baseUrl: '{api}'}});
             const r = await api.fetch('/api/auth/me/'); return [r.status, (await r.json()).username];"
        ))
        .await;
    assert_eq!(me, json!([200, "demo"]), "still the victim's own session");

    browser.close().await;
    spa.stop(false).await;
    evil.stop(false).await;
}

const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1";

/// Logs `demo` in from another device, through the API, as that device's user agent.
async fn log_in_elsewhere(app: &TestApp, user_agent: &str) -> Tokens {
    let reply = Reply::read(
        app.client
            .post(app.url("/api/auth/login/"))
            .header("user-agent", user_agent)
            .json(&json!({"username": "demo", "password": "demo"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&reply, 200, LOGGED_IN);
    reply.tokens()
}

/// The texts of the session table, row by row.
async fn session_rows(browser: &Browser) -> Value {
    browser
        .run(
            "return [...document.getElementById('sessions').rows].map((r) => [...r.cells].map((c) => c.textContent));",
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver, which ./scripts/test installs"]
async fn the_demo_page_loads_cleanly_names_devices_and_reads_well_on_a_phone_and_a_desktop() {
    let app = spawn_app_with(Backend::Memory, &[("ACCESS_TOKEN_LIFETIME", "2s")]).await;
    let browser = Browser::start().await;

    // Logged out: the login form with the demo hint, and a console without errors (no 401 from
    // asking who we are, no 404 for a favicon).
    browser.goto(&app.url("/")).await;
    browser
        .wait_for("window.refreshdDemo && !document.getElementById('login').hidden")
        .await;
    browser
        .run("await window.refreshdDemo.ready; return true;")
        .await;
    assert_eq!(
        browser
            .run("const h = document.getElementById('demo-hint'); return h ? h.textContent : null;")
            .await,
        "Try demo / demo."
    );
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "a logged-out load: {errors:#?}");

    // Two other devices, then this browser.
    let phone = log_in_elsewhere(&app, SAFARI_IPHONE).await;
    let script = log_in_elsewhere(&app, "curl/8.14.1").await;
    log_in_on_the_page(&browser, &app).await;
    browser
        .wait_for("document.getElementById('sessions').rows.length === 3")
        .await;

    // A reload while logged in: no errors, no empty result bar.
    browser.goto(&app.url("/")).await;
    browser
        .wait_for("window.refreshdDemo && !document.getElementById('session').hidden")
        .await;
    browser
        .wait_for("document.getElementById('sessions').rows.length === 3")
        .await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "a logged-in load: {errors:#?}");
    assert_eq!(
        browser
            .run("return getComputedStyle(document.getElementById('result')).display;")
            .await,
        "none",
        "nothing called yet, so no empty bar"
    );
    let rows = session_rows(&browser).await;
    let devices: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert!(devices.contains(&"Safari on iPhone"), "{rows}");
    assert!(devices.contains(&"curl 8.14.1"), "{rows}");
    assert!(
        devices
            .iter()
            .any(|d| d.contains("Chrome") && d.ends_with("on Linux")),
        "{rows}"
    );
    assert!(
        browser
            .run("return document.getElementById('lifetime-hint').textContent;")
            .await
            .as_str()
            .unwrap()
            .contains("ACCESS_TOKEN_LIFETIME=5s")
    );

    // Desktop and phone widths: nothing wider than the screen, every column in view.
    for (width, height, name) in [(1280, 900, "demo-1280.png"), (390, 844, "demo-390.png")] {
        browser.set_size(width, height).await;
        browser
            .wait_for(&format!("Math.abs(window.innerWidth - {width}) < 40"))
            .await;
        let overflow = browser
            .run("return document.documentElement.scrollWidth - window.innerWidth;")
            .await;
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{width} px: {overflow} px too wide"
        );
        let cut = browser
            .run(
                "return [...document.querySelectorAll('#sessions td, #session button')]
                   .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                   .map((e) => e.textContent);",
            )
            .await;
        assert_eq!(cut, json!([]), "{width} px: cut off");
        browser.screenshot(name).await;
    }
    browser.set_size(1100, 900).await;

    // After a silent refresh the list says when this session was last refreshed.
    let never = |rows: &Value| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r[4] == "this browser")
            .map(|r| r[3].clone())
    };
    assert_eq!(never(&session_rows(&browser).await), Some(json!("never")));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    browser
        .run("document.getElementById('call').click();")
        .await;
    browser
        .wait_for("document.getElementById('result').textContent.startsWith('200')")
        .await;
    browser
        .wait_for(
            "[...document.getElementById('sessions').rows].some((r) => r.cells[4].textContent === 'this browser' && r.cells[3].textContent !== 'never')",
        )
        .await;

    // Log out the other sessions: this one stays, theirs are refused.
    browser
        .run("document.getElementById('logout-others').click();")
        .await;
    browser
        .wait_for("document.getElementById('sessions').rows.length === 1")
        .await;
    browser
        .wait_for("document.getElementById('logout-others').hidden")
        .await;
    assert_detail(
        &app.refresh_with_body(&phone.refresh).await,
        401,
        INVALID_REFRESH,
    );
    assert_detail(
        &app.refresh_with_body(&script.refresh).await,
        401,
        INVALID_REFRESH,
    );
    let status = browser
        .run("const r = await window.refreshdDemo.client.fetch(window.refreshdDemo.api + 'me/'); return r.status;")
        .await;
    assert_eq!(status, 200, "this browser is still logged in");
    browser.close().await;
}
