#!/usr/bin/env bash
# bench/limits.sh: what resource limits cost at start. `kiln run --rm IMAGE /bin/true` with no
# limit, with --memory (one v1 hierarchy to join on a hybrid host), and with every limit
# (memory, cpu, cpuset, pids: four), beside runc with the same limits, in one run.
# BEFORE=/path/to/an/older/kiln adds that binary without limits, to compare.
# Needs root, hyperfine, runc, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
work=$(mktemp -d /tmp/kiln-bench-limits.XXXXXX)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/kiln" ./cmd/kiln
mkdir -p "$work/img"
cat >"$work/img/kiln.yaml" <<YAML
name: bb
contents:
  files: [{src: $(command -v busybox), dst: /usr/bin/busybox, mode: 0755}]
  symlinks: [{path: /bin, target: usr/bin}, {path: /usr/bin/true, target: busybox}]
config: {cmd: [/bin/true]}
YAML
export KILN_ROOT=$work/root
"$work/kiln" build "$work/img" >/dev/null 2>&1

layer=$("$work/kiln" inspect bb | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Layers"][0]["Digest"].split(":")[1])')
for b in plain limited; do
  mkdir -p "$work/$b/rootfs"
  tar -xzf "$KILN_ROOT/store/blobs/sha256/$layer" -C "$work/$b/rootfs"
  (cd "$work/$b" && runc spec)
done
python3 - "$work/plain/config.json" "$work/limited/config.json" <<'PY'
import json, sys
for i, p in enumerate(sys.argv[1:]):
    c = json.load(open(p))
    c["process"]["args"] = ["/bin/true"]; c["process"]["terminal"] = False
    c["root"]["readonly"] = False
    if i == 1:
        r = c["linux"].setdefault("resources", {})
        r["memory"] = {"limit": 64 << 20, "swap": 128 << 20}
        r["cpu"] = {"quota": 50000, "period": 100000, "shares": 512, "cpus": "0"}
        r["pids"] = {"limit": 100}
    json.dump(c, open(p, "w"))
PY
all="--memory 64m --cpus 0.5 --cpu-shares 512 --cpuset-cpus 0 --pids-limit 100"
before=()
if [ -n "${BEFORE:-}" ]; then before=(-n "kiln before (BEFORE), no limit" "$BEFORE run --rm bb /bin/true"); fi
hyperfine -N --style none --runs $RUNS --warmup 3 --export-json "$work/limits.json" \
  -n "kiln run --rm (no limit)" "$work/kiln run --rm bb /bin/true" \
  "${before[@]}" \
  -n "kiln run --rm --memory 64m" "$work/kiln run --rm --memory 64m bb /bin/true" \
  -n "kiln run --rm (every limit)" "$work/kiln run --rm $all bb /bin/true" \
  -n "runc run (no limit)" "runc run --bundle $work/plain r1" \
  -n "runc run (every limit)" "runc run --bundle $work/limited r2" \
  >"$work/hyperfine.log" 2>&1 || { cat "$work/hyperfine.log"; exit 1; }

python3 - "$work/limits.json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
base = rs[0]["median"]
print("| command | median (min) ms | median / kiln without limits |")
print("|---|---:|---:|")
for r in rs:
    print(f"| {r['command']} | {r['median']*1000:.2f} ({r['min']*1000:.2f}) | {r['median']/base:.2f} |")
PY
