//! zrepl's on-ZFS abstractions, with zrepl's exact names, so that a user who
//! switches from zrepl keeps their incremental history:
//!
//! | abstraction | where | name |
//! |---|---|---|
//! | replication cursor (v2) | sender bookmark | `zrepl_CURSOR_G_<guid 16 hex>_J_<job>` |
//! | replication cursor (v1, legacy) | sender bookmark | `zrepl_replication_cursor` |
//! | tentative cursor | sender bookmark | `zrepl_CURSORTENTATIVE__G_<guid 16 hex>_J_<job>` |
//! | step hold | sender snapshot hold tag | `zrepl_STEP_J_<job>` |
//! | last-received hold | receiver snapshot hold tag | `zrepl_last_received_J_<job>` |
//! | placeholder | receiver filesystem property | `zrepl:placeholder=on` |

use serde::{Deserialize, Serialize};
use zrelay_zfs::name::validate_component;

pub mod listing;

pub use listing::{
    check_stale_kinds, collect_abstractions, list_abstractions, partition_stale,
    release_abstractions, Abstraction, AbstractionFilter, StaleKindsError, Staleness,
};

/// The user property that marks a placeholder filesystem.
pub const PLACEHOLDER_PROPERTY: &str = "zrepl:placeholder";

/// OpenZFS's limit on hold tag length (`MAXNAMELEN - 1`).
pub const MAX_HOLD_TAG_LEN: usize = 255;

const CURSOR_PREFIX: &str = "zrepl_CURSOR_G_";
const TENTATIVE_PREFIX: &str = "zrepl_CURSORTENTATIVE__G_";
const CURSOR_V1: &str = "zrepl_replication_cursor";
const STEP_HOLD_PREFIX: &str = "zrepl_STEP_J_";
const LAST_RECEIVED_PREFIX: &str = "zrepl_last_received_J_";

/// A job name that is safe to embed in hold tags and bookmark names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

/// Why a job name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job name {name:?}: {reason}")]
pub struct JobIdError {
    /// The refused name.
    pub name: String,
    /// Why.
    pub reason: String,
}

impl JobId {
    /// Validate a job name as zrepl does: a valid ZFS name component (no `/`,
    /// `@`, `#`, no control characters, not empty; spaces are fine), not
    /// starting with `_`, and short
    /// enough that every hold tag and bookmark name built from it is legal.
    pub fn new(name: &str) -> Result<JobId, JobIdError> {
        let err = |reason: String| JobIdError {
            name: name.to_string(),
            reason,
        };
        validate_component(name).map_err(|e| err(e.to_string()))?;
        if name.starts_with('_') {
            return Err(err("job names must not start with `_`".into()));
        }
        let longest = LAST_RECEIVED_PREFIX.len() + name.len();
        if longest > MAX_HOLD_TAG_LEN {
            return Err(err(format!(
                "too long: the hold tag {LAST_RECEIVED_PREFIX}<job> would have {longest} characters, the limit is {MAX_HOLD_TAG_LEN}"
            )));
        }
        Ok(JobId(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `zrepl_STEP_J_<job>`.
    pub fn step_hold_tag(&self) -> String {
        format!("{STEP_HOLD_PREFIX}{}", self.0)
    }

    /// `zrepl_last_received_J_<job>`.
    pub fn last_received_hold_tag(&self) -> String {
        format!("{LAST_RECEIVED_PREFIX}{}", self.0)
    }

    /// `zrepl_CURSOR_G_<guid>_J_<job>`.
    pub fn cursor_bookmark(&self, guid: u64) -> String {
        format!("{CURSOR_PREFIX}{guid:016x}_J_{}", self.0)
    }

    /// `zrepl_CURSORTENTATIVE__G_<guid>_J_<job>`.
    pub fn tentative_cursor_bookmark(&self, guid: u64) -> String {
        format!("{TENTATIVE_PREFIX}{guid:016x}_J_{}", self.0)
    }
}

impl TryFrom<String> for JobId {
    type Error = JobIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        JobId::new(&s)
    }
}

impl From<JobId> for String {
    fn from(j: JobId) -> String {
        j.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of abstraction, named as zrepl's `zfs-abstraction --type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AbstractionKind {
    /// Sender snapshot hold `zrepl_STEP_J_<job>`.
    #[serde(rename = "step-hold")]
    StepHold,
    /// Receiver snapshot hold `zrepl_last_received_J_<job>`.
    #[serde(rename = "last-received-hold")]
    LastReceivedHold,
    /// Sender bookmark `zrepl_CURSORTENTATIVE__G_<guid>_J_<job>`.
    #[serde(rename = "tentative-replication-cursor-bookmark-v2")]
    TentativeCursor,
    /// Legacy sender bookmark `zrepl_replication_cursor`.
    #[serde(rename = "replication-cursor-bookmark-v1")]
    CursorV1,
    /// Sender bookmark `zrepl_CURSOR_G_<guid>_J_<job>`.
    #[serde(rename = "replication-cursor-bookmark-v2")]
    CursorV2,
}

impl AbstractionKind {
    /// Every kind, in zrepl's order.
    pub const ALL: [AbstractionKind; 5] = [
        AbstractionKind::StepHold,
        AbstractionKind::LastReceivedHold,
        AbstractionKind::TentativeCursor,
        AbstractionKind::CursorV1,
        AbstractionKind::CursorV2,
    ];

    /// The kind named by zrepl's type name (`step-hold`, ...).
    pub fn from_name(name: &str) -> Option<AbstractionKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the kind is a snapshot hold (else it is a bookmark).
    pub fn is_hold(self) -> bool {
        matches!(
            self,
            AbstractionKind::StepHold | AbstractionKind::LastReceivedHold
        )
    }

    /// zrepl's type name.
    pub fn as_str(self) -> &'static str {
        match self {
            AbstractionKind::StepHold => "step-hold",
            AbstractionKind::LastReceivedHold => "last-received-hold",
            AbstractionKind::TentativeCursor => "tentative-replication-cursor-bookmark-v2",
            AbstractionKind::CursorV1 => "replication-cursor-bookmark-v1",
            AbstractionKind::CursorV2 => "replication-cursor-bookmark-v2",
        }
    }
}

/// A bookmark name recognised as an abstraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBookmark {
    /// Cursor, tentative cursor or legacy cursor.
    pub kind: AbstractionKind,
    /// The GUID encoded in the name (`None` for the legacy cursor).
    pub guid: Option<u64>,
    /// The job encoded in the name (`None` for the legacy cursor).
    pub job: Option<String>,
}

fn parse_guid_job(rest: &str) -> Option<(u64, String)> {
    let (hex, job) = rest.split_at_checked(16)?;
    let job = job.strip_prefix("_J_")?;
    if job.is_empty()
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    Some((u64::from_str_radix(hex, 16).ok()?, job.to_string()))
}

/// Recognise a bookmark's short name as one of zrepl's abstractions.
pub fn parse_bookmark(name: &str) -> Option<ParsedBookmark> {
    if name == CURSOR_V1 {
        return Some(ParsedBookmark {
            kind: AbstractionKind::CursorV1,
            guid: None,
            job: None,
        });
    }
    // The tentative prefix starts with the cursor prefix's letters, so test it first.
    let (kind, rest) = if let Some(rest) = name.strip_prefix(TENTATIVE_PREFIX) {
        (AbstractionKind::TentativeCursor, rest)
    } else {
        (AbstractionKind::CursorV2, name.strip_prefix(CURSOR_PREFIX)?)
    };
    let (guid, job) = parse_guid_job(rest)?;
    Some(ParsedBookmark {
        kind,
        guid: Some(guid),
        job: Some(job),
    })
}

/// Recognise a hold tag as a step hold or last-received hold, with its job.
pub fn parse_hold_tag(tag: &str) -> Option<(AbstractionKind, String)> {
    if let Some(job) = tag.strip_prefix(STEP_HOLD_PREFIX) {
        return (!job.is_empty()).then(|| (AbstractionKind::StepHold, job.to_string()));
    }
    let job = tag.strip_prefix(LAST_RECEIVED_PREFIX)?;
    (!job.is_empty()).then(|| (AbstractionKind::LastReceivedHold, job.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_zrepl() {
        let j = JobId::new("prod_to_backup").unwrap();
        assert_eq!(j.step_hold_tag(), "zrepl_STEP_J_prod_to_backup");
        assert_eq!(
            j.last_received_hold_tag(),
            "zrepl_last_received_J_prod_to_backup"
        );
        assert_eq!(
            j.cursor_bookmark(0xabc),
            "zrepl_CURSOR_G_0000000000000abc_J_prod_to_backup"
        );
        assert_eq!(
            j.tentative_cursor_bookmark(u64::MAX),
            "zrepl_CURSORTENTATIVE__G_ffffffffffffffff_J_prod_to_backup"
        );
    }

    #[test]
    fn parse_roundtrip() {
        let j = JobId::new("j-1").unwrap();
        let c = parse_bookmark(&j.cursor_bookmark(42)).unwrap();
        assert_eq!(c.kind, AbstractionKind::CursorV2);
        assert_eq!((c.guid, c.job.as_deref()), (Some(42), Some("j-1")));
        let t = parse_bookmark(&j.tentative_cursor_bookmark(7)).unwrap();
        assert_eq!(t.kind, AbstractionKind::TentativeCursor);
        assert_eq!(t.guid, Some(7));
        assert_eq!(
            parse_bookmark("zrepl_replication_cursor").unwrap().kind,
            AbstractionKind::CursorV1
        );
        for not in [
            "zrepl_CURSOR_G_00000000000000_J_x",
            "zrepl_CURSOR_G_000000000000002a_J_",
            "zrepl_CURSOR_G_000000000000002A_J_x",
            "zrepl_CURSOR_G_000000000000002a_X_x",
            "my_bookmark",
        ] {
            assert_eq!(parse_bookmark(not), None, "{not}");
        }
        assert_eq!(
            parse_hold_tag(&j.step_hold_tag()),
            Some((AbstractionKind::StepHold, "j-1".into()))
        );
        assert_eq!(
            parse_hold_tag(&j.last_received_hold_tag()),
            Some((AbstractionKind::LastReceivedHold, "j-1".into()))
        );
        assert_eq!(parse_hold_tag("zrepl_STEP_J_"), None);
        for k in AbstractionKind::ALL {
            assert_eq!(AbstractionKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(AbstractionKind::from_name("step-bookmark"), None);
        assert_eq!(parse_hold_tag("user-hold"), None);
    }

    #[test]
    fn bad_job_names_are_refused_by_name() {
        for bad in ["", "_hidden", "a/b", "a@b", "a#b", "a\nb", &"x".repeat(240)] {
            let e = JobId::new(bad).unwrap_err();
            assert_eq!(e.name, bad);
            assert!(e.to_string().contains("invalid job name"), "{e}");
        }
        assert!(JobId::new("backup.daily-1_x:y").is_ok());
        assert!(JobId::new("with space").is_ok());
    }
}
