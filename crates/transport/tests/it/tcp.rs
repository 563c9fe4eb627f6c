//! tcp: round trip, identities from `serve.clients`, refusals.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use zrelay_transport::tcp::TcpListener;
use zrelay_transport::{
    connector, listen, ClientMapping, ConnectOptions, Listener, ServeOptions, TransportError,
};
use zrelay_zfs::Classify;

use crate::common::{round_trip, Logs};

fn map(p: &str, id: &str) -> ClientMapping {
    ClientMapping {
        pattern: p.into(),
        identity: id.into(),
    }
}

fn dial_opts(addr: std::net::SocketAddr) -> ConnectOptions {
    ConnectOptions::Tcp {
        address: addr.to_string(),
        dial_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn tcp_round_trip_with_exact_ip_identity() {
    let mut l = TcpListener::bind("127.0.0.1:0", false, &[map("127.0.0.1", "loopback")])
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    let c = connector(&dial_opts(addr)).unwrap();
    assert_eq!(c.describe(), format!("tcp {addr}"));
    let (client, accepted) = tokio::join!(c.connect(), l.accept());
    let (mut client, a) = (client.unwrap(), accepted.unwrap());
    assert_eq!(a.identity.as_str(), "loopback");
    assert!(a.peer.starts_with("127.0.0.1:"), "{}", a.peer);
    let mut server = a.conn;
    round_trip(&mut client, &mut server).await;
}

#[tokio::test]
async fn tcp_cidr_identity_expands_to_client_ip() {
    let clients = [map("127.0.0.0/8", "net-*"), map("127.0.0.9", "nine")];
    let mut l = TcpListener::bind("127.0.0.1:0", false, &clients)
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    let c = connector(&dial_opts(addr)).unwrap();
    let (client, a) = tokio::join!(c.connect(), l.accept());
    let _client = client.unwrap();
    assert_eq!(a.unwrap().identity.as_str(), "net-127.0.0.1");
    // The exact IP wins over the CIDR.
    let (client, a) = tokio::join!(connect_from("127.0.0.9", addr), l.accept());
    let _client = client;
    assert_eq!(a.unwrap().identity.as_str(), "nine");
}

async fn connect_from(src: &str, to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{src}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

#[tokio::test]
async fn tcp_unmapped_ip_is_refused_logged_and_accept_goes_on() {
    let (logs, _g) = Logs::capture();
    let mut l: Box<dyn Listener> = listen(&ServeOptions::Tcp {
        listen: "127.0.0.1:0".into(),
        listen_freebind: false,
        clients: vec![map("127.0.0.2", "good")],
    })
    .await
    .unwrap();
    let addr: std::net::SocketAddr = l.describe().trim_start_matches("tcp ").parse().unwrap();
    let mut bad = connect_from("127.0.0.1", addr).await;
    let good = connect_from("127.0.0.2", addr).await;
    let a = tokio::time::timeout(Duration::from_secs(5), l.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.identity.as_str(), "good");
    let line = logs.wait_for(&["127.0.0.1:", "not in serve.clients"]).await;
    assert!(line.contains("refused"), "{line}");
    // The refused connection was closed by the server.
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), bad.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    drop(good);
}

#[tokio::test]
async fn tcp_config_errors_name_the_key_and_value() {
    let cases = [
        (vec![map("10.0.0.0/24", "client")], "must contain '*'"),
        (vec![map("10.0.0.1", "client-*")], "cannot contain '*'"),
        (vec![map("10.0.0.1", "bad/id")], "invalid client identity"),
        (vec![map("not-an-ip", "x")], "not an IP address or CIDR"),
    ];
    for (clients, want) in cases {
        let err = listen(&ServeOptions::Tcp {
            listen: "127.0.0.1:0".into(),
            listen_freebind: false,
            clients: clients.clone(),
        })
        .await
        .err()
        .expect("must be refused");
        let s = err.to_string();
        assert!(matches!(err, TransportError::Config(_)), "{s}");
        assert!(s.contains(want) && s.contains(&clients[0].pattern), "{s}");
    }
    for bad in ["127.0.0.1", "127.0.0.1:http", "::1:80"] {
        let err = listen(&ServeOptions::Tcp {
            listen: bad.into(),
            listen_freebind: false,
            clients: vec![],
        })
        .await
        .err()
        .expect("must be refused");
        assert!(err.to_string().contains("serve.listen"), "{err}");
        let err = connector(&ConnectOptions::Tcp {
            address: bad.into(),
            dial_timeout: Duration::from_secs(1),
        })
        .err()
        .expect("must be refused");
        assert!(err.to_string().contains("connect.address"), "{err}");
    }
}

#[tokio::test]
async fn tcp_connect_to_closed_port_is_a_temporary_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let c = connector(&dial_opts(port)).unwrap();
    let err = c.connect().await.err().expect("nobody listens");
    assert!(err.is_temporary(), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[tokio::test]
async fn tcp_listen_port_only_means_all_addresses() {
    let l = TcpListener::bind(":0", false, &[]).await.unwrap();
    assert!(l.local_addr().unwrap().ip().is_unspecified());
}

#[tokio::test]
async fn tcp_listen_freebind_binds_a_non_local_address() {
    // TEST-NET-1: not configured here; only bound, never sent to.
    let plain = TcpListener::bind("192.0.2.1:0", false, &[]).await;
    assert!(
        plain.is_err(),
        "binding a non-local address needs IP_FREEBIND"
    );
    let free = TcpListener::bind("192.0.2.1:0", true, &[]).await.unwrap();
    assert_eq!(free.local_addr().unwrap().ip().to_string(), "192.0.2.1");
}
