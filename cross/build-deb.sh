#!/usr/bin/env bash
# Builds the voicebotd .deb for this machine's architecture with cargo-deb:
# the binary, the systemd units, the appliance config, the model fetch tools and
# the runtime libraries it loads (sherpa-onnx C API and ONNX Runtime, found by
# the binary's rpath $ORIGIN/../lib/voicebotd).
#
#   cross/build-deb.sh            # -> target/debian/voicebotd_<version>_<arch>.deb
#
# Needs the models' sherpa-onnx runtime (scripts/setup.sh) and cargo-deb
# (installed with `cargo install cargo-deb --locked` if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
cargo build --release --locked -p voicebotd
staging=target/deb-staging/lib
rm -rf "$staging" && mkdir -p "$staging"
for lib in libsherpa-onnx-c-api.so libonnxruntime.so; do
  src="$SHERPA_LIB_PATH/lib/$lib"
  [ -f "$src" ] || { echo "build-deb: missing $src: run scripts/setup.sh first" >&2; exit 1; }
  cp -L "$src" "$staging/"
done
# The binary needs nothing else from the model dir at run time.
ldd target/release/voicebotd | grep -q 'not found' && { ldd target/release/voicebotd; exit 1; }
cargo deb -p voicebotd --no-build --no-strip
ls -l target/debian/*.deb
