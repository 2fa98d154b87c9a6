#!/usr/bin/env bash
# acm-bench against the peer benchmarks (../shared/peers), alternated round by round on one
# machine and one disk; prints each round's figures, then min / median / max of each and the
# ratios of the medians (and per round) acm/peer and acm/raw.
#
#   scripts/bench-vs-peers.sh [ROUNDS]        (default 3)
#
# Each round runs, in this order (flipped every other round at each durable concurrency, so
# drift does not always favour one side):
#   - acm `memory` warm and cold, and peer-bench's cqrs-es CqrsFramework + MemStore row;
#   - at 1, 8 and 64 tasks (N = 300 / 1280 / 1280, as in the peer README): acm `durable`,
#     `peer-bench-durable --sync full` and acm `raw` (one-row commits, the disk's rate).
# Env: BENCH_DIR (default target/bench-db; must be a real disk, not tmpfs),
#      CARGO_TARGET_DIR (default target/), PEERS_TARGET
#      (default /tmp/acm-peers-target), PEERS_SRC (default /tmp/peers).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
dir=${BENCH_DIR:-target/bench-db}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
peers_target=${PEERS_TARGET:-/tmp/acm-peers-target}
peers_src=${PEERS_SRC:-/tmp/peers}
mkdir -p "$dir"
if [ "$(stat -f -c %T "$dir")" = tmpfs ]; then
  echo "$dir is on tmpfs: an fsync costs nothing there; set BENCH_DIR to a real disk" >&2
  exit 1
fi

cargo build --release -q -p acm-bench
acm=$CARGO_TARGET_DIR/release/acm-bench
if [ ! -x "$peers_target/release/peer-bench" ] || [ ! -x "$peers_target/release/peer-bench-durable" ]; then
  [ -d "$peers_src" ] || cp -r ../shared/peers "$peers_src"
  (cd "$peers_src/peer-bench" && CARGO_TARGET_DIR=$peers_target cargo build --release --locked -q)
  (cd "$peers_src/peer-bench-durable" && CARGO_TARGET_DIR=$peers_target cargo build --release --locked -q)
fi
peer=$peers_target/release/peer-bench
peer_durable=$peers_target/release/peer-bench-durable

# field KEY from a key=value line on stdin
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
peer_mem_rate() {
  "$peer" --runs 1 2>/dev/null |
    awk -F'|' '/cqrs-es CqrsFramework \+ MemStore \|/ { gsub(/[^0-9\/]/, "", $4); split($4, m, "/"); print m[2]; exit }'
}

declare -A results
add() { results[$1]+="$2 "; }
nval() { case $1 in 1) echo 300 ;; *) echo 1280 ;; esac; }

for r in $(seq 1 "$rounds"); do
  warm=$("$acm" memory | field commands_per_sec)
  cold=$("$acm" memory --cold | field commands_per_sec)
  pm=$(peer_mem_rate)
  add mem_warm "$warm"; add mem_cold "$cold"; add mem_peer "$pm"
  line="round $r: memory acm_warm=$warm acm_cold=$cold peer=$pm;"
  for t in 1 8 64; do
    n=$(nval "$t")
    run_acm() { "$acm" durable --n "$n" --tasks "$t" --dir "$dir" | field commands_per_s; }
    run_peer() { "$peer_durable" --n "$n" --tasks "$t" --sync full --no-replay --dir "$dir" | field commands_per_s; }
    if (( (r + t) % 2 )); then a=$(run_acm); p=$(run_peer); else p=$(run_peer); a=$(run_acm); fi
    raw=$("$acm" raw --n "$n" --dir "$dir" | field commits_per_s)
    add "acm_$t" "$a"; add "peer_$t" "$p"; add "raw_$t" "$raw"
    add "ratio_peer_$t" "$(awk -v a="$a" -v b="$p" 'BEGIN { printf "%.2f", a / b }')"
    add "ratio_raw_$t" "$(awk -v a="$a" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')"
    add "ratio_peer_raw_$t" "$(awk -v a="$p" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')"
    line+=" tasks=$t acm=$a peer=$p raw=$raw;"
  done
  echo "$line" >&2
done

stats() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { printf "%s %s %s", a[1], a[int((NR + 1) / 2)], a[NR] }'; }
show() { read -r min med max <<<"$(echo "${results[$1]}" | stats)"; printf '%-44s min=%s median=%s max=%s\n' "$2" "$min" "$med" "$max"; }
med() { echo "${results[$1]}" | stats | cut -d' ' -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "== memory (commands/s, $rounds rounds)"
show mem_warm "acm memory warm"
show mem_cold "acm memory cold"
show mem_peer "peer cqrs-es CqrsFramework + MemStore"
echo "ratio of medians: warm/peer=$(ratio "$(med mem_warm)" "$(med mem_peer)") cold/peer=$(ratio "$(med mem_cold)" "$(med mem_peer)")"
for t in 1 8 64; do
  echo "== durable, tasks=$t n=$(nval "$t") (commands/s; raw: one-row commits/s)"
  show "acm_$t" "acm durable (SqliteAcmStore)"
  show "peer_$t" "peer cqrs-es + sqlite-es --sync full"
  show "raw_$t" "raw rusqlite one-row commits"
  show "ratio_peer_$t" "acm/peer per round"
  show "ratio_raw_$t" "acm/raw per round"
  show "ratio_peer_raw_$t" "peer/raw per round"
  echo "ratio of medians: acm/peer=$(ratio "$(med "acm_$t")" "$(med "peer_$t")") acm/raw=$(ratio "$(med "acm_$t")" "$(med "raw_$t")")"
done
