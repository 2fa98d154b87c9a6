#!/usr/bin/env bash
# Commands through the ACM server service on the memory store (b_service::partner_5_commands,
# 5 commands per lifecycle) against cqrs-es CqrsFramework + MemStore on the equivalent
# aggregate (../shared/peers/peer-bench), alternated in one run on one machine; prints each
# round, then min / median / max of both and the ratio of the medians.
#
#   scripts/bench-service-vs-peer.sh [ROUNDS] [EXTRA_ACM_BENCH ...]
#
# EXTRA_ACM_BENCH: more acm bench binaries to alternate (say, one built from an earlier
# commit), reported the same way. Builds acm's bench; copies and builds the peer in /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
shift || true

acm=$(cargo bench -p acm-store-memory --bench acm --no-run 2>&1 | sed -n 's/.*Executable benches\/acm.rs (\(.*\))/\1/p')
peers=/tmp/acm-peers
if [ ! -x /tmp/acm-peers-target/release/peer-bench ]; then
  rm -rf "$peers" && cp -r ../shared/peers "$peers"
  (cd "$peers/peer-bench" && CARGO_TARGET_DIR=/tmp/acm-peers-target cargo build --release --locked -q)
fi
peer=/tmp/acm-peers-target/release/peer-bench

# commands/s from divan's median time per 5-command lifecycle
acm_rate() {
  "$1" --bench b_service::partner_5_commands 2>/dev/null |
    awk -F'│' '/partner_5_commands/ { split($3, t, " "); v = t[1]; u = t[2];
      s = (u == "ns") ? v / 1e9 : (u == "µs") ? v / 1e6 : v / 1e3; printf "%.0f\n", 5 / s }'
}
peer_rate() {
  "$peer" --runs 1 2>/dev/null |
    awk -F'|' '/cqrs-es CqrsFramework \+ MemStore \|/ { gsub(/[^0-9\/]/, "", $4); split($4, m, "/"); print m[2] }'
}

binaries=("$acm" "$@")
declare -A results
for r in $(seq 1 "$rounds"); do
  line="round $r:"
  for i in "${!binaries[@]}"; do
    rate=$(acm_rate "${binaries[$i]}")
    results[$i]+="$rate "
    line+=" acm[$i]=$rate"
  done
  rate=$(peer_rate)
  results[peer]+="$rate "
  echo "$line peer=$rate" >&2
done

stats() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { printf "%d %d %d", a[1], a[int((NR + 1) / 2)], a[NR] }'; }
read -r pmin pmed pmax <<<"$(echo "${results[peer]}" | stats)"
echo "peer cqrs-es MemStore: min=$pmin median=$pmed max=$pmax commands/s"
for i in "${!binaries[@]}"; do
  read -r min med max <<<"$(echo "${results[$i]}" | stats)"
  ratio=$(awk -v a="$med" -v b="$pmed" 'BEGIN { printf "%.2f", a / b }')
  echo "acm ${binaries[$i]##*/}: min=$min median=$med max=$max commands/s ratio=${ratio}x"
done
