#!/usr/bin/env bash
# bench/run.sh: start latency of `kiln run --rm IMAGE /bin/true` beside runc and crun running the
# same root filesystem with the same namespaces, and the floor (unshare + chroot), in one run.
# Needs root, runc, crun, busybox-static (apt-get install -y runc crun busybox-static).
# crun 1.8 refuses this machine's hybrid cgroup layout: it runs in a private mount namespace with
# /sys/fs/cgroup/unified unmounted; kiln, runc and the floor are measured both there and on the
# host's own layout, in the same run. Runs are interleaved in rounds: bench/interleave.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
work=$(mktemp -d /tmp/kiln-bench-run.XXXXXX)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/kiln" ./cmd/kiln
mkdir -p "$work/img"
cat >"$work/img/kiln.yaml" <<YAML
name: bb
contents:
  files: [{src: $(command -v busybox), dst: /usr/bin/busybox, mode: 0755}]
  symlinks: [{path: /bin, target: usr/bin}, {path: /usr/bin/true, target: busybox}, {path: /usr/bin/sh, target: busybox}]
config: {cmd: [/bin/true]}
YAML
export KILN_ROOT=$work/root
"$work/kiln" build "$work/img" >/dev/null 2>&1

# The same root for runc and crun: the image's layer, unpacked.
layer=$("$work/kiln" inspect bb | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Layers"][0]["Digest"].split(":")[1])')
mkdir -p "$work/bundle/rootfs"
tar -xzf "$KILN_ROOT/store/blobs/sha256/$layer" -C "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]; c["process"]["terminal"] = False
c["root"]["readonly"] = False
c["ociVersion"] = "1.0.2"  # crun 1.8 refuses newer
json.dump(c, open(p, "w"))
PY

# The same again with kiln's own spec (the one it saved for a container of bb): its mounts,
# Docker's seccomp profile, capabilities, masked and read-only paths, sysctls. Beside the runc
# spec defaults (no seccomp filter, fewer mounts) this is what kiln's security costs each runtime.
id=$("$work/kiln" run -d --network none bb /bin/true)
"$work/kiln" wait "$id" >/dev/null
mkdir -p "$work/kspec"
python3 - "$KILN_ROOT/containers/$id" "$work/kspec" <<'PY'
import json, os, shutil, sys
src, dst = sys.argv[1:]
c = json.load(open(f"{src}/config.json"))
c["root"] = {"path": os.path.join(os.path.dirname(dst), "bundle", "rootfs")}
c["process"]["args"] = ["/bin/true"]
for m in c["mounts"]:  # the container's own /etc files, copied beside the bundle
    if m.get("source", "").startswith(src + "/"):
        name = os.path.basename(m["source"])
        shutil.copy(m["source"], f"{dst}/{name}")
        m["source"] = f"{dst}/{name}"
c["ociVersion"] = "1.0.2"
json.dump(c, open(f"{dst}/config.json", "w"))
PY
"$work/kiln" rm "$id" >/dev/null

# The commands are timed in interleaved rounds (bench/interleave): each round runs each once,
# the order rotating, so that a change in this VM's load weighs on all alike.
# SETTLE=50ms pauses before each run; GROUPED=1 runs each command's rounds back to back, as
# hyperfine does (see bench/interleave).
go build -o "$work/interleave" ./bench/interleave
kilncmd="kiln run --rm=$work/kiln run --rm --network none bb /bin/true"
floor="floor: unshare -mpfiun chroot=unshare -mpfiun chroot $work/bundle/rootfs /bin/true"
# A: the host as it is (kiln uses the cgroup2 hierarchy for its device filter). crun cannot run here.
cd "$work/bundle"
"$work/interleave" -runs "$RUNS" -settle "${SETTLE:-0}" -grouped="${GROUPED:-0}" -json "$work/host.json" "$kilncmd" \
  "runc run=runc run --bundle $work/bundle r1" \
  "runc run, kiln's spec=runc run --bundle $work/kspec r2" \
  "$floor" >/dev/null
# B: a private mount namespace without /sys/fs/cgroup/unified, where crun 1.8 runs (kiln falls
# back to the v1 devices controller there).
unshare -m bash -s <<SH
set -e
umount /sys/fs/cgroup/unified 2>/dev/null || true
cd "$work/bundle"
"$work/interleave" -runs "$RUNS" -settle "${SETTLE:-0}" -grouped="${GROUPED:-0}" -json "$work/nounified.json" "$kilncmd" \
  "crun run=crun run --bundle $work/bundle c1" \
  "crun run, kiln's spec=crun run --bundle $work/kspec c2" \
  "runc run=runc run --bundle $work/bundle r1" \
  "runc run, kiln's spec=runc run --bundle $work/kspec r2" \
  "$floor" >/dev/null
SH

# Medians (minimum) per layout, then the targets as ratios: kiln at most crun (1.0) and at most
# half of runc (0.5). Each ratio is of the medians, with a 95% bootstrap interval (rounds
# resampled whole) and the median of the rounds' own ratios, which a slow drift of the load
# does not move.
python3 - "$work/host.json" "$work/nounified.json" <<'PY'
import json, random, statistics as st, sys
def load(p): return {c["Name"]: c["Ms"] for c in json.load(open(p))}
host, nou = load(sys.argv[1]), load(sys.argv[2])
print("| command | host layout: median (min) ms | unified unmounted: median (min) ms |")
print("|---|---:|---:|")
for name in ["kiln run --rm", "crun run", "crun run, kiln's spec", "runc run", "runc run, kiln's spec",
             "floor: unshare -mpfiun chroot"]:
    cell = lambda r: f"{st.median(r[name]):.2f} ({min(r[name]):.2f})" if name in r else "cannot run"
    print(f"| {name} | {cell(host)} | {cell(nou)} |")
random.seed(1)
def interval(a, b):
    rounds = list(zip(a, b))
    rs = sorted(st.median(x for x, _ in s) / st.median(y for _, y in s)
                for s in ([random.choice(rounds) for _ in rounds] for _ in range(2000)))
    return rs[50], rs[1949]
print()
for layout, r in (("host layout", host), ("unified unmounted", nou)):
    k = r["kiln run --rm"]
    for peer in ("crun run", "crun run, kiln's spec", "runc run", "runc run, kiln's spec"):
        if peer not in r:
            continue
        lo, hi = interval(k, r[peer])
        paired = st.median(x / y for x, y in zip(k, r[peer]))
        print(f"{layout}: kiln / {peer}: {st.median(k) / st.median(r[peer]):.3f}"
              f" (95% interval {lo:.3f}-{hi:.3f}; median of the rounds' ratios {paired:.3f})")
PY
