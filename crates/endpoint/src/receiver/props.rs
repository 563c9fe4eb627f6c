//! The property arguments of a receive: the user's `recv.properties`
//! (`-o prop=value`, `-x prop`) and the sink's protection against the
//! sender's values of the properties that decide where and how a received
//! filesystem is mounted or shared.
//!
//! Invariants of [`RecvOptions::recv_props`]:
//! - the user's overrides and inherits come first, unchanged and in order;
//! - every [`PROTECTED_PROPERTIES`] entry that the user neither overrides,
//!   inherits nor allows (`allow_from_sender`) is added as `-x`, once;
//! - `-x` has no effect when `zfs recv -F` replaces an existing filesystem
//!   (a placeholder) whose value is inherited (seen on OpenZFS 2.3.2: libzfs
//!   skips the exclusion for any non-received source), so after such a
//!   receive the receiver runs `zfs inherit` for
//!   [`RecvOptions::protected_excludes`];
//! - no property is both `-o` and `-x` (`zfs recv` refuses that: "property
//!   specified multiple times"), given the user's lists are disjoint, which
//!   configuration validation ensures.
//!
//! `-x prop` keeps the stream's value out of the received property set, so
//! the effective value is inherited from the receiving side's parent (for
//! `mountpoint`: a path under the sink's own root). It has no effect when the
//! stream carries no properties or the target has a local value, and is a
//! warning (older OpenZFS: an error) for a volume, so
//! the protection is added only for streams that may carry a filesystem's
//! properties ([`super::StreamKind`]). It is accepted for raw (encrypted)
//! streams, where only the encryption properties cannot be excluded.

use super::RecvOptions;

/// The properties whose sender's value is not received unless allowed:
/// where the filesystem mounts, whether set-uid files, executables and
/// device nodes on it work, and whether it is exported over NFS or SMB.
///
/// `canmount` is not among them: it only chooses between mounting at the
/// (sink's) mountpoint or not, and `-x canmount` would reset a sender's
/// `off`/`noauto` to the default `on` (it is not inheritable), which mounts
/// more. Receives are always unmounted (`zfs recv -u`).
pub const PROTECTED_PROPERTIES: [&str; 6] = [
    "mountpoint",
    "setuid",
    "exec",
    "devices",
    "sharenfs",
    "sharesmb",
];

impl RecvOptions {
    /// The `-o prop=value` and `-x prop` arguments of a receive; `protect`:
    /// whether the stream may carry the protected properties of a
    /// filesystem ([`super::StreamKind::protect`]: not for a stream without
    /// properties, nor for a volume, where `-x mountpoint` is refused by
    /// older OpenZFS).
    pub fn recv_props(&self, protect: bool) -> (Vec<(String, String)>, Vec<String>) {
        let overrides = self.override_props.clone();
        let mut inherits = self.inherit_props.clone();
        if !protect {
            return (overrides, inherits);
        }
        for p in self.protected_excludes() {
            if !inherits.iter().any(|k| k == p) {
                inherits.push(p.to_string());
            }
        }
        (overrides, inherits)
    }

    /// The protected properties the sender's value must not set: those the
    /// user neither overrides nor allows (the user's own `inherit` list
    /// included).
    pub fn protected_excludes(&self) -> Vec<&'static str> {
        PROTECTED_PROPERTIES
            .into_iter()
            .filter(|p| {
                !self.override_props.iter().any(|(k, _)| k == p)
                    && !self.allow_from_sender.iter().any(|k| k == p)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(o: &[(&str, &str)], x: &[&str], allow: &[&str]) -> RecvOptions {
        RecvOptions {
            override_props: o
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            inherit_props: x.iter().map(|s| s.to_string()).collect(),
            allow_from_sender: allow.iter().map(|s| s.to_string()).collect(),
            ..RecvOptions::default()
        }
    }

    #[test]
    fn by_default_every_protected_property_is_excluded() {
        let (o, x) = RecvOptions::default().recv_props(true);
        assert!(o.is_empty());
        assert_eq!(
            x,
            [
                "mountpoint",
                "setuid",
                "exec",
                "devices",
                "sharenfs",
                "sharesmb"
            ]
        );
    }

    #[test]
    fn the_users_lists_come_first_and_are_never_doubled() {
        let r = opts(
            &[("mountpoint", "none"), ("compression", "zstd")],
            &["exec", "user:x"],
            &[],
        );
        let (o, x) = r.recv_props(true);
        assert_eq!(
            o,
            [
                ("mountpoint".to_string(), "none".to_string()),
                ("compression".to_string(), "zstd".to_string())
            ]
        );
        assert_eq!(
            x,
            ["exec", "user:x", "setuid", "devices", "sharenfs", "sharesmb"]
        );
        // zfs recv refuses one property as both -o and -x.
        for (k, _) in &o {
            assert!(!x.contains(k), "{k} is both -o and -x");
        }
    }

    #[test]
    fn allowed_properties_are_left_to_the_sender() {
        let (o, x) = opts(&[], &[], &["setuid", "exec", "mountpoint"]).recv_props(true);
        assert!(o.is_empty());
        assert_eq!(x, ["devices", "sharenfs", "sharesmb"]);
        let all: Vec<&str> = PROTECTED_PROPERTIES.to_vec();
        let (_, x) = opts(&[], &[], &all).recv_props(true);
        assert!(x.is_empty(), "{x:?}");
    }

    #[test]
    fn volumes_and_streams_without_properties_get_only_the_users_lists() {
        let r = opts(&[("compression", "zstd")], &["user:x"], &[]);
        let (o, x) = r.recv_props(false);
        assert_eq!(o, [("compression".to_string(), "zstd".to_string())]);
        assert_eq!(x, ["user:x"]);
    }
}
