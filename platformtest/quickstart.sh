#!/usr/bin/env bash
# The quickstart job, run where ZFS is (the VM rig or a ZFS host), as root:
# two file-backed pools, a source filesystem with data and snapshots, and a
# replication of it into the second pool with live progress, first full and
# then incremental. $1 is the directory holding the zrelay binaries.
set -Eeuo pipefail
bin=$1
dir=/var/tmp/zrelay-quickstart
src=zrelay_qs_src
dst=zrelay_qs_dst

cleanup() { zpool destroy -f "$src" 2>/dev/null || true; zpool destroy -f "$dst" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
cleanup
mkdir -p "$dir"
truncate -s 256M "$dir/src.img" "$dir/dst.img"
zpool create -o cachefile=none "$src" "$dir/src.img"
zpool create -o cachefile=none "$dst" "$dir/dst.img"
echo "== pools: $src and $dst, on file vdevs in $dir"

"$bin/zrelay" version
zfs create "$src/app data"
zfs create "$src/app data/logs"
head -c 8000000 /dev/urandom >"/$src/app data/first.bin"
head -c 1000000 /dev/urandom >"/$src/app data/logs/app.log"
zfs snapshot -r "$src/app data@zrelay_1"
echo "== source: $(zfs list -H -t snapshot -o name -r "$src" | tr '\n' ' ')"

# The job: replicate the subtree under the second pool, as zrepl maps it
# (<root>/<sender path>), with the default guarantee (resumable steps).
job=(--job quickstart --from "$src/app data" --to "$dst")
echo "== zrelay replicate ${job[*]}   (full)"
"$bin/zrelay" replicate "${job[@]}"

head -c 4000000 /dev/urandom >"/$src/app data/second.bin"
zfs snapshot -r "$src/app data@zrelay_2"
echo "== zrelay replicate ${job[*]}   (incremental)"
"$bin/zrelay" replicate "${job[@]}"

echo "== receiver:"
zfs list -t all -o name,guid,used,zrepl:placeholder -r "$dst"
echo "== holds and cursor:"
zfs list -H -t snapshot -o name -r "$dst" | xargs -d '\n' zfs holds -H
zfs list -H -t bookmark -o name -r "$src"
for s in zrelay_1 zrelay_2; do
  [ "$(zfs get -H -o value guid "$src/app data@$s")" = "$(zfs get -H -o value guid "$dst/$src/app data@$s")" ] || { echo "guid mismatch at @$s"; exit 1; }
done
cmp "/$src/app data/second.bin" "$(zfs get -H -o value mountpoint "$dst/$src/app data")/second.bin" 2>/dev/null \
  || { zfs mount "$dst/$src/app data" && cmp "/$src/app data/second.bin" "$(zfs get -H -o value mountpoint "$dst/$src/app data")/second.bin"; }
echo "== GUIDs match and the data matches"
