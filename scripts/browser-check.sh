#!/usr/bin/env bash
# Load an HTML report in headless chromium: check that the DOM has its tables
# and SVG plots, and take desktop and phone screenshots to look at.
#
#   scripts/browser-check.sh [report.html ...]   (default: every reports/*.html)
#
# Screenshots go to target/browser-check/<name>-{desktop,phone}.png.
# Needs Debian's chromium (apt-get install -y chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${PEFTC_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$bin" ]; then
  echo "browser-check: chromium not found (apt-get install -y chromium)" >&2
  exit 2
fi

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  shopt -s nullglob
  files=(reports/*.html)
fi
if [ ${#files[@]} -eq 0 ]; then
  echo "browser-check: no HTML reports given and none in reports/" >&2
  exit 2
fi

outdir=target/browser-check
mkdir -p "$outdir"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --hide-scrollbars "--user-data-dir=$profile")

status=0
for f in "${files[@]}"; do
  url="file://$(realpath "$f")"
  name=$(basename "$f" .html)
  dom=$(timeout 120 "$bin" "${flags[@]}" --dump-dom "$url" 2>/dev/null)
  tables=$(grep -o '<table' <<<"$dom" | wc -l)
  svgs=$(grep -o '<svg' <<<"$dom" | wc -l)
  echo "$f: $tables tables, $svgs SVG plots in the DOM"
  if [ "$tables" -lt 1 ] || ! grep -q 'id="provenance"' <<<"$dom"; then
    echo "  FAIL: tables or provenance footer missing" >&2
    status=1
  fi
  for shot in desktop:1280,3000 phone:390,2400; do
    png="$outdir/$name-${shot%%:*}.png"
    timeout 120 "$bin" "${flags[@]}" "--screenshot=$png" "--window-size=${shot#*:}" "$url" >/dev/null 2>&1
    echo "  screenshot $png"
  done
done
exit $status
