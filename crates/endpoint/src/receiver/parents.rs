//! The chain from a receiver's root down to a receiving filesystem: what
//! exists of it, and the placeholders that create its missing parents (for a
//! full receive, and for a replica renamed under a new parent).

use std::collections::BTreeMap;

use tracing::debug;
use zrelay_zfs::{DatasetPath, PropertyValue};

use super::{encrypted, LocalReceiver, PlaceholderEncryption};
use crate::abstractions::PLACEHOLDER_PROPERTY;
use crate::error::{EndpointError, Result};

/// Held while placeholders are created (see [`LocalReceiver::create_parents`]).
static PLACEHOLDER_CREATION: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Each dataset of a chain's properties, `None` where it does not exist.
pub(super) type ChainState = Vec<Option<BTreeMap<String, PropertyValue>>>;

impl LocalReceiver {
    /// `root … target`, root first, with the placeholder, encryption and
    /// resume-token properties of each that exists, in one `zfs get`.
    /// Fails when the root is missing.
    pub(super) async fn inspect_chain(
        &self,
        target: &DatasetPath,
    ) -> Result<(Vec<DatasetPath>, ChainState)> {
        let mut chain = vec![target.clone()];
        let mut p = target.parent();
        while let Some(a) = p {
            if !a.has_prefix(&self.root) {
                break;
            }
            p = a.parent();
            chain.push(a);
        }
        chain.reverse(); // root first, target last
        let names: Vec<String> = chain.iter().map(|c| c.to_string()).collect();
        let got = self
            .zfs
            .get_many(
                &names,
                &[PLACEHOLDER_PROPERTY, "encryption", "receive_resume_token"],
            )
            .await
            .map_err(|e| EndpointError::zfs(format!("inspect {target} and its parents"), e))?;
        let mut state: ChainState = Vec::new();
        for (c, (_, r)) in chain.iter().zip(got) {
            match r {
                Ok(props) => state.push(Some(props)),
                Err(e) if e.is_does_not_exist() => state.push(None),
                Err(e) => return Err(EndpointError::zfs(format!("inspect {c}"), e)),
            }
        }
        if state[0].is_none() {
            return Err(EndpointError::RootMissing(self.root.clone()));
        }
        Ok((chain, state))
    }

    /// Create the missing datasets of `chain` (root first; the root itself
    /// exists) as placeholders, top down, as `recv.placeholder.encryption` says.
    ///
    /// Placeholders are created one process-wide creator at a time, and the
    /// chain is inspected again once it is this caller's turn. `zfs create`
    /// creates a filesystem and then mounts it: two steps creating the same
    /// chain at once (parallel steps of sibling filesystems) could create a
    /// child while its parent exists but is not mounted yet, and the
    /// parent's mount would then hide the child's (seen on OpenZFS 2.3: a
    /// placeholder that `zfs unmount` cannot find).
    pub(super) async fn create_parents(
        &self,
        chain: &[DatasetPath],
        state: &[Option<BTreeMap<String, PropertyValue>>],
    ) -> Result<()> {
        if state.iter().all(Option::is_some) {
            return Ok(());
        }
        let Some(last) = chain.last() else {
            return Ok(());
        };
        let _turn = PLACEHOLDER_CREATION.lock().await;
        let (chain, state) = self.inspect_chain(last).await?;
        // Create the missing parents (not the target itself), top down.
        let mut parent_encrypted = encrypted(state[0].as_ref().and_then(|p| p.get("encryption")));
        for (i, c) in chain.iter().enumerate().skip(1) {
            if let Some(props) = &state[i] {
                parent_encrypted = encrypted(props.get("encryption"));
                continue;
            }
            let mut props = vec![(PLACEHOLDER_PROPERTY.to_string(), "on".to_string())];
            match self.opts.placeholder_encryption {
                PlaceholderEncryption::Unspecified if parent_encrypted => {
                    return Err(EndpointError::Placeholder {
                        fs: c.clone(),
                        reason: "its parent is encrypted and recv.placeholder.encryption is unspecified; set it to `inherit` (encrypt on receive) or `off` (untrusted receiver of raw sends)".into(),
                    });
                }
                PlaceholderEncryption::Unspecified => {}
                PlaceholderEncryption::Off => {
                    props.push(("encryption".into(), "off".into()));
                    parent_encrypted = false;
                }
                PlaceholderEncryption::Inherit => {}
            }
            debug!(fs = %c, "creating placeholder");
            if let Err(e) = self.zfs.create(c, &props).await {
                // A concurrent step may have created it a moment ago.
                if self.zfs.guid(c.as_str()).await.is_err() {
                    return Err(EndpointError::Placeholder {
                        fs: c.clone(),
                        reason: e.to_string(),
                    });
                }
                debug!(fs = %c, "placeholder appeared concurrently");
            }
        }
        Ok(())
    }

    /// Create the missing parents of `target` as placeholders.
    pub(super) async fn ensure_parents(&self, target: &DatasetPath) -> Result<()> {
        let (chain, state) = self.inspect_chain(target).await?;
        let n = chain.len() - 1;
        self.create_parents(&chain[..n], &state[..n]).await
    }
}
