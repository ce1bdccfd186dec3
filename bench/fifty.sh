#!/usr/bin/env bash
# bench/fifty.sh: start 50 detached containers of one image one after another; report the time
# and the disk they add (the layers are shared: each container adds an empty upper directory).
# Needs root and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
work=$(mktemp -d /tmp/kiln-bench-fifty.XXXXXX)
export KILN_ROOT=$work/root
kiln="$work/kiln"
cleanup() { for i in $(seq 1 "$N"); do "$kiln" rm -f "c$i" >/dev/null 2>&1 || true; done; rm -rf "$work"; }
trap cleanup EXIT

CGO_ENABLED=0 go build -trimpath -o "$kiln" ./cmd/kiln
mkdir -p "$work/img"
cat >"$work/img/kiln.yaml" <<YAML
name: bb
contents:
  files: [{src: $(command -v busybox), dst: /usr/bin/busybox, mode: 0755}]
  symlinks: [{path: /bin, target: usr/bin}, {path: /usr/bin/sleep, target: busybox}]
config: {cmd: [/bin/sleep, "600"]}
YAML
"$kiln" build "$work/img" >/dev/null 2>&1
"$kiln" run --rm bb /bin/sleep 0 # unpack the layer once, as any first run does

du_kib() { du -sk --apparent-size "$1" | cut -f1; }
blocks_kib() { du -sk "$1" | cut -f1; }
before=$(blocks_kib "$KILN_ROOT")
start=$(date +%s%N)
for i in $(seq 1 "$N"); do "$kiln" run -d --name "c$i" bb >/dev/null; done
end=$(date +%s%N)
after=$(blocks_kib "$KILN_ROOT")
running=$("$kiln" ps --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
layer=$(blocks_kib "$KILN_ROOT/layers")
# The monitors' memory, a median over them: RSS (every page it maps, shared or not) and PSS (its
# share of the pages it shares with the other monitors: the binary's).
read -r rss pss <<<"$("$kiln" ps --format json | python3 -c '
import json, statistics, sys
ps = json.load(sys.stdin); m = {"Rss:": [], "Pss:": []}
for c in ps:
    for l in open("/proc/%d/smaps_rollup" % c["MonitorPid"]):
        k = l.split()[0]
        if k in m: m[k].append(int(l.split()[1]))
print(int(statistics.median(m["Rss:"])), int(statistics.median(m["Pss:"])))')"
echo "| measure | value |"
echo "|---|---:|"
echo "| containers started (running afterwards) | $N ($running) |"
echo "| total time | $(( (end-start)/1000000 )) ms |"
echo "| per container | $(( (end-start)/1000000/N )) ms |"
echo "| disk added by $N containers | $((after-before)) KiB ($(( (after-before)/N )) KiB each: record, empty upper and work dirs) |"
echo "| shared unpacked layer (once) | $layer KiB |"
echo "| monitor memory, each (median): RSS / PSS | $rss / $pss KiB |"
