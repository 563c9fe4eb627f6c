//! Confinement: the one function that maps a peer's request onto local datasets.
//!
//! A sink serves client X under `root_fs/X`; a pull job receives under
//! `root_fs`. Every dataset a receiver lists, creates, receives into, holds or
//! destroys is computed by [`confine`], so no request of X can reach outside
//! `root_fs/X` — not with `..`, absolute paths, delimiters, empty components,
//! over-long names, nor by naming another client's subtree (which simply maps
//! *inside* X's own subtree).
//!
//! Invariants:
//! - A [`ClientIdentity`] is exactly one valid dataset path component.
//! - `confine(root, id, p)` is `Ok(d)` only if `d` is `root/id/<components of p>`
//!   and `d` has `root/id` as a component-wise prefix.

use zrelay_zfs::DatasetPath;

use crate::error::EndpointError;

/// The longest identity accepted, in bytes (well under ZFS's 255-byte names,
/// leaving room for the sender's paths below it).
pub const MAX_IDENTITY_LEN: usize = 64;

/// A validated client identity: one dataset path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientIdentity(String);

impl ClientIdentity {
    /// Validate `s` as a client identity.
    pub fn parse(s: &str) -> Result<Self, ConfineError> {
        let bad = |reason: String| ConfineError::Identity {
            identity: s.escape_debug().to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if s.len() > MAX_IDENTITY_LEN {
            return Err(bad(format!(
                "it is {} bytes long, at most {MAX_IDENTITY_LEN} are allowed",
                s.len()
            )));
        }
        if let Some(c) = s.chars().find(|c| matches!(c, '/' | '@' | '#' | '%')) {
            return Err(bad(format!("it contains '{c}'")));
        }
        // One component: exactly what ZFS accepts as a child name.
        let probe = DatasetPath::parse("identity").expect("valid");
        probe
            .child(s)
            .map_err(|e| bad(format!("it is not a valid dataset name component: {e}")))?;
        Ok(ClientIdentity(s.to_string()))
    }

    /// The identity as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a request or identity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    /// The identity is not a single valid dataset name component.
    #[error("invalid client identity \"{identity}\": {reason}")]
    Identity {
        /// The offending identity (escaped).
        identity: String,
        /// Why.
        reason: String,
    },
    /// The requested path cannot be mapped under the client's root.
    #[error("request for \"{requested}\" refused{}: {reason}", client.as_ref().map(|c| format!(" for client \"{c}\"")).unwrap_or_default())]
    Path {
        /// The requested path (escaped).
        requested: String,
        /// The client, for a sink.
        client: Option<String>,
        /// Why.
        reason: String,
    },
}

impl From<ConfineError> for EndpointError {
    fn from(e: ConfineError) -> Self {
        let fs = match &e {
            ConfineError::Identity { identity, .. } => identity.clone(),
            ConfineError::Path { requested, .. } => requested.clone(),
        };
        EndpointError::NotAllowed {
            fs,
            reason: e.to_string(),
        }
    }
}

/// The root a client's requests are confined to: `root/identity`, or `root`.
pub fn client_root(
    root: &DatasetPath,
    identity: Option<&ClientIdentity>,
) -> Result<DatasetPath, ConfineError> {
    match identity {
        None => Ok(root.clone()),
        Some(id) => root.child(id.as_str()).map_err(|e| ConfineError::Identity {
            identity: id.to_string(),
            reason: format!("cannot place it under {root}: {e}"),
        }),
    }
}

/// Map the sender-namespace path `requested` under `root[/identity]`.
///
/// This is the only place a peer's path becomes a local dataset.
pub fn confine(
    root: &DatasetPath,
    identity: Option<&ClientIdentity>,
    requested: &str,
) -> Result<DatasetPath, ConfineError> {
    let refuse = |reason: String| ConfineError::Path {
        requested: truncate(&requested.escape_debug().to_string()),
        client: identity.map(|i| i.to_string()),
        reason,
    };
    let base = client_root(root, identity)?;
    let path = DatasetPath::parse(requested)
        .map_err(|e| refuse(format!("not a valid dataset path: {e}")))?;
    let target = base
        .join(path.components())
        .map_err(|e| refuse(format!("cannot be placed under {base}: {e}")))?;
    // Defence in depth: the join above cannot leave `base`, check anyway.
    if !target.has_prefix(&base) || target == base {
        return Err(refuse(format!("{target} is not below {base}")));
    }
    Ok(target)
}

fn truncate(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn root() -> DatasetPath {
        DatasetPath::parse("tank/sink").unwrap()
    }

    fn id(s: &str) -> ClientIdentity {
        ClientIdentity::parse(s).unwrap()
    }

    #[test]
    fn maps_under_the_clients_root() {
        let got = confine(&root(), Some(&id("alice")), "pool/data/app").unwrap();
        assert_eq!(got.as_str(), "tank/sink/alice/pool/data/app");
        let got = confine(&root(), None, "pool/data").unwrap();
        assert_eq!(got.as_str(), "tank/sink/pool/data");
    }

    #[test]
    fn hostile_paths_are_refused_with_the_path_named() {
        let long = "a/".repeat(200) + "a";
        let hostile = [
            "",
            "..",
            ".",
            "pool/..",
            "pool/../../other",
            "../bob/x",
            "/pool",
            "pool/",
            "pool//x",
            "pool@snap",
            "pool#bm",
            "pool/x@",
            "pool\0x",
            "pool\nx",
            "pool/x%y/../z",
            "pool/ä",
            &long,
        ];
        for p in hostile {
            let err = confine(&root(), Some(&id("alice")), p)
                .expect_err(&format!("{p:?} must be refused"));
            let msg = err.to_string();
            assert!(msg.contains("alice"), "{msg}");
            assert!(
                msg.contains(&truncate(&p.escape_debug().to_string())[..p.len().min(20)]),
                "{msg} names {p:?}"
            );
        }
    }

    #[test]
    fn another_clients_path_stays_inside_the_own_subtree() {
        let got = confine(&root(), Some(&id("alice")), "tank/sink/bob/pool").unwrap();
        assert_eq!(got.as_str(), "tank/sink/alice/tank/sink/bob/pool");
        assert!(!got.has_prefix(&DatasetPath::parse("tank/sink/bob").unwrap()));
    }

    #[test]
    fn hostile_identities_are_refused() {
        let long = "x".repeat(MAX_IDENTITY_LEN + 1);
        for s in [
            "", ".", "..", "a/b", "/", "a@b", "a#b", "a%b", "a b\n", "\0", &long,
        ] {
            let err = ClientIdentity::parse(s).expect_err(&format!("{s:?} must be refused"));
            assert!(err.to_string().contains("invalid client identity"), "{err}");
        }
        for s in ["alice", "192.168.1.2", "host-1.example.org", "a_b:c", "a b"] {
            ClientIdentity::parse(s).unwrap();
        }
    }

    #[test]
    fn too_long_results_are_refused() {
        let comp = "c".repeat(120);
        let p = format!("{comp}/{comp}/x");
        let err = confine(&root(), Some(&id("alice")), &p).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot be placed under tank/sink/alice"),
            "{err}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn every_accepted_path_is_below_the_clients_root(
            p in "[a-z./@#%_ -]{0,12}(/[a-z./@#%_ -]{0,12}){0,4}",
            who in "[a-z]{1,6}",
        ) {
            let ident = id(&who);
            if let Ok(d) = confine(&root(), Some(&ident), &p) {
                let base = root().child(&who).unwrap();
                prop_assert!(d.has_prefix(&base) && d != base);
                prop_assert_eq!(d.strip_prefix(&base).unwrap().join("/"), p);
            }
        }
    }
}
