//! local: registry, round trip, identity, timeouts.

use std::time::Duration;

use zrelay_transport::{connector, listen, ConnectOptions, ServeOptions, TransportError};
use zrelay_zfs::Classify;

use crate::common::round_trip;

fn connect_opts(name: &str, id: &str, ms: u64) -> ConnectOptions {
    ConnectOptions::Local {
        listener_name: name.into(),
        client_identity: id.into(),
        dial_timeout: Duration::from_millis(ms),
    }
}

fn serve_opts(name: &str) -> ServeOptions {
    ServeOptions::Local {
        listener_name: name.into(),
    }
}

#[tokio::test]
async fn local_round_trip_carries_client_identity() {
    let mut l = listen(&serve_opts("local-rt")).await.unwrap();
    let c = connector(&connect_opts("local-rt", "laptop", 2000)).unwrap();
    let (client, a) = tokio::join!(c.connect(), l.accept());
    let (mut client, a) = (client.unwrap(), a.unwrap());
    assert_eq!(a.identity.as_str(), "laptop");
    let mut server = a.conn;
    round_trip(&mut client, &mut server).await;
}

#[tokio::test]
async fn local_connect_waits_for_a_late_listener() {
    let c = connector(&connect_opts("local-late", "late", 5000)).unwrap();
    let dial = tokio::spawn(async move { c.connect().await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut l = listen(&serve_opts("local-late")).await.unwrap();
    let a = l.accept().await.unwrap();
    assert_eq!(a.identity.as_str(), "late");
    dial.await.unwrap().unwrap();
}

#[tokio::test]
async fn local_connect_without_listener_times_out() {
    let c = connector(&connect_opts("local-nobody", "x", 200)).unwrap();
    let t0 = std::time::Instant::now();
    let err = c.connect().await.err().expect("nobody listens");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(err.is_temporary());
    assert!(err.to_string().contains("local-nobody"), "{err}");
}

#[tokio::test]
async fn local_name_registers_once_and_drop_unregisters() {
    let l = listen(&serve_opts("local-dup")).await.unwrap();
    let err = listen(&serve_opts("local-dup")).await.err().expect("taken");
    assert!(err.to_string().contains("already used"), "{err}");
    drop(l);
    let mut l = listen(&serve_opts("local-dup")).await.unwrap();
    let c = connector(&connect_opts("local-dup", "again", 1000)).unwrap();
    let (client, a) = tokio::join!(c.connect(), l.accept());
    client.unwrap();
    assert_eq!(a.unwrap().identity.as_str(), "again");
}

#[tokio::test]
async fn local_config_errors() {
    for (name, id, want) in [
        ("x", "a/b", "connect.client_identity"),
        ("x", "", "connect.client_identity"),
        ("", "ok", "connect.listener_name"),
    ] {
        let err = connector(&connect_opts(name, id, 100))
            .err()
            .expect("invalid");
        assert!(matches!(err, TransportError::Config(_)), "{err}");
        assert!(err.to_string().contains(want), "{err}");
    }
    assert!(listen(&serve_opts(" ")).await.is_err());
}
