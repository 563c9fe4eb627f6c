//! The record's types: ids, kinds, states, the rows [`History::query`]
//! returns and the [`Filter`] it takes.
//!
//! [`History::query`]: crate::History::query

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// The id of one invocation (one run of a job's replication, snapshot or prune).
    InvocationId
);
id_type!(
    /// The id of one attempt of an invocation (the first try, then each retry).
    AttemptId
);
id_type!(
    /// The id of one filesystem step of an attempt (one send/receive).
    StepId
);

/// What an invocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Replication (push, pull, or the sink/source side of one).
    Replication,
    /// Taking snapshots.
    Snapshot,
    /// Pruning snapshots.
    Prune,
}

/// The state of an invocation, attempt or step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Planned, not started yet.
    Queued,
    /// Running.
    InFlight,
    /// Finished successfully.
    Completed,
    /// Finished with an error; a later attempt may still succeed.
    Failed,
    /// Given up permanently (a permanent error, or retries exhausted).
    Dead,
    /// Was queued or in flight when the daemon stopped; found so at the next
    /// start by [`History::mark_stale_on_start`](crate::History::mark_stale_on_start).
    Stale,
}

impl State {
    /// Every state, in the order above.
    pub const ALL: [State; 6] = [
        State::Queued,
        State::InFlight,
        State::Completed,
        State::Failed,
        State::Dead,
        State::Stale,
    ];

    /// The name stored in the database and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::InFlight => "in_flight",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Dead => "dead",
            State::Stale => "stale",
        }
    }

    /// Whether a row in this state is still running (or about to).
    pub fn is_active(self) -> bool {
        matches!(self, State::Queued | State::InFlight)
    }

    /// Whether this state may end an invocation, attempt or step:
    /// completed, failed or dead.
    pub fn is_final(self) -> bool {
        matches!(self, State::Completed | State::Failed | State::Dead)
    }
}

impl Kind {
    /// The name stored in the database and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Replication => "replication",
            Kind::Snapshot => "snapshot",
            Kind::Prune => "prune",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state or kind name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    what: &'static str,
    value: String,
}

impl FromStr for State {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "state",
                value: s.to_owned(),
            })
    }
}

impl FromStr for Kind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Kind::Replication, Kind::Snapshot, Kind::Prune]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "kind",
                value: s.to_owned(),
            })
    }
}

/// Which rows [`History::query`](crate::History::query) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this job's rows.
    pub job: Option<String>,
    /// Only steps of this filesystem or of filesystems below it
    /// (`pool/a` matches `pool/a` and `pool/a/b`, not `pool/ab`).
    /// Rows without a step (snapshot and prune runs, attempts that failed
    /// before any step) never match.
    pub fs: Option<String>,
    /// Only rows whose time (see [`Row::time`]) is at or after this.
    pub since: Option<SystemTime>,
    /// At most this many rows (the newest).
    pub limit: Option<usize>,
}

/// One invocation: a run of a job's replication, snapshot or prune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationRecord {
    /// Its id.
    pub id: InvocationId,
    /// The job's name.
    pub job: String,
    /// What it did.
    pub kind: Kind,
    /// When it began.
    #[serde(with = "rfc3339")]
    pub started: SystemTime,
    /// When it ended, if it has.
    #[serde(with = "rfc3339::option")]
    pub finished: Option<SystemTime>,
    /// Its state.
    pub state: State,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// One attempt of an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Its id.
    pub id: AttemptId,
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub n: u32,
    /// When it began.
    #[serde(with = "rfc3339")]
    pub started: SystemTime,
    /// When it ended, if it has.
    #[serde(with = "rfc3339::option")]
    pub finished: Option<SystemTime>,
    /// Its state.
    pub state: State,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// One filesystem step of an attempt: one send/receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Its id.
    pub id: StepId,
    /// The filesystem (as named on the sending side).
    pub filesystem: String,
    /// The incremental source snapshot, or `None` for a full send.
    pub from_snapshot: Option<String>,
    /// The snapshot sent.
    pub to_snapshot: String,
    /// Whether the step resumed an interrupted receive.
    pub resumed: bool,
    /// When it began.
    #[serde(with = "rfc3339")]
    pub started: SystemTime,
    /// When it ended, if it has.
    #[serde(with = "rfc3339::option")]
    pub finished: Option<SystemTime>,
    /// The estimated stream size, if known.
    pub bytes_expected: Option<u64>,
    /// Bytes transferred (last recorded progress while running).
    pub bytes: u64,
    /// Its state.
    pub state: State,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// One row of the record: a step with its attempt and invocation, or an
/// attempt without steps, or an invocation without attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The invocation.
    pub invocation: InvocationRecord,
    /// The attempt, if the row is an attempt's or a step's.
    pub attempt: Option<AttemptRecord>,
    /// The step, if the row is a step's.
    pub step: Option<StepRecord>,
}

impl Row {
    /// The row's time: when its most specific part (step, else attempt,
    /// else invocation) began. Rows are ordered and filtered by it.
    pub fn time(&self) -> SystemTime {
        match (&self.step, &self.attempt) {
            (Some(s), _) => s.started,
            (None, Some(a)) => a.started,
            (None, None) => self.invocation.started,
        }
    }

    /// The state of its most specific part.
    pub fn state(&self) -> State {
        match (&self.step, &self.attempt) {
            (Some(s), _) => s.state,
            (None, Some(a)) => a.state,
            (None, None) => self.invocation.state,
        }
    }

    /// The most specific error on the row: the step's, else the attempt's,
    /// else the invocation's.
    pub fn error(&self) -> Option<&str> {
        let step = self.step.as_ref().and_then(|s| s.error.as_deref());
        let attempt = self.attempt.as_ref().and_then(|a| a.error.as_deref());
        step.or(attempt).or(self.invocation.error.as_deref())
    }
}

/// A step that was queued or in flight when the daemon stopped, returned by
/// [`History::mark_stale_on_start`](crate::History::mark_stale_on_start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleStep {
    /// The job.
    pub job: String,
    /// The invocation it belonged to.
    pub invocation: InvocationId,
    /// The attempt it belonged to.
    pub attempt: AttemptId,
    /// The step (now in state [`State::Stale`]) and what it had recorded.
    pub step: StepRecord,
}

/// Timestamps as RFC 3339 strings (UTC) in JSON.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(crate) fn to_string(t: SystemTime) -> String {
        match jiff::Timestamp::try_from(t) {
            Ok(ts) => ts.to_string(),
            Err(_) => format!("{t:?}"),
        }
    }

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_string(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        let ts: jiff::Timestamp = s.parse().map_err(D::Error::custom)?;
        Ok(SystemTime::from(ts))
    }

    pub(crate) mod option {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            t: &Option<SystemTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&super::to_string(*t)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            #[derive(Deserialize)]
            struct Wrap(#[serde(with = "super")] SystemTime);
            Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
        }
    }
}
