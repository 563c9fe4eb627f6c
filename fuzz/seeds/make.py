#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Seeds are valid inputs of each decoder (so the fuzzer starts past the
first checks); the fuzzer's own finds are added to the same directories by
`scripts/fuzz`. Run from the repository root: python3 fuzz/seeds/make.py
"""
import glob
import hashlib
import json
import os
import re
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def put(target, data):
    d = os.path.join(ROOT, "fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# rpc: the hello, then control frames
MAGIC = b"ZRELAYP\n"


def hello(sw=b"zrelay 0.1.0"):
    return MAGIC + struct.pack(">IH", 1, len(sw)) + sw


def frame(kind, payload):
    return struct.pack(">BI", kind, len(payload)) + payload


ver = {"kind": "snapshot", "name": "zrepl_1", "guid": 11, "createtxg": 5, "creation": 1700000000}
ver2 = dict(ver, name="zrepl_2", guid=12, createtxg=6)
prot = {"initial": "guarantee_resumability", "incremental": "guarantee_resumability"}
step = {"fs": "pool/a", "from": ver, "to": ver2, "resume_token": None, "protection": prot}
requests = [
    {"call": "ping"},
    {"call": "sender.list_filesystems"},
    {"call": "receiver.list_filesystems"},
    {"call": "sender.list_versions", "args": {"fs": "pool/a"}},
    {"call": "sender.replication_cursor", "args": {"fs": "pool/a"}},
    {"call": "sender.estimate", "args": {"steps": [step], "concurrency": 2}},
    {"call": "sender.send", "args": {"step": step}},
    {"call": "receiver.receive", "args": {"step": step}},
    {"call": "sender.abort", "args": {"fss": ["pool/a"]}},
    {"call": "sender.destroy_snapshots", "args": {"fs": "pool/a", "snapshots": ["zrepl_1"]}},
    {"call": "receiver.destroy_snapshots", "args": {"fs": "pool/a", "snapshots": ["zrepl_1"]}},
    {"call": "receiver.rename_replica", "args": {"from": "pool/a", "to": "pool/b"}},
    {"call": "receiver.destroy_replica", "args": {"fs": "pool/a"}},
]
for r in requests:
    body = frame(1, json.dumps(r).encode())
    put("rpc_frames", body)
    put("rpc_conn", hello() + body)
put("rpc_frames", frame(2, b"\0" * 64) + frame(3, b"") + frame(5, b"") + frame(4, b"gave up"))
put("rpc_frames", frame(6, json.dumps({"message": "no", "class": "temporary"}).encode()))
# zstd on the wire: stream requests asking for it, and compressed chunks (kind 7;
# the frame below is `zstd -c` of "hello " six times).
ZSTD_HELLO = b'(\xb5/\xfd\x04Xe\x00\x000hello \x01\x00\xb9K\x11+\xe1h\xe7'
for call in ["sender.send", "receiver.receive"]:
    body = frame(1, json.dumps({"call": call, "args": {"step": step, "compress": {"codec": "zstd", "level": 3}}}).encode())
    put("rpc_frames", body)
    put("rpc_conn", hello() + body)
put("rpc_frames", frame(7, ZSTD_HELLO) + frame(2, b"raw") + frame(7, ZSTD_HELLO) + frame(3, b""))
put("rpc_conn", hello())

# stream_begin: a DRR_BEGIN record, both byte orders
def begin(order, toname=b"pool/a@zrepl_2", fromguid=11, hdrtype=1):
    b = struct.pack(order + "II", 0, 0)
    b += struct.pack(order + "QQQIIQQ", 0x2F5BACBAC, hdrtype, 1700000000, 2, 4, 12, fromguid)
    b += toname.ljust(256, b"\0")
    return b.ljust(312, b"\0")


for order in "<>":
    put("stream_begin", begin(order))
    put("stream_begin", begin(order, fromguid=0))
    put("stream_begin", begin(order, hdrtype=2))

# resume tokens: the test vectors
src = open(os.path.join(ROOT, "crates/zfs/src/resume_token/vectors.rs")).read()
for tok in sorted(set(re.findall(r'"(1-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+)"', src))):
    put("resume_token", tok)

# zfs output: the first byte picks the parser (fuzz_targets/zfs_output.rs)
outputs = [
    (0, "zroot\tfilesystem\t7363614954386624542\t1\t1700000000\t-\t-\t-\toff\t-\t-\n"
        "zroot/sink\tfilesystem\t1111\t50\t1700000100\t-\t-\ton\taes-256-gcm\tzroot/sink\tavailable\n"
        "zroot/sink@zrepl_1\tsnapshot\t4444\t70\t1700000300\t2\t-\ton\taes-256-gcm\tzroot/sink\tavailable\n"
        "zroot/sink#zrepl_1\tbookmark\t4444\t70\t1700000300\t-\t-\t-\t-\t-\t-\n"),
    (1, "zroot/sink\tzrepl:placeholder\ton\tlocal\nzroot/sink/a\t-\t-\n"),
    (2, "zroot/sink\tguid\t1111\t-\nzroot/sink\tcreatetxg\t50\t-\n"),
    (3, "zroot/sink@zrepl_1\tzrepl_last_received_J_push\tThu Nov 14 22:13 2023\n"),
    (4, "incremental\tzrepl_1\tzroot/a@zrepl_2\t12345\nsize\t12345\n"),
    (4, "full\tzroot/a@zrepl_1\t624\nsize\t624\n"),
    (5, "return\t{\"a\": \"ok\"}\n"),
    (6, "cannot destroy snapshot pool/fs@a: dataset is busy\n"),
    (7, "size\t268435456\nfeature@bookmarks\tdisabled\nfeature@encryption\tactive\nfeature@async_destroy\tenabled\n"),
    (8, "cannot receive incremental stream: destination pool/a has been modified\n"),
    (8, "cannot receive: failed to read from stream\nreceive_resume_token = 1-abc-10-789c\n"),
]
for which, text in outputs:
    put("zfs_output", bytes([which]) + text.encode())

# config: the valid samples and zrepl's own
for p in sorted(glob.glob(os.path.join(ROOT, "samples", "**", "*.yml"), recursive=True)):
    data = open(p, "rb").read()
    if len(data) <= 16384:
        put("config", data)
