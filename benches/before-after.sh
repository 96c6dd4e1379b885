#!/usr/bin/env bash
# Benchmark (not a test): two revisions of infragen side by side, interleaved.
#
#   benches/before-after.sh BASE [HEAD] [ROUNDS]
#
# Builds the release binary of each revision (BASE "before", HEAD "after", default HEAD = the
# working tree's HEAD), then runs every scenario ROUNDS times (default 5) as A B A B …, so a
# busy machine slows both alike, and prints per scenario the median and min–max of the ratio
# after/before (below 1.00 is faster) with both medians. Scenarios, through the command line
# both revisions share:
#   render-1000   render a generated 1,000-host inventory (3 infra, 5 etcd, 4 minio, 988 pg)
#   build-cold    build three-node: new output, new layer store, warm package cache
#   build-warm    build three-node again into the same output, nothing changed
#   activate      activate one three-node bundle into an empty --root tree
# SCENARIOS="build-warm activate" runs only those. Needs root (activation), git, and Debian's
# mirror or a warm package cache for three-node.
set -euo pipefail

base=${1:?usage: benches/before-after.sh BASE [HEAD] [ROUNDS]}
head=${2:-HEAD}
rounds=${3:-5}
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/infragen-before-after.XXXXXX")
trap 'git -C "$repo" worktree remove --force "$work/src-A" 2>/dev/null || true;
      git -C "$repo" worktree remove --force "$work/src-B" 2>/dev/null || true;
      rm -rf "$work"' EXIT
# One target directory for both revisions: dependencies they share are compiled once.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/before-after}

for side in A B; do
    rev=$base
    [ "$side" = B ] && rev=$head
    git -C "$repo" worktree add -q --detach "$work/src-$side" "$rev"
    echo "== building $side = $(git -C "$work/src-$side" log -1 --format='%h %s' | cut -c1-72)" >&2
    (cd "$work/src-$side" && cargo build --release --locked --quiet)
    cp "$CARGO_TARGET_DIR/release/infragen" "$work/$side"
done

# The 1,000-host inventory (the same shape as benches/render.rs).
inv=$work/thousand.yml
{
    printf 'all:\n  children:\n    infra:\n      hosts:\n'
    for i in 1 2 3; do printf '        10.20.0.%d: { infra_seq: %d }\n' "$i" "$i"; done
    printf '    etcd:\n      vars: { etcd_cluster: etcd }\n      hosts:\n'
    for i in 1 2 3 4 5; do printf '        10.20.1.%d: { etcd_seq: %d }\n' "$i" "$i"; done
    printf '    minio:\n      vars: { minio_cluster: minio }\n      hosts:\n'
    for i in 1 2 3 4; do printf '        10.20.2.%d: { minio_seq: %d }\n' "$i" "$i"; done
    for c in $(seq 0 246); do
        printf '    pg-c%d:\n      vars: { pg_cluster: pg-c%d }\n      hosts:\n' "$c" "$c"
        for m in 0 1 2 3; do
            n=$((c * 4 + m)); role=replica; [ $m = 0 ] && role=primary
            printf '        10.21.%d.%d: { pg_seq: %d, pg_role: %s }\n' $((n / 250)) $((n % 250 + 1)) $((m + 1)) "$role"
        done
    done
    printf '  vars:\n    admin_ip: 10.20.0.1\n    alertmanager_cluster: true\n'
} >"$inv"

# Shared inputs: a warm package cache and one PKI, primed by each binary once.
warm=$work/warm
for side in A B; do
    "$work/$side" build --profile three-node --lock "$work/src-$side/infragen.lock" \
        --cache "$warm" --pki "$work/pki" --out "$work/prime-$side" >/dev/null 2>&1 ||
        { echo "priming build of $side failed:" >&2;
          "$work/$side" build --profile three-node --lock "$work/src-$side/infragen.lock" \
              --cache "$warm" --pki "$work/pki" --out "$work/prime-$side" >&2; exit 1; }
done
host=$(find "$work/prime-A" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' -printf '%f\n' | sort | head -1)
[ -n "$host" ] || { echo "no host bundle in $work/prime-A" >&2; exit 1; }

now() { date +%s%N; }
# run SIDE SCENARIO ROUND: prints nanoseconds.
run() {
    local bin=$work/$1 d=$work/run-$1-$2-$3 t0 t1
    mkdir -p "$d"
    case $2 in
        render-1000)
            t0=$(now); "$bin" render --profile "$inv" --out "$d/r" >/dev/null; t1=$(now) ;;
        build-cold)
            mkdir -p "$d/cache"; ln -s "$warm/debs" "$d/cache/debs"; cp -a "$work/pki" "$d/pki"
            t0=$(now)
            "$bin" build --profile three-node --lock "$work/src-$1/infragen.lock" \
                --cache "$d/cache" --pki "$d/pki" --out "$d/out" >/dev/null 2>&1
            t1=$(now) ;;
        build-warm)
            cp -a "$work/pki" "$d/pki"
            "$bin" build --profile three-node --lock "$work/src-$1/infragen.lock" \
                --cache "$warm" --pki "$d/pki" --out "$d/out" >/dev/null 2>&1
            t0=$(now)
            "$bin" build --profile three-node --lock "$work/src-$1/infragen.lock" \
                --cache "$warm" --pki "$d/pki" --out "$d/out" >/dev/null 2>&1
            t1=$(now) ;;
        activate)
            t0=$(now)
            "$bin" activate "$work/prime-$1/$host" --root "$d/root" --host "$host" \
                --allow-unsigned >/dev/null 2>&1
            t1=$(now) ;;
    esac
    rm -rf "$d"
    echo $((t1 - t0))
}

printf '%-12s %8s %17s %12s %12s   (after/before, %d rounds, A B A B …)\n' \
    scenario median range before after "$rounds"
for s in ${SCENARIOS:-render-1000 build-cold build-warm activate}; do
    ratios=() as=() bs=()
    for r in $(seq "$rounds"); do
        a=$(run A "$s" "$r"); b=$(run B "$s" "$r")
        as+=("$a"); bs+=("$b")
        ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", b / a }')")
    done
    med() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    lo=$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)
    hi=$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)
    printf '%-12s %7.2fx %8.2f–%-8.2f %10.1fms %10.1fms\n' "$s" "$(med "${ratios[@]}")" \
        "$lo" "$hi" "$(awk -v n="$(med "${as[@]}")" 'BEGIN { print n / 1e6 }')" \
        "$(awk -v n="$(med "${bs[@]}")" 'BEGIN { print n / 1e6 }')"
done
