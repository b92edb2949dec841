#!/usr/bin/env bash
# Run peftc's test suite on a fresh machine: fetch the model and data the
# tests compare against, install the headless browser the report test uses,
# then the gates: formatting, clippy (warnings are errors), every default test.
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

# The real-Slurm test (tests/it/slurm_local.rs) starts a one-node Slurm
# from Debian's packages; in CI it fails without them.
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing slurm-wlm and munge for the Slurm test ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  else
    echo "warning: slurm-wlm/munge not found; the real-Slurm test will fail in CI mode" >&2
  fi
fi

# rustfmt and clippy come with the toolchain; add them where a minimal
# rustup profile left them out.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

bash scripts/setup.sh
echo "gate: cargo fmt --check"
cargo fmt --check
echo "gate: cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked "$@"
