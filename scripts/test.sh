#!/usr/bin/env bash
# Run peftc's test suite on a fresh machine: fetch the model and data the
# tests compare against, install the headless browser the report test uses,
# then run every default test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v chromium >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the HTML report test ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  else
    echo "warning: chromium not found; the headless-browser report test will fail in CI mode" >&2
  fi
fi

bash scripts/setup.sh
cargo test --locked "$@"
