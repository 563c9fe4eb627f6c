//! Integration tests of every transport, in one test binary.

mod common;
mod local;
mod ssh;
mod stdinserver;
mod tcp;
mod tls;
mod tls_self_signed;
