//! The test harness: builds the real application on a free port against a real Redis (a
//! `redis-server` this test run starts on a free port, or TEST_REDIS_URL) or the in-process store,
//! and talks HTTP to it. One file per job; test files take what they need from here
//! (`use crate::helpers::*`).

mod app;
mod assertions;
mod backend;
mod fresh;
mod jwt;
mod process;
mod redis;
mod reply;
mod tls;

pub use self::app::{
    TestApp, metric_in, settings_with, spawn_app, spawn_app_with, spawn_with_settings, test_key,
};
pub use self::assertions::{
    assert_cookies_expired, assert_detail, assert_json_headers, assert_no_cookies,
};
pub use self::backend::Backend;
pub use self::fresh::{free_port, unique};
pub use self::jwt::{claims_of, now_s, sign_with};
pub use self::process::{ServerProcess, add_user_by_cli, run_with_stdin};
pub use self::redis::{
    RedisCluster, RedisProcess, redis_conn, shared_cluster_urls, shared_redis_url,
};
pub use self::reply::{Reply, Tokens};
pub use self::tls::TestCa;

/// The contract's response strings, as the server writes them.
pub use refreshd::http::error::{
    ACCESS_NOT_PROVIDED, BAD_CREDENTIALS, BODY_TOO_LARGE, CSRF_FAILED, INVALID_ACCESS,
    INVALID_REFRESH, INVALID_TOKEN_USER, LOGGED_IN, LOGGED_OUT, NO_ACTIVE_ACCOUNT_FOR_TOKEN,
    NOT_FOUND, REFRESH_NOT_PROVIDED, REFRESHED, SESSION_ENDED, TOKEN_NOT_VALID,
    TOKEN_NOT_VALID_CODE, TOO_MANY_LOGINS, UNAVAILABLE,
};
