//! The one cookie builder. Every Set-Cookie this server sends, setting or expiring, comes from
//! here, so the attributes can never drift between routes. Trap: a cookie expired with another
//! Path, Domain or SameSite than it was set with is a different cookie and is not removed.

use actix_web::http::header::HeaderValue;

use crate::config::CookieSettings;

#[derive(Clone, Debug)]
pub struct CookieJar {
    settings: CookieSettings,
}

impl CookieJar {
    pub fn new(settings: &CookieSettings) -> Self {
        Self {
            settings: settings.clone(),
        }
    }

    pub fn access_name(&self) -> &str {
        &self.settings.access_name
    }

    pub fn refresh_name(&self) -> &str {
        &self.settings.refresh_name
    }

    /// REFRESH_COOKIE_PATH: where the browser sends the refresh cookie.
    pub fn refresh_path(&self) -> &str {
        &self.settings.refresh_path
    }

    /// `name=value; HttpOnly; Path=..; Max-Age=..; SameSite=..[; Secure][; Domain=..]`, in the
    /// contract's order. Without `max_age`, a browser-session cookie: no Max-Age, no Expires.
    fn build(&self, name: &str, value: &str, path: &str, max_age: Option<u64>) -> HeaderValue {
        let mut s = String::with_capacity(name.len() + value.len() + 96);
        s.push_str(name);
        s.push('=');
        s.push_str(value);
        s.push_str("; HttpOnly; Path=");
        s.push_str(path);
        if let Some(max_age) = max_age {
            s.push_str("; Max-Age=");
            s.push_str(&max_age.to_string());
        }
        s.push_str("; SameSite=");
        s.push_str(self.settings.same_site.as_str());
        if self.settings.secure {
            s.push_str("; Secure");
        }
        if let Some(domain) = &self.settings.domain {
            s.push_str("; Domain=");
            s.push_str(domain);
        }
        // Names, paths and domains are validated at start and tokens are base64url text, so
        // this cannot fail; an empty value (an expiring cookie) is safe in any case.
        HeaderValue::from_str(&s)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    pub fn access(&self, token: &str, max_age: Option<u64>) -> HeaderValue {
        self.build(self.access_name(), token, "/", max_age)
    }

    pub fn refresh(&self, token: &str, max_age: Option<u64>) -> HeaderValue {
        self.build(self.refresh_name(), token, self.refresh_path(), max_age)
    }

    /// Both cookies with `Max-Age=0` and the attributes they were set with.
    pub fn expire_both(&self) -> [HeaderValue; 2] {
        [self.access("", Some(0)), self.refresh("", Some(0))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
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
            j.access("abc", Some(900)),
            "access_token=abc; HttpOnly; Path=/; Max-Age=900; SameSite=Lax"
        );
        assert_eq!(
            j.refresh("def", Some(2592000)),
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
}
