#!/usr/bin/env bash
# The test suite: unit, integration and end-to-end tests on the real engines
# and real audio. Installs what is missing first (see setup.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/setup.sh"
# The package test (tests/package.rs) builds the .deb with cargo-deb.
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0
cd "$REPO_ROOT"
cargo test --workspace --locked "$@"
