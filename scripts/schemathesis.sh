#!/usr/bin/env bash
# Schemathesis against two live `acm serve` processes (the example configurations on free
# ports, with `acm gen-certs` material), in three runs:
#   1. the client API of mc-a.example as alice (bearer token), from the OpenAPI document the
#      server serves at /openapi.json;
#   2. the client API of mc-b.example as bob, who has a request from alice pending, so the
#      link from the download leads to answering a real request;
#   3. the partner API of mc-b.example as mc-a.example (mutual TLS, A's certificate); the
#      partner listener serves no operations routes, so runs 2 and 3 read the document as a
#      file (as B serves it on its client listener).
# Every answer must be no 5xx, of a documented status and content type, with a body and
# headers that match the document (the checks are listed below). Exits non-zero when
# schemathesis finds anything, or runs past its time bound.
#
# Environment: SCHEMATHESIS_EXAMPLES (per operation, default 40), SCHEMATHESIS_SEED
# (default 1, so a run is repeatable; set another to explore), SCHEMATHESIS_REPORTS (a
# directory for each run's HAR and NDJSON reports, to see every call made), CARGO_TARGET_DIR.
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

# The debug binary as `cargo test --workspace` builds it (its features unified with the tests'),
# so after the test step of .ci/run this builds nothing; `cargo build -p acm-cli` would build
# another feature set.
cargo test --workspace --no-run --quiet
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

# Every check schemathesis has but two: positive_data_acceptance expects a 2xx (or 401, 403,
# 404, 409) for any schema-valid body, and acm refuses some schema-valid submissions with a
# 422 by design: an Idempotency-Key used before for other content (schemathesis reuses its
# short keys), a group listed twice in two spellings of one SIP URI, a target outside the
# partner; object_level_authorization needs a second user's credentials on the same server.
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
checks+=,response_headers_conformance,negative_data_rejection,missing_required_header
checks+=,unsupported_method,allow_header_conformance,ignored_auth,use_after_free
checks+=,ensure_resource_availability
common=(
    --checks "$checks"
    --max-examples "$examples"
    --seed "$seed"
    --generation-database none
    --request-timeout 15
    --no-color
    --suppress-health-check too_slow,filter_too_much
)
if [[ -n ${SCHEMATHESIS_REPORTS:-} ]]; then
    mkdir -p "$SCHEMATHESIS_REPORTS"
    reports=$(cd "$SCHEMATHESIS_REPORTS" && pwd)
fi
report() {
    if [[ -n ${reports:-} ]]; then
        echo --report har,ndjson --report-dir "$reports/$1"
    fi
}
status=0
# requests lets these variables override the CA a call names; each run names its own.
unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE

echo "== schemathesis: client API of mc-a.example, as sip:alice@mc-a.example"
# The notification stream is excluded: it is an SSE stream that only ends when the server
# stops, so schemathesis would wait on it until its request timeout for every example.
# The partner operations are on the other listener (below).
timeout 150 "$venv/bin/schemathesis" run "https://localhost:$a_client/openapi.json" \
    "${common[@]}" \
    --header "Authorization: Bearer $alice" \
    --tls-verify certs/mc-a.example/ca.pem \
    --include-tag client \
    --exclude-path /acm/v1/pending-acm-data/notifications \
    $(report client-a) ||
    status=$?

# B serves the same document; the runs against B read it as a file (one CA per run).
curl --silent --fail --cacert certs/mc-b.example/ca.pem "https://localhost:$b_client/openapi.json" >openapi.json

echo "== schemathesis: client API of mc-b.example, as sip:bob@mc-b.example"
# A request from alice to bob, so that bob's download lists one and the link from the download
# leads schemathesis to answering it.
bob=$("$acm" gen-token --key certs/tokens/token-key.pem --issuer https://idms.mc-b.example \
    --audience acm.mc-b.example --user sip:bob@mc-b.example)
curl --silent --fail --cacert certs/mc-a.example/ca.pem -H "Authorization: Bearer $alice" \
    -H "Idempotency-Key: schemathesis-for-bob" -H "Content-Type: application/json" \
    -d '{"partner":"mc-b.example","target":{"kind":"user","id":"sip:bob@mc-b.example"},"groups":["sip:fire-ops@mc-a.example"]}' \
    "https://localhost:$a_client/acm/v1/interconnection-group-identity-provision/requests" >/dev/null
for i in $(seq 1 100); do
    # The relay delivers it to B within a tick; peeking at B's store would be no better.
    if curl --silent --fail --cacert certs/mc-b.example/ca.pem -H "Authorization: Bearer $bob" \
        "https://localhost:$b_client/acm/v1/pending-acm-data" | grep -q '"item":"request"'; then
        break
    fi
    sleep 0.2
    if [[ $i -eq 100 ]]; then
        echo "schemathesis.sh: bob's download did not list alice's request; the run goes on without it" >&2
    fi
done
timeout 150 "$venv/bin/schemathesis" run openapi.json \
    --url "https://localhost:$b_client" \
    "${common[@]}" \
    --header "Authorization: Bearer $bob" \
    --tls-verify certs/mc-b.example/ca.pem \
    --include-tag client \
    --exclude-path /acm/v1/pending-acm-data/notifications \
    $(report client-b) ||
    status=$?

echo "== schemathesis: partner API of mc-b.example, as mc-a.example (mutual TLS)"
# No stateful phase: no partner answer names anything a link could lead to.
timeout 120 "$venv/bin/schemathesis" run openapi.json \
    --url "https://localhost:$b_partner" \
    "${common[@]}" \
    --tls-verify certs/mc-b.example/ca.pem \
    --request-cert certs/mc-a.example/cert.pem \
    --request-cert-key certs/mc-a.example/key.pem \
    --include-tag partner \
    --phases examples,coverage,fuzzing \
    $(report partner-b) ||
    status=$?

if [[ $status -ne 0 ]]; then
    echo "schemathesis.sh: schemathesis found problems (exit $status); server logs follow" >&2
    tail -n 50 a.log b.log >&2
fi
exit "$status"
