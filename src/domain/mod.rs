//! Small value types shared by every layer: user ids, usernames, token ids, session ids, token
//! types. Each has a `parse` that is the only way in, so a value that reaches the store is known to
//! be safe to put in a key. Depends on nothing else in the crate.

use std::fmt;

/// The characters allowed in ids that become part of a store key. Ids arrive inside tokens minted
/// elsewhere (Django's integer or UUID primary keys), so the set is generous, but it excludes the
/// braces, colons and whitespace that would let an id reshape a key or its hash tag.
fn is_key_safe(s: &str, max_len: usize) -> bool {
    !s.is_empty()
        && s.len() <= max_len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+'))
}

macro_rules! key_safe_id {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Option<Self> {
                is_key_safe(s, $max).then(|| Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

key_safe_id!(
    /// A user's id. SimpleJWT writes it as a string; older versions wrote an integer.
    UserId,
    64
);
key_safe_id!(
    /// A token's `jti`. Ours are 32 lowercase hex characters, like SimpleJWT's `uuid4().hex`.
    Jti,
    64
);
key_safe_id!(
    /// A session (token family) id, carried in the `sid` claim. A token minted elsewhere has no
    /// `sid`; its own `jti` then names its session.
    SessionId,
    64
);

impl UserId {
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl Jti {
    /// A fresh random id in SimpleJWT's format (`uuid4().hex`).
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl SessionId {
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl From<Jti> for SessionId {
    fn from(jti: Jti) -> Self {
        Self(jti.0)
    }
}

/// A login name. Any non-blank text up to Django's 150 characters; it is stored as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 150;

    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.trim().is_empty()
            && s.chars().count() <= Self::MAX_LEN
            && !s.chars().any(char::is_control);
        ok.then(|| Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `token_type` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(TokenType::Access),
            "refresh" => Some(TokenType::Refresh),
            _ => None,
        }
    }
}

/// The claims of a verified token, in SimpleJWT's layout plus our session id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub token_type: TokenType,
    pub user_id: UserId,
    pub jti: Jti,
    /// Seconds since the epoch.
    pub iat: u64,
    /// Seconds since the epoch.
    pub exp: u64,
    /// `None` for tokens minted elsewhere (SimpleJWT's carry no session id).
    pub sid: Option<SessionId>,
    /// Every other claim (a Django app's `name`, `email`, `roles`...): a refresh copies them
    /// into the new tokens, as SimpleJWT does. Sorted by name, so that the same claims always
    /// sign to the same token string.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    /// The session this token belongs to: its `sid`, or for a foreign token, its own `jti`.
    pub fn session_id(&self) -> SessionId {
        self.sid
            .clone()
            .unwrap_or_else(|| SessionId::from(self.jti.clone()))
    }
}

/// A user as the store holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    /// An argon2id PHC string, or a hash imported from Django until the first login replaces it.
    pub password_hash: String,
    pub is_active: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("is_active", &self.is_active)
            .finish()
    }
}

/// The address a login-failure limit counts a client by. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is the IPv4 client it names; any other IPv6 client counts by its /64 prefix,
/// because a host is usually handed a whole /64 and can pick a fresh address in it for every
/// guess.
pub fn login_limit_addr(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv6Addr};
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_reshape_a_key_are_refused() {
        for bad in ["", "a}b", "{x}", "a:b", "a b", "ä", &"x".repeat(65)] {
            assert!(UserId::parse(bad).is_none(), "{bad:?} accepted");
        }
        for good in [
            "1",
            "42",
            "3f2a9c1e-0000-4000-8000-000000000000",
            "alice@example.com",
        ] {
            assert_eq!(UserId::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn fresh_jtis_are_32_lowercase_hex() {
        let jti = Jti::new_random();
        assert_eq!(jti.as_str().len(), 32);
        assert!(
            jti.as_str()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn usernames_must_be_visible_text() {
        assert!(Username::parse("").is_none());
        assert!(Username::parse("   ").is_none());
        assert!(Username::parse("a\nb").is_none());
        assert!(Username::parse(&"u".repeat(151)).is_none());
        assert!(Username::parse("Zoë O'Brien").is_some());
    }

    #[test]
    fn user_debug_hides_the_hash() {
        let u = User {
            id: UserId::parse("1").unwrap(),
            username: Username::parse("a").unwrap(),
            password_hash: "$argon2id$secret".into(),
            is_active: true,
        };
        assert!(!format!("{u:?}").contains("secret"));
    }

    #[test]
    fn login_limits_count_ipv6_by_its_64_and_mapped_ipv4_as_ipv4() {
        let limit = |s: &str| login_limit_addr(s.parse().unwrap()).to_string();
        assert_eq!(limit("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(limit("2001:db8:1:2::1"), limit("2001:db8:1:2:ffff::9"));
        assert_ne!(limit("2001:db8:1:2::1"), limit("2001:db8:1:3::1"));
        assert_eq!(limit("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(limit("192.0.2.7"), "192.0.2.7");
        assert_eq!(limit("::1"), "::");
    }
}
