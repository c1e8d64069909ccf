#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, service, end-to-end over the real binaries)
# and the Python client test (grpcio stubs generated from proto/, through the gateway).
# Needs: a Rust toolchain, and a Python with grpcio and grpcio-tools: $VIRTPLANE_PYTHON, else
# python3 (.ci/run makes a venv with them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --workspace --bins
cargo test --workspace --no-fail-fast
"${VIRTPLANE_PYTHON:-python3}" tests/python/run_client_test.py
