//! The embedded store: one process, one lock. Correct for a single instance and for tests of
//! the rules; replicas need Redis to share what they count.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use aws_lc_rs::constant_time;

use super::{
    CODE_TRIES, CODES_PER_WINDOW, CodeIssue, CodeProof, CodeRedemption, FailedAttempt, LinkById,
    LinkRef, LinkStatus, Redemption, Scope, StoreError, UseStore, unix_now,
};
use crate::domain::UseLimit;

/// Expired entries are swept after this many writes, so memory stays bounded by live links.
const SWEEP_EVERY_WRITES: u64 = 4096;

/// In-process store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per link: devices (or a counter) and when the entry may be forgotten.
    links: HashMap<String, (Uses, i64)>,
    /// Revocation markers: value (unix second) and when the marker may be forgotten.
    marks: HashMap<String, (i64, i64)>,
    /// Failed attempts per link, and when the count may be forgotten.
    failures: HashMap<String, (u64, i64)>,
    /// Idempotency records, and when each may be forgotten.
    records: HashMap<String, (String, i64)>,
    /// One-time code per link: keyed digest, wrong tries, and when it expires.
    codes: HashMap<String, (String, u32, i64)>,
    /// Codes sent per link in the window, and when the window ends.
    code_counts: HashMap<String, (u32, i64)>,
    writes: u64,
}

#[derive(Debug)]
enum Uses {
    Devices(HashSet<String>),
    Count(u64),
}

impl Uses {
    fn count(&self) -> u64 {
        match self {
            Self::Devices(d) => d.len() as u64,
            Self::Count(n) => *n,
        }
    }
}

fn link_key(tenant: &str, jti: &str) -> String {
    format!("{tenant}\0{jti}")
}

fn scope_key(tenant: &str, scope: &Scope) -> String {
    match scope {
        Scope::Media(id) => format!("m\0{tenant}\0{id}"),
        Scope::Inviter(id) => format!("i\0{tenant}\0{id}"),
        Scope::Tenant => format!("t\0{tenant}"),
    }
}

fn revoked_link_key(tenant: &str, jti: &str) -> String {
    format!("x\0{tenant}\0{jti}")
}

impl Inner {
    fn mark(&self, key: &str, now: i64) -> Option<i64> {
        self.marks
            .get(key)
            .filter(|(_, keep)| *keep > now)
            .map(|(v, _)| *v)
    }

    fn is_revoked(&self, link: &LinkRef<'_>, now: i64) -> bool {
        if self
            .mark(&revoked_link_key(link.tenant, link.jti), now)
            .is_some()
        {
            return true;
        }
        [
            Scope::Media(link.media_id.to_owned()),
            Scope::Inviter(link.inviter_id.to_owned()),
            Scope::Tenant,
        ]
        .iter()
        .any(|scope| {
            self.mark(&scope_key(link.tenant, scope), now)
                .is_some_and(|before| link.iat <= before)
        })
    }

    fn failures(&self, key: &str, now: i64) -> u64 {
        self.failures
            .get(key)
            .filter(|(_, keep)| *keep > now)
            .map_or(0, |(n, _)| *n)
    }

    fn is_locked(&self, link: &LinkRef<'_>, now: i64) -> bool {
        self.failures(&link_key(link.tenant, link.jti), now) >= u64::from(link.max_attempts)
    }

    fn live_uses(&self, key: &str, now: i64) -> Option<&Uses> {
        self.links
            .get(key)
            .filter(|(_, keep)| *keep > now)
            .map(|(u, _)| u)
    }

    /// The link's uses, made (empty) when it has none or they expired.
    fn uses_entry(&mut self, key: String, link: &LinkRef<'_>, now: i64) -> &mut Uses {
        if self.live_uses(&key, now).is_none() {
            self.links.remove(&key);
        }
        let (uses, _) = self.links.entry(key).or_insert_with(|| {
            let fresh = match link.max {
                UseLimit::Unlimited => Uses::Count(0),
                UseLimit::Limited(_) => Uses::Devices(HashSet::new()),
            };
            (fresh, link.keep_until(now))
        });
        uses
    }

    fn note_write(&mut self, now: i64) {
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY_WRITES) {
            self.links.retain(|_, (_, keep)| *keep > now);
            self.marks.retain(|_, (_, keep)| *keep > now);
            self.failures.retain(|_, (_, keep)| *keep > now);
            self.records.retain(|_, (_, keep)| *keep > now);
            self.codes.retain(|_, (_, _, keep)| *keep > now);
            self.code_counts.retain(|_, (_, keep)| *keep > now);
        }
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied step (each step is a
        // single map operation), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries held, links, markers and failure counts (tests check that nothing is kept for unused links).
    pub fn len(&self) -> usize {
        let inner = self.lock();
        inner.links.len()
            + inner.marks.len()
            + inner.failures.len()
            + inner.records.len()
            + inner.codes.len()
            + inner.code_counts.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl UseStore for MemoryStore {
    async fn redeem(&self, link: &LinkRef<'_>, device: &str) -> Result<Redemption, StoreError> {
        let now = unix_now();
        let mut inner = self.lock();
        if inner.is_locked(link, now) {
            return Ok(Redemption::Locked);
        }
        if inner.is_revoked(link, now) {
            return Ok(Redemption::Revoked);
        }
        let key = link_key(link.tenant, link.jti);
        let outcome = {
            match (inner.uses_entry(key, link, now), link.max) {
                (Uses::Count(n), _) => {
                    *n += 1;
                    Redemption::Admitted {
                        uses: *n,
                        reentry: false,
                    }
                }
                (Uses::Devices(devices), _) if devices.contains(device) => Redemption::Admitted {
                    uses: devices.len() as u64,
                    reentry: true,
                },
                (Uses::Devices(devices), UseLimit::Limited(max))
                    if devices.len() as u64 >= u64::from(max.get()) =>
                {
                    Redemption::Exhausted {
                        uses: devices.len() as u64,
                    }
                }
                (Uses::Devices(devices), _) => {
                    devices.insert(device.to_owned());
                    Redemption::Admitted {
                        uses: devices.len() as u64,
                        reentry: false,
                    }
                }
            }
        };
        inner.note_write(now);
        Ok(outcome)
    }

    async fn redeem_with_code(
        &self,
        link: &LinkRef<'_>,
        device: &str,
        proof: CodeProof<'_>,
    ) -> Result<CodeRedemption, StoreError> {
        let now = unix_now();
        let mut inner = self.lock();
        if inner.is_locked(link, now) {
            return Ok(CodeRedemption::Done(Redemption::Locked));
        }
        let key = link_key(link.tenant, link.jti);
        let known = match inner.live_uses(&key, now) {
            Some(Uses::Devices(devices)) => devices.contains(device),
            _ => false,
        };
        match proof {
            CodeProof::Needed if !known => return Ok(CodeRedemption::CodeRequired),
            CodeProof::Needed => {}
            CodeProof::Given(given) => {
                let Some((stored, wrong, _)) = inner
                    .codes
                    .get_mut(&key)
                    .filter(|(_, _, until)| *until > now)
                else {
                    return Ok(CodeRedemption::NoCode);
                };
                if constant_time::verify_slices_are_equal(stored.as_bytes(), given.as_bytes())
                    .is_err()
                {
                    *wrong += 1;
                    let tries_left = CODE_TRIES.saturating_sub(*wrong);
                    if tries_left == 0 {
                        inner.codes.remove(&key);
                    }
                    return Ok(CodeRedemption::WrongCode { tries_left });
                }
            }
        }
        if inner.is_revoked(link, now) {
            return Ok(CodeRedemption::Done(Redemption::Revoked));
        }
        if matches!(proof, CodeProof::Given(_)) {
            inner.codes.remove(&key);
        }
        let outcome = match (inner.uses_entry(key, link, now), link.max) {
            (Uses::Count(n), _) => {
                *n += 1;
                CodeRedemption::Done(Redemption::Admitted {
                    uses: *n,
                    reentry: false,
                })
            }
            (Uses::Devices(devices), _) if known => CodeRedemption::Done(Redemption::Admitted {
                uses: devices.len() as u64,
                reentry: true,
            }),
            (Uses::Devices(devices), UseLimit::Limited(max))
                if devices.len() as u64 >= u64::from(max.get()) =>
            {
                // Every use is taken and the code proved the inbox: one earlier device goes.
                if let Some(earlier) = devices.iter().next().cloned() {
                    devices.remove(&earlier);
                }
                devices.insert(device.to_owned());
                CodeRedemption::Moved {
                    uses: devices.len() as u64,
                }
            }
            (Uses::Devices(devices), _) => {
                devices.insert(device.to_owned());
                CodeRedemption::Done(Redemption::Admitted {
                    uses: devices.len() as u64,
                    reentry: false,
                })
            }
        };
        inner.note_write(now);
        Ok(outcome)
    }

    async fn issue_code(&self, link: &LinkRef<'_>, digest: &str) -> Result<CodeIssue, StoreError> {
        let now = unix_now();
        let mut inner = self.lock();
        if inner.is_locked(link, now) {
            return Ok(CodeIssue::Locked);
        }
        if inner.is_revoked(link, now) {
            return Ok(CodeIssue::Revoked);
        }
        let key = link_key(link.tenant, link.jti);
        let window_end = now + link.code_window_seconds();
        let count = inner
            .code_counts
            .entry(key.clone())
            .or_insert((0, window_end));
        if count.1 <= now {
            *count = (0, window_end);
        }
        if count.0 >= CODES_PER_WINDOW {
            return Ok(CodeIssue::TooMany {
                retry_after: (count.1 - now).max(1),
            });
        }
        count.0 += 1;
        let seconds = link.code_seconds();
        inner
            .codes
            .insert(key, (digest.to_owned(), 0, now + seconds));
        inner.note_write(now);
        Ok(CodeIssue::Issued { seconds })
    }

    async fn void_code(&self, link: &LinkRef<'_>, digest: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = link_key(link.tenant, link.jti);
        if inner.codes.get(&key).is_some_and(|(d, _, _)| d == digest) {
            inner.codes.remove(&key);
        }
        Ok(())
    }

    async fn status(
        &self,
        link: &LinkRef<'_>,
        device: Option<&str>,
    ) -> Result<LinkStatus, StoreError> {
        let now = unix_now();
        let inner = self.lock();
        let uses = inner.live_uses(&link_key(link.tenant, link.jti), now);
        Ok(LinkStatus {
            revoked: inner.is_revoked(link, now),
            locked: inner.is_locked(link, now),
            uses: uses.map_or(0, Uses::count),
            device_known: match (uses, device) {
                (Some(Uses::Devices(devices)), Some(device)) => devices.contains(device),
                _ => false,
            },
        })
    }

    async fn fail_attempt(&self, link: &LinkRef<'_>) -> Result<FailedAttempt, StoreError> {
        let now = unix_now();
        let mut inner = self.lock();
        let key = link_key(link.tenant, link.jti);
        let attempts = inner.failures(&key, now);
        if attempts >= u64::from(link.max_attempts) {
            return Ok(FailedAttempt::AlreadyLocked);
        }
        inner
            .failures
            .insert(key, (attempts + 1, link.keep_until(now)));
        inner.note_write(now);
        Ok(FailedAttempt::Counted {
            attempts: attempts + 1,
        })
    }

    async fn revoke_link(
        &self,
        tenant: &str,
        jti: &str,
        keep_seconds: i64,
    ) -> Result<(), StoreError> {
        let now = unix_now();
        let keep_until = now + keep_seconds;
        let mut inner = self.lock();
        let entry = inner
            .marks
            .entry(revoked_link_key(tenant, jti))
            .or_insert((1, keep_until));
        entry.1 = entry.1.max(keep_until);
        inner.note_write(now);
        Ok(())
    }

    async fn revoke_scope(
        &self,
        tenant: &str,
        scope: &Scope,
        before: i64,
        keep_seconds: i64,
    ) -> Result<i64, StoreError> {
        let now = unix_now();
        let keep_until = now + keep_seconds;
        let mut inner = self.lock();
        let key = scope_key(tenant, scope);
        let current = inner.mark(&key, now);
        let effective = current.map_or(before, |c| c.max(before));
        let keep = inner
            .marks
            .get(&key)
            .map_or(keep_until, |(_, k)| (*k).max(keep_until));
        inner.marks.insert(key, (effective, keep));
        inner.note_write(now);
        Ok(effective)
    }

    async fn by_id(
        &self,
        tenant: &str,
        jti: &str,
        max_attempts: u32,
    ) -> Result<LinkById, StoreError> {
        let now = unix_now();
        let inner = self.lock();
        let key = link_key(tenant, jti);
        Ok(LinkById {
            uses: inner.live_uses(&key, now).map_or(0, Uses::count),
            revoked: inner.mark(&revoked_link_key(tenant, jti), now).is_some(),
            locked: inner.failures(&key, now) >= u64::from(max_attempts),
        })
    }

    async fn remember(
        &self,
        tenant: &str,
        key: &str,
        record: &str,
        keep_seconds: i64,
    ) -> Result<Option<String>, StoreError> {
        let now = unix_now();
        let mut inner = self.lock();
        let key = link_key(tenant, key);
        if let Some((found, keep)) = inner.records.get(&key)
            && *keep > now
        {
            return Ok(Some(found.clone()));
        }
        inner
            .records
            .insert(key, (record.to_owned(), now + keep_seconds));
        inner.note_write(now);
        Ok(None)
    }

    async fn update_remembered(
        &self,
        tenant: &str,
        key: &str,
        record: &str,
    ) -> Result<(), StoreError> {
        let now = unix_now();
        let mut inner = self.lock();
        if let Some((found, keep)) = inner.records.get_mut(&link_key(tenant, key))
            && *keep > now
        {
            *found = record.to_owned();
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
