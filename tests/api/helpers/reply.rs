//! A response read whole, and the Set-Cookie headers in it, parsed.

use reqwest::header::HeaderMap;
use serde_json::Value;

/// A logged-in client's cookies.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// A whole response, read at once.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

/// One Set-Cookie header, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie {
    pub raw: String,
    pub value: String,
    pub attrs: Vec<(String, String)>,
}

impl SetCookie {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }
}

impl Reply {
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|raw| {
                let mut parts = raw.split(';').map(str::trim);
                let (_, value) = parts.next().unwrap().split_once('=').unwrap();
                let attrs = parts
                    .map(|p| match p.split_once('=') {
                        Some((k, v)) => (k.to_owned(), v.to_owned()),
                        None => (p.to_owned(), String::new()),
                    })
                    .collect();
                SetCookie {
                    raw: raw.to_owned(),
                    value: value.to_owned(),
                    attrs,
                }
            })
            .collect()
    }

    pub fn cookie(&self, name: &str) -> Option<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .position(|raw| raw.starts_with(&format!("{name}=")))
            .map(|i| self.set_cookies()[i].clone())
    }

    pub fn tokens(&self) -> Tokens {
        Tokens {
            access: self.cookie("access_token").expect("an access cookie").value,
            refresh: self
                .cookie("refresh_token")
                .expect("a refresh cookie")
                .value,
        }
    }
}
