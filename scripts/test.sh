#!/usr/bin/env bash
# The test suite: unit, integration and end-to-end tests on the real engines
# and real audio. Installs what is missing first (see setup.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"
cargo test --workspace --locked "$@"
