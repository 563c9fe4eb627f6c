//! The pure state machine: every transition of a [`Record`], with the time
//! passed in. No I/O, no clock; the store loads a record, calls one of
//! these, and writes the result back inside one transaction.
//!
//! | from \ op   | enqueue            | acquire        | heartbeat | complete            | fail                          | expire (lease past expiry) | retry | drop |
//! |-------------|--------------------|----------------|-----------|---------------------|-------------------------------|----------------------------|-------|------|
//! | (none)      | ready              |                |           |                     |                               |                            |       |      |
//! | ready       | ready (newest snap)| in_progress    | lease lost | lease lost         | lease lost                    | refused                    | refused | gone |
//! | in_progress | in_progress + pending | refused     | in_progress (renewed) | completed, or ready if pending | failed, or dead | ready                 | refused | refused |
//! | completed   | ready (unless same snapshot) | refused | lease lost | lease lost       | lease lost                    | refused                    | refused | gone |
//! | failed      | failed (snapshot updated, backoff kept) | in_progress once eligible | lease lost | lease lost | lease lost | refused    | ready | gone |
//! | dead        | dead (snapshot updated) | refused   | lease lost | lease lost         | lease lost                    | refused                    | ready | gone |
//!
//! Heartbeat, complete and fail also need the caller's [`Claim`] to match
//! the lease (owner and generation); any mismatch, including a record that
//! is no longer in_progress, is [`TransitionError::LeaseLost`]. Other
//! refusals are [`TransitionError::NotAllowed`] naming the record, the
//! operation and the state; acquiring a failed record before its backoff
//! ends is [`TransitionError::NotEligible`], expiring a valid lease
//! [`TransitionError::NotExpired`].

use std::time::{Duration, SystemTime};

use zrelay_zfs::ErrorClass;

use crate::error::{Op, PolicyError, TransitionError};
use crate::model::{
    Claim, DeadReason, LastError, Lease, PendingWork, Record, RecordKey, State, TargetSnapshot,
    WorkerId,
};

/// The text recorded as the last error when a lease is taken back.
pub const REDRIVE_ERROR: &str = "lease expired (worker gone?); re-driven";

/// Lease length, backoff and the failure limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    lease: Duration,
    backoff_start: Duration,
    backoff_max: Duration,
    max_attempts: u32,
}

impl Default for Policy {
    /// A 60 s lease, backoff from 10 s doubling to 10 min, dead after 8
    /// consecutive failures.
    fn default() -> Policy {
        Policy {
            lease: Duration::from_secs(60),
            backoff_start: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            max_attempts: 8,
        }
    }
}

impl Policy {
    /// Validates a policy: positive durations, start ≤ max, at least one attempt.
    pub fn new(
        lease: Duration,
        backoff_start: Duration,
        backoff_max: Duration,
        max_attempts: u32,
    ) -> Result<Policy, PolicyError> {
        for (what, d) in [("the lease", lease), ("the backoff start", backoff_start)] {
            if d.is_zero() {
                return Err(PolicyError::Zero { what });
            }
        }
        if backoff_start > backoff_max {
            return Err(PolicyError::BackoffOrder {
                start: backoff_start,
                max: backoff_max,
            });
        }
        if max_attempts == 0 {
            return Err(PolicyError::NoAttempts);
        }
        Ok(Policy {
            lease,
            backoff_start,
            backoff_max,
            max_attempts,
        })
    }

    /// How long a lease lasts without a heartbeat.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The first backoff.
    pub fn backoff_start(&self) -> Duration {
        self.backoff_start
    }

    /// The longest backoff.
    pub fn backoff_max(&self) -> Duration {
        self.backoff_max
    }

    /// Consecutive temporary failures after which a record is dead.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after the `attempts`-th consecutive failure (1-based):
    /// `start × 2^(attempts−1)`, at most `max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        self.backoff_start
            .checked_mul(1u32 << doublings.min(31))
            .map_or(self.backoff_max, |d| d.min(self.backoff_max))
    }
}

/// What [`Record::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnqueueOutcome {
    /// A new ready record.
    Created,
    /// A ready record now aims at the newest snapshot.
    Updated,
    /// A completed record is ready again.
    Requeued,
    /// Already completed for that snapshot: nothing to do.
    AlreadyDone,
    /// The record is in progress; the work is noted as pending.
    Deferred,
    /// A failed record keeps its backoff and now aims at the newest snapshot.
    Backoff,
    /// A dead record stays dead (it now aims at the newest snapshot).
    StillDead,
}

impl Record {
    /// A new ready record.
    pub fn new(key: RecordKey, snapshot: Option<TargetSnapshot>, now: SystemTime) -> Record {
        Record {
            key,
            state: State::Ready,
            attempts: 0,
            snapshot,
            pending: None,
            last_error: None,
            dead_reason: None,
            lease: None,
            generation: 0,
            next_eligible: None,
            enqueued: now,
            updated: now,
        }
    }

    /// Whether the record may be acquired at `now`.
    pub fn is_eligible(&self, now: SystemTime) -> bool {
        match self.state {
            State::Ready => true,
            State::Failed => self.next_eligible.is_none_or(|t| t <= now),
            _ => false,
        }
    }

    /// Notes new work: the step should reach `snapshot` (`None`: whatever
    /// is newest). Never refused; see the module table.
    pub fn enqueue(&mut self, snapshot: Option<TargetSnapshot>, now: SystemTime) -> EnqueueOutcome {
        let outcome = match self.state {
            State::Ready => EnqueueOutcome::Updated,
            State::InProgress => {
                if snapshot.is_some() && snapshot == self.snapshot {
                    return EnqueueOutcome::Deferred;
                }
                self.pending = Some(PendingWork { snapshot });
                self.updated = now;
                return EnqueueOutcome::Deferred;
            }
            State::Completed => {
                if snapshot.is_some() && snapshot == self.snapshot {
                    return EnqueueOutcome::AlreadyDone;
                }
                self.state = State::Ready;
                EnqueueOutcome::Requeued
            }
            State::Failed => EnqueueOutcome::Backoff,
            State::Dead => EnqueueOutcome::StillDead,
        };
        self.snapshot = snapshot;
        self.updated = now;
        outcome
    }

    fn refuse(&self, op: Op) -> TransitionError {
        TransitionError::NotAllowed {
            key: self.key.clone(),
            op,
            state: self.state,
        }
    }

    /// Takes the record for `owner`: ready, or failed and past its backoff,
    /// becomes in_progress with a lease until `now + policy.lease()`.
    pub fn acquire(
        &mut self,
        owner: &WorkerId,
        now: SystemTime,
        policy: &Policy,
    ) -> Result<Claim, TransitionError> {
        if !matches!(self.state, State::Ready | State::Failed) {
            return Err(self.refuse(Op::Acquire));
        }
        if !self.is_eligible(now) {
            return Err(TransitionError::NotEligible {
                key: self.key.clone(),
                until: self.next_eligible.unwrap_or(now),
            });
        }
        self.state = State::InProgress;
        self.generation += 1;
        self.lease = Some(Lease {
            owner: owner.clone(),
            expires: now + policy.lease(),
        });
        self.next_eligible = None;
        self.updated = now;
        Ok(Claim {
            key: self.key.clone(),
            owner: owner.clone(),
            generation: self.generation,
        })
    }

    /// Checks that `claim` holds the record's lease; any mismatch (the
    /// record was re-driven, re-acquired, retried or ended) is a lost lease.
    fn check_claim(&self, claim: &Claim, op: Op) -> Result<(), TransitionError> {
        let holds = self.state == State::InProgress
            && self.generation == claim.generation
            && self.lease.as_ref().is_some_and(|l| l.owner == claim.owner);
        if holds {
            return Ok(());
        }
        Err(TransitionError::LeaseLost {
            key: self.key.clone(),
            op,
            owner: claim.owner.clone(),
            generation: claim.generation,
            state: self.state,
            current: self.generation,
        })
    }

    /// Renews the lease to `now + policy.lease()`; returns the new expiry.
    /// A lease past its expiry that nobody took back is still held.
    pub fn heartbeat(
        &mut self,
        claim: &Claim,
        now: SystemTime,
        policy: &Policy,
    ) -> Result<SystemTime, TransitionError> {
        self.check_claim(claim, Op::Heartbeat)?;
        let expires = now + policy.lease();
        if let Some(lease) = self.lease.as_mut() {
            lease.expires = expires;
        }
        self.updated = now;
        Ok(expires)
    }

    /// Ends the step successfully: completed, attempts 0, no error (or ready again,
    /// aiming at the pending snapshot, when newer work arrived meanwhile).
    pub fn complete(&mut self, claim: &Claim, now: SystemTime) -> Result<State, TransitionError> {
        self.check_claim(claim, Op::Complete)?;
        self.release(now);
        self.attempts = 0;
        self.last_error = None;
        self.state = match self.pending.take() {
            Some(p) => {
                self.snapshot = p.snapshot;
                State::Ready
            }
            None => State::Completed,
        };
        Ok(self.state)
    }

    /// Ends the step with `error`: attempts + 1, then dead (permanent error
    /// or the attempts limit reached) or failed with backoff. Pending work
    /// becomes the record's target snapshot.
    pub fn fail(
        &mut self,
        claim: &Claim,
        error: LastError,
        now: SystemTime,
        policy: &Policy,
    ) -> Result<State, TransitionError> {
        self.check_claim(claim, Op::Fail)?;
        self.release(now);
        if let Some(p) = self.pending.take() {
            self.snapshot = p.snapshot;
        }
        self.attempts = self.attempts.saturating_add(1);
        let dead = if error.class == ErrorClass::Permanent {
            Some(DeadReason::PermanentError)
        } else if self.attempts >= policy.max_attempts() {
            Some(DeadReason::AttemptsExhausted)
        } else {
            None
        };
        self.last_error = Some(error);
        match dead {
            Some(reason) => {
                self.state = State::Dead;
                self.dead_reason = Some(reason);
            }
            None => {
                self.state = State::Failed;
                self.next_eligible = Some(now + policy.backoff(self.attempts));
            }
        }
        Ok(self.state)
    }

    /// Takes back a lease past its expiry: the record is ready at once
    /// (re-driven), attempts unchanged, pending work taken up.
    pub fn expire(&mut self, now: SystemTime) -> Result<WorkerId, TransitionError> {
        let Some(lease) = self
            .lease
            .clone()
            .filter(|_| self.state == State::InProgress)
        else {
            return Err(self.refuse(Op::Expire));
        };
        if lease.expires > now {
            return Err(TransitionError::NotExpired {
                key: self.key.clone(),
                owner: lease.owner,
                expires: lease.expires,
            });
        }
        self.release(now);
        if let Some(p) = self.pending.take() {
            self.snapshot = p.snapshot;
        }
        self.state = State::Ready;
        self.last_error = Some(LastError {
            message: format!("{REDRIVE_ERROR} (lease of {})", lease.owner),
            class: ErrorClass::Temporary,
        });
        Ok(lease.owner)
    }

    /// The operator's retry: a dead or failed record is ready at once with
    /// attempts 0. The last error is kept for reference.
    pub fn retry(&mut self, now: SystemTime) -> Result<(), TransitionError> {
        if !matches!(self.state, State::Dead | State::Failed) {
            return Err(self.refuse(Op::Retry));
        }
        self.state = State::Ready;
        self.attempts = 0;
        self.dead_reason = None;
        self.next_eligible = None;
        self.updated = now;
        Ok(())
    }

    /// Whether the operator may drop the record: anything but in_progress
    /// (wait for the step to end, or for its lease to be taken back).
    pub fn check_drop(&self) -> Result<(), TransitionError> {
        if self.state == State::InProgress {
            return Err(self.refuse(Op::Drop));
        }
        Ok(())
    }

    fn release(&mut self, now: SystemTime) {
        self.lease = None;
        self.next_eligible = None;
        self.dead_reason = None;
        self.updated = now;
    }

    /// The record's structural invariants (see [`Record`]); `Err`
    /// names the first one broken. Used by the tests and by the store
    /// before every write.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let in_progress = self.state == State::InProgress;
        if in_progress != self.lease.is_some() {
            return Err("a lease exists exactly when in_progress");
        }
        if self.pending.is_some() && !in_progress {
            return Err("pending work only while in_progress");
        }
        if (self.state == State::Dead) != self.dead_reason.is_some() {
            return Err("a dead reason exists exactly when dead");
        }
        if self.next_eligible.is_some() && self.state != State::Failed {
            return Err("a next-eligible time only when failed");
        }
        if in_progress && self.generation == 0 {
            return Err("an in_progress record was acquired at least once");
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
