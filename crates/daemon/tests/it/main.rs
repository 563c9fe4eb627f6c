//! The daemon in-process: real jobs, workers and supervisor over the fake
//! ZFS and the local transport, no VM. Each test names the behaviour it
//! guards; each was checked to fail with that behaviour broken.

mod fanout;
mod hooks;
mod lifecycle;
mod pullers;
mod queue;
mod replicas;
mod rig;
mod signals;
