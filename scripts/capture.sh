#!/usr/bin/env bash
# Build the capture app's libraries: SMART's fhirclient and NLM's LHC-Forms, installed by `npm ci` from
# scripts/capture/package-lock.json (exact versions, integrity-checked, install scripts off) and their
# published, already-built browser files copied into cds_service/web/capture_app/vendor/. Only when needed:
# vendor/ missing or the lockfile changed since the last build. Otherwise it does nothing and needs no
# network, so a second start works offline. Without npm it says so and leaves the service to start without
# the app (/capture/ then answers 503 with the command to run).
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=scripts/capture
vendor=cds_service/web/capture_app/vendor
stamp="$vendor/.built"
wanted=$(cat "$source_dir/package.json" "$source_dir/package-lock.json" "$0" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "capture: npm (Node 20 or newer) is not installed; the service starts without the capture app" >&2
  exit 0
fi
echo "capture: installing fhirclient and LHC-Forms from scripts/capture/package-lock.json" >&2
(cd "$source_dir" && npm ci --loglevel=error)
lforms="$source_dir/node_modules/lforms/dist/lforms"
fhirclient="$source_dir/node_modules/fhirclient/build"
rm -rf "$vendor.new"
mkdir -p "$vendor.new/lforms/fhir/R4"
cp "$fhirclient/fhir-client.min.js" "$fhirclient/fhir-client.min.js.LICENSE.txt" "$vendor.new/"
cp "$source_dir/node_modules/fhirclient/LICENSE" "$vendor.new/fhirclient-LICENSE"
for file in styles.css assets/lib/zone.min.js runtime.js polyfills.js main.js \
  down_arrow_gray_10_10.png magnifying_glass.png; do
  cp "$lforms/webcomponent/$file" "$vendor.new/lforms/"
done
cp "$lforms/fhir/R4/lformsFHIR.min.js" "$vendor.new/lforms/fhir/R4/"
cp "$lforms/LICENSE.md" "$vendor.new/lforms/LICENSE.md"
echo "$wanted" >"$vendor.new/.built"
rm -rf "$vendor"
mv "$vendor.new" "$vendor"
echo "capture: built $vendor" >&2
