//! Password hashing with argon2id, and verification of the hashes a Django project stores
//! (`pbkdf2_sha256`, `pbkdf2_sha1`, `argon2`, `bcrypt_sha256`, `bcrypt`, `scrypt`), as Django
//! verifies them, so that imported users log in with their passwords; a login that succeeds on
//! any other kind of hash also yields its replacement, refreshd's own argon2id hash.
//! Verification runs on a few dedicated threads, each reusing one argon2 memory buffer, so that
//! logins (slow on purpose) never hold up the async workers that serve refreshes, and a burst of
//! logins cannot grow the heap by a fresh 19 MiB buffer per login (the allocator would keep them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Whether `hash` is refreshd's own: argon2id with today's parameters. Any other hash that a
/// login verifies is replaced.
pub fn is_current(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        parsed.algorithm == argon2::Algorithm::Argon2id.ident()
            && parsed.version == Some(Version::V0x13.into())
            && Params::try_from(&parsed).is_ok_and(|p| {
                let today = Params::default();
                (p.m_cost(), p.t_cost(), p.p_cost())
                    == (today.m_cost(), today.t_cost(), today.p_cost())
            })
    })
}

/// Whether `hash` is one this module can verify: refreshd's or one of Django's hashers. Django's
/// unusable password (`!` and random text) and unknown hashers are not.
pub fn is_usable(hash: &str) -> bool {
    hash.starts_with("$argon2")
        || DJANGO_HASHERS.iter().any(|h| {
            hash.strip_prefix(h)
                .is_some_and(|rest| rest.starts_with('$'))
        })
}

/// Django's hashers, by the prefix its `make_password` writes.
pub const DJANGO_HASHERS: &[&str] = &[
    "pbkdf2_sha256",
    "pbkdf2_sha1",
    "argon2",
    "bcrypt_sha256",
    "bcrypt",
    "scrypt",
];

/// Work limits on hashes read from elsewhere: a hash is data, and one with absurd parameters
/// must not tie up a hashing thread for minutes or take gigabytes. Django's defaults are far
/// below (pbkdf2: 1 000 000 iterations; argon2: 100 MiB; bcrypt: cost 12; scrypt: n = 2^14).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
const MAX_ARGON2_KIB: u32 = 256 * 1024;
const MAX_ARGON2_PASSES: u32 = 16;
const MAX_BCRYPT_COST: u32 = 16;
const MAX_SCRYPT_LOG_N: u8 = 20;

/// Checks `password` against a stored hash of any kind this module knows; false for any other.
fn verify_with(blocks: &mut Vec<Block>, password: &str, hash: &str) -> bool {
    if hash.starts_with("$argon2") {
        return verify_phc(blocks, password, hash, Version::V0x13);
    }
    let Some((kind, rest)) = hash.split_once('$') else {
        return false;
    };
    let ok = match kind {
        "pbkdf2_sha256" => verify_pbkdf2(password, rest, false),
        "pbkdf2_sha1" => verify_pbkdf2(password, rest, true),
        // Django writes "argon2" and argon2-cffi's PHC string without its leading "$"; the
        // oldest of them carry no version, which means 0x10.
        "argon2" => verify_phc(blocks, password, &format!("${rest}"), Version::V0x10),
        // The hex SHA-256 of the password, so that bcrypt's 72-byte limit truncates nothing.
        "bcrypt_sha256" => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(password.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            verify_bcrypt(&hex, rest)
        }
        "bcrypt" => verify_bcrypt(password, rest),
        "scrypt" => verify_scrypt(password, rest),
        _ => false,
    };
    // A Django argon2 hash may have grown the buffer far past refreshd's 19 MiB: give it back.
    if blocks.len() > Params::DEFAULT_M_COST as usize {
        blocks.truncate(Params::DEFAULT_M_COST as usize);
        blocks.shrink_to_fit();
    }
    ok
}

/// Django's PBKDF2: `<iterations>$<salt>$<base64 of the derived key>`, the key as long as the
/// digest; compared in constant time, as Django's `constant_time_compare`. Run through the
/// pbkdf2 crate's own `Pbkdf2` hasher, whose HMAC is compiled (and optimised) in that crate.
fn verify_pbkdf2(password: &str, rest: &str, sha1: bool) -> bool {
    let check = || -> Option<bool> {
        use base64::Engine;
        use pbkdf2::{Algorithm, Params, Pbkdf2};
        let mut parts = rest.splitn(3, '$');
        let rounds: u32 = parts.next()?.parse().ok()?;
        // Django salts the key with the salt's text as it is; the hasher takes a salt in B64 and
        // decodes it first, so hand it the text encoded.
        let salt = SaltString::encode_b64(parts.next()?.as_bytes()).ok()?;
        let expected = base64::engine::general_purpose::STANDARD
            .decode(parts.next()?)
            .ok()?;
        if rounds == 0 || rounds > MAX_PBKDF2_ITERATIONS {
            return None;
        }
        let algorithm = if sha1 {
            Algorithm::Pbkdf2Sha1
        } else {
            Algorithm::Pbkdf2Sha256
        };
        let params = Params {
            rounds,
            output_length: expected.len(),
        };
        let derived = Pbkdf2
            .hash_password_customized(
                password.as_bytes(),
                Some(algorithm.ident()),
                None,
                params,
                salt.as_salt(),
            )
            .ok()?
            .hash?;
        // Output's equality is constant-time.
        Some(derived == Output::new(&expected).ok()?)
    };
    check().unwrap_or(false)
}

/// A bcrypt hash as Django stores it after its prefix: `$2b$<cost>$...` (the empty field
/// before it is the leading "$").
fn verify_bcrypt(password: &str, rest: &str) -> bool {
    let Some(hash) = rest.strip_prefix('$').map(|h| format!("${h}")) else {
        return false;
    };
    let cost_ok = hash
        .split('$')
        .nth(2)
        .and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|c| c <= MAX_BCRYPT_COST);
    cost_ok && bcrypt::verify(password, &hash).unwrap_or(false)
}

/// Django's scrypt: `<n>$<salt>$<r>$<p>$<base64 of a 64-byte key>`.
fn verify_scrypt(password: &str, rest: &str) -> bool {
    let check = || -> Option<bool> {
        use base64::Engine;
        let parts: Vec<&str> = rest.splitn(5, '$').collect();
        let [n, salt, r, p, encoded] = parts.as_slice() else {
            return None;
        };
        let n: u64 = n.parse().ok()?;
        if !n.is_power_of_two() || n < 2 {
            return None;
        }
        let log_n = n.trailing_zeros() as u8;
        let (r, p): (u32, u32) = (r.parse().ok()?, p.parse().ok()?);
        if log_n > MAX_SCRYPT_LOG_N || r > 32 || p > 16 {
            return None;
        }
        let expected = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let params = scrypt::Params::new(log_n, r, p, expected.len()).ok()?;
        let mut out = vec![0u8; expected.len()];
        scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params, &mut out).ok()?;
        // Output's equality is constant-time.
        Some(Output::new(&out).ok()? == Output::new(&expected).ok()?)
    };
    check().unwrap_or(false)
}

/// Checks `password` against an argon2 PHC string, hashing into `blocks` (grown to fit, then
/// reused). `unversioned` is the version a string without `v=` means.
fn verify_phc(blocks: &mut Vec<Block>, password: &str, hash: &str, unversioned: Version) -> bool {
    let mut check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => unversioned,
        };
        let params = Params::try_from(&parsed).ok()?;
        if params.m_cost() > MAX_ARGON2_KIB || params.t_cost() > MAX_ARGON2_PASSES {
            return None;
        }
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
    /// Whether to make refreshd's own hash of a right password stored under another kind.
    rehash: bool,
    reply: oneshot::Sender<Verdict>,
}

/// What a password check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    /// refreshd's argon2id hash of the password, when it was right and stored under another
    /// kind of hash (one imported from Django, say): the store should keep this one instead.
    pub rehashed: Option<String>,
}

impl Verdict {
    const WRONG: Verdict = Verdict {
        ok: false,
        rehashed: None,
    };
}

pub struct Passwords {
    /// Verified against when the username is unknown, so that an unknown user costs the same
    /// work as a wrong password.
    dummy_hash: String,
    jobs: mpsc::Sender<Job>,
    /// Bounds the logins waiting for a hashing thread.
    permits: Arc<Semaphore>,
    /// How many verifications the hashing threads have run: one per login that reaches the
    /// check, whether or not its user exists.
    checks: Arc<AtomicU64>,
    /// The longest a check of another kind of hash (Django's) has taken, in microseconds. Every
    /// failed check lasts at least that long, so that neither an unknown user (checked against
    /// the argon2id dummy) nor a user with a faster or slower kind of hash stands out by time.
    slowest_foreign_us: Arc<AtomicU64>,
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
        let slowest_foreign_us = Arc::new(AtomicU64::new(0));
        for _ in 0..threads {
            let queue = queue.clone();
            let checks = checks.clone();
            let slowest = slowest_foreign_us.clone();
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
                        let started = Instant::now();
                        let ok = verify_with(&mut blocks, &job.password, &job.hash);
                        if !job.hash.starts_with("$argon2") {
                            let took = started.elapsed().as_micros() as u64;
                            slowest.fetch_max(took, Ordering::Relaxed);
                        }
                        checks.fetch_add(1, Ordering::Relaxed);
                        let rehashed = (ok && job.rehash && !is_current(&job.hash))
                            .then(|| hash_password(&job.password));
                        let _ = job.reply.send(Verdict { ok, rehashed });
                    }
                })
                .expect("a hashing thread");
        }
        Self {
            dummy_hash: hash_password("refreshd: no such user"),
            jobs,
            permits: Arc::new(Semaphore::new(threads * 8)),
            checks,
            slowest_foreign_us,
        }
    }

    /// How many password verifications have run.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Checks `password` against `hash`, or against the dummy hash when there is no user.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        self.check(password, hash, false).await.ok
    }

    /// Like `verify`; with `rehash`, a right password stored under another kind of hash than
    /// refreshd's comes back hashed anew. A failure takes as long as the slowest check of a
    /// foreign hash so far, whatever the hash it failed against.
    pub async fn check(&self, password: &str, hash: Option<&str>, rehash: bool) -> Verdict {
        let started = Instant::now();
        let verdict = self.run(password, hash, rehash).await;
        if !verdict.ok {
            let floor = Duration::from_micros(self.slowest_foreign_us.load(Ordering::Relaxed));
            if let Some(rest) = floor.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
        verdict
    }

    async fn run(&self, password: &str, hash: Option<&str>, rehash: bool) -> Verdict {
        let Ok(_permit) = self.permits.acquire().await else {
            return Verdict::WRONG;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            password: password.to_owned(),
            hash: hash.unwrap_or(&self.dummy_hash).to_owned(),
            rehash: rehash && hash.is_some(),
            reply,
        };
        if self.jobs.send(job).is_err() {
            return Verdict::WRONG;
        }
        answer.await.unwrap_or(Verdict::WRONG)
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

    /// Made by Django 5.2's own hashers (argon2-cffi 25.1, bcrypt 5.0), with low work factors so
    /// that the test is quick; tests/api/django.rs checks Django's defaults end to end.
    const DJANGO_HASHES: &[&str] = &[
        "pbkdf2_sha256$1000$saltsaltsalt$z7ra2+XqzhrNw4lcriWCBBUiNujmV4W08bZ3yCqcO3o=",
        "pbkdf2_sha1$1000$saltsaltsalt$AfgtMrEevVW2zUMSbypJIm7ZKYk=",
        "argon2$argon2id$v=19$m=64,t=1,p=2$c2FsdHNhbHRzYWx0$Kk2wmSFBS89ne/8gUGj1g7zevF1z/jXnAXVA8PfOPkc",
        "argon2$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$6ULshmW9PKM2UwyQNOPQMkSHwnBZ/ZHj77rD7Exz9w8",
        "bcrypt_sha256$$2b$04$x1Xce5AplLqNIzW09hVBLutrd8b8szYvXfoZwSbGbBUEot/aBqccu",
        "bcrypt$$2b$04$1ZqCbsEzomiLyAF0K/Wm/OSNzmpJTxqea/VxUbGO9R38EUZbxl0p2",
        "scrypt$1024$saltsaltsalt$8$1$hLSKvYa0MYg8+Ba0b69UlRMzeWM8WUU/thQUvOyerqwgBiaJdKqx/vQZwwRQrDfPojDGfAjs8N27yrinMGfgdw==",
    ];
    const DJANGO_PASSWORD: &str = "correct horse \u{fc}";

    #[test]
    fn djangos_hashes_verify_as_django_verifies_them() {
        let mut blocks = Vec::new();
        for hash in DJANGO_HASHES {
            assert!(is_usable(hash), "{hash}");
            assert!(!is_current(hash), "{hash}");
            assert!(verify_with(&mut blocks, DJANGO_PASSWORD, hash), "{hash}");
            assert!(!verify_with(&mut blocks, "correct horse u", hash), "{hash}");
            assert!(!verify_with(&mut blocks, "", hash), "{hash}");
        }
        // A tampered digest, an unusable password, an unknown hasher: never.
        for hash in [
            "pbkdf2_sha256$1000$saltsaltsalt$z7ra2+XqzhrNw4lcriWCBBUiNujmV4W08bZ3yCqcO3p=",
            "!GkXvc7EG9HrYtqg4iMjV569AcR37w8jHzHnVAziG",
            "md5$saltsaltsalt$0123456789abcdef0123456789abcdef",
            "pbkdf2_sha256$0$salt$AAAA",
            "pbkdf2_sha256$99999999999$salt$AAAA",
            "scrypt$1000$salt$8$1$AAAA",
            "",
        ] {
            assert!(!verify_with(&mut blocks, DJANGO_PASSWORD, hash), "{hash}");
        }
        assert!(!is_usable("!GkXvc7EG9HrYtqg4iMjV569AcR37w8jHzHnVAziG"));
        assert!(!is_usable("md5$salt$abc"));
        assert!(is_current(&hash_password("x")));
    }

    #[tokio::test]
    async fn a_right_password_under_a_django_hash_comes_back_rehashed() {
        let p = Passwords::new();
        let verdict = p.check(DJANGO_PASSWORD, Some(DJANGO_HASHES[0]), true).await;
        assert!(verdict.ok);
        let new = verdict.rehashed.expect("a new hash");
        assert!(is_current(&new));
        assert!(p.verify(DJANGO_PASSWORD, Some(&new)).await);
        // Already refreshd's own, or wrong: nothing to replace.
        assert_eq!(
            p.check(DJANGO_PASSWORD, Some(&new), true).await.rehashed,
            None
        );
        let wrong = p.check("nope", Some(DJANGO_HASHES[0]), true).await;
        assert_eq!(wrong, Verdict::WRONG);
        assert_eq!(p.checks(), 4, "one verification per check");
    }

    #[tokio::test]
    async fn a_failure_lasts_as_long_as_the_slowest_foreign_hash_check() {
        let p = Passwords::new();
        p.slowest_foreign_us.store(300_000, Ordering::Relaxed);
        for hash in [None, Some(DJANGO_HASHES[5])] {
            let started = Instant::now();
            assert!(!p.verify("wrong", hash).await);
            assert!(started.elapsed() >= Duration::from_millis(300), "{hash:?}");
        }
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
