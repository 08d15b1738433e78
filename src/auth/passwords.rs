//! Password hashing with argon2id. Verification runs on the blocking pool, a few at a time, so
//! that logins (slow on purpose) never hold up the async workers that serve refreshes.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

/// Hashes with argon2id and the crate's defaults (m=19 MiB, t=2, p=1: OWASP's first choice).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail on a generated salt")
        .to_string()
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

pub struct Passwords {
    /// Verified against when the username is unknown, so that an unknown user costs the same
    /// time as a wrong password.
    dummy_hash: String,
    permits: Arc<Semaphore>,
}

impl Passwords {
    pub fn new() -> Self {
        let parallel = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            dummy_hash: hash_password("refreshd: no such user"),
            permits: Arc::new(Semaphore::new(parallel)),
        }
    }

    /// Checks `password` against `hash`, or against the dummy hash when there is no user.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.to_owned();
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || verify_blocking(&password, &hash))
            .await
            .unwrap_or(false)
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let p = Passwords::new();
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$"));
        assert!(p.verify("correct horse", Some(&hash)).await);
        assert!(!p.verify("Correct horse", Some(&hash)).await);
        assert!(!p.verify("correct horse", None).await);
        assert!(!p.verify("x", Some("not a hash")).await);
    }
}
