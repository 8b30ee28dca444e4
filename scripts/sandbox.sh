#!/usr/bin/env bash
# The CDS Hooks sandbox walk-through in one command: a local HAPI FHIR R4 server with the synthetic patients
# on it, dated for today, and the service in dev mode reading from it; then the sandbox URL to open. Ctrl-C
# stops both.
#
#   scripts/sandbox.sh
#
# The first run installs .venv and builds HAPI (downloads from PyPI and Maven Central); later runs need no
# network except the browser's, for the sandbox page itself.
# Environment:
#   HAPI_PORT        HAPI's port (default 8080, or a free one if 8080 is taken)
#   CDS_PORT         the service's port (default 8000)
#   SANDBOX_PATIENT  the patient the printed URL opens (default p10-smoker-depressed-chronic-pain)
#   SANDBOX_AS_OF    the day the patients are dated for (default: today, UTC)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CDS_PORT="${CDS_PORT:-8000}"
PATIENT="${SANDBOX_PATIENT:-p10-smoker-depressed-chronic-pain}"
SANDBOX="https://sandbox.cds-hooks.org"
# its own HAPI run folder: the integration tests' `scripts/hapi.sh stop` leaves this server alone
export HAPI_RUN_DIR="$ROOT/tests/hapi/run/sandbox"

log() { echo "sandbox: $*" >&2; }
die() { echo "sandbox: error: $*" >&2; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

command -v curl >/dev/null 2>&1 || die "curl not found on PATH"
if [[ -n "${HAPI_PORT:-}" ]]; then
  hapi_port="$HAPI_PORT"
elif [[ -f "$HAPI_RUN_DIR/base_url" ]] || ! listening 8080; then
  hapi_port=8080
else
  hapi_port=""  # 8080 is taken: scripts/hapi.sh picks a free port
  log "port 8080 is taken; HAPI gets a free port"
fi
if listening "$CDS_PORT"; then
  die "port $CDS_PORT is taken; stop what listens there or set CDS_PORT"
fi

cds_pid=""
cleanup() {
  trap - EXIT INT TERM
  if [[ -n "$cds_pid" ]] && kill -0 "$cds_pid" 2>/dev/null; then
    log "stopping the service"
    kill -TERM "$cds_pid" 2>/dev/null || true
    wait "$cds_pid" 2>/dev/null || true
  fi
  scripts/hapi.sh stop || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

./scripts/bootstrap.sh
base="$(scripts/hapi.sh start ${hapi_port:+--port "$hapi_port"} | tail -n 1)"
port="${base#http://127.0.0.1:}"
port="${port%%/*}"
browser_fhir="http://localhost:$port/fhir"  # what the sandbox is given, and so sends as fhirServer

as_of=()
[[ -n "${SANDBOX_AS_OF:-}" ]] && as_of=(--as-of "$SANDBOX_AS_OF")
.venv/bin/cds-service load-fixtures --fhir "$base" --wait 180 "${as_of[@]}"

# the service fetches what the sandbox's prefetch leaves out from the FHIR server the sandbox names
CDS_FHIR_ALLOWED_SERVERS="$browser_fhir,$base" .venv/bin/cds-service serve --dev --port "$CDS_PORT" &
cds_pid=$!
discovery="http://127.0.0.1:$CDS_PORT/cds-services"
deadline=$((SECONDS + 60))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$discovery" || true)" == "200" ]]; do
  kill -0 "$cds_pid" 2>/dev/null || die "the service exited during start-up"
  (( SECONDS < deadline )) || die "no answer from $discovery within 60 s"
  sleep 0.5
done

url() {
  .venv/bin/python - "$SANDBOX" "$browser_fhir" "http://localhost:$CDS_PORT/cds-services" "$1" <<'EOF'
import sys
from urllib.parse import urlencode

sandbox, fhir, discovery, patient = sys.argv[1:]
print(f"{sandbox}/?" + urlencode({"fhirServiceUrl": fhir, "serviceDiscoveryURL": discovery, "patientId": patient}))
EOF
}

cat <<EOF

FHIR server:  $browser_fhir  (HAPI FHIR R4, the synthetic patients above)
CDS service:  http://localhost:$CDS_PORT/cds-services  (dev mode: no JWT check)

Open the CDS Hooks sandbox on patient $PATIENT:

  $(url "$PATIENT")

Another patient: change patientId (the table above says which cards each one shows), or use the
sandbox's patient picker. Chrome asks to let the page reach services on this device (Local Network
Access): click Allow.

Ctrl-C stops the service and HAPI.
EOF
wait "$cds_pid"
