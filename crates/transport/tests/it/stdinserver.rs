//! ssh+stdinserver, passive side: the listener and the forced command's
//! proxy in-process (tokio duplex pipes stand in for stdin/stdout).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zrelay_transport::{listen, stdinserver_proxy, ServeOptions, TransportError, BANNER};

fn serve(sockdir: &Path, ids: &[&str]) -> ServeOptions {
    ServeOptions::Stdinserver {
        client_identities: ids.iter().map(|s| s.to_string()).collect(),
        sockdir: sockdir.to_path_buf(),
    }
}

#[tokio::test]
async fn stdinserver_proxy_round_trip_with_half_close() {
    let tmp = tempfile::tempdir().unwrap();
    let sockdir = tmp.path().join("run/stdinserver");
    let mut l = listen(&serve(&sockdir, &["alice", "bob"])).await.unwrap();
    // Created, with mode 0700.
    let md = std::fs::metadata(&sockdir).unwrap();
    assert_eq!(md.mode() & 0o777, 0o700);
    assert!(l.describe().contains("alice") && l.describe().contains("bob"));

    // What sshd would wire to the forced command's stdin and stdout.
    let (mut ssh_in, proxy_in) = tokio::io::duplex(64 * 1024);
    let (proxy_out, mut ssh_out) = tokio::io::duplex(64 * 1024);
    let dir = sockdir.clone();
    let proxy =
        tokio::spawn(async move { stdinserver_proxy(&dir, "bob", proxy_in, proxy_out).await });

    let a = tokio::time::timeout(Duration::from_secs(5), l.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.identity.as_str(), "bob");
    assert!(a.peer.contains("bob"), "{}", a.peer);
    let mut server = a.conn;

    let mut banner = vec![0u8; BANNER.len()];
    ssh_out.read_exact(&mut banner).await.unwrap();
    assert_eq!(banner, BANNER.as_bytes());

    ssh_in.write_all(b"request").await.unwrap();
    let mut buf = [0u8; 7];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"request");
    // The client's end of input reaches the daemon as EOF ...
    ssh_in.shutdown().await.unwrap();
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    // ... while the daemon can still answer; its close ends the proxy.
    server.write_all(b"response").await.unwrap();
    drop(server);
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), ssh_out.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, b"response");
    proxy.await.unwrap().unwrap();

    // Dropping the listener removes its sockets.
    drop(l);
    assert!(!sockdir.join("alice").exists());
    assert!(!sockdir.join("bob").exists());
}

#[tokio::test]
async fn stdinserver_proxy_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (_a, input) = tokio::io::duplex(16);
    let (output, _b) = tokio::io::duplex(16);
    let err = stdinserver_proxy(tmp.path(), "carol", input, output)
        .await
        .expect_err("no daemon");
    let s = err.to_string();
    assert!(
        s.contains("cannot reach the zrelay daemon's stdinserver socket"),
        "{s}"
    );
    assert!(
        s.contains(&tmp.path().join("carol").display().to_string()),
        "{s}"
    );
    assert!(
        s.contains("is a job serving client identity \"carol\" running?"),
        "{s}"
    );

    let (_a, input) = tokio::io::duplex(16);
    let (output, _b) = tokio::io::duplex(16);
    let err = stdinserver_proxy(tmp.path(), "../etc", input, output)
        .await
        .expect_err("invalid identity");
    assert!(matches!(err, TransportError::Config(_)), "{err}");
}

#[tokio::test]
async fn stdinserver_refuses_unsafe_sockdir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("open");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = listen(&serve(&dir, &["a"])).await.err().expect("0755");
    let s = err.to_string();
    assert!(matches!(err, TransportError::Config(_)), "{s}");
    assert!(
        s.contains("0755") && s.contains(&dir.display().to_string()),
        "{s}"
    );

    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    let err = listen(&serve(&file, &["a"])).await.err().expect("a file");
    assert!(err.to_string().contains("not a directory"), "{err}");

    // Owned by someone else (only testable as root, who may chown).
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
    if std::os::unix::fs::chown(&theirs, Some(54321), None).is_ok() {
        let err = listen(&serve(&theirs, &["a"]))
            .await
            .err()
            .expect("not ours");
        assert!(err.to_string().contains("owned by uid 54321"), "{err}");
    }
}

#[tokio::test]
async fn stdinserver_stale_and_live_sockets() {
    let tmp = tempfile::tempdir().unwrap();
    let sockdir = tmp.path().join("s");
    std::fs::create_dir(&sockdir).unwrap();
    std::fs::set_permissions(&sockdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A stale socket (its listener is gone) is replaced.
    drop(std::os::unix::net::UnixListener::bind(sockdir.join("a")).unwrap());
    let l = listen(&serve(&sockdir, &["a"])).await.unwrap();
    // A live one is not stolen.
    let err = listen(&serve(&sockdir, &["a"]))
        .await
        .err()
        .expect("in use");
    assert!(err.to_string().contains("in use"), "{err}");
    drop(l);
    // A non-socket file is not removed.
    std::fs::write(sockdir.join("b"), "data").unwrap();
    let err = listen(&serve(&sockdir, &["b"]))
        .await
        .err()
        .expect("not a socket");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert!(sockdir.join("b").exists());
}

#[tokio::test]
async fn stdinserver_identity_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (ids, want) in [
        (&["ok", "a/b"][..], "invalid client identity"),
        (&["ok", ""][..], "invalid client identity"),
        (&["twice", "twice"][..], "more than once"),
    ] {
        let err = listen(&serve(tmp.path(), ids))
            .await
            .err()
            .expect("invalid");
        assert!(matches!(err, TransportError::Config(_)), "{err}");
        let s = err.to_string();
        assert!(
            s.contains("serve.client_identities") && s.contains(want),
            "{s}"
        );
    }
}
