//! What the HTTP layer may ask of the service besides the flows: whether it is ready, the public
//! keys, whether a user may log in. Each answer is in `auth`'s own terms, so that `http` never
//! reaches through to the store or the token codec. Nothing here knows about HTTP.

use crate::domain::Username;
use crate::store::Eviction;

use super::{AuthError, AuthService};

/// Why the service should not take traffic now (SPEC 8); the text is for the log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unready {
    #[error("{0}")]
    StoreDown(String),
    #[error(
        "Redis evicts keys (maxmemory {maxmemory} bytes, maxmemory-policy {policy}); set maxmemory-policy noeviction"
    )]
    Evicting { policy: String, maxmemory: u64 },
    #[error("{online} Redis replica(s) online, REDIS_MIN_REPLICAS={needed}: writes answer 503")]
    TooFewReplicas { online: u32, needed: u32 },
}

impl AuthService {
    /// Ready: the store answers and is fit (not evicting, replicas as required).
    pub async fn readiness(&self) -> Result<(), Unready> {
        let down = |e: crate::store::StoreError| Unready::StoreDown(e.to_string());
        self.store.ping().await.map_err(down)?;
        let fitness = self.store.fitness().await.map_err(down)?;
        if let Eviction::Evicts { policy, maxmemory } = fitness.eviction {
            return Err(Unready::Evicting { policy, maxmemory });
        }
        match fitness.replicas {
            Some((online, needed)) if online < needed => {
                Err(Unready::TooFewReplicas { online, needed })
            }
            _ => Ok(()),
        }
    }

    /// The public keys that verify this server's tokens, as JWKs: current and retired, none for
    /// HMAC.
    pub fn public_keys(&self) -> Vec<serde_json::Value> {
        match self.codec.jwks() {
            serde_json::Value::Object(mut set) => match set.remove("keys") {
                Some(serde_json::Value::Array(keys)) => keys,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Whether `username` names an active user, one that could log in.
    pub async fn is_active_user(&self, username: &Username) -> Result<bool, AuthError> {
        Ok(self
            .store
            .user_by_username(username)
            .await?
            .is_some_and(|user| user.is_active))
    }
}
