//! The application under test: built from Settings on port 0 (against the in-process store, the
//! shared Redis or the shared Redis Cluster) and served in this process, with a client and the
//! requests most tests make.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use refreshd::auth;
use refreshd::config::Settings;
use refreshd::domain::{User, UserId, Username};
use refreshd::http::error::LOGGED_IN;
use refreshd::startup::Application;
use refreshd::store::Store;
use serde_json::Value;

use super::assertions::assert_detail;
use super::backend::Backend;
use super::fresh::unique;
use super::redis::{shared_cluster_urls, shared_redis_url};
use super::reply::{Reply, Tokens};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub redis_url: Option<String>,
    /// The client address this app's logins claim, through the trusted loopback proxy.
    pub client_ip: String,
    handle: ServerHandle,
}

/// Settings every test starts from: a fixed key, one worker, port 0, logins not limited unless
/// a test asks.
const TEST_DEFAULTS: &[(&str, &str)] = &[
    ("BIND_ADDR", "127.0.0.1:0"),
    ("WORKERS", "1"),
    (
        "SIGNING_KEY",
        "test-signing-key-0123456789-0123456789-abcdef",
    ),
    ("LOGIN_MAX_FAILURES", "1000"),
    // Each test app's logins come from an address of its own (X-Forwarded-For), so that
    // login-failure counts in the shared Redis never leak between tests.
    ("TRUSTED_PROXIES", "127.0.0.1"),
    ("STORE_TIMEOUT", "1s"),
];

pub fn settings_with(backend: Backend, vars: &[(&str, &str)]) -> Settings {
    let mut map: HashMap<String, String> = TEST_DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match backend {
        Backend::Memory => {}
        Backend::Redis => {
            map.insert("REDIS_URL".into(), shared_redis_url());
        }
        Backend::Cluster => {
            map.insert("REDIS_CLUSTER_NODES".into(), shared_cluster_urls());
        }
    }
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    Settings::from_lookup(|k| map.get(k).cloned()).expect("valid test settings")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, vars: &[(&str, &str)]) -> TestApp {
    spawn_with_settings(settings_with(backend, vars)).await
}

pub async fn spawn_with_settings(settings: Settings) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let store = app.store();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        store,
        redis_url: settings.store.redis_url().map(|u| u.expose_text()),
        client_ip: {
            let b = uuid::Uuid::new_v4();
            let b = b.as_bytes();
            format!("198.18.{}.{}", b[0], b[1])
        },
        handle,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping needs a runtime; the test's own may already be shutting down.
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(handle.stop(false));
            }
        });
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn add_user(&self, username: &str, password: &str) -> User {
        self.add_user_with_id(username, password, None).await
    }

    pub async fn add_user_with_id(&self, username: &str, password: &str, id: Option<&str>) -> User {
        let user = auth::new_user(
            Username::parse(username).unwrap(),
            password,
            id.map(|i| UserId::parse(i).unwrap()),
        );
        self.store.add_user(&user).await.expect("user added");
        user
    }

    /// POSTs `body` in 1 000-byte chunks with no Content-Length, as a streaming client does.
    pub async fn post_streamed(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(1000).map(|c| Ok(c.to_vec())).collect();
        let mut request = self.client.post(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::read(
            request
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    chunks,
                )))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// One series of GET /metrics, e.g. `refreshd_refreshes_total{outcome="ok"}`.
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metric_in(&text, series)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        Reply::read(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        Reply::read(
            self.client
                .post(self.url("/api/auth/login/"))
                .header("x-forwarded-for", &self.client_ip)
                .json(&serde_json::json!({ "username": username, "password": password }))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A new user, logged in: its cookies.
    pub async fn logged_in(&self) -> (User, Tokens) {
        let name = unique("user");
        let user = self.add_user(&name, "pw-1234").await;
        let reply = self.login(&name, "pw-1234").await;
        assert_detail(&reply, 200, LOGGED_IN);
        (user, reply.tokens())
    }

    /// POST with a raw Cookie header value.
    pub async fn post_with_cookie(&self, path: &str, cookie: &str) -> Reply {
        Reply::read(
            self.client
                .post(self.url(path))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn refresh_with_cookie(&self, token: &str) -> Reply {
        self.post_with_cookie(
            "/api/auth/token/refresh/",
            &format!("refresh_token={token}"),
        )
        .await
    }

    pub async fn refresh_with_body(&self, token: &str) -> Reply {
        self.post_json(
            "/api/auth/token/refresh/",
            &serde_json::json!({ "refresh": token }),
        )
        .await
    }

    pub async fn me_with_cookie(&self, access: &str) -> Reply {
        Reply::read(
            self.client
                .get(self.url("/api/auth/me/"))
                .header("cookie", format!("access_token={access}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn logout_with_cookie(&self, refresh: &str) -> Reply {
        self.post_with_cookie("/api/auth/logout/", &format!("refresh_token={refresh}"))
            .await
    }
}

pub fn test_key() -> &'static str {
    TEST_DEFAULTS
        .iter()
        .find(|(k, _)| *k == "SIGNING_KEY")
        .unwrap()
        .1
}

/// One series of a Prometheus text page.
pub fn metric_in(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{series} not in:\n{text}"))
}
