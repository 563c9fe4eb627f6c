#!/usr/bin/env bash
# The quickstart job, run where ZFS is (the VM rig or a ZFS host), as root:
# two file-backed pools, a sink daemon and a push daemon on loopback (tcp),
# and one replication shown live, first full and then incremental.
# $1 is the directory holding the zrelay binaries.
set -Eeuo pipefail
bin=$1
dir=/var/tmp/zrelay-quickstart
src=zrelay_qs_src
dst=zrelay_qs_dst
port=${ZRELAY_QS_PORT:-8888}
zrelay() { "$bin/zrelay" "$@"; }

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    zpool destroy -f "$src" 2>/dev/null || true
    zpool destroy -f "$dst" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
cleanup
mkdir -p "$dir" && chmod 0700 "$dir"
truncate -s 256M "$dir/src.img" "$dir/dst.img"
zpool create -o cachefile=none "$src" "$dir/src.img"
zpool create -o cachefile=none "$dst" "$dir/dst.img"
echo "== pools: $src and $dst, on file vdevs in $dir"
zrelay version

zfs create "$src/app data"
zfs create "$src/app data/logs"
zfs create "$dst/sink"
head -c 16000000 /dev/urandom >"/$src/app data/first.bin"
head -c 1000000 /dev/urandom >"/$src/app data/logs/app.log"
zfs snapshot -r "$src/app data@zrelay_1"
echo "== source: $(zfs list -H -t snapshot -o name -r "$src" | tr '\n' ' ')"

# Two daemons, each with its own zrepl-format config and control socket: a
# sink that receives client "quickstart" under $dst/sink/quickstart, and a
# push job that sends "$src/app data" and its children to it.
cat >"$dir/sink.yml" <<EOF
global:
  control:
    sockpath: $dir/sink.sock
  history:
    path: $dir/sink-history.sqlite
jobs:
  - name: sink
    type: sink
    root_fs: "$dst/sink"
    serve:
      type: tcp
      listen: "127.0.0.1:$port"
      clients:
        "127.0.0.1": "quickstart"
EOF
cat >"$dir/push.yml" <<EOF
global:
  control:
    sockpath: $dir/push.sock
  history:
    path: $dir/push-history.sqlite
  monitoring:
    - type: prometheus
      listen: "127.0.0.1:9811"
jobs:
  - name: push
    type: push
    connect:
      type: tcp
      address: "127.0.0.1:$port"
    filesystems:
      "$src/app data<": true
    snapshotting:
      type: manual
    pruning:
      keep_sender:
        - type: not_replicated
        - type: last_n
          count: 10
      keep_receiver:
        - type: last_n
          count: 10
EOF
echo "== configs: $dir/sink.yml and $dir/push.yml"
for d in sink push; do
    ZRELAY_LOG=info zrelay daemon --config "$dir/$d.yml" >"$dir/$d.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [[ -S $dir/$d.sock ]] && break; sleep 0.1; done
    [[ -S $dir/$d.sock ]] || { cat "$dir/$d.log"; echo "the $d daemon did not start"; exit 1; }
    echo "== $d daemon running (pid $!, log $dir/$d.log)"
done

# Replicate now, and show the push job's status live while it runs.
replicate() {
    zrelay signal wakeup push --wait --config "$dir/push.yml" &
    local w=$!
    while kill -0 "$w" 2>/dev/null; do
        zrelay status --job push --config "$dir/push.yml" | sed 's/^/   | /' || true
        sleep 1
    done
    wait "$w"
}
echo "== zrelay signal wakeup push --wait   (full)"
replicate
head -c 4000000 /dev/urandom >"/$src/app data/second.bin"
zfs snapshot -r "$src/app data@zrelay_2"
echo "== zrelay signal wakeup push --wait   (incremental)"
replicate

echo "== receiver:"
zfs list -t all -o name,guid,used,zrepl:placeholder -r "$dst"
echo "== holds and cursor:"
zfs list -H -t snapshot -o name -r "$dst" | xargs -d '\n' zfs holds -H
zfs list -H -t bookmark -o name -r "$src"
recv="$dst/sink/quickstart/$src/app data"
for s in zrelay_1 zrelay_2; do
    [ "$(zfs get -H -o value guid "$src/app data@$s")" = "$(zfs get -H -o value guid "$recv@$s")" ] ||
        { echo "guid mismatch at @$s"; exit 1; }
done
[ "$(zfs get -H -o value mounted "$recv")" = yes ] || zfs mount -o ro,noatime "$recv"
cmp "/$src/app data/second.bin" "$(zfs get -H -o value mountpoint "$recv")/second.bin"
echo "== GUIDs match and the data matches"
echo "== zrelay history --job push   (the durable record of every step)"
zrelay history --job push --config "$dir/push.yml"
echo "== while the daemons run, 'zrelay status --config $dir/push.yml' shows each job;"
echo "   on a terminal it is a live view; 'zrelay status --mode raw' prints JSON"
echo "   (docs/status-schema.md); metrics: http://127.0.0.1:9811/metrics"
