//! What one pruning run did (or, in a dry run, would do), per filesystem.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use zrelay_zfs::DatasetPath;

/// Which endpoint a pruning run works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SideKind {
    /// `keep_sender`.
    Sender,
    /// `keep_receiver`.
    Receiver,
    /// A snap job's `keep` (nothing is replicated).
    Local,
}

impl SideKind {
    /// `sender`, `receiver` or `local` (zrepl's `prune_side`).
    pub fn as_str(self) -> &'static str {
        match self {
            SideKind::Sender => "sender",
            SideKind::Receiver => "receiver",
            SideKind::Local => "local",
        }
    }
}

impl std::fmt::Display for SideKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One filesystem of a pruning run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsPruneReport {
    /// The filesystem, in the sender's namespace.
    pub fs: DatasetPath,
    /// Why the filesystem was not looked at (e.g. a placeholder).
    pub skipped: Option<String>,
    /// Snapshots destroyed (short names, oldest first).
    pub destroyed: Vec<String>,
    /// Dry run: the snapshots that would be destroyed.
    pub would_destroy: Vec<String>,
    /// The snapshots that stay, each with every reason it stays (rules that
    /// keep it, protection, or why zfs refused to destroy it).
    pub kept: Vec<(String, Vec<String>)>,
    /// What went wrong with this filesystem, if anything.
    pub error: Option<String>,
}

impl FsPruneReport {
    /// An empty report for `fs`.
    pub fn new(fs: DatasetPath) -> Self {
        FsPruneReport {
            fs,
            skipped: None,
            destroyed: Vec::new(),
            would_destroy: Vec::new(),
            kept: Vec::new(),
            error: None,
        }
    }
}

/// One pruning run of one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// `sender`, `receiver` or `local`.
    pub side: SideKind,
    /// Nothing was destroyed on purpose.
    pub dry_run: bool,
    /// A failure before any filesystem was looked at (invalid rules, listing).
    pub error: Option<String>,
    /// Per filesystem, in listing order.
    pub filesystems: Vec<FsPruneReport>,
}

impl PruneReport {
    /// Whether the run and every filesystem finished without error.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.filesystems.iter().all(|f| f.error.is_none())
    }

    /// The report of `fs`, if it was listed.
    pub fn fs(&self, fs: &DatasetPath) -> Option<&FsPruneReport> {
        self.filesystems.iter().find(|f| &f.fs == fs)
    }

    /// Human text: per filesystem, what goes and why each survivor survives
    /// (`zrelay prune --dry-run`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (goes, verb) = if self.dry_run {
            (
                self.filesystems
                    .iter()
                    .map(|f| f.would_destroy.len())
                    .sum::<usize>(),
                "would destroy",
            )
        } else {
            (
                self.filesystems
                    .iter()
                    .map(|f| f.destroyed.len())
                    .sum::<usize>(),
                "destroyed",
            )
        };
        let _ = writeln!(
            out,
            "{} pruning{}: {} filesystem(s), {verb} {goes} snapshot(s)",
            self.side,
            if self.dry_run { " (dry run)" } else { "" },
            self.filesystems.len()
        );
        if let Some(e) = &self.error {
            let _ = writeln!(out, "error: {e}");
        }
        for f in &self.filesystems {
            let _ = writeln!(out, "{}", f.fs);
            if let Some(why) = &f.skipped {
                let _ = writeln!(out, "  skipped: {why}");
                continue;
            }
            let gone = if self.dry_run {
                &f.would_destroy
            } else {
                &f.destroyed
            };
            for name in gone {
                let _ = writeln!(out, "  - @{name}  ({verb}: no rule keeps it)");
            }
            for (name, reasons) in &f.kept {
                let _ = writeln!(out, "  + @{name}  (kept: {})", reasons.join("; "));
            }
            if gone.is_empty() && f.kept.is_empty() && f.error.is_none() {
                let _ = writeln!(out, "  (no snapshots)");
            }
            if let Some(e) = &f.error {
                let _ = writeln!(out, "  error: {e}");
            }
        }
        out
    }
}
