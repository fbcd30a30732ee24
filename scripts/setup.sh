#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build and run voicebotd:
# system packages (only the missing ones), then the models (verified, cached
# outside the clone). Safe to run again: it does nothing that is already done.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

APT_PACKAGES=(
  cmake clang libclang-dev pkg-config   # whisper.cpp and bindgen
  espeak-ng espeak-ng-data              # Piper phonemes, the Mandarin voice
  alsa-utils sox                        # real test speech, audio tools
  python3 python3-venv python3-pip      # models/fetch.py conversions
  baresip-core                          # real SIP peer for the phone-line tests
  mosquitto mosquitto-clients           # real MQTT broker for the fleet tests
  pulseaudio pulseaudio-utils libasound2-plugins  # paced virtual sound card for the kiosk tests
  ca-certificates
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node's npm may come from outside Debian (e.g. /usr/local); install Debian's only if absent.
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found: install a Rust toolchain >= 1.92 (rustup, or your distribution's rustc/cargo)" >&2
  exit 1
fi

python3 "$REPO_ROOT/models/fetch.py" --dir "$VOICEBOTD_MODEL_DIR"
