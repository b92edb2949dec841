#!/usr/bin/env bash
# Builds, on a machine like the CI one (no GPU needed), the binaries that
# scripts/gpu-check.sh runs on a GPU machine, stripped, into gpu/bin/ (git-ignored):
#   peftc-cuda     --features cuda          (burn-cuda without fusion/autotune)
#   peftc-fusion   --features fusion        (cuda + burn's fusion and autotune)
#   peftc-cpu      the default ndarray build (the CPU reference losses)
# 0.21's burn-cuda compiles kernels with NVRTC at run time, so no CUDA
# toolkit is needed here; CUDARC_CUDA_VERSION names the driver API to bind.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p gpu/bin
export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}
build() { # name, features, target dir
    cargo build --release --locked $2 --target-dir "$3"
    cp "$3/release/peftc" "gpu/bin/$1"
    strip "gpu/bin/$1"
}
build peftc-cpu "" target
build peftc-cuda "--features cuda" target/cuda
build peftc-fusion "--features fusion" target/fusion
ls -la gpu/bin
