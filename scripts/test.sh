#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, service, end-to-end over the real binaries)
# and the Python client test (grpcio stubs generated from proto/, through the gateway).
# Needs: a Rust toolchain, python3 with grpcio and grpcio-tools (.ci/run installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --workspace --bins
cargo test --workspace --no-fail-fast
python3 tests/python/run_client_test.py
