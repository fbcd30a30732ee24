#!/usr/bin/env bash
# Cross-builds voicebotd for NVIDIA Jetson boxes (aarch64-unknown-linux-gnu) on a
# Debian 12 (bookworm) x86_64 machine, offline apart from the package registries.
#
#   cross/build-aarch64.sh [--jetpack 6|5] [--smoke] [--debug]
#
#   --jetpack 6  (default) JetPack 6 (Ubuntu 22.04, glibc 2.35): gcc-aarch64-linux-gnu
#                linker, Debian's Rust (rustc-web, cargo-web) with its aarch64 std
#                (libstd-rust-web-dev:arm64). The result needs glibc 2.34.
#   --jetpack 5  JetPack 5 (Ubuntu 20.04, glibc 2.31): the same compiler and std, linked
#                by cargo-zigbuild (zig, from PyPI `ziglang`) against glibc 2.31
#                (target aarch64-unknown-linux-gnu.2.31).
#   --smoke      then run the binary under qemu-aarch64-static: --version,
#                print-default-config, check-config, print-default-pack, check-pack.
#                Nothing that loads a model: ONNX Runtime crashes under qemu.
#   --debug      a debug build (default: release).
#
# Output: a tree in the .deb's layout, to copy to the box under a prefix
# (e.g. /opt/voicebotd or /usr/local):
#
#   target/aarch64/jetpack<N>/bin/voicebotd
#   target/aarch64/jetpack<N>/lib/voicebotd/{libsherpa-onnx-c-api.so,libonnxruntime.so}
#   target/aarch64/jetpack<N>/share/voicebotd/models/   (fetch.py and the manifest)
#
# Missing Debian packages are installed with apt-get (arm64 added as a foreign
# architecture); the aarch64 sherpa-onnx runtime (sherpa-onnx-core 1.12.10 from
# PyPI, with its ONNX Runtime 1.17.1, the one `ort` loads) is fetched and verified
# against models/manifest.toml into $VOICEBOTD_CROSS_DIR (default
# ~/.cache/voicebotd/cross-aarch64). Cargo builds into target/cross-aarch64/jetpack<N>,
# never the default target dir. The `cuda` feature is not cross-built (it needs the
# box's CUDA toolkit); build it on the box, see cross/README.md.
#
# Why Debian's Rust and not rustup's: rustup cannot download the aarch64 std
# offline, and a std only works with the compiler it was built by, so the cross
# build uses /usr/bin/cargo and /usr/bin/rustc (1.96) whatever rustup provides.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

jetpack=6 smoke=0 profile=release
while (($#)); do
  case "$1" in
    --jetpack) jetpack="${2:-}"; shift 2 ;;
    --jetpack=*) jetpack="${1#*=}"; shift ;;
    --smoke) smoke=1; shift ;;
    --debug) profile=debug; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build-aarch64: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$jetpack" in
  6) glibc_max=2.35 ;;
  5) glibc_max=2.31 ;;
  *) echo "build-aarch64: --jetpack must be 6 or 5, not '$jetpack'" >&2; exit 2 ;;
esac

TARGET=aarch64-unknown-linux-gnu
CROSS_DIR="${VOICEBOTD_CROSS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voicebotd/cross-aarch64}"
OUT_DIR="target/aarch64/jetpack$jetpack"
# One target dir per JetPack: their linkers differ, sharing one would rebuild everything.
export CARGO_TARGET_DIR="$REPO_ROOT/target/cross-aarch64/jetpack$jetpack"
# Debian's toolchain, whatever rustup puts first on PATH (see the header).
CARGO=/usr/bin/cargo
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc

say() { echo "build-aarch64: $*" >&2; }

install_missing() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  say "installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The C/C++ cross compilers (whisper.cpp), Debian's Rust with the aarch64 std,
# the arm64 headers and libraries the crates link (ALSA for the kiosk channel's
# cpal, OpenSSL for crates that want it), qemu for --smoke, clang for bindgen.
install_missing gcc-aarch64-linux-gnu g++-aarch64-linux-gnu binutils-aarch64-linux-gnu \
  rustc-web cargo-web libstd-rust-web-dev:arm64 libasound2-dev:arm64 libssl-dev:arm64 \
  cmake clang libclang-dev pkg-config qemu-user-static file
host_rustc="$($RUSTC --version | cut -d' ' -f2)"
std_pkg="$(dpkg-query -W -f='${Version}' libstd-rust-web-dev:arm64)"
[[ "$std_pkg" == "$host_rustc"* ]] || {
  say "rustc $host_rustc and libstd-rust-web-dev:arm64 $std_pkg differ: upgrade both (apt-get install rustc-web libstd-rust-web-dev:arm64)"
  exit 1
}

python3 cross/fetch_runtime.py --arch aarch64 --dir "$CROSS_DIR"
export SHERPA_LIB_PATH="$CROSS_DIR/sherpa-onnx"
export GGML_NATIVE=OFF   # portable across Xavier (ARMv8.2) and Orin (ARMv8.2+)

# The pkg-config crate (alsa-sys for the kiosk's cpal) reads the arm64 .pc files.
export PKG_CONFIG_aarch64_unknown_linux_gnu=pkg-config
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig

release=(); [ "$profile" = release ] && release=(--release)
if [ "$jetpack" = 6 ]; then
  # The cc, cmake and bindgen crates pick these up for the target only.
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  build=("$CARGO" build --locked -p voicebotd "${release[@]}" --target "$TARGET")
else
  # zig from PyPI in a venv of its own; cargo-zigbuild from crates.io. cargo-zigbuild
  # finds zig as `python3 -m ziglang` when no `zig` is on PATH.
  venv="$CROSS_DIR/zig-venv"
  [ -x "$venv/bin/python3" ] || python3 -m venv "$venv"
  "$venv/bin/python3" -c 'import ziglang' 2>/dev/null ||
    "$venv/bin/python3" -m pip install -q --disable-pip-version-check 'ziglang==0.15.2'
  command -v cargo-zigbuild >/dev/null || cargo install --locked cargo-zigbuild --version 0.24.1
  export PATH="$venv/bin:$PATH" CARGO   # cargo-zigbuild runs $CARGO, Debian's
  # Debian 12's arm64 libasound.so (for the kiosk's cpal) was linked against glibc
  # 2.34, so lld's check of its undefined symbols against zig's glibc 2.31 fails.
  # On the box, JetPack 5's own libasound (built for 2.31) is loaded instead, so
  # that check is skipped, for the final link only (`rustc`, not `build`, so the
  # dependencies keep their fingerprints); the binary's own symbols stay <= 2.31.
  build=(cargo-zigbuild rustc --locked -p voicebotd --bin voicebotd "${release[@]}"
    --target "$TARGET.2.31" -- -C link-arg=-Wl,--allow-shlib-undefined)
fi

say "${build[*]} (rustc $host_rustc, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
start=$(date +%s)
"${build[@]}"
say "cargo took $(($(date +%s) - start)) s"

# The .deb's layout, so the binary finds its libraries (rpath $ORIGIN/../lib/voicebotd)
# and `voicebotd models fetch` its script (../share/voicebotd/models/fetch.py).
rm -rf "$OUT_DIR" && mkdir -p "$OUT_DIR"/{bin,lib/voicebotd,share/voicebotd/models}
bin="$OUT_DIR/bin/voicebotd"
cp "$CARGO_TARGET_DIR/$TARGET/$profile/voicebotd" "$bin"
cp -L "$SHERPA_LIB_PATH"/lib/{libsherpa-onnx-c-api.so,libonnxruntime.so} "$OUT_DIR/lib/voicebotd/"
cp models/*.py models/manifest.toml models/requirements-convert.txt "$OUT_DIR/share/voicebotd/models/"

file "$bin"
needed="$(aarch64-linux-gnu-objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
say "needs $needed (JetPack $jetpack has glibc >= $glibc_max)"
[ "$(printf '%s\n' "${needed#GLIBC_}" "$glibc_max" | sort -V | tail -1)" = "$glibc_max" ] || {
  say "$needed is newer than JetPack $jetpack's glibc $glibc_max"
  exit 1
}

if ((smoke)); then
  qemu=(qemu-aarch64-static -L /usr/aarch64-linux-gnu)
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  say "smoke run under ${qemu[*]}"
  "${qemu[@]}" "$bin" --version
  "${qemu[@]}" "$bin" print-default-config >"$scratch/voicebotd.toml"
  "${qemu[@]}" "$bin" check-config "$scratch/voicebotd.toml"
  "${qemu[@]}" "$bin" print-default-pack >"$scratch/pack.toml"
  "${qemu[@]}" "$bin" check-pack "$scratch/pack.toml"
fi
find "$OUT_DIR" -type f | sort
