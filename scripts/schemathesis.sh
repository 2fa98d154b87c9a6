#!/usr/bin/env bash
# Schemathesis against two live `acm serve` processes: the client API of system A, as alice
# with a bearer token, from the OpenAPI document A serves at /openapi.json; then the partner
# API of system B over mutual TLS, as A (A's certificate), from the same document given as a
# file, since the partner listener serves no operations routes. Every response must be no
# 5xx, of a documented status and content type, with a body and headers that match the
# document. Exits non-zero when schemathesis finds anything.
#
# Environment: SCHEMATHESIS_EXAMPLES (per operation, default 40), SCHEMATHESIS_SEED
# (default 1, so a run is repeatable; set another to explore), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

version=4.32.5
examples=${SCHEMATHESIS_EXAMPLES:-40}
seed=${SCHEMATHESIS_SEED:-1}
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
venv=$target/schemathesis-venv

# The venv outlives the run (under the target directory), so a second run installs nothing.
if [[ ! -x $venv/bin/schemathesis ]] || ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $version\$"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
"$venv/bin/schemathesis" --version

# A debug build: `cargo test` before this step has built it already.
cargo build --quiet -p acm-cli --bin acm
acm=$target/debug/acm

work=$(mktemp -d)
pids=()
stop() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap stop EXIT

# Four free loopback ports, so the run never meets another server on the examples' ports.
read -r a_client a_partner b_client b_partner < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

cd "$work"
"$acm" gen-certs --out certs mc-a.example mc-b.example >/dev/null
sed -e "s/127.0.0.1:8443/127.0.0.1:$a_client/" -e "s/127.0.0.1:8444/127.0.0.1:$a_partner/" \
    -e "s#https://localhost:9444#https://localhost:$b_partner#" \
    "$root/docs/examples/mc-a.example.toml" >mc-a.example.toml
sed -e "s/127.0.0.1:9443/127.0.0.1:$b_client/" -e "s/127.0.0.1:9444/127.0.0.1:$b_partner/" \
    -e "s#https://localhost:8444#https://localhost:$a_partner#" \
    "$root/docs/examples/mc-b.example.toml" >mc-b.example.toml
"$acm" serve --config mc-a.example.toml >a.log 2>&1 &
pids+=($!)
"$acm" serve --config mc-b.example.toml >b.log 2>&1 &
pids+=($!)

ready() {
    local url=$1 ca=$2 i
    for i in $(seq 1 100); do
        if curl --silent --fail --cacert "$ca" "$url" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "schemathesis.sh: $url did not become ready" >&2
    cat a.log b.log >&2
    return 1
}
ready "https://localhost:$a_client/readyz" certs/mc-a.example/ca.pem
ready "https://localhost:$b_client/readyz" certs/mc-b.example/ca.pem

alice=$("$acm" gen-token --key certs/tokens/token-key.pem --issuer https://idms.mc-a.example \
    --audience acm.mc-a.example --user sip:alice@mc-a.example)

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
common=(
    --checks "$checks"
    --max-examples "$examples"
    --seed "$seed"
    --generation-database none
    --request-timeout 15
    --no-color
    --suppress-health-check too_slow,filter_too_much
)
status=0

echo "== schemathesis: client API of mc-a.example, as sip:alice@mc-a.example"
# The notification stream is excluded: it is an SSE stream that only ends when the server
# stops, so schemathesis would wait on it until its request timeout for every example.
# The partner operations are on the other listener (below).
timeout 150 "$venv/bin/schemathesis" run "https://localhost:$a_client/openapi.json" \
    "${common[@]}" \
    --header "Authorization: Bearer $alice" \
    --tls-verify certs/mc-a.example/ca.pem \
    --include-tag client \
    --exclude-path /acm/v1/pending-acm-data/notifications ||
    status=$?

echo "== schemathesis: partner API of mc-b.example, as mc-a.example (mutual TLS)"
curl --silent --fail --cacert certs/mc-a.example/ca.pem "https://localhost:$a_client/openapi.json" >openapi.json
timeout 120 "$venv/bin/schemathesis" run openapi.json \
    --url "https://localhost:$b_partner" \
    "${common[@]}" \
    --tls-verify certs/mc-b.example/ca.pem \
    --request-cert certs/mc-a.example/cert.pem \
    --request-cert-key certs/mc-a.example/key.pem \
    --include-tag partner ||
    status=$?

if [[ $status -ne 0 ]]; then
    echo "schemathesis.sh: schemathesis found problems (exit $status); server logs follow" >&2
    tail -n 50 a.log b.log >&2
fi
exit "$status"
