//! The one cookie builder and the one reader of the Cookie header, both on the `cookie` crate.
//! Every Set-Cookie this server sends, setting or expiring, comes from here, so the attributes can
//! never drift between routes. Trap: a cookie expired with another Path, Domain or SameSite than
//! it was set with is a different cookie and is not removed. Depends on `extract` (token
//! normalisation) and `config`, nothing else in `http`.

use std::fmt::Write;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::BytesMut;
use cookie::{Cookie, CookieBuilder, SameSite};
use time::Duration;

use super::extract::normalize_token;
use crate::config::{self, CookieSettings};

#[derive(Clone, Debug)]
pub struct CookieJar {
    settings: CookieSettings,
    access: Layout,
    refresh: Layout,
}

impl CookieJar {
    pub fn new(settings: &CookieSettings) -> Self {
        let same_site = match settings.same_site {
            config::SameSite::Lax => SameSite::Lax,
            config::SameSite::Strict => SameSite::Strict,
            config::SameSite::None => SameSite::None,
        };
        let layout = |name: &str, path: &str| {
            let cookie = Cookie::build((name.to_owned(), ""))
                .http_only(true)
                .path(path.to_owned())
                .same_site(same_site)
                .secure(settings.secure);
            Layout::new(match &settings.domain {
                Some(domain) => cookie.domain(domain.clone()),
                None => cookie,
            })
        };
        Self {
            settings: settings.clone(),
            access: layout(&settings.access_name, "/"),
            refresh: layout(&settings.refresh_name, &settings.refresh_path),
        }
    }

    /// REFRESH_COOKIE_PATH: where the browser sends the refresh cookie.
    pub fn refresh_path(&self) -> &str {
        &self.settings.refresh_path
    }

    /// The access token of the access cookie, if the request has one.
    pub fn access_token(&self, req: &HttpRequest) -> Option<String> {
        cookie_token(req, &self.settings.access_name)
    }

    /// The refresh token of the refresh cookie, if the request has one.
    pub fn refresh_token(&self, req: &HttpRequest) -> Option<String> {
        cookie_token(req, &self.settings.refresh_name)
    }

    /// The access cookie. Without `max_age`, a browser-session cookie: no Max-Age, no Expires.
    pub fn access(&self, token: &str, max_age: Option<Duration>) -> HeaderValue {
        self.access.set_cookie(token, max_age)
    }

    /// The refresh cookie, likewise.
    pub fn refresh(&self, token: &str, max_age: Option<Duration>) -> HeaderValue {
        self.refresh.set_cookie(token, max_age)
    }

    /// Both cookies with `Max-Age=0` and the attributes they were set with.
    pub fn expire_both(&self) -> [HeaderValue; 2] {
        [
            self.access("", Some(Duration::ZERO)),
            self.refresh("", Some(Duration::ZERO)),
        ]
    }
}

/// One cookie's name and constant attributes, rendered by the `cookie` crate once at start.
///
/// The contract writes the attributes in its own order (SPEC 1, and what clients and tests
/// compare): `name=value; HttpOnly; Path=..; Max-Age=..; SameSite=..[; Secure][; Domain=..]`. The
/// crate's `Display` puts SameSite and Secure before Path, and Max-Age last, so it renders the
/// two runs on either side of Max-Age separately, and each Set-Cookie is then one buffer of four
/// pieces that becomes the header without a copy.
#[derive(Clone, Debug)]
struct Layout {
    name: String,
    /// `; HttpOnly; Path=..`
    before_max_age: String,
    /// `; SameSite=..[; Secure][; Domain=..]`
    after_max_age: String,
}

impl Layout {
    fn new(cookie: CookieBuilder<'static>) -> Self {
        let cookie = cookie.build();
        let name = cookie.name().to_owned();
        // The crate's rendering of a cookie with only these attributes, less its `name=`.
        let attributes = |only: CookieBuilder<'_>| {
            let text = only.build().to_string();
            text[name.len() + 1..].to_owned()
        };
        let mut before = Cookie::build((name.as_str(), ""));
        if let Some(http_only) = cookie.http_only() {
            before = before.http_only(http_only);
        }
        if let Some(path) = cookie.path() {
            before = before.path(path);
        }
        let mut after = Cookie::build((name.as_str(), ""));
        if let Some(same_site) = cookie.same_site() {
            after = after.same_site(same_site);
        }
        if let Some(secure) = cookie.secure() {
            after = after.secure(secure);
        }
        // The crate drops a leading dot of COOKIE_DOMAIN, as browsers do (RFC 6265 5.2.3): the
        // same cookie either way.
        if let Some(domain) = cookie.domain() {
            after = after.domain(domain);
        }
        Self {
            before_max_age: attributes(before),
            after_max_age: attributes(after),
            name,
        }
    }

    fn set_cookie(&self, value: &str, max_age: Option<Duration>) -> HeaderValue {
        let mut out = BytesMut::with_capacity(
            self.name.len()
                + 1
                + value.len()
                + self.before_max_age.len()
                + "; Max-Age=".len()
                + 20
                + self.after_max_age.len(),
        );
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(b"=");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(self.before_max_age.as_bytes());
        if let Some(max_age) = max_age {
            let _ = write!(out, "; Max-Age={}", max_age.whole_seconds());
        }
        out.extend_from_slice(self.after_max_age.as_bytes());
        // Names, paths and domains are validated at start and tokens are base64url text, so
        // this cannot fail; an empty value (an expiring cookie) is safe in any case.
        HeaderValue::from_maybe_shared(out.freeze())
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

/// The first non-empty (after normalisation) cookie of that name, across every Cookie header.
/// Pairs that are not `name=value` are skipped, as are headers that are not UTF-8.
///
/// The header is split at `;` here and only a pair that starts with the name goes to the crate's
/// parser: `Cookie::split_parse` would make a full `Cookie` of every pair in the header (other
/// sites' cookies, the other token), which costs the refresh route about three times as much.
fn cookie_token(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter(|pair| pair.trim_start().starts_with(name))
        .filter_map(|pair| Cookie::parse(pair).ok())
        .filter(|cookie| cookie.name() == name)
        .find_map(|cookie| normalize_token(cookie.value()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use actix_web::test::TestRequest;
    use std::collections::HashMap;

    fn jar(pairs: &[(&str, &str)]) -> CookieJar {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CookieJar::new(
            &Settings::from_lookup(|k| map.get(k).cloned())
                .unwrap()
                .cookies,
        )
    }

    #[test]
    fn defaults_match_the_contract() {
        let j = jar(&[]);
        assert_eq!(
            j.access("abc", Some(Duration::seconds(900))),
            "access_token=abc; HttpOnly; Path=/; Max-Age=900; SameSite=Lax"
        );
        assert_eq!(
            j.refresh("def", Some(Duration::days(30))),
            "refresh_token=def; HttpOnly; Path=/; Max-Age=2592000; SameSite=Lax"
        );
        assert_eq!(
            j.refresh("def", None),
            "refresh_token=def; HttpOnly; Path=/; SameSite=Lax"
        );
    }

    #[test]
    fn expiry_keeps_path_domain_and_samesite() {
        let j = jar(&[
            ("REFRESH_COOKIE_PATH", "/api/auth/"),
            ("COOKIE_DOMAIN", "example.com"),
            ("COOKIE_SAMESITE", "Strict"),
            ("COOKIE_SECURE", "true"),
        ]);
        let [a, r] = j.expire_both();
        assert_eq!(
            a,
            "access_token=; HttpOnly; Path=/; Max-Age=0; SameSite=Strict; Secure; Domain=example.com"
        );
        assert_eq!(
            r,
            "refresh_token=; HttpOnly; Path=/api/auth/; Max-Age=0; SameSite=Strict; Secure; Domain=example.com"
        );
    }

    #[test]
    fn a_leading_dot_of_the_domain_is_dropped_as_browsers_drop_it() {
        let j = jar(&[("COOKIE_DOMAIN", ".example.com")]);
        assert_eq!(
            j.access("abc", None),
            "access_token=abc; HttpOnly; Path=/; SameSite=Lax; Domain=example.com"
        );
    }

    /// What the crate reads back from each Set-Cookie is what was configured.
    #[test]
    fn the_crate_reads_back_every_attribute() {
        let j = jar(&[
            ("REFRESH_COOKIE_NAME", "__Secure-rt"),
            ("REFRESH_COOKIE_PATH", "/api/auth/"),
            ("COOKIE_DOMAIN", "example.com"),
            ("COOKIE_SAMESITE", "None"),
            ("COOKIE_SECURE", "true"),
        ]);
        let header = j.refresh("tok", Some(Duration::seconds(60)));
        let c = Cookie::parse(header.to_str().unwrap()).unwrap();
        assert_eq!((c.name(), c.value()), ("__Secure-rt", "tok"));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.path(), Some("/api/auth/"));
        assert_eq!(c.max_age(), Some(Duration::seconds(60)));
        assert_eq!(c.same_site(), Some(SameSite::None));
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.domain(), Some("example.com"));
        assert_eq!(c.expires(), None);
        let header = j.access("tok", None);
        let session = Cookie::parse(header.to_str().unwrap()).unwrap();
        assert_eq!((session.max_age(), session.expires()), (None, None));
    }

    #[test]
    fn the_first_non_empty_cookie_of_the_name_wins() {
        let req = TestRequest::default()
            .insert_header((
                "cookie",
                "other=1; refresh_token=; refresh_token=\"Bearer t1\"",
            ))
            .append_header(("cookie", "refresh_token=t2"))
            .to_http_request();
        assert_eq!(cookie_token(&req, "refresh_token").as_deref(), Some("t1"));
        assert_eq!(cookie_token(&req, "access_token"), None);
        assert_eq!(cookie_token(&req, "other").as_deref(), Some("1"));
    }

    #[test]
    fn malformed_pairs_are_skipped() {
        let req = TestRequest::default()
            .insert_header((
                "cookie",
                "junk; =x; ;; refresh_token ; refresh_token = a=b ; access_token=%20",
            ))
            .to_http_request();
        assert_eq!(cookie_token(&req, "refresh_token").as_deref(), Some("a=b"));
        assert_eq!(cookie_token(&req, "access_token"), None);
        assert_eq!(cookie_token(&req, ""), None);
    }
}
