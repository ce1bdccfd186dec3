#!/usr/bin/env bash
# bench/build.sh: kiln build of the curl image (closure + certificates + nss) beside buildah
# building the same files (FROM scratch + COPY of the same tree), in the same run.
# Needs root, hyperfine and buildah (apt-get install -y hyperfine buildah). Prints medians and ratios
# as a markdown table, for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
work=$(mktemp -d /tmp/kiln-bench.XXXXXX)
trap 'buildah --root "$work/buildah" --runroot "$work/buildah-run" rmi -a -f >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/kiln" ./cmd/kiln
kiln() { "$work/kiln" --root "$work/root" "$@"; }
kiln build examples/curl >/dev/null 2>&1

# The same files as a build context for buildah: the unpacked layer of the kiln image.
mkdir -p "$work/ctx/rootfs"
layer=$(kiln inspect curl | sed -n 's/.*"Digest": "sha256:\([0-9a-f]*\)".*/\1/p' | sed -n 2p)
tar -xzf "$work/root/store/blobs/sha256/$layer" -C "$work/ctx/rootfs"
printf 'FROM scratch\nCOPY rootfs/ /\nENTRYPOINT ["/usr/bin/curl"]\n' >"$work/ctx/Containerfile"
bah="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver vfs"

hyperfine --style none --runs "$RUNS" --warmup 2 --export-json "$work/times.json" \
  -n "kiln build (warm)" "$work/kiln --root $work/root build examples/curl" \
  -n "kiln build --no-cache (cold)" "$work/kiln --root $work/root build --no-cache examples/curl" \
  -n "buildah bud (FROM scratch + COPY)" "$bah bud -q --layers=false -t curl-bench $work/ctx" \
  >"$work/hyperfine.log" 2>&1 || { cat "$work/hyperfine.log"; exit 1; }

python3 - "$work/times.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
b = med["buildah bud (FROM scratch + COPY)"]
print("| command | median (ms) | min (ms) | buildah / this |")
print("|---|---:|---:|---:|")
for k, v in r.items():
    print(f"| {k} | {med[k]:.1f} | {v['min']*1000:.1f} | {b/med[k]:.1f}x |")
PY

# Size: uncompressed layer bytes against the files it holds.
files=$(tar -tvzf "$work/root/store/blobs/sha256/$layer" | awk '$1 ~ /^-/ {s += $3} END {print s}')
python3 - "$work" "$files" <<PY
import json, subprocess, sys
info = json.loads(subprocess.check_output(["$work/kiln", "--root", "$work/root", "inspect", "curl"]))[0]
comp = sum(l["Size"] for l in info["Layers"])
import gzip
raw = len(gzip.open("$work/root/store/blobs/sha256/$layer").read())
files = int(sys.argv[2])
over = raw - files
print()
print(f"| curl image | bytes |")
print(f"|---|---:|")
print(f"| sum of regular files | {files} ({files/2**20:.2f} MiB) |")
print(f"| uncompressed layer | {raw} ({raw/2**20:.2f} MiB) |")
print(f"| overhead | {over} ({100*over/files:.2f}%; budget 1% + 16 KiB = {int(files*0.01)+16384}) |")
print(f"| compressed (stored, pushed) | {comp} ({comp/2**20:.2f} MiB) |")
PY
