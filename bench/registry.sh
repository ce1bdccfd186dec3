#!/usr/bin/env bash
# bench/registry.sh: kiln push and kiln pull of a 100 MiB, 5-layer image over loopback, beside
# `skopeo copy` of the same image to and from the same registry, in the same run.
# Needs hyperfine, skopeo and docker-registry (apt-get install -y hyperfine skopeo docker-registry)
# and python3. Prints medians as a markdown table, for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
LAYERS=${LAYERS:-5}
LAYER_MIB=${LAYER_MIB:-20}
work=$(mktemp -d /tmp/kiln-bench-registry.XXXXXX)
reg_pid=
trap '[ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/kiln" ./cmd/kiln
kiln="$work/kiln --root $work/root"

# The image: LAYERS layers of LAYER_MIB MiB of random bytes each (gzip cannot shrink them), as an
# OCI layout that kiln loads and skopeo reads.
sha() { sha256sum "$1" | cut -d' ' -f1; }
mkdir -p "$work/layout/blobs/sha256" "$work/files"
layers= diffids=
for i in $(seq "$LAYERS"); do
  head -c $((LAYER_MIB << 20)) /dev/urandom >"$work/files/f$i"
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/files" -cf "$work/l.tar" "f$i"
  diffids="$diffids${diffids:+,}\"sha256:$(sha "$work/l.tar")\""
  gzip -1 -n -c "$work/l.tar" >"$work/l.tgz"
  d=$(sha "$work/l.tgz")
  mv "$work/l.tgz" "$work/layout/blobs/sha256/$d"
  layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c %s "$work/layout/blobs/sha256/$d")}"
done
rm -rf "$work/files" "$work/l.tar"
blob() { # blob FILE: store FILE under its digest, print "digest size"
  local d; d=$(sha "$1"); mv "$1" "$work/layout/blobs/sha256/$d"
  echo "sha256:$d $(stat -c %s "$work/layout/blobs/sha256/$d")"
}
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffids" >"$work/c.json"
read -r cdig csize < <(blob "$work/c.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
  "$cdig" "$csize" "$layers" >"$work/m.json"
read -r mdig msize < <(blob "$work/m.json")
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
  "$mdig" "$msize" >"$work/layout/index.json"
$kiln load -i "$work/layout" -t bench:1 >/dev/null
total=$(du -sm --apparent-size "$work/layout/blobs" | cut -f1)

# The registry: Debian's docker-registry (distribution 2.8) on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
cat >"$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/reg}, delete: {enabled: true}}
http: {addr: $host, secret: bench}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -fs "http://$host/v2/" >/dev/null && break; sleep 0.1; done

export DOCKER_CONFIG=$work/docker REGISTRY_AUTH_FILE= KILN_CERTS_D=$work/certs.d
empty_registry="rm -rf $work/reg/docker"

# Push: into an empty registry every run, so every layer is sent.
hyperfine --style none --runs "$RUNS" --warmup 1 --export-json "$work/push.json" \
  --prepare "$empty_registry" \
  -n "kiln push" "$kiln push -q bench:1 $host/bench/kiln:1" \
  -n "skopeo copy oci: -> docker://" "skopeo copy -q --dest-tls-verify=false oci:$work/layout:bench docker://$host/bench/skopeo:1" \
  >"$work/hyperfine-push.log" 2>&1 || { cat "$work/hyperfine-push.log"; exit 1; }

# Pull: into an empty store (kiln) or an empty OCI layout (skopeo) every run.
$kiln push -q bench:1 "$host/bench/seed:1" >/dev/null 2>&1
hyperfine --style none --runs "$RUNS" --warmup 1 --export-json "$work/pull.json" \
  -n "kiln pull" --prepare "rm -rf $work/pulled-root" "$work/kiln --root $work/pulled-root pull -q $host/bench/seed:1" \
  -n "skopeo copy docker:// -> oci:" --prepare "rm -rf $work/pulled-oci" "skopeo copy -q --src-tls-verify=false docker://$host/bench/seed:1 oci:$work/pulled-oci:bench" \
  >"$work/hyperfine-pull.log" 2>&1 || { cat "$work/hyperfine-pull.log"; exit 1; }

python3 - "$work/push.json" "$work/pull.json" "$total" "$LAYERS" <<'PY'
import json, sys
print(f"{sys.argv[4]} layers, {sys.argv[3]} MiB compressed, loopback, docker-registry 2.8 (filesystem storage)")
print()
print("| command | median (s) | min (s) | MiB/s (median) | skopeo / kiln |")
print("|---|---:|---:|---:|---:|")
mib = float(sys.argv[3])
for path in sys.argv[1:3]:
    rs = json.load(open(path))["results"]
    kiln = next(r for r in rs if r["command"].startswith("kiln"))
    for r in rs:
        ratio = r["median"] / kiln["median"] if not r["command"].startswith("kiln") else 1.0
        print(f"| {r['command']} | {r['median']:.3f} | {r['min']:.3f} | {mib / r['median']:.0f} | {ratio:.2f}x |")
PY
