#!/usr/bin/env bash
# run.sh - the whole test suite: install missing dependencies, configure, build
# (CUDA backend too when nvcc is found; its GPU tests skip without a GPU), run ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
cd "$BUILD"
ctest --output-on-failure -j"$(nproc)" --timeout 600
