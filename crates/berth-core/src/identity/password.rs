//! Harbor's local password and robot secret hashing (goharbor/harbor `src/common/utils/encrypt.go`,
//! `src/pkg/user/manager.go`, `src/controller/robot/controller.go`), plus two things Harbor lacks
//! and Berth needs because Basic auth is checked on every API and registry call: a cache of
//! successful verifications ([`VerifyCache`]) and per-name login throttling ([`LoginThrottle`]).
//!
//! The stored form is `hex(PBKDF2(HMAC-H, password, salt bytes, iterations, 16))`, 32 lowercase
//! hex characters, next to a 32-character alphanumeric salt and a `password_version` string.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// PBKDF2 iterations of the `sha1` and `sha256` versions (and of robot secrets).
pub const LEGACY_ITERATIONS: u32 = 4096;
/// PBKDF2 iterations of `pbkdf2_sha256`, and of any version string Harbor does not know.
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// Length in bytes of the derived key; the stored hash is twice as many hex characters.
pub const HASH_BYTES: usize = 16;
/// Length of a salt from [`new_salt`] (Harbor's `GenerateRandomString`).
pub const SALT_LEN: usize = 32;
/// Length of a generated robot secret.
pub const ROBOT_SECRET_LEN: usize = 32;
/// Shortest password or secret the policy accepts, in bytes (Harbor uses Go's `len`).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password or secret the policy accepts, in bytes.
pub const MAX_PASSWORD_LEN: usize = 128;

const ALPHANUMERIC: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The hash function under PBKDF2's HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KdfHash {
    Sha1,
    Sha256,
}

/// `harbor_user.password_version`: which PBKDF2 parameters a stored hash was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordVersion {
    /// `sha1`: PBKDF2-HMAC-SHA1, 4096 iterations (1.x rows and rows older than 1.9.1).
    Sha1,
    /// `sha256`: PBKDF2-HMAC-SHA256, 4096 iterations (Harbor 1.9.1 to 2.15; robot secrets).
    Sha256,
    /// `pbkdf2_sha256`: PBKDF2-HMAC-SHA256, 600,000 iterations (Harbor 2.16+ new and changed passwords).
    Pbkdf2Sha256,
}

/// The version new and changed passwords are hashed with.
pub const STRONGEST: PasswordVersion = PasswordVersion::Pbkdf2Sha256;

/// What Harbor's `pbkdf2Params` does with a version string it does not know (a typo, an empty
/// column, a version from the future): SHA-256 with 600,000 iterations, "so a bad or typo'd
/// version never falls back to a low work factor". That is exactly the computation of
/// `pbkdf2_sha256`, so an unknown string is modelled as [`PasswordVersion::Pbkdf2Sha256`].
pub const UNKNOWN_VERSION_FALLBACK: PasswordVersion = PasswordVersion::Pbkdf2Sha256;

/// Robot v2 secrets are always hashed as `sha256` (4096 iterations); the robot table has no
/// version column.
pub const ROBOT_SECRET_VERSION: PasswordVersion = PasswordVersion::Sha256;

impl PasswordVersion {
    pub const ALL: [PasswordVersion; 3] =
        [PasswordVersion::Sha1, PasswordVersion::Sha256, PasswordVersion::Pbkdf2Sha256];

    /// Harbor's name, as stored in `password_version`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PasswordVersion::Sha1 => "sha1",
            PasswordVersion::Sha256 => "sha256",
            PasswordVersion::Pbkdf2Sha256 => "pbkdf2_sha256",
        }
    }

    /// The version with exactly this Harbor name, or `None` for anything else.
    pub fn from_known(s: &str) -> Option<Self> {
        match s {
            "sha1" => Some(PasswordVersion::Sha1),
            "sha256" => Some(PasswordVersion::Sha256),
            "pbkdf2_sha256" => Some(PasswordVersion::Pbkdf2Sha256),
            _ => None,
        }
    }

    /// How Harbor interprets a stored `password_version`: a known name is that version, any
    /// other string (including `""`) gets [`UNKNOWN_VERSION_FALLBACK`]'s parameters.
    pub fn from_harbor(s: &str) -> Self {
        Self::from_known(s).unwrap_or(UNKNOWN_VERSION_FALLBACK)
    }

    pub const fn kdf_hash(self) -> KdfHash {
        match self {
            PasswordVersion::Sha1 => KdfHash::Sha1,
            PasswordVersion::Sha256 | PasswordVersion::Pbkdf2Sha256 => KdfHash::Sha256,
        }
    }

    pub const fn iterations(self) -> u32 {
        match self {
            PasswordVersion::Sha1 | PasswordVersion::Sha256 => LEGACY_ITERATIONS,
            PasswordVersion::Pbkdf2Sha256 => PBKDF2_ITERATIONS,
        }
    }
}

impl fmt::Display for PasswordVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a hash stored with `version` should be recomputed with [`STRONGEST`] when the
/// plaintext is at hand (after a successful login). Harbor itself never rehashes on login.
pub fn needs_upgrade(version: PasswordVersion) -> bool {
    version != STRONGEST
}

fn derive(password: &str, salt: &str, version: PasswordVersion) -> [u8; HASH_BYTES] {
    let mut out = [0u8; HASH_BYTES];
    let (pw, salt, rounds) = (password.as_bytes(), salt.as_bytes(), version.iterations());
    match version.kdf_hash() {
        KdfHash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(pw, salt, rounds, &mut out),
        KdfHash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(pw, salt, rounds, &mut out),
    }
    out
}

/// Harbor's `utils.Encrypt(password, salt, version)`: 32 lowercase hex characters.
pub fn hash(password: &str, salt: &str, version: PasswordVersion) -> String {
    hex::encode(derive(password, salt, version))
}

/// Recomputes the hash and compares it with `stored_hex` in constant time. Like Harbor, the
/// comparison is of the exact strings (Harbor stores lowercase hex).
pub fn verify(password: &str, salt: &str, version: PasswordVersion, stored_hex: &str) -> bool {
    constant_time_eq(hash(password, salt, version).as_bytes(), stored_hex.as_bytes())
}

/// Equality whose running time depends only on the lengths (which are not secret here).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    std::hint::black_box(diff) == 0
}

/// Fills `buf` from the operating system's CSPRNG. Panics if the OS has none to offer: a
/// salt or secret must never silently come from a weaker source.
pub fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {e}");
    }
}

/// `len` characters drawn uniformly from `[a-zA-Z0-9]`. Unlike Harbor's `chars[b % 62]`, bytes
/// of 248 and above are rejected, so every character has probability exactly 1/62.
pub fn random_alphanumeric(len: usize) -> String {
    const LIMIT: u8 = (256 / ALPHANUMERIC.len() * ALPHANUMERIC.len()) as u8; // 248
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf);
        for &b in buf.iter().filter(|&&b| b < LIMIT) {
            if out.len() == len {
                break;
            }
            out.push(ALPHANUMERIC[usize::from(b) % ALPHANUMERIC.len()] as char);
        }
    }
    out
}

/// A new 32-character `[a-zA-Z0-9]` salt.
pub fn new_salt() -> String {
    random_alphanumeric(SALT_LEN)
}

/// Which rule of Harbor's password (and robot secret) policy a candidate breaks. Rules are
/// checked in this order and the first failure is reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password or secret must be at least 8 characters long, it has {len}")]
    TooShort { len: usize },
    #[error("the password or secret must be at most 128 characters long, it has {len}")]
    TooLong { len: usize },
    #[error("the password or secret must contain at least 1 uppercase letter (A-Z)")]
    MissingUppercase,
    #[error("the password or secret must contain at least 1 lowercase letter (a-z)")]
    MissingLowercase,
    #[error("the password or secret must contain at least 1 number (0-9)")]
    MissingDigit,
}

/// Harbor's own (single) message for any policy failure, for callers that want it verbatim.
pub const HARBOR_POLICY_MESSAGE: &str = "the password or secret must be 8-128, inclusively, characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number";

/// Harbor's policy for user passwords, CLI secrets and robot secrets: 8 to 128 bytes (Go's
/// `len`, so characters for ASCII), with an ASCII uppercase letter, lowercase letter and digit.
pub fn check_policy(password: &str) -> Result<(), PolicyError> {
    let len = password.len();
    if len < MIN_PASSWORD_LEN {
        return Err(PolicyError::TooShort { len });
    }
    if len > MAX_PASSWORD_LEN {
        return Err(PolicyError::TooLong { len });
    }
    let bytes = password.as_bytes();
    if !bytes.iter().any(u8::is_ascii_uppercase) {
        return Err(PolicyError::MissingUppercase);
    }
    if !bytes.iter().any(u8::is_ascii_lowercase) {
        return Err(PolicyError::MissingLowercase);
    }
    if !bytes.iter().any(u8::is_ascii_digit) {
        return Err(PolicyError::MissingDigit);
    }
    Ok(())
}

/// A new robot secret: 32 random alphanumerics, drawn again until they pass [`check_policy`]
/// (Harbor's `CreateSec`). About 1 draw in 60 is rejected.
pub fn new_robot_secret() -> String {
    loop {
        let secret = random_alphanumeric(ROBOT_SECRET_LEN);
        if check_policy(&secret).is_ok() {
            return secret;
        }
    }
}

/// The stored form of a robot secret: [`hash`] with [`ROBOT_SECRET_VERSION`].
pub fn hash_robot_secret(secret: &str, salt: &str) -> String {
    hash(secret, salt, ROBOT_SECRET_VERSION)
}

/// Checks a robot secret against the stored hash, in constant time.
pub fn verify_robot_secret(secret: &str, salt: &str, stored_hex: &str) -> bool {
    verify(secret, salt, ROBOT_SECRET_VERSION, stored_hex)
}

/// A freshly generated robot secret: the plaintext to show once, and the hash to store.
#[derive(Clone, PartialEq, Eq)]
pub struct RobotSecret {
    pub plaintext: String,
    pub hash: String,
}

impl RobotSecret {
    /// Generates a secret and hashes it with `salt` (Harbor keeps a robot's salt on refresh;
    /// a new robot gets [`new_salt`]).
    pub fn generate(salt: &str) -> Self {
        let plaintext = new_robot_secret();
        let hash = hash_robot_secret(&plaintext, salt);
        RobotSecret { plaintext, hash }
    }
}

impl fmt::Debug for RobotSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobotSecret").field("plaintext", &"<redacted>").field("hash", &self.hash).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent at every await-free step, so a panic elsewhere
    // while holding the lock leaves nothing half-done worth refusing service over.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type CacheKey = (i64, [u8; 32]);

#[derive(Default)]
struct CacheInner {
    /// Fingerprint → when the verification succeeded.
    entries: HashMap<CacheKey, Instant>,
    /// Insertion order, for eviction; a record whose time differs from `entries` is stale.
    order: VecDeque<(CacheKey, Instant)>,
}

/// Remembers successful password verifications so that Basic auth on every request does not
/// pay for a 600,000-iteration KDF each time.
///
/// An entry is `(user id, HMAC-SHA256(process key, stored hash ‖ salt ‖ version ‖ password))`
/// with a key drawn at construction and never exported, so the cache holds no password and no
/// value that can be checked offline without that key; a password change (new hash or salt)
/// simply stops matching. Entries expire after a TTL and the oldest are evicted beyond the
/// capacity. Failed verifications are never cached. (Someone able to read this process's
/// memory gets the key too, and with it fast guessing against the users cached at the time;
/// the TTL bounds that exposure.)
pub struct VerifyCache {
    process_key: [u8; 32],
    ttl: Duration,
    capacity: usize,
    inner: Mutex<CacheInner>,
}

impl Default for VerifyCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for VerifyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyCache").field("ttl", &self.ttl).field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl VerifyCache {
    pub const DEFAULT_CAPACITY: usize = 10_000;
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

    pub fn new() -> Self {
        Self::with_limits(Self::DEFAULT_CAPACITY, Self::DEFAULT_TTL)
    }

    /// A cache of at most `capacity` entries (at least 1), each trusted for `ttl`.
    pub fn with_limits(capacity: usize, ttl: Duration) -> Self {
        let mut process_key = [0u8; 32];
        fill_random(&mut process_key);
        VerifyCache { process_key, ttl, capacity: capacity.max(1), inner: Mutex::new(CacheInner::default()) }
    }

    /// [`verify`], answered from the cache when this exact (user, stored hash, salt, version,
    /// password) succeeded within the TTL.
    pub fn verify_cached(
        &self,
        user_id: i64,
        password: &str,
        salt: &str,
        version: PasswordVersion,
        stored: &str,
    ) -> bool {
        self.verify_cached_at(user_id, password, salt, version, stored, Instant::now())
    }

    /// [`Self::verify_cached`] with the clock supplied by the caller.
    pub fn verify_cached_at(
        &self,
        user_id: i64,
        password: &str,
        salt: &str,
        version: PasswordVersion,
        stored: &str,
        now: Instant,
    ) -> bool {
        self.verify_with(user_id, password, salt, version, stored, now, || verify(password, salt, version, stored))
    }

    #[allow(clippy::too_many_arguments)]
    fn verify_with(
        &self,
        user_id: i64,
        password: &str,
        salt: &str,
        version: PasswordVersion,
        stored: &str,
        now: Instant,
        kdf: impl FnOnce() -> bool,
    ) -> bool {
        let key = (user_id, self.fingerprint(user_id, password, salt, version, stored));
        if self.is_fresh(&key, now) {
            return true;
        }
        // The KDF runs outside the lock; two concurrent misses both pay for it, which is fine.
        if !kdf() {
            return false;
        }
        self.insert(key, now);
        true
    }

    fn fingerprint(
        &self,
        user_id: i64,
        password: &str,
        salt: &str,
        version: PasswordVersion,
        stored: &str,
    ) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.process_key).expect("HMAC takes any key length");
        mac.update(b"berth verify-cache v1");
        mac.update(&user_id.to_le_bytes());
        for field in [stored.as_bytes(), salt.as_bytes(), version.as_str().as_bytes(), password.as_bytes()] {
            mac.update(&(field.len() as u64).to_le_bytes());
            mac.update(field);
        }
        mac.finalize().into_bytes().into()
    }

    fn is_fresh(&self, key: &CacheKey, now: Instant) -> bool {
        let inner = lock(&self.inner);
        inner.entries.get(key).is_some_and(|&at| now.saturating_duration_since(at) < self.ttl)
    }

    fn insert(&self, key: CacheKey, now: Instant) {
        let mut inner = lock(&self.inner);
        let CacheInner { entries, order } = &mut *inner;
        // Drop expired entries from the front (insertion order is nearly time order), then the
        // oldest ones while full.
        while let Some(&(k, at)) = order.front() {
            let live = entries.get(&k) == Some(&at);
            let expired = now.saturating_duration_since(at) >= self.ttl;
            if live && !expired && entries.len() < self.capacity {
                break;
            }
            order.pop_front();
            if live && (expired || entries.len() >= self.capacity) {
                entries.remove(&k);
            }
        }
        entries.insert(key, now);
        order.push_back((key, now));
        if order.len() > 2 * self.capacity {
            order.retain(|(k, at)| entries.get(k) == Some(at));
        }
    }

    /// Forgets every cached verification of one user (on deletion, deactivation, logout of
    /// all sessions...). A password change needs no call: the old entries no longer match.
    pub fn invalidate_user(&self, user_id: i64) {
        let mut inner = lock(&self.inner);
        inner.entries.retain(|(uid, _), _| *uid != user_id);
        let CacheInner { entries, order } = &mut *inner;
        order.retain(|(k, at)| entries.get(k) == Some(at));
    }

    pub fn clear(&self) {
        let mut inner = lock(&self.inner);
        inner.entries.clear();
        inner.order.clear();
    }

    /// Number of entries held (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Limits of a [`LoginThrottle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Consecutive failures allowed before attempts are refused.
    pub max_failures: u32,
    /// Failures are forgotten once this long has passed since the last one.
    pub window: Duration,
    /// Refusal period after the `max_failures`-th failure; it doubles with each further one.
    pub base_backoff: Duration,
    /// Upper bound of the refusal period.
    pub max_backoff: Duration,
    /// Most names tracked at once.
    pub capacity: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            base_backoff: Duration::from_millis(1500),
            max_backoff: Duration::from_secs(60),
            capacity: 10_000,
        }
    }
}

impl ThrottlePolicy {
    /// The refusal period after `failures` consecutive failures (zero below the threshold).
    pub fn backoff_after(&self, failures: u32) -> Duration {
        if failures < self.max_failures.max(1) {
            return Duration::ZERO;
        }
        let doublings = (failures - self.max_failures.max(1)).min(31);
        self.base_backoff.saturating_mul(1u32 << doublings).min(self.max_backoff)
    }
}

#[derive(Debug, Clone, Copy)]
struct FailureRecord {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

impl FailureRecord {
    fn is_relevant(&self, now: Instant, window: Duration) -> bool {
        self.blocked_until.is_some_and(|until| until > now) || now.saturating_duration_since(self.last_failure) < window
    }
}

/// Per-name brute-force protection for password logins: after
/// [`ThrottlePolicy::max_failures`] consecutive failures, attempts for that name are refused,
/// without running the KDF, for an exponentially growing period (1.5 s, 3 s, 6 s ... capped at
/// 60 s by default). A success clears the name. At most [`ThrottlePolicy::capacity`] names are
/// tracked; when full, stale names go first, then the one whose last failure is oldest.
///
/// Call [`Self::check`] before verifying and [`Self::record`] after. Concurrent attempts that
/// all pass `check` before any `record` are each verified; the block applies from then on.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    inner: Mutex<HashMap<String, FailureRecord>>,
}

/// Names longer than this are tracked by their first this-many bytes (no valid Harbor user
/// name or e-mail is that long), so one entry's size stays bounded.
const MAX_TRACKED_NAME: usize = 256;

fn tracked_name(name: &str) -> &str {
    if name.len() <= MAX_TRACKED_NAME {
        return name;
    }
    let mut end = MAX_TRACKED_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        LoginThrottle { policy, inner: Mutex::new(HashMap::new()) }
    }

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// `Ok` if an attempt for `name` may proceed now, else how long until it may.
    pub fn check(&self, name: &str) -> Result<(), Duration> {
        self.check_at(name, Instant::now())
    }

    /// [`Self::check`] with the clock supplied by the caller.
    pub fn check_at(&self, name: &str, now: Instant) -> Result<(), Duration> {
        let inner = lock(&self.inner);
        match inner.get(tracked_name(name)).and_then(|r| r.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records the outcome of an attempt for `name`.
    pub fn record(&self, name: &str, success: bool) {
        self.record_at(name, success, Instant::now())
    }

    /// [`Self::record`] with the clock supplied by the caller.
    pub fn record_at(&self, name: &str, success: bool, now: Instant) {
        let name = tracked_name(name);
        let mut inner = lock(&self.inner);
        if success {
            inner.remove(name);
            return;
        }
        if !inner.contains_key(name) && inner.len() >= self.policy.capacity.max(1) {
            self.make_room(&mut inner, now);
        }
        let window = self.policy.window;
        let record = inner.entry(name.to_owned()).or_insert(FailureRecord {
            failures: 0,
            last_failure: now,
            blocked_until: None,
        });
        if !record.is_relevant(now, window) {
            record.failures = 0;
            record.blocked_until = None;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        let backoff = self.policy.backoff_after(record.failures);
        if !backoff.is_zero() {
            record.blocked_until = Some(now + backoff);
        }
    }

    fn make_room(&self, inner: &mut HashMap<String, FailureRecord>, now: Instant) {
        let window = self.policy.window;
        inner.retain(|_, r| r.is_relevant(now, window));
        let capacity = self.policy.capacity.max(1);
        while inner.len() >= capacity {
            let Some(oldest) = inner.iter().min_by_key(|(_, r)| r.last_failure).map(|(k, _)| k.clone()) else {
                break;
            };
            inner.remove(&oldest);
        }
    }

    /// Number of names currently tracked.
    pub fn len(&self) -> usize {
        lock(&self.inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    const PW: &str = "Liujunfeng@201*";
    const SALT: &str = "bqkaoihidlteezrbeepe03luw5aws3q7";
    const SHA1_HASH: &str = "437cf590b32985b95cc0804f64c125de";
    const SHA256_HASH: &str = "d3eb47490136a8f061ef6251f4e016f1";
    const PBKDF2_HASH: &str = "968fd26a3b88acda052466d0faf8c272";

    #[test]
    fn harbor_vector_sha1() {
        assert_eq!(hash(PW, SALT, PasswordVersion::Sha1), SHA1_HASH);
        assert!(verify(PW, SALT, PasswordVersion::Sha1, SHA1_HASH));
    }

    #[test]
    fn harbor_vector_sha256() {
        assert_eq!(hash(PW, SALT, PasswordVersion::Sha256), SHA256_HASH);
        assert!(verify(PW, SALT, PasswordVersion::Sha256, SHA256_HASH));
        assert_eq!(hash_robot_secret(PW, SALT), SHA256_HASH);
        assert!(verify_robot_secret(PW, SALT, SHA256_HASH));
    }

    #[test]
    fn harbor_vector_pbkdf2_sha256() {
        assert_eq!(hash(PW, SALT, PasswordVersion::Pbkdf2Sha256), PBKDF2_HASH);
        assert!(verify(PW, SALT, PasswordVersion::Pbkdf2Sha256, PBKDF2_HASH));
    }

    #[test]
    fn unknown_version_is_sha256_with_600k_iterations() {
        for s in ["", "SHA256", "md5", "pbkdf2_sha512"] {
            let v = PasswordVersion::from_harbor(s);
            assert_eq!(PasswordVersion::from_known(s), None);
            assert_eq!(v.kdf_hash(), KdfHash::Sha256);
            assert_eq!(v.iterations(), 600_000);
        }
        assert_eq!(hash(PW, SALT, PasswordVersion::from_harbor("bogus")), PBKDF2_HASH);
    }

    #[test]
    fn version_names_round_trip() {
        for v in PasswordVersion::ALL {
            assert_eq!(PasswordVersion::from_known(v.as_str()), Some(v));
            assert_eq!(PasswordVersion::from_harbor(v.as_str()), v);
            assert_eq!(v.to_string(), v.as_str());
        }
        assert_eq!(PasswordVersion::Sha1.iterations(), 4096);
        assert_eq!(PasswordVersion::Sha256.iterations(), 4096);
        assert_eq!(STRONGEST, PasswordVersion::Pbkdf2Sha256);
        assert!(needs_upgrade(PasswordVersion::Sha1));
        assert!(needs_upgrade(PasswordVersion::Sha256));
        assert!(!needs_upgrade(PasswordVersion::Pbkdf2Sha256));
    }

    #[test]
    fn verify_rejects_wrong_password_salt_version_or_hash() {
        let v = PasswordVersion::Sha256;
        assert!(!verify("Liujunfeng@201", SALT, v, SHA256_HASH));
        assert!(!verify(PW, "bqkaoihidlteezrbeepe03luw5aws3q8", v, SHA256_HASH));
        assert!(!verify(PW, SALT, PasswordVersion::Sha1, SHA256_HASH));
        assert!(!verify(PW, SALT, v, &SHA256_HASH.to_uppercase()));
        assert!(!verify(PW, SALT, v, &SHA256_HASH[..31]));
        assert!(!verify(PW, SALT, v, ""));
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn salts_are_32_alphanumerics_and_differ() {
        let a = new_salt();
        let b = new_salt();
        assert_eq!(a.len(), SALT_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn random_alphanumeric_covers_the_alphabet_roughly_uniformly() {
        let s = random_alphanumeric(62 * 400);
        let mut counts = [0u32; 128];
        for b in s.bytes() {
            counts[usize::from(b)] += 1;
        }
        for &c in ALPHANUMERIC {
            let n = counts[usize::from(c)];
            // Expected 400 each; a binomial(24800, 1/62) is outside 250..550 with
            // probability far below 1e-12.
            assert!((250..550).contains(&n), "{} drawn {n} times", c as char);
        }
        assert_eq!(counts.iter().sum::<u32>() as usize, s.len());
    }

    #[test]
    fn policy_names_the_failed_rule() {
        assert_eq!(check_policy("Ab1"), Err(PolicyError::TooShort { len: 3 }));
        assert_eq!(check_policy(""), Err(PolicyError::TooShort { len: 0 }));
        let long = format!("Ab1{}", "x".repeat(126));
        assert_eq!(check_policy(&long), Err(PolicyError::TooLong { len: 129 }));
        assert_eq!(check_policy(&long[..128]), Ok(()));
        assert_eq!(check_policy("abcdefg1"), Err(PolicyError::MissingUppercase));
        assert_eq!(check_policy("ABCDEFG1"), Err(PolicyError::MissingLowercase));
        assert_eq!(check_policy("ABCDefgh"), Err(PolicyError::MissingDigit));
        assert_eq!(check_policy("Abcdefg1"), Ok(()));
        assert_eq!(check_policy(PW), Ok(()));
        // Non-ASCII letters do not count, and length is in bytes as in Go.
        assert_eq!(check_policy("ÄBCDEFG1"), Err(PolicyError::MissingLowercase));
        assert_eq!(check_policy("Aé1é"), Err(PolicyError::TooShort { len: 6 }));
        assert_eq!(check_policy("Ab1éééé"), Ok(()));
        assert!(PolicyError::MissingDigit.to_string().contains("number"));
        assert!(PolicyError::MissingUppercase.to_string().contains("uppercase"));
        assert!(PolicyError::TooShort { len: 3 }.to_string().contains("at least 8"));
    }

    #[test]
    fn robot_secrets_pass_the_policy_and_verify() {
        for _ in 0..200 {
            let s = new_robot_secret();
            assert_eq!(s.len(), ROBOT_SECRET_LEN);
            assert!(s.bytes().all(|c| c.is_ascii_alphanumeric()));
            assert_eq!(check_policy(&s), Ok(()));
        }
        let salt = new_salt();
        let secret = RobotSecret::generate(&salt);
        assert!(verify_robot_secret(&secret.plaintext, &salt, &secret.hash));
        assert!(verify(&secret.plaintext, &salt, PasswordVersion::Sha256, &secret.hash));
        assert!(!format!("{secret:?}").contains(&secret.plaintext));
    }

    fn cached(cache: &VerifyCache, uid: i64, pw: &str, stored: &str, now: Instant, calls: &Cell<u32>) -> bool {
        cache.verify_with(uid, pw, SALT, PasswordVersion::Sha256, stored, now, || {
            calls.set(calls.get() + 1);
            verify(pw, SALT, PasswordVersion::Sha256, stored)
        })
    }

    #[test]
    fn cache_hits_skip_the_kdf_until_the_ttl() {
        let cache = VerifyCache::with_limits(100, Duration::from_secs(300));
        let calls = Cell::new(0);
        let t0 = Instant::now();
        assert!(cached(&cache, 1, PW, SHA256_HASH, t0, &calls));
        assert!(cached(&cache, 1, PW, SHA256_HASH, t0 + Duration::from_secs(299), &calls));
        assert_eq!(calls.get(), 1);
        assert!(cached(&cache, 1, PW, SHA256_HASH, t0 + Duration::from_secs(300), &calls));
        assert_eq!(calls.get(), 2);
        // Another user id with the same credentials is a separate entry.
        assert!(cached(&cache, 2, PW, SHA256_HASH, t0, &calls));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn cache_never_stores_failures() {
        let cache = VerifyCache::new();
        let calls = Cell::new(0);
        let t0 = Instant::now();
        assert!(!cached(&cache, 1, "wrong", SHA256_HASH, t0, &calls));
        assert!(!cached(&cache, 1, "wrong", SHA256_HASH, t0, &calls));
        assert_eq!(calls.get(), 2);
        assert!(cache.is_empty());
    }

    #[test]
    fn cache_misses_after_password_change() {
        let cache = VerifyCache::new();
        let calls = Cell::new(0);
        let t0 = Instant::now();
        assert!(cached(&cache, 1, PW, SHA256_HASH, t0, &calls));
        // The stored hash changed (new password): the old password must go through the KDF
        // again, and fail.
        let new_hash = hash("N3wPassword", SALT, PasswordVersion::Sha256);
        assert!(!cached(&cache, 1, PW, &new_hash, t0, &calls));
        assert!(cached(&cache, 1, "N3wPassword", &new_hash, t0, &calls));
        assert_eq!(calls.get(), 3);
        // A different password against the cached stored hash is not a hit either.
        assert!(!cached(&cache, 1, "Liujunfeng@201", SHA256_HASH, t0, &calls));
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn cache_is_bounded_and_evicts_oldest() {
        let cache = VerifyCache::with_limits(3, Duration::from_secs(300));
        let calls = Cell::new(0);
        let t0 = Instant::now();
        for uid in 0..10 {
            assert!(cached(&cache, uid, PW, SHA256_HASH, t0 + Duration::from_secs(uid as u64), &calls));
            assert!(cache.len() <= 3);
        }
        let t = t0 + Duration::from_secs(20);
        calls.set(0);
        assert!(cached(&cache, 9, PW, SHA256_HASH, t, &calls));
        assert_eq!(calls.get(), 0, "newest entry kept");
        assert!(cached(&cache, 0, PW, SHA256_HASH, t, &calls));
        assert_eq!(calls.get(), 1, "oldest entry evicted");
        assert!(cache.inner.lock().unwrap().order.len() <= 6);
    }

    #[test]
    fn cache_sweeps_expired_entries_and_invalidates_users() {
        let cache = VerifyCache::with_limits(100, Duration::from_secs(10));
        let calls = Cell::new(0);
        let t0 = Instant::now();
        for uid in 0..5 {
            cached(&cache, uid, PW, SHA256_HASH, t0, &calls);
        }
        assert_eq!(cache.len(), 5);
        cached(&cache, 99, PW, SHA256_HASH, t0 + Duration::from_secs(11), &calls);
        assert_eq!(cache.len(), 1);
        cache.invalidate_user(99);
        assert!(cache.is_empty());
        cached(&cache, 7, PW, SHA256_HASH, t0, &calls);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn cache_real_kdf_path() {
        let cache = VerifyCache::new();
        assert!(cache.verify_cached(5, PW, SALT, PasswordVersion::Sha1, SHA1_HASH));
        assert!(cache.verify_cached(5, PW, SALT, PasswordVersion::Sha1, SHA1_HASH));
        assert!(!cache.verify_cached(5, PW, SALT, PasswordVersion::Sha256, SHA1_HASH));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn cache_fingerprint_depends_on_every_field_and_the_process_key() {
        let a = VerifyCache::new();
        let b = VerifyCache::new();
        let v = PasswordVersion::Sha256;
        let base = a.fingerprint(1, "pw", "salt", v, "hash");
        assert_ne!(base, b.fingerprint(1, "pw", "salt", v, "hash"));
        assert_ne!(base, a.fingerprint(2, "pw", "salt", v, "hash"));
        assert_ne!(base, a.fingerprint(1, "pw2", "salt", v, "hash"));
        assert_ne!(base, a.fingerprint(1, "pw", "salt2", v, "hash"));
        assert_ne!(base, a.fingerprint(1, "pw", "salt", PasswordVersion::Sha1, "hash"));
        assert_ne!(base, a.fingerprint(1, "pw", "salt", v, "hash2"));
        // Field boundaries are length-prefixed.
        assert_ne!(a.fingerprint(1, "pw", "ab", v, "c"), a.fingerprint(1, "pw", "a", v, "bc"));
        assert_eq!(base, a.fingerprint(1, "pw", "salt", v, "hash"));
    }

    #[test]
    fn cache_is_shareable_across_threads() {
        let cache = std::sync::Arc::new(VerifyCache::new());
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let cache = cache.clone();
                std::thread::spawn(move || cache.verify_cached(i, PW, SALT, PasswordVersion::Sha1, SHA1_HASH))
            })
            .collect();
        assert!(handles.into_iter().all(|h| h.join().unwrap()));
        assert_eq!(cache.len(), 4);
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn throttle_blocks_after_five_failures_with_exponential_backoff() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(t.check_at("alice", t0 + secs(i as f64)), Ok(()));
            t.record_at("alice", false, t0 + secs(i as f64));
        }
        assert_eq!(t.check_at("alice", t0 + secs(4.0)), Ok(()));
        t.record_at("alice", false, t0 + secs(4.0));
        assert_eq!(t.check_at("alice", t0 + secs(4.0)), Err(secs(1.5)));
        assert_eq!(t.check_at("alice", t0 + secs(5.0)), Err(secs(0.5)));
        assert_eq!(t.check_at("bob", t0 + secs(5.0)), Ok(()), "other names unaffected");
        assert_eq!(t.check_at("alice", t0 + secs(5.5)), Ok(()));
        t.record_at("alice", false, t0 + secs(5.5));
        assert_eq!(t.check_at("alice", t0 + secs(5.5)), Err(secs(3.0)));
        let mut now = t0 + secs(8.5);
        let mut expected = 6.0;
        for _ in 0..10 {
            assert_eq!(t.check_at("alice", now), Ok(()));
            t.record_at("alice", false, now);
            assert_eq!(t.check_at("alice", now), Err(secs(expected)));
            now += secs(expected);
            expected = (expected * 2.0_f64).min(60.0);
        }
        assert_eq!(t.check_at("alice", now - secs(1.0)), Err(secs(1.0)));
    }

    #[test]
    fn throttle_success_resets() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            t.record_at("alice", false, t0);
        }
        assert!(t.check_at("alice", t0).is_err());
        t.record_at("alice", true, t0 + secs(2.0));
        assert!(t.is_empty());
        for _ in 0..4 {
            t.record_at("alice", false, t0 + secs(3.0));
        }
        assert_eq!(t.check_at("alice", t0 + secs(3.0)), Ok(()));
    }

    #[test]
    fn throttle_forgets_failures_after_the_window() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            t.record_at("alice", false, t0);
        }
        let later = t0 + Duration::from_secs(15 * 60);
        t.record_at("alice", false, later);
        assert_eq!(t.check_at("alice", later), Ok(()), "count restarted at 1");
        // Failures spaced within the window keep counting.
        for i in 1..5 {
            t.record_at("alice", false, later + Duration::from_secs(60 * i));
        }
        assert!(t.check_at("alice", later + Duration::from_secs(240)).is_err());
    }

    #[test]
    fn throttle_memory_is_bounded() {
        let t = LoginThrottle::new(ThrottlePolicy { capacity: 50, ..ThrottlePolicy::default() });
        let t0 = Instant::now();
        for _ in 0..5 {
            t.record_at("victim", false, t0);
        }
        for i in 0..1000u64 {
            t.record_at(&format!("spray{i}"), false, t0 + Duration::from_millis(i + 1));
            assert!(t.len() <= 50);
        }
        // Stale names are dropped before live ones are evicted.
        let late = t0 + Duration::from_secs(3600);
        t.record_at("new", false, late);
        assert_eq!(t.len(), 1);
        // Very long names share one bounded entry.
        let long = "x".repeat(10_000);
        for _ in 0..5 {
            t.record_at(&long, false, late);
        }
        assert!(t.check_at(&long, late).is_err());
        assert!(t.check_at(&format!("{long}y"), late).is_err());
        assert!(t.inner.lock().unwrap().keys().all(|k| k.len() <= MAX_TRACKED_NAME));
    }

    #[test]
    fn backoff_schedule() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.backoff_after(0), Duration::ZERO);
        assert_eq!(p.backoff_after(4), Duration::ZERO);
        assert_eq!(p.backoff_after(5), secs(1.5));
        assert_eq!(p.backoff_after(6), secs(3.0));
        assert_eq!(p.backoff_after(10), secs(48.0));
        assert_eq!(p.backoff_after(11), secs(60.0));
        assert_eq!(p.backoff_after(u32::MAX), secs(60.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn policy_matches_its_definition(s in "[ -~é]{0,140}") {
            let ok = (8..=128).contains(&s.len())
                && s.bytes().any(|b| b.is_ascii_uppercase())
                && s.bytes().any(|b| b.is_ascii_lowercase())
                && s.bytes().any(|b| b.is_ascii_digit());
            prop_assert_eq!(check_policy(&s).is_ok(), ok);
        }

        #[test]
        fn sha256_hash_verifies_and_differs_by_password(pw in "[ -~]{0,40}", salt in "[a-zA-Z0-9]{32}") {
            let h = hash(&pw, &salt, PasswordVersion::Sha256);
            prop_assert_eq!(h.len(), 32);
            prop_assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            prop_assert!(verify(&pw, &salt, PasswordVersion::Sha256, &h));
            let other = format!("{pw}x");
            prop_assert!(!verify(&other, &salt, PasswordVersion::Sha256, &h));
        }
    }
}
