#!/usr/bin/env bash
# Builds the voicebotd .deb for this machine's architecture with cargo-deb:
# the binary, the systemd units, the appliance config, the model fetch tools and
# the runtime libraries it loads (sherpa-onnx C API and ONNX Runtime, found by
# the binary's rpath $ORIGIN/../lib/voicebotd).
#
#   cross/build-deb.sh                    # -> target/debian/voicebotd_<version>_<arch>.deb
#   cross/build-deb.sh --profile dev --no-build --output DIR
#                                         # a quick, stripped package of the debug build
#                                         # as it is (what tests/package.rs checks)
#
# Needs the models' sherpa-onnx runtime (scripts/setup.sh) and cargo-deb
# (installed with `cargo install cargo-deb --locked` if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
profile=release
output=target/debian
build=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    --no-build) build=no; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build-deb: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
[ "$build" = no ] || cargo build --profile "$profile" --locked -p voicebotd
bin_dir=target/$([ "$profile" = dev ] && echo debug || echo "$profile")
staging=target/deb-staging/lib
rm -rf "$staging" && mkdir -p "$staging"
for lib in libsherpa-onnx-c-api.so libonnxruntime.so; do
  src="$SHERPA_LIB_PATH/lib/$lib"
  [ -f "$src" ] || { echo "build-deb: missing $src: run scripts/setup.sh first" >&2; exit 1; }
  cp -L "$src" "$staging/"
done
# The binary needs nothing else from the model dir at run time.
ldd "$bin_dir/voicebotd" | grep -q 'not found' && { ldd "$bin_dir/voicebotd"; exit 1; }
mkdir -p "$output"
if [ "$profile" = release ]; then
  cargo deb -p voicebotd --no-build --no-strip --output "$output"
else
  # A debug build is ~300 MB with symbols: strip it and compress fast.
  cargo deb -p voicebotd --no-build --profile "$profile" --strip --fast --output "$output"
fi
ls -l "$output"/*.deb
