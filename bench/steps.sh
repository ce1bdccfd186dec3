#!/usr/bin/env bash
# bench/steps.sh: kiln build of a 3-step image (files written, a base file deleted, a chmod) on a
# busybox base, cold (--no-cache) and fully cached, beside `buildah bud` of the equivalent
# Containerfile (FROM the same base, RUN x3) cold and cached, in the same run.
# Needs root, hyperfine, buildah and busybox-static (apt-get install -y hyperfine buildah busybox-static).
# Prints medians and ratios as a markdown table, for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
work=$(mktemp -d /tmp/kiln-bench-steps.XXXXXX)
bah="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver ${DRIVER:-overlay}"
trap '$bah rmi -a -f >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/kiln" ./cmd/kiln
kiln() { "$work/kiln" --root "$work/root" "$@"; }

# The base: busybox-static with its applets, and a file for a step to delete.
bb=$(command -v busybox)
mkdir -p "$work/base"
echo doomed >"$work/base/doomed"
{
  echo "name: bb"
  echo "contents:"
  echo "  files:"
  echo "    - {src: $bb, dst: /bin/busybox, mode: 0755}"
  echo "    - {src: ./doomed, dst: /etc/doomed}"
  echo "  symlinks:"
  for a in sh echo mkdir cp rm chmod cat; do echo "    - {path: /bin/$a, target: busybox}"; done
  echo "  dirs: [{path: /tmp, mode: 01777}]"
} >"$work/base/kiln.yaml"
kiln build "$work/base" >/dev/null 2>&1
kiln save bb -o "$work/bb.tar"
$bah pull -q oci-archive:"$work/bb.tar" >/dev/null
$bah tag "$(${bah} images -q | head -1)" localhost/bb

# The same three steps, as kiln.yaml and as a Containerfile.
step1='echo made > /made.txt && mkdir -p /srv && cp /etc/doomed /srv/copy'
step2='rm /etc/doomed'
step3='chmod 0600 /srv/copy && echo done > /done'
mkdir -p "$work/app"
printf 'name: app\nbase: bb\nsteps:\n  - %s\n  - %s\n  - %s\n' "$step1" "$step2" "$step3" >"$work/app/kiln.yaml"
printf 'FROM localhost/bb\nRUN %s\nRUN %s\nRUN %s\n' "$step1" "$step2" "$step3" >"$work/app/Containerfile"
kiln build "$work/app" >/dev/null 2>&1
$bah bud -q --pull=never --network=none --runtime "${RUNTIME:-runc}" --layers -t app "$work/app" >/dev/null

k="$work/kiln --root $work/root build"
b="$bah bud -q --pull=never --network=none --runtime ${RUNTIME:-runc} -t app -f $work/app/Containerfile"
hyperfine --style none --runs "$RUNS" --warmup 2 --export-json "$work/times.json" \
  -n "kiln build (cached)" "$k $work/app" \
  -n "kiln build --no-cache (cold)" "$k --no-cache $work/app" \
  -n "buildah bud --layers (cached)" "$b --layers $work/app" \
  -n "buildah bud --no-cache (cold)" "$b --layers --no-cache $work/app" \
  >"$work/hyperfine.log" 2>&1 || { cat "$work/hyperfine.log"; exit 1; }

python3 - "$work/times.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
print("| command | median (ms) | min (ms) |")
print("|---|---:|---:|")
for k, v in r.items():
    print(f"| {k} | {med[k]:.1f} | {v['min']*1000:.1f} |")
print()
print(f"cached: buildah / kiln = {med['buildah bud --layers (cached)'] / med['kiln build (cached)']:.1f}x (target >= 10x; kiln target < 150 ms)")
print(f"cold:   buildah / kiln = {med['buildah bud --no-cache (cold)'] / med['kiln build --no-cache (cold)']:.1f}x (target >= 3x)")
PY
