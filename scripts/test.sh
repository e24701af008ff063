#!/usr/bin/env bash
# The project's one test command (README "Run the tests"; CI runs exactly this).
# Format check, clippy with warnings as errors, then every test with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo nextest run --workspace --no-fail-fast "$@"
