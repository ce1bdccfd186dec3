#!/usr/bin/env bash
# bench/boot.sh: time from `kiln boot IMAGE` to the app's first line of output, beside the same
# kernel booting a hand-made busybox initramfs whose /init prints one line, with the same qemu
# command line (taken from `kiln --verbose boot`, -initrd changed and --verbose's loglevel=7
# dropped), runs interleaved (the order rotating), in one run. kiln boots two images: a static Go
# program, and busybox's echo (the peer's own work, so that only what kiln adds differs).
# Prints medians, minimums and the ratios.
# Needs root (or a writable KILN_ROOT), Go, qemu-system-x86, busybox-static, cpio, a kernel in /boot.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
ACCEL=${ACCEL:-auto}
work=$(mktemp -d /tmp/kiln-bench-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT

for p in ./cmd/kiln ./cmd/kiln-init; do
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/" "$p"
done
export KILN_ROOT=$work/root
kiln=$work/kiln

# The app: a static Go program that prints one line.
mkdir -p "$work/app"
cat >"$work/app/main.go" <<'GO'
package main

import "fmt"

func main() { fmt.Println("first line") }
GO
printf 'module app\n\ngo 1.26\n' >"$work/app/go.mod"
(cd "$work/app" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o app .)
cat >"$work/app/kiln.yaml" <<'YAML'
name: app
contents:
  binaries: [{src: ./app, dst: /app}]
config: {entrypoint: [/app]}
YAML
"$kiln" build "$work/app" >/dev/null 2>&1
# The same app as the peer's: busybox's echo. Beside the Go app this separates what kiln adds
# (its bake, kiln-init, its host side) from what the app's own start costs (a Go runtime's,
# some 70 ms under emulation).
mkdir -p "$work/bbapp"
cat >"$work/bbapp/kiln.yaml" <<YAML
name: bbapp
contents:
  files: [{src: $(command -v busybox), dst: /bin/busybox, mode: 0755}]
config: {entrypoint: [/bin/busybox, echo, first line]}
YAML
"$kiln" build "$work/bbapp" >/dev/null 2>&1
"$kiln" boot bbapp --accel "$ACCEL" >/dev/null 2>&1 # fills the bake cache

# The peer: busybox's sh as /init, one echo to the console, power off.
mkdir -p "$work/bb/bin"
cp "$(command -v busybox)" "$work/bb/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox echo first line\n/bin/busybox poweroff -f\n' >"$work/bb/init"
chmod 755 "$work/bb/init"
(cd "$work/bb" && find . | LC_ALL=C sort | cpio -o -H newc --quiet >"$work/bb.cpio")
gzip -9 -k "$work/bb.cpio"

# kiln's qemu command line, from a first (warm-up) boot that also fills the bake cache.
"$kiln" --verbose boot app --accel "$ACCEL" 2>"$work/verbose.log" >/dev/null
qemu_cmd=$(sed -n 's/^kiln: qemu command: //p' "$work/verbose.log")
eval "set -- $qemu_cmd"
peer=()
while [ $# -gt 0 ]; do
	case $1 in
	-initrd) peer+=(-initrd "$work/bb.cpio.gz"); shift 2; continue ;;
	# --verbose adds loglevel=7, which the timed boots (not verbose) do not have: with it the
	# peer's kernel would print its whole log, some 250 lines, on the emulated serial console.
	-append) peer+=(-append "${2/ loglevel=7/}"); shift 2; continue ;;
	# kiln's status port is a socket pair kiln holds; the peer's init never uses the port.
	-chardev) peer+=(-chardev "${2/socket,id=status,fd=5/null,id=status}"); shift 2; continue ;;
	esac
	peer+=("$1")
	shift
done
# The same with the busybox cpio uncompressed, as kiln's boot cache keeps its own.
peer_raw=("${peer[@]/%bb.cpio.gz/bb.cpio}")

now() { date +%s%N; }
# first_line CMD...: milliseconds from start to the first output line holding "first line";
# waits for CMD to end (the VM to power off) before returning.
first_line() {
	local t0 t1 line
	t0=$(now)
	{
		while IFS= read -r line; do
			if [[ $line == *"first line"* ]]; then t1=$(now); break; fi
		done
		cat >/dev/null
	} < <("$@" 3>/dev/null 4>/dev/null 5>/dev/null 6>&1 2>/dev/null)
	echo $(((t1 - t0) / 1000000))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
minimum() { sort -n | head -1; }

: >"$work/kiln.ms"
: >"$work/kilnbb.ms"
: >"$work/peer.ms"
: >"$work/raw.ms"
# One boot of each: 0 kiln (Go app), 1 busybox gzip, 2 busybox plain, 3 kiln (busybox app).
boot_one() {
	case $1 in
	0) first_line "$kiln" boot app --accel "$ACCEL" >>"$work/kiln.ms" ;;
	1) first_line "${peer[@]}" >>"$work/peer.ms" ;;
	2) first_line "${peer_raw[@]}" >>"$work/raw.ms" ;;
	3) first_line "$kiln" boot bbapp --accel "$ACCEL" >>"$work/kilnbb.ms" ;;
	esac
}
# The order rotates from round to round: a boot's place in a round (right after which other,
# on a host whose load changes) must not favour one of the four.
for i in $(seq 0 $((RUNS - 1))); do
	for j in 0 1 2 3; do boot_one $(((i + j) % 4)); done
done
k=$(median <"$work/kiln.ms")
kb=$(median <"$work/kilnbb.ms")
p=$(median <"$work/peer.ms")
r=$(median <"$work/raw.ms")
accel=$(grep -o -- '-accel [a-z]*' <<<"$qemu_cmd" | cut -d' ' -f2)
echo "runs: $RUNS, accel: $accel, kernel: $("$kiln" bake app -o "$work/info" | sed -n 's/^kernel *//p')"
echo "kiln boot app (cached bake) to first line: median ${k} ms, min $(minimum <"$work/kiln.ms")  [$(tr '\n' ' ' <"$work/kiln.ms")]"
echo "busybox initramfs (gzip), same qemu flags: median ${p} ms, min $(minimum <"$work/peer.ms")  [$(tr '\n' ' ' <"$work/peer.ms")]"
echo "busybox initramfs (plain cpio), same flags: median ${r} ms, min $(minimum <"$work/raw.ms")  [$(tr '\n' ' ' <"$work/raw.ms")]"
echo "kiln boot bbapp (busybox echo, cached bake): median ${kb} ms, min $(minimum <"$work/kilnbb.ms")  [$(tr '\n' ' ' <"$work/kilnbb.ms")]"
# Ratios of the medians, with a 95% bootstrap interval (the rounds resampled whole, so each
# resample keeps a round's four boots together), and the median of each round's own ratio,
# which a slow drift of the host's load does not move.
python3 - "$work" <<'PY'
import random, statistics as st, sys
w = sys.argv[1]
v = {n: [float(x) for x in open(f"{w}/{n}.ms")] for n in ("kiln", "kilnbb", "peer", "raw")}
rounds = list(zip(*v.values()))
idx = dict(zip(v, range(4)))
random.seed(1)
def interval(a, b):
    rs = []
    for _ in range(2000):
        s = [random.choice(rounds) for _ in rounds]
        rs.append(st.median(r[idx[a]] for r in s) / st.median(r[idx[b]] for r in s))
    rs.sort()
    return rs[50], rs[1949]
for app, a in (("Go app", "kiln"), ("busybox app", "kilnbb")):
    for peer, b in (("gzip", "peer"), ("plain", "raw")):
        lo, hi = interval(a, b)
        paired = st.median(r[idx[a]] / r[idx[b]] for r in rounds)
        print(f"ratio kiln ({app})/busybox ({peer}): {st.median(v[a]) / st.median(v[b]):.3f}x"
              f" (95% interval {lo:.3f}-{hi:.3f}; median of the rounds' own ratios {paired:.3f}x)")
PY
echo "initramfs sizes: kiln's two (its boot cache, uncompressed) $(stat -c %s "$KILN_ROOT"/cache/boot/*/initramfs | tr '\n' ' ')bytes, busybox $(stat -c %s "$work/bb.cpio.gz") (gzip), $(stat -c %s "$work/bb.cpio") (plain)"
