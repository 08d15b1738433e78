//! Password hashing with argon2id. Verification runs on a few dedicated threads, each reusing
//! one argon2 memory buffer, so that logins (slow on purpose) never hold up the async workers
//! that serve refreshes, and a burst of logins cannot grow the heap by a fresh 19 MiB buffer per
//! login (the allocator would keep them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

/// Hashes with argon2id and the crate's defaults (m=19 MiB, t=2, p=1: OWASP's first choice).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail on a generated salt")
        .to_string()
}

/// Checks `password` against a PHC string, hashing into `blocks` (grown to fit, then reused).
fn verify_with(blocks: &mut Vec<Block>, password: &str, hash: &str) -> bool {
    let mut check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::V0x13,
        };
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        if blocks.len() < params.block_count() {
            blocks.resize(params.block_count(), Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut out,
                &mut blocks[..params.block_count()],
            )
            .ok()?;
        // Output's equality is constant-time.
        Some(Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

/// Asks the scheduler to prefer the request workers over this hashing thread (nice 10), so that
/// a stream of logins slows refreshes by no more than the CPU it takes.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority on this thread's own id changes only
    // this thread's nice value, and a failure (no permission) is harmless and ignored.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

struct Job {
    password: String,
    hash: String,
    reply: oneshot::Sender<bool>,
}

pub struct Passwords {
    /// Verified against when the username is unknown, so that an unknown user costs the same
    /// time as a wrong password.
    dummy_hash: String,
    jobs: mpsc::Sender<Job>,
    /// Bounds the logins waiting for a hashing thread.
    permits: Arc<Semaphore>,
    /// How many verifications the hashing threads have run: one per login that reaches the
    /// check, whether or not its user exists.
    checks: Arc<AtomicU64>,
}

impl Passwords {
    pub fn new() -> Self {
        // Half the cores: logins queue a little under a burst, and refreshes keep the rest.
        let threads = std::thread::available_parallelism()
            .map(|n| (n.get() / 2).max(1))
            .unwrap_or(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let checks = Arc::new(AtomicU64::new(0));
        for _ in 0..threads {
            let queue = queue.clone();
            let checks = checks.clone();
            std::thread::Builder::new()
                .name("refreshd-argon2".into())
                .spawn(move || {
                    lower_priority();
                    let mut blocks = Vec::new();
                    loop {
                        // Ends when the Passwords (the only sender) is dropped.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let ok = verify_with(&mut blocks, &job.password, &job.hash);
                        checks.fetch_add(1, Ordering::Relaxed);
                        let _ = job.reply.send(ok);
                    }
                })
                .expect("a hashing thread");
        }
        Self {
            dummy_hash: hash_password("refreshd: no such user"),
            jobs,
            permits: Arc::new(Semaphore::new(threads * 8)),
            checks,
        }
    }

    /// How many password verifications have run.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Checks `password` against `hash`, or against the dummy hash when there is no user.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            password: password.to_owned(),
            hash: hash.unwrap_or(&self.dummy_hash).to_owned(),
            reply,
        };
        if self.jobs.send(job).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
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

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        // An unknown user is checked against the dummy hash: same algorithm, version and
        // parameters as a user's hash, so the same work.
        let cost = |phc: &str| {
            let parsed = PasswordHash::new(phc).unwrap();
            (
                parsed.algorithm.to_string(),
                parsed.version,
                Params::try_from(&parsed).unwrap(),
                parsed.hash.unwrap().len(),
            )
        };
        assert_eq!(
            cost(&Passwords::new().dummy_hash),
            cost(&hash_password("a user's password"))
        );
    }

    #[test]
    fn the_reused_buffer_gives_the_same_answers() {
        let mut blocks = Vec::new();
        let a = hash_password("one");
        let b = hash_password("two");
        for _ in 0..2 {
            assert!(verify_with(&mut blocks, "one", &a));
            assert!(verify_with(&mut blocks, "two", &b));
            assert!(!verify_with(&mut blocks, "one", &b));
        }
        assert_eq!(blocks.len(), Params::DEFAULT_M_COST as usize);
    }
}
