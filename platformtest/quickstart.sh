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
head -c 8000000 /dev/urandom >"/$src/app data/first.bin"
zfs snapshot "$src/app data@zrelay_1"
head -c 4000000 /dev/urandom >"/$src/app data/second.bin"
zfs snapshot "$src/app data@zrelay_2"
echo "== source: $(zfs list -H -t snapshot -o name -r "$src" | tr '\n' ' ')"

"$bin/zrelay-platformtest" replicate "$src/app data" "$dst/app data"

echo "== receiver:"
zfs list -t all -o name,guid,used -r "$dst"
cmp "/$src/app data/second.bin" "$(zfs get -H -o value mountpoint "$dst/app data")/second.bin" && echo "== data matches"
