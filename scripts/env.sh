# Sourced by the other scripts: where models live, and what the build needs.
# shellcheck shell=bash
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VOICEBOTD_MODEL_DIR="${VOICEBOTD_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voicebotd/models}"
# sherpa-rs links the sherpa-onnx C API from the wheel that models/fetch.py unpacks.
export SHERPA_LIB_PATH="$VOICEBOTD_MODEL_DIR/sherpa-onnx"
# Portable whisper.cpp builds unless the caller asks for native CPU features.
export GGML_NATIVE="${GGML_NATIVE:-OFF}"
