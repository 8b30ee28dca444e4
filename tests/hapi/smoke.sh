#!/usr/bin/env bash
# Smoke test for a running HAPI FHIR R4 server (see scripts/hapi.sh).
#
#   tests/hapi/smoke.sh http://127.0.0.1:PORT/fhir
#
# Checks: metadata; PUT with a client-assigned, non-numeric id; a transaction Bundle
# with PUT entries; Condition?patient=; Observation?patient=&_count=2 following every
# `next` link; Observation?code=system|code,system|code; _tag search; conditional
# delete by _tag and DELETE by id. Cleans up after itself, so it can be re-run against
# the same server. Exits non-zero on the first failure. Needs curl and python3.
set -euo pipefail

BASE="${1:-}"
if [[ -z "$BASE" ]]; then
  echo "usage: $0 <base-url, e.g. http://127.0.0.1:8080/fhir>" >&2
  exit 2
fi
BASE="${BASE%/}"
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "smoke: $tool is required" >&2; exit 2; }
done

TAG_SYS="urn:hapi-smoke"
TAG_CODE="smoke-test"
LOINC="http://loinc.org"
PID="pf-test-1"
CT="Content-Type: application/fhir+json"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*" >&2; exit 1; }

# req METHOD URL [BODY] -> body in $TMP/body, status code in $STATUS
req() {
  local method="$1" url="$2" body="${3:-}"
  if [[ -n "$body" ]]; then
    STATUS=$(curl -sS -o "$TMP/body" -w '%{http_code}' -X "$method" -H "$CT" -H 'Accept: application/fhir+json' --data-binary "$body" "$url")
  else
    STATUS=$(curl -sS -o "$TMP/body" -w '%{http_code}' -X "$method" -H 'Accept: application/fhir+json' "$url")
  fi
}

expect_status() { # expected... ; uses $STATUS and $1 as label
  local label="$1"; shift
  for s in "$@"; do [[ "$STATUS" == "$s" ]] && { pass "$label (HTTP $STATUS)"; return 0; }; done
  echo "--- response body:" >&2; head -c 2000 "$TMP/body" >&2 || true; echo >&2
  fail "$label: HTTP $STATUS, expected $*"
}

# jq-like helper: evaluate a python expression with `d` = parsed JSON body
py() { python3 -c "import json,sys; d=json.load(open('$TMP/body')); print($1)"; }

# Collect all resource ids of a search, following `next` links. Prints "<pages> <ids...>".
search_all() {
  python3 - "$1" <<'EOF'
import json, sys, urllib.request
url, pages, ids = sys.argv[1], 0, []
while url:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "application/fhir+json"})) as r:
        b = json.load(r)
    pages += 1
    ids += [e["resource"]["resourceType"] + "/" + e["resource"]["id"]
            for e in b.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
    url = next((l["url"] for l in b.get("link", []) if l["relation"] == "next"), None)
    if pages > 50:
        sys.exit("too many pages")
print(pages, " ".join(sorted(ids)))
EOF
}

count_of() { set -- $(search_all "$1"); echo $(( $# - 1 )); }

cleanup() {
  for t in Observation Condition Patient; do
    req DELETE "$BASE/$t?_tag=$TAG_SYS|$TAG_CODE"
    [[ "$STATUS" == 200 || "$STATUS" == 204 || "$STATUS" == 404 ]] || fail "cleanup DELETE $t?_tag: HTTP $STATUS"
  done
}

echo "# HAPI smoke test against $BASE"

# 1. metadata
req GET "$BASE/metadata"
expect_status "GET /metadata" 200
[[ "$(py 'd["resourceType"]+" "+d["fhirVersion"]')" == "CapabilityStatement 4.0.1" ]] || fail "metadata is not an R4 CapabilityStatement"
pass "CapabilityStatement fhirVersion 4.0.1"

cleanup   # leftovers of an interrupted earlier run

META="\"meta\":{\"tag\":[{\"system\":\"$TAG_SYS\",\"code\":\"$TAG_CODE\"}]}"

# 2. PUT with a client-assigned, non-numeric id
req PUT "$BASE/Patient/$PID" "{\"resourceType\":\"Patient\",\"id\":\"$PID\",$META,\"name\":[{\"family\":\"Smoke\",\"given\":[\"Test\"]}],\"gender\":\"female\",\"birthDate\":\"1970-01-01\"}"
expect_status "PUT Patient/$PID" 200 201
[[ "$(py 'd["id"]')" == "$PID" ]] || fail "PUT returned a different id"

# 3. transaction Bundle with PUT entries: 1 Condition + 5 Observations
ENTRIES="{\"fullUrl\":\"$BASE/Condition/pf-test-cond-1\",\"resource\":{\"resourceType\":\"Condition\",\"id\":\"pf-test-cond-1\",$META,\"clinicalStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/condition-clinical\",\"code\":\"active\"}]},\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"38341003\",\"display\":\"Hypertension\"}]},\"subject\":{\"reference\":\"Patient/$PID\"}},\"request\":{\"method\":\"PUT\",\"url\":\"Condition/pf-test-cond-1\"}}"
CODES=(8480-6 8480-6 8462-4 8462-4 29463-7)
for i in 1 2 3 4 5; do
  c="${CODES[$((i-1))]}"
  ENTRIES+=",{\"fullUrl\":\"$BASE/Observation/pf-test-obs-$i\",\"resource\":{\"resourceType\":\"Observation\",\"id\":\"pf-test-obs-$i\",$META,\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"$LOINC\",\"code\":\"$c\"}]},\"subject\":{\"reference\":\"Patient/$PID\"},\"effectiveDateTime\":\"2024-01-0${i}T10:00:00Z\",\"valueQuantity\":{\"value\":$((100+i)),\"unit\":\"mm[Hg]\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}},\"request\":{\"method\":\"PUT\",\"url\":\"Observation/pf-test-obs-$i\"}}"
done
req POST "$BASE" "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[$ENTRIES]}"
expect_status "POST transaction Bundle (6 PUT entries)" 200
[[ "$(py 'd["type"]')" == "transaction-response" ]] || fail "not a transaction-response"
N_OK=$(py 'sum(1 for e in d["entry"] if e["response"]["status"].split()[0] in ("200","201"))')
[[ "$N_OK" == 6 ]] || fail "transaction: $N_OK of 6 entries succeeded"
pass "transaction-response has 6 successful entries"

# 4. Condition?patient=
N=$(count_of "$BASE/Condition?patient=$PID")
[[ "$N" == 1 ]] || fail "Condition?patient=$PID returned $N, expected 1"
pass "Condition?patient=$PID -> 1"

# 5. paging: _count=2 and follow next links
set -- $(search_all "$BASE/Observation?patient=$PID&_count=2")
PAGES="$1"; shift
[[ $# == 5 && "$PAGES" == 3 ]] || fail "Observation?patient=$PID&_count=2: $# resources on $PAGES pages, expected 5 on 3 ($*)"
pass "Observation?patient=$PID&_count=2 -> 5 resources over 3 pages via next links"
req GET "$BASE/Observation?patient=$PID&_count=2"
NEXT=$(py 'next((l["url"] for l in d.get("link",[]) if l["relation"]=="next"), "")')
[[ "$NEXT" == "$BASE"* ]] || fail "next link '$NEXT' does not start with $BASE"
pass "next link is under the base URL (${NEXT%%\?*}?...)"

# 6. token search, OR list of system|code
N=$(count_of "$BASE/Observation?patient=$PID&code=$LOINC|8480-6,$LOINC|8462-4")
[[ "$N" == 4 ]] || fail "Observation code OR search returned $N, expected 4"
pass "Observation?patient=$PID&code=loinc|8480-6,loinc|8462-4 -> 4"
N=$(count_of "$BASE/Observation?subject=Patient/$PID&code=$LOINC|29463-7")
[[ "$N" == 1 ]] || fail "Observation?subject=&code= returned $N, expected 1"
pass "Observation?subject=Patient/$PID&code=loinc|29463-7 -> 1"

# 7. _tag search
for t in Patient:1 Condition:1 Observation:5; do
  N=$(count_of "$BASE/${t%%:*}?_tag=$TAG_SYS|$TAG_CODE")
  [[ "$N" == "${t##*:}" ]] || fail "${t%%:*}?_tag returned $N, expected ${t##*:}"
  pass "${t%%:*}?_tag=$TAG_SYS|$TAG_CODE -> $N"
done

# 8. deletes: conditional (many) by tag, then by id
req DELETE "$BASE/Observation?_tag=$TAG_SYS|$TAG_CODE"
expect_status "DELETE Observation?_tag=... (5 matches)" 200 204
N=$(count_of "$BASE/Observation?patient=$PID")
[[ "$N" == 0 ]] || fail "after delete, Observation?patient= returned $N"
req DELETE "$BASE/Condition/pf-test-cond-1"
expect_status "DELETE Condition/pf-test-cond-1" 200 204
req DELETE "$BASE/Patient/$PID"
expect_status "DELETE Patient/$PID" 200 204
req GET "$BASE/Patient/$PID"
expect_status "GET deleted Patient/$PID is gone" 410
N=$(count_of "$BASE/Patient?_tag=$TAG_SYS|$TAG_CODE")
[[ "$N" == 0 ]] || fail "after delete, Patient?_tag returned $N"
pass "nothing tagged left"

echo "# all smoke checks passed"
