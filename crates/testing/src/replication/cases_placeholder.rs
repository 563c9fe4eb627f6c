//! Parents and placeholders: a failed parent stops its children's initial
//! replication (not its siblings'), placeholders under an encrypted receiver
//! root follow `recv.placeholder.encryption`, and placeholders are not
//! replicated as filesystems in a chain of replications.

use zrelay_endpoint::PlaceholderEncryption;

use super::*;
use crate::check;
use crate::faults::{FaultySender, SenderFaults};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "ReplicationFailingInitialParentProhibitsChildReplication",
            failing_parent_prohibits_child
        ),
        case!(
            "ReplicationPlaceholderEncryption__EncryptOnReceiverUseCase__WorksIfConfiguredWithInherit",
            placeholder_encryption_inherit
        ),
        case!(
            "ReplicationPlaceholderEncryption__UnspecifiedIsOkForClientIdentityPlaceholder",
            placeholder_encryption_unspecified_client_identity
        ),
        case!(
            "ReplicationPlaceholderEncryption__UnspecifiedLeadsToFailureAtRuntimeWhenCreatingPlaceholders",
            placeholder_encryption_unspecified_fails
        ),
        case!(
            "ReplicationOfPlaceholderFilesystemsInChainedReplicationScenario",
            chained_placeholders
        ),
    ]
}

/// `fs`'s ancestors strictly between `root` and `fs`, top down.
fn between(root: &DatasetPath, fs: &DatasetPath) -> Vec<DatasetPath> {
    let mut v = Vec::new();
    let mut p = fs.parent();
    while let Some(x) = p {
        if &x == root || !x.has_prefix(root) {
            break;
        }
        p = x.parent();
        v.push(x);
    }
    v.reverse();
    v
}

/// `encryption` and `encryptionroot` of `fs`.
async fn encryption(fx: &dyn Fixture, fs: &DatasetPath) -> Result<(String, String), String> {
    let p = fx
        .zfs()
        .get(fs.as_str(), &["encryption", "encryptionroot"])
        .await
        .ctx(&format!("get encryption of {fs}"))?;
    let v = |k: &str| p.get(k).map(|v| v.value.clone()).unwrap_or_default();
    Ok((v("encryption"), v("encryptionroot")))
}

async fn failing_parent_prohibits_child(fx: &dyn Fixture) -> Outcome {
    let setup = Setup::new(fx).await?;
    let (a, child, aa) = (setup.s("a"), setup.s("a/child"), setup.s("aa"));
    for fs in [&a, &child, &aa] {
        create(fx, fs).await?;
        snap(fx, fs, "1", 4096).await?;
    }
    let mut run = Run::default();
    let fail = a.clone();
    run.wrap_sender = Some(Arc::new(move |s| {
        Arc::new(FaultySender::new(
            s,
            SenderFaults {
                fail_send: Some((fail.clone(), 99, false)),
                ..SenderFaults::default()
            },
        )) as Arc<dyn Sender>
    }));
    let r = replicate(fx, &setup, &run).await;
    check!(!r.succeeded(), "the parent's failure must fail the run");
    let err = fs_error(&r, &a)?;
    check!(err.contains("injected fault"), "{a}: {err}");
    let err = fs_error(&r, &child)?;
    check!(
        fs_report(&r, &child)?.state == zrelay_replication::FsState::Failed
            && err.contains("parent"),
        "{child} must fail because of its parent: {err}"
    );
    check!(
        !exists(fx, setup.r(&child).as_str()).await?,
        "{child} must not be received"
    );
    check!(
        !exists(fx, setup.r(&a).as_str()).await?,
        "{a} must not be received"
    );
    // `aa` has `a` as a string prefix but is no child of it.
    check!(
        fs_report(&r, &aa)?.state == zrelay_replication::FsState::Done,
        "{aa}: {:?}",
        fs_report(&r, &aa)?
    );
    check!(
        guid(fx, &aa, "1").await? == guid(fx, &setup.r(&aa), "1").await?,
        "{aa}@1 not replicated"
    );
    expect_no_step_holds(fx, fx.root()).await
}

/// An encrypted receiver root, a plain sender filesystem and placeholders
/// created with `inherit`: everything received is encrypted on receive.
async fn placeholder_encryption_inherit(fx: &dyn Fixture) -> Outcome {
    let setup = Setup::new(fx).await?;
    let enc = fx.root().child("receiver_enc").ctx("name")?;
    fx.create_encrypted(&enc).await?;
    let a = setup.s("a");
    create(fx, &a).await?;
    snap(fx, &a, "1", 16 * 1024).await?;
    check!(
        encryption(fx, &a).await?.0 == "off",
        "the sender must be unencrypted"
    );
    let mut run = Run {
        to: Some(enc.clone()),
        ..Run::default()
    };
    run.recv.placeholder_encryption = PlaceholderEncryption::Inherit;
    expect_success(&replicate(fx, &setup, &run).await)?;
    let ra = enc.join(a.components()).ctx("name")?;
    check!(
        guid(fx, &ra, "1").await? == guid(fx, &a, "1").await?,
        "guid of @1 differs"
    );
    let placeholders = between(&enc, &ra);
    check!(
        !placeholders.is_empty(),
        "no placeholder between {enc} and {ra}"
    );
    for p in &placeholders {
        check!(is_placeholder(fx, p).await?, "{p} must be a placeholder");
    }
    for fs in placeholders.iter().chain([&ra]) {
        let (e, root) = encryption(fx, fs).await?;
        check!(
            e != "off" && !e.is_empty() && root == enc.as_str(),
            "{fs} must be encrypted under {enc}: encryption={e} encryptionroot={root}"
        );
    }
    expect_no_step_holds(fx, fx.root()).await
}

/// A sink's receiver for a client under an encrypted root: the
/// client-identity placeholder is created even with `unspecified` (a deeper
/// placeholder is not).
async fn placeholder_encryption_unspecified_client_identity(fx: &dyn Fixture) -> Outcome {
    let setup = Setup::new(fx).await?;
    let sink = fx.root().child("sink_enc").ctx("name")?;
    fx.create_encrypted(&sink).await?;
    let a = setup.s("a");
    create(fx, &a).await?;
    snap(fx, &a, "1", 16 * 1024).await?;
    let run = Run::default();
    check!(
        run.recv.placeholder_encryption == PlaceholderEncryption::Unspecified,
        "the default must be unspecified"
    );
    let receiver =
        LocalReceiver::for_client(fx.zfs(), job(), sink.clone(), "client1", run.recv.clone())
            .ctx("client receiver")?;
    let sender = local_sender(fx, job(), &setup.src, &run.send);
    let r = replicate_with(fx, &run.cfg, sender, Arc::new(receiver), &run.cancel).await;
    // The client-identity placeholder exists, and is a placeholder ...
    let client = sink.child("client1").ctx("name")?;
    check!(
        exists(fx, client.as_str()).await?,
        "the client-identity placeholder {client} must be created with `unspecified`: {r:?}"
    );
    check!(
        is_placeholder(fx, &client).await?,
        "{client} must be a placeholder"
    );
    // ... and the only failure is the next level, which `unspecified` refuses
    // under an encrypted parent.
    let deeper = client.join(a.components().take(1)).ctx("name")?;
    let err = fs_error(&r, &a)?;
    check!(
        err.contains("recv.placeholder.encryption") && err.contains(deeper.as_str()),
        "the failure must be about the placeholder {deeper}: {err}"
    );
    check!(
        !err.contains(&format!("{client}\"")),
        "the client-identity level must not fail: {err}"
    );
    check!(
        !exists(fx, deeper.as_str()).await?,
        "{deeper} must not exist"
    );
    expect_no_step_holds(fx, fx.root()).await
}

/// An encrypted receiver root and `unspecified`: creating the first
/// placeholder fails at runtime, naming the setting, and nothing is received.
async fn placeholder_encryption_unspecified_fails(fx: &dyn Fixture) -> Outcome {
    let setup = Setup::new(fx).await?;
    let enc = fx.root().child("receiver_enc").ctx("name")?;
    fx.create_encrypted(&enc).await?;
    let a = setup.s("a");
    create(fx, &a).await?;
    snap(fx, &a, "1", 16 * 1024).await?;
    let run = Run {
        to: Some(enc.clone()),
        ..Run::default()
    };
    let r = replicate(fx, &setup, &run).await;
    check!(!r.succeeded(), "the run must fail: {r:?}");
    let first = enc.join(a.components().take(1)).ctx("name")?;
    let err = fs_error(&r, &a)?;
    check!(
        err.contains("placeholder")
            && err.contains(first.as_str())
            && err.contains("recv.placeholder.encryption"),
        "the error must name the placeholder {first} and the setting: {err}"
    );
    let listed = fx.zfs().list(&enc).await.ctx("list receiver root")?;
    let paths: Vec<String> = listed.iter().map(|d| d.path.to_string()).collect();
    check!(
        paths == [enc.to_string()] && listed[0].versions.is_empty(),
        "nothing may be created or received under {enc}: {paths:?}"
    );
    expect_no_step_holds(fx, fx.root()).await
}

/// One hop of the chain: replicate the subtree `from` into `to` as job `job`.
async fn hop(fx: &dyn Fixture, job: &str, from: &DatasetPath, to: &DatasetPath) -> Outcome {
    let j = JobId::new(job).ctx("job id")?;
    let run = Run::default();
    let s = local_sender(fx, j.clone(), from, &run.send);
    let r = local_receiver(fx, j, to, &run.recv);
    let rep = replicate_with(fx, &run.cfg, s, r, &run.cancel).await;
    expect_success(&rep).map_err(|e| format!("{from} => {to}: {e}"))
}

/// host1 → host2 → host3: the placeholders host2 created are not replicated
/// to host3 as filesystems; host3 creates its own, and the real filesystem
/// arrives with host1's snapshots.
async fn chained_placeholders(fx: &dyn Fixture) -> Outcome {
    let h: Vec<DatasetPath> = ["h1", "h2", "h3"]
        .iter()
        .map(|n| fx.root().child(n).ctx("name"))
        .collect::<Result<_, _>>()?;
    for x in &h {
        create(fx, x).await?;
    }
    let a = h[0].child("a").ctx("name")?;
    let b = a.child("b").ctx("name")?;
    create(fx, &a).await?;
    create(fx, &b).await?;
    snap(fx, &b, "1", 8 * 1024).await?;
    // Where host2 and host3 keep host1's `a` and `a/b`.
    let b2 = h[1].join(b.components()).ctx("name")?;
    let b3 = h[2].join(b2.components()).ctx("name")?;
    let (a2, a3) = (
        b2.parent().ok_or("no parent")?,
        b3.parent().ok_or("no parent")?,
    );

    for round in ["1", "2"] {
        if round == "2" {
            snap(fx, &b, "2", 8 * 1024).await?;
        }
        hop(fx, "host1-to-host2", &h[0], &h[1]).await?;
        hop(fx, "host2-to-host3", &h[1], &h[2]).await?;
        let want: Vec<&str> = if round == "1" {
            vec!["1"]
        } else {
            vec!["1", "2"]
        };
        for fs in [&b2, &b3] {
            let got = snapshot_names(fx, fs).await?;
            check!(got == want, "round {round}: {fs} has {got:?}");
        }
    }
    for n in ["1", "2"] {
        let g = guid(fx, &b, n).await?;
        check!(
            guid(fx, &b2, n).await? == g && guid(fx, &b3, n).await? == g,
            "@{n} must have host1's guid on host2 and host3"
        );
    }
    // Every level above `b` on host2 and host3 is a placeholder, without snapshots.
    let levels: Vec<DatasetPath> = between(&h[1], &b2)
        .into_iter()
        .chain(between(&h[2], &b3))
        .collect();
    check!(levels.contains(&a2) && levels.contains(&a3), "{levels:?}");
    for p in &levels {
        check!(is_placeholder(fx, p).await?, "{p} must be a placeholder");
        check!(
            snapshot_names(fx, p).await?.is_empty(),
            "placeholder {p} must have no snapshots"
        );
    }
    for fs in [&b2, &b3] {
        check!(
            !is_placeholder(fx, fs).await?,
            "{fs} must not be a placeholder"
        );
    }
    expect_no_step_holds(fx, fx.root()).await
}
