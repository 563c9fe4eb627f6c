//! The whole replication suite (`zrelay_testing::replication`) against the
//! in-memory fake, with every sender and receiver behind RPC: over duplex
//! pipes and over loopback TCP. And a receive through RPC whose stream is
//! cut mid-way: the fake keeps a resumable state, the client's error carries
//! its token, and a resumed step through RPC completes the receive.

mod common;

use std::time::Duration;

use std::sync::Arc;

use common::{Net, RpcFixture, TestConnector};
use zrelay_endpoint::{Receiver, Sender, StepReq};
use zrelay_rpc::{Endpoints, RemoteReceiver, RemoteSender, RpcConfig};
use zrelay_testing::faults::{FaultySender, SenderFaults};
use zrelay_testing::replication::{self, Run, Setup};
use zrelay_zfs::{Classify, ErrorClass};

async fn run_suite(net: Net) {
    let filter = std::env::var("SUITE_FILTER").unwrap_or_default();
    let cfg = RpcConfig {
        heartbeat_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(10),
        // small chunks: many frames per stream
        data_chunk: 64 << 10,
        ..RpcConfig::default()
    };
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut connects = 0;
    for case in replication::all()
        .iter()
        .filter(|c| c.name.contains(&filter))
    {
        ran += 1;
        let fx = RpcFixture::new(net, cfg.clone()).await;
        if let Err(e) = (case.run)(&fx).await {
            failures.push(format!("{}: {e}", case.name));
        }
        let n = fx.count();
        // This case drives a local sender directly, without replicating.
        if n == 0 && case.name != "CreateReplicationCursor" {
            failures.push(format!("{}: no RPC connection was made", case.name));
        }
        connects += n;
    }
    eprintln!("{ran} cases over {net:?}: {connects} connections");
    assert!(ran > 0, "no case matched {filter:?}");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed over {net:?}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_suite_passes_through_rpc_over_duplex() {
    run_suite(Net::Duplex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_suite_passes_through_rpc_over_tcp() {
    run_suite(Net::Tcp).await;
}

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_receive_keeps_its_resume_token_across_rpc() {
    let cfg = RpcConfig::default();
    let fx = RpcFixture::new(Net::Tcp, cfg.clone()).await;
    let setup = Setup::new(&fx).await.unwrap();
    let a = setup.s("a");
    let ra = setup.r(&a);
    replication::create(&fx, &a).await.unwrap();
    replication::snap(&fx, &a, "1", 2 * MIB).await.unwrap();
    let run = Run::default();
    let (local_sender, local_receiver) = run.endpoints(&fx, &setup);
    let local_sender: Arc<dyn Sender> = local_sender;

    let source = Endpoints {
        sender: Some(Arc::new(FaultySender::new(
            local_sender.clone(),
            SenderFaults {
                cut_after: Some(512 * 1024),
                ..SenderFaults::default()
            },
        ))),
        receiver: None,
    };
    let sink = Endpoints {
        sender: None,
        receiver: Some(local_receiver),
    };
    let sender = RemoteSender::new(
        TestConnector::new(Net::Tcp, source, cfg.clone(), fx.cancel.clone()),
        cfg.clone(),
    );
    let receiver = RemoteReceiver::new(
        TestConnector::new(Net::Tcp, sink, cfg.clone(), fx.cancel.clone()),
        cfg.clone(),
    );

    let listing = sender.list_filesystems().await.unwrap();
    let to = listing
        .iter()
        .find(|l| l.path == a)
        .and_then(|l| l.versions.iter().find(|v| v.name == "1"))
        .cloned()
        .expect("a@1 listed");
    let step = StepReq {
        fs: a.clone(),
        from: None,
        to,
        resume_token: None,
        protection: run.cfg.protection,
    };

    // Remote send (cut on the server after 512 KiB) into a remote receive.
    let stream = sender.send(&step).await.unwrap();
    let err = receiver.receive(&step, stream).await.unwrap_err();
    let on_disk = replication::resume_token(&fx, &ra).await.unwrap();
    assert!(on_disk.is_some(), "the fake kept no partial receive: {err}");
    assert_eq!(err.resume_token(), on_disk.as_deref(), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Temporary, "{err}");
    assert!(err.to_string().contains("cut after"), "{err}");

    // The receiver lists the partial state; the resumed step completes it.
    let listed = receiver.list_filesystems().await.unwrap();
    let resume = listed
        .iter()
        .find(|l| l.path == a)
        .and_then(|l| l.resume.clone())
        .expect("the remote receiver lists the partial receive");
    assert_eq!(Some(resume.token.clone()), on_disk);
    let resumed = StepReq {
        resume_token: Some(resume.token),
        ..step
    };
    let stream = sender.send(&resumed).await.unwrap();
    receiver.receive(&resumed, stream).await.unwrap();
    assert_eq!(
        replication::guid(&fx, &a, "1").await.unwrap(),
        replication::guid(&fx, &ra, "1").await.unwrap()
    );
    assert!(replication::resume_token(&fx, &ra).await.unwrap().is_none());
}
