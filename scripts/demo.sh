#!/usr/bin/env bash
# The main job on the embedded default config: two bundled sample calls played
# through the real engines (VAD, Whisper, intent, Piper), printing
# transcript → intent → reply and writing the reply WAVs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"
cargo build --release --locked -p voicebotd
BIN="$REPO_ROOT/target/release/voicebotd"
CALLS="$REPO_ROOT/tests/fixtures/calls"
echo "== call 1: order status =="
"$BIN" simulate --reply-dir "$REPO_ROOT/target/demo/call-1" "$CALLS"/order-{1,2,3}.wav
echo "== call 2: stolen card =="
"$BIN" simulate --reply-dir "$REPO_ROOT/target/demo/call-2" "$CALLS/stolen-1.wav"
echo "reply audio: $REPO_ROOT/target/demo/"
