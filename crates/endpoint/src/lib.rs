//! `zrelay-endpoint`: the two ends of a replication.
//!
//! Invariants:
//! - The engine talks to endpoints only through the [`Sender`] and [`Receiver`]
//!   traits, with the plain-data messages of [`types`]; a network transport
//!   implements the same traits.
//! - Names in messages are in the sender's namespace. A receiver maps them
//!   under its root and refuses anything that would leave it.
//! - The on-ZFS abstractions use zrepl's exact names ([`abstractions`]), so a
//!   zrepl user keeps their incremental history.
//! - Every operation is idempotent and checks GUIDs; a retried call converges.
//! - Nothing is received with `zfs recv -F` except zrelay's own placeholders,
//!   or where the user opted in.

pub mod types;

pub use types::*;
pub mod abstractions;
pub mod confine;
pub mod error;
pub mod filter;
pub mod pool_features;
pub mod sender;
pub mod throttle;
pub mod traits;
mod versions;

pub use abstractions::JobId;
pub use confine::{confine, ClientIdentity, ConfineError};
pub use error::{EndpointError, Result};
pub use filter::{FsFilter, ListRoots, RulePath};
pub use sender::siblings::{SiblingRole, Siblings};
pub use sender::{LocalSender, SendOptions};
pub use throttle::{
    throttle_receiver, throttle_sender, Bucket, RateLimit, ThrottledReceiver, ThrottledSender,
    ThrottledStream,
};
pub use traits::{Receiver, Sender};
pub mod receiver;
pub use receiver::{
    pump, LocalReceiver, PlaceholderEncryption, PumpError, RecvOptions, ReplicaPolicy,
    PROTECTED_PROPERTIES,
};
