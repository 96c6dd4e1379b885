#!/usr/bin/env bash
# Image size report (not a test): each image's unpacked size, against
#  (a) the installed size of its locked package closure (Installed-Size from the lock), and
#  (b) a debian:bookworm-slim-style root — debootstrap --variant=minbase — plus the same
#      packages installed with apt (no recommends).
# Usage: benches/sizes.sh [out-dir-of-a-build]   (builds single-node into a temp dir if omitted)
# Needs root, debootstrap, umoci and the machine's Debian mirror (taken from /etc/apt).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${1:-}
if [ -z "$out" ]; then
    out="$work/out"
    cargo run --quiet --release -- build --profile single-node --out "$out" >/dev/null 2>&1
fi
host=$(ls "$out" | grep -v digests.txt | head -n1)
mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | awk '{print $2}')
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
echo "debootstrap minbase from the machine's mirror..." >&2
debootstrap --variant=minbase bookworm "$work/minbase" "$mirror" >/dev/null
minbase=$(du -sb --exclude=var/cache/apt --exclude=var/lib/apt/lists "$work/minbase" | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
printf '| image | image (unpacked) | closure installed size | minbase + packages |\n|---|---|---|---|\n'
for ref in $(python3 -c "import json,sys; [print(m['annotations']['org.opencontainers.image.ref.name']) for m in json.load(open(sys.argv[1]))['manifests']]" "$out/$host/oci/index.json"); do
    c=${ref#infra-}
    umoci unpack --image "$out/$host/oci:$ref" "$work/u-$c" >/dev/null
    image=$(du -sb "$work/u-$c/rootfs" | cut -f1)
    closure=$(python3 -c "import json,sys; print(sum(p['installed_size']*1024 for p in json.load(open('infragen.lock'))['images'][sys.argv[1]]['packages']))" "$c")
    pkgs=$(python3 -c "import re,sys; t=open('images/'+sys.argv[1]+'/image.yml').read(); print(' '.join(re.search(r'^packages: \[(.*)\]', t, re.M).group(1).replace(',', ' ').split()))" "$c")
    cp -a "$work/minbase" "$work/mb-$c"
    chroot "$work/mb-$c" sh -c "export DEBIAN_FRONTEND=noninteractive; printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs >/dev/null; apt-get clean"
    with=$(du -sb --exclude=var/cache/apt --exclude=var/lib/apt/lists "$work/mb-$c" | cut -f1)
    rm -rf "$work/mb-$c" "$work/u-$c"
    printf '| %s | %s MiB | %s MiB | %s MiB |\n' "$ref" "$(mib "$image")" "$(mib "$closure")" "$(mib "$with")"
done
printf '\nminbase alone: %s MiB\n' "$(mib "$minbase")"
