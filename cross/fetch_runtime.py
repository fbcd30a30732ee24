#!/usr/bin/env python3
"""Fetch the native runtime libraries of another architecture, for a cross build.

    python3 cross/fetch_runtime.py --arch aarch64 --dir DIR

Downloads, verifies and unpacks the manifest's `sherpa-onnx-runtime` entry for
ARCH (sherpa-onnx C API plus its bundled ONNX Runtime, from PyPI) into
DIR/sherpa-onnx, which is then the cross build's SHERPA_LIB_PATH. It is the
same code path as `models/fetch.py` on the target machine itself: the manifest
pins the package files and their sha256, fetch.py downloads and checks them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
import fetch  # noqa: E402

RUNTIME_MODEL = "sherpa-onnx-runtime"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, help="target machine architecture, e.g. aarch64")
    p.add_argument("--dir", type=Path, required=True, help="cache directory (outside the clone)")
    args = p.parse_args(argv)
    # fetch.load_manifest keeps the entries of the machine it runs on; ask for the target's.
    fetch.machine_arch = lambda: args.arch
    try:
        models = fetch.select(fetch.load_manifest(), RUNTIME_MODEL)
        if not models:
            raise fetch.FetchError(f"the manifest has no {RUNTIME_MODEL} for {args.arch}")
        root = args.dir.expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        for model in models:
            fetch.fetch_model(model, root, "registry")
    except fetch.FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
