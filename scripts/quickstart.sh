#!/usr/bin/env bash
# The main job on the embedded default: fetch model + data, build peftc,
# train the quick suite and render its report into reports/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
cargo build --release --locked
./target/release/peftc run specs/quick "$@"
