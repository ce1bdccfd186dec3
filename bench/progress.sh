#!/usr/bin/env bash
# bench/progress.sh: the cost of kiln build's live display. A step prints LINES lines; the same
# --no-cache build runs with stderr on a terminal (a pty made by script(1): the live status line)
# and with stderr in a file (plain lines), alternated, beside the terminal's own cost of showing
# those lines (the same lines, sed-prefixed, written to a pty by script(1)).
# Needs root and busybox-static. Prints medians and ratios as a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
LINES=${LINES:-200000}
work=$(mktemp -d /tmp/kiln-bench-progress.XXXXXX)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/kiln" ./cmd/kiln
bb=$(command -v busybox)
mkdir -p "$work/bb" "$work/app"
printf 'name: bb\ncontents:\n  files: [{src: %s, dst: /bin/busybox, mode: 0755}]\n  symlinks:\n    - {path: /bin/sh, target: busybox}\n    - {path: /bin/seq, target: busybox}\n' "$bb" >"$work/bb/kiln.yaml"
printf 'name: chatty\nbase: bb\nsteps: [seq 1 %s]\n' "$LINES" >"$work/app/kiln.yaml"
"$work/kiln" --root "$work/root" build "$work/bb" >/dev/null 2>&1

ms() { local s e; s=$(date +%s%N); script -q -c "$1" /dev/null >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
build="$work/kiln --root $work/root build --no-cache $work/app"
declare -a tty file raw
for _ in $(seq "$RUNS"); do
  tty+=("$(ms "$build")")
  file+=("$(ms "$build 2>$work/err")")
  raw+=("$(ms "seq 1 $LINES | sed 's/^/step 1\/1 | /' >&2")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
t=$(median "${tty[@]}") f=$(median "${file[@]}") r=$(median "${raw[@]}")
echo "| $LINES lines, median of $RUNS | ms |"
echo "|---|---|"
echo "| build, stderr in a file | $f |"
echo "| build, stderr on a terminal (live display) | $t |"
echo "| the lines alone written to a terminal | $r |"
echo "| terminal / file | $(awk "BEGIN{printf \"%.2f\", $t/$f}") |"
echo "| terminal - file - lines alone (the display's own cost) | $((t - f - r)) |"
