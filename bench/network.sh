#!/usr/bin/env bash
# bench/network.sh: networking costs, peers side by side in one run.
#  1. Start latency of `kiln run --rm --network private` beside `--network none`, and beside
#     `runc run` with a network namespace only, and with a veth set up the same way (a
#     createRuntime hook: veth pair on a bridge, address, default route).
#  2. Throughput through a published port (DNAT, from the host's loopback) beside connecting
#     to the same server inside the container's network namespace, and to the container's
#     address from the host, in alternating rounds.
# Needs root, hyperfine, runc, busybox-static, nsenter, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
ROUNDS=${ROUNDS:-7}
work=$(mktemp -d /tmp/kiln-bench-net.XXXXXX)
export KILN_ROOT=$work/root
bridge=kbench$$
cleanup() {
  "$work/kiln" rm -f nb >/dev/null 2>&1 || true
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/kiln" ./cmd/kiln
CGO_ENABLED=0 go build -trimpath -o "$work/netbench" ./bench/netbench
mkdir -p "$work/img"
cat >"$work/img/kiln.yaml" <<YAML
name: nb
contents:
  files:
    - {src: $(command -v busybox), dst: /usr/bin/busybox, mode: 0755}
    - {src: $work/netbench, dst: /usr/bin/netbench, mode: 0755}
  symlinks: [{path: /bin, target: usr/bin}, {path: /usr/bin/true, target: busybox}, {path: /usr/bin/sh, target: busybox}]
config: {cmd: [/bin/true]}
YAML
"$work/kiln" build "$work/img" >/dev/null 2>&1
"$work/kiln" run --rm nb true # the default network, created once, as on any host after first use

# runc on the same root: one bundle with runc spec's network namespace, one that also plugs a
# veth into a bridge from a createRuntime hook, as kiln does from its OnCreate.
ip link add "$bridge" type bridge && ip addr add 10.199.0.1/24 dev "$bridge" && ip link set "$bridge" up
cat >"$work/veth-hook" <<SH
#!/bin/sh
pid=\$(sed 's/.*"pid":\([0-9]*\).*/\1/')
v=rb\$\$
ip link add \$v type veth peer name eth0 netns \$pid
ip link set \$v master $bridge up
nsenter -t \$pid -n sh -c 'ip addr add 10.199.0.2/24 dev eth0 && ip link set eth0 up && ip route add default via 10.199.0.1'
SH
chmod +x "$work/veth-hook"
layer=$("$work/kiln" inspect nb | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Layers"][0]["Digest"].split(":")[1])')
for b in netns veth; do
  mkdir -p "$work/$b/rootfs"
  tar -xzf "$KILN_ROOT/store/blobs/sha256/$layer" -C "$work/$b/rootfs"
  (cd "$work/$b" && runc spec)
  python3 - "$work/$b/config.json" "$b" "$work/veth-hook" <<'PY'
import json, sys
p, kind, hook = sys.argv[1:]; c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]; c["process"]["terminal"] = False
c["root"]["readonly"] = False
if kind == "veth":
    c["hooks"] = {"createRuntime": [{"path": hook}]}
json.dump(c, open(p, "w"))
PY
done

hyperfine -N --style none --runs "$RUNS" --warmup 3 --export-json "$work/start.json" \
  -n "kiln run --rm --network none" "$work/kiln run --rm --network none nb /bin/true" \
  -n "kiln run --rm --network private" "$work/kiln run --rm --network private nb /bin/true" \
  -n "runc run (netns)" "runc run --bundle $work/netns bn" \
  -n "runc run (netns + veth hook)" "runc run --bundle $work/veth bv" \
  >"$work/hyperfine.log" 2>&1 || { cat "$work/hyperfine.log"; exit 1; }

# Throughput: one server in a container, published on a free port.
"$work/kiln" run -d --name nb -p 80 nb netbench serve :80 >/dev/null
port=$("$work/kiln" port nb 80 | sed 's/.*://')
pid=$("$work/kiln" inspect nb | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Pid"])')
sleep 0.5
: >"$work/published"; : >"$work/direct"; : >"$work/address"
ip=$("$work/kiln" inspect nb | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["IPAddress"])')
for _ in $(seq "$ROUNDS"); do
  "$work/netbench" read "127.0.0.1:$port" 2s >>"$work/published"
  nsenter -t "$pid" -n "$work/netbench" read 127.0.0.1:80 2s >>"$work/direct"
  "$work/netbench" read "$ip:80" 2s >>"$work/address"
done

python3 - "$work/start.json" "$work/published" "$work/direct" "$work/address" "$RUNS" "$ROUNDS" <<'PY'
import json, statistics, sys
start, pub, direct, addr, runs, rounds = sys.argv[1:]
res = {x["command"]: x for x in json.load(open(start))["results"]}
print(f"Start latency, {runs} runs each:\n")
print("| command | median (min) ms |")
print("|---|---:|")
for name, r in res.items():
    print(f"| {name} | {r['median']*1000:.2f} ({r['min']*1000:.2f}) |")
none, priv = res["kiln run --rm --network none"]["median"], res["kiln run --rm --network private"]["median"]
print(f"\nprivate / none: {priv/none:.2f}x")
p, d, a = ([float(x) for x in open(f)] for f in (pub, direct, addr))
print(f"\nThroughput, one TCP stream for 2 s, {rounds} alternating rounds, median MB/s:\n")
print("| path | median (min-max) MB/s |")
print("|---|---:|")
print(f"| published port: 127.0.0.1:PORT from the host (DNAT) | {statistics.median(p):.0f} ({min(p):.0f}-{max(p):.0f}) |")
print(f"| direct: 127.0.0.1:80 inside the container's namespace | {statistics.median(d):.0f} ({min(d):.0f}-{max(d):.0f}) |")
print(f"| the container's address:80 from the host (no NAT) | {statistics.median(a):.0f} ({min(a):.0f}-{max(a):.0f}) |")
print(f"\npublished / direct: {statistics.median(p)/statistics.median(d):.0%}")
PY
