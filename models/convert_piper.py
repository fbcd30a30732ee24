"""Prepare a Piper voice for sherpa-onnx's VITS/Piper TTS.

sherpa-onnx reads the voice parameters from ONNX metadata_props and the
phoneme table from tokens.txt, so both are derived from the voice's .onnx.json
(the same keys as sherpa-onnx's scripts/piper/add_meta_data.py).

Inputs: voice.onnx, voice.onnx.json
Output roles: "onnx" (model with metadata), "tokens" (tokens.txt),
"config" (the .onnx.json, copied unchanged).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx

from progress import Progress


def sherpa_metadata(config: dict) -> dict[str, str]:
    """Metadata keys sherpa-onnx's offline-tts-vits-model.cc reads for Piper voices."""
    voice = config.get("lang_code") or config["espeak"]["voice"]
    sample_rate = config["audio"]["sample_rate"]
    if sample_rate == 22500:  # a typo in some upstream configs, as sherpa's script fixes
        sample_rate = 22050
    uses_g2pw = config.get("phoneme_type") == "pinyin" and voice == "zh"
    meta = {
        "model_type": "vits",
        "comment": "piper",  # sherpa-onnx selects the Piper code path on this value
        "language": config["language"]["name_english"],
        "voice": voice,
        "version": 1,
        "has_espeak": 0 if uses_g2pw else 1,
        "has_g2pw": 1 if uses_g2pw else 0,
        "n_speakers": config["num_speakers"],
        "sample_rate": sample_rate,
    }
    return {k: str(v) for k, v in meta.items()}


def tokens_txt(config: dict) -> str:
    """One "<symbol> <id>" line per phoneme.

    sherpa-onnx trims each line and reads a line holding only an id as the
    space symbol, so " 3" works for ' '. A newline symbol cannot be written
    and is skipped, as sherpa-onnx's own script does.
    """
    lines = []
    for symbol, ids in config["phoneme_id_map"].items():
        if symbol != " " and symbol.isspace():
            continue
        first = ids[0] if isinstance(ids, list) else ids
        lines.append(f"{symbol} {first}\n")
    return "".join(lines)


def add_metadata(src: Path, dst: Path, meta: dict[str, str]) -> None:
    model = onnx.load(str(src))
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    dst.write_bytes(model.SerializeToString(deterministic=True))


def convert(inputs: dict[str, Path], outputs: dict[str, Path], options: dict) -> None:
    onnx_in, json_in = inputs["voice.onnx"], inputs["voice.onnx.json"]
    config = json.loads(json_in.read_text(encoding="utf-8"))
    with Progress("piper -> sherpa-onnx", 3, unit="step") as bar:
        add_metadata(onnx_in, outputs["onnx"], sherpa_metadata(config))
        bar.advance()
        outputs["tokens"].write_text(tokens_txt(config), encoding="utf-8", newline="\n")
        bar.advance()
        shutil.copyfile(json_in, outputs["config"])
        bar.advance()
