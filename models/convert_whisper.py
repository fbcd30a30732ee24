"""Convert a faster-whisper (CTranslate2) Whisper model to whisper.cpp ggml.

The output follows the layout written by whisper.cpp's models/convert-pt-to-ggml.py:
header, mel filters, tokenizer, then the tensors in the order of the original
PyTorch state_dict with the same names, shapes and f16/f32 choices. File sizes
equal the published ggml-tiny.en.bin / ggml-base.bin; the bytes are not identical
(the tensor data comes from the CTranslate2 export, not the original checkpoint).

Inputs (by name):
    model.bin            CTranslate2 model (split packages are joined by fetch.py)
    mel_filters.npz      from openai-whisper (whisper/assets)
    tokenizer.json       the model's HF tokenizer (token ids 0..vocab_tokens-1 are written)
Output roles: "ggml-f16" and optionally "ggml-q8_0", "ggml-q5_0".
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

import ggml_quant
from ct2_reader import CT2Model, parse_ct2
from progress import Progress

GGML_MAGIC = 0x67676D6C
FTYPE_F32 = 0
FTYPE_F16 = 1

# Tensors kept in f32 even in an f16 file (besides every tensor with < 2 dims).
_F32_NAMES = {
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
}
# Tensors whisper.cpp's quantize example never quantizes.
_QUANT_SKIP = _F32_NAMES

Tensor = tuple[str, np.ndarray]


def load_ct2_model(path: Path) -> CT2Model:
    model = parse_ct2(path.read_bytes())
    if model.spec != "WhisperSpec":
        raise ValueError(f"{path}: expected a WhisperSpec CTranslate2 model, got {model.spec}")
    return model


def hparams_from(model: CT2Model) -> dict[str, int]:
    enc_layers = _count_layers(model, "encoder")
    dec_layers = _count_layers(model, "decoder")
    n_vocab, n_text_state = model.get("decoder/embeddings/weight").shape
    n_audio_ctx, n_audio_state = model.get("encoder/position_encodings/encodings").shape
    n_text_ctx = model.get("decoder/position_encodings/encodings").shape[0]
    n_mels = model.get("encoder/conv1/weight").shape[1]
    return {
        "n_vocab": n_vocab,
        "n_audio_ctx": n_audio_ctx,
        "n_audio_state": n_audio_state,
        "n_audio_head": model.scalar("encoder/num_heads"),
        "n_audio_layer": enc_layers,
        "n_text_ctx": n_text_ctx,
        "n_text_state": n_text_state,
        "n_text_head": model.scalar("decoder/num_heads"),
        "n_text_layer": dec_layers,
        "n_mels": n_mels,
    }


def _count_layers(model: CT2Model, side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in model.variables:
        n += 1
    return n


def _split_qkv(w: np.ndarray, b: np.ndarray, prefix: str) -> Iterator[Tensor]:
    """CT2 fuses q,k,v into one linear; the key part has a zero bias."""
    q_w, k_w, v_w = np.split(w, 3, axis=0)
    q_b, k_b, v_b = np.split(b, 3, axis=0)
    _check_zero_key_bias(k_b, prefix)
    yield from _attn_tensors(prefix, q_w, q_b, k_w, v_w, v_b)


def _check_zero_key_bias(k_b: np.ndarray, prefix: str) -> None:
    if np.any(k_b != 0):
        raise ValueError(f"{prefix}: fused key bias is not zero; unexpected CT2 layout")


def _attn_tensors(prefix: str, q_w, q_b, k_w, v_w, v_b) -> Iterator[Tensor]:
    yield f"{prefix}.query.weight", q_w
    yield f"{prefix}.query.bias", q_b
    yield f"{prefix}.key.weight", k_w
    yield f"{prefix}.value.weight", v_w
    yield f"{prefix}.value.bias", v_b


def _linear(model: CT2Model, src: str, dst: str) -> Iterator[Tensor]:
    yield f"{dst}.weight", model.get(f"{src}/weight")
    yield f"{dst}.bias", model.get(f"{src}/bias")


def _norm(model: CT2Model, src: str, dst: str) -> Iterator[Tensor]:
    yield f"{dst}.weight", model.get(f"{src}/gamma")
    yield f"{dst}.bias", model.get(f"{src}/beta")


def _self_attention(model: CT2Model, src: str, dst: str) -> Iterator[Tensor]:
    yield from _split_qkv(model.get(f"{src}/linear_0/weight"),
                          model.get(f"{src}/linear_0/bias"), dst)
    yield from _linear(model, f"{src}/linear_1", f"{dst}.out")


def _cross_attention(model: CT2Model, src: str, dst: str) -> Iterator[Tensor]:
    q_w, q_b = model.get(f"{src}/linear_0/weight"), model.get(f"{src}/linear_0/bias")
    k_w, v_w = np.split(model.get(f"{src}/linear_1/weight"), 2, axis=0)
    k_b, v_b = np.split(model.get(f"{src}/linear_1/bias"), 2, axis=0)
    _check_zero_key_bias(k_b, dst)
    yield from _attn_tensors(dst, q_w, q_b, k_w, v_w, v_b)
    yield from _linear(model, f"{src}/linear_2", f"{dst}.out")


def _block(model: CT2Model, side: str, i: int) -> Iterator[Tensor]:
    src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
    yield from _self_attention(model, f"{src}/self_attention", f"{dst}.attn")
    yield from _norm(model, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
    if side == "decoder":
        yield from _cross_attention(model, f"{src}/attention", f"{dst}.cross_attn")
        yield from _norm(model, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
    yield from _linear(model, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
    yield from _linear(model, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    yield from _norm(model, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")


def whisper_tensors(model: CT2Model, hp: dict[str, int]) -> Iterator[Tensor]:
    """Tensors in the order of openai-whisper's state_dict (own params first)."""
    yield "encoder.positional_embedding", model.get("encoder/position_encodings/encodings")
    yield from _linear(model, "encoder/conv1", "encoder.conv1")
    yield from _linear(model, "encoder/conv2", "encoder.conv2")
    for i in range(hp["n_audio_layer"]):
        yield from _block(model, "encoder", i)
    yield from _norm(model, "encoder/layer_norm", "encoder.ln_post")
    yield "decoder.positional_embedding", model.get("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", model.get("decoder/embeddings/weight")
    for i in range(hp["n_text_layer"]):
        yield from _block(model, "decoder", i)
    yield from _norm(model, "decoder/layer_norm", "decoder.ln")


def prepare_tensor(name: str, data: np.ndarray) -> tuple[np.ndarray, int]:
    """Apply convert-pt-to-ggml.py's reshape and dtype rules (f16 output)."""
    data = np.squeeze(data)
    if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
        data = data.reshape(data.shape[0], 1)
    if data.ndim < 2 or name in _F32_NAMES:
        return np.ascontiguousarray(data, dtype=np.float32), FTYPE_F32
    return np.ascontiguousarray(data, dtype=np.float16), FTYPE_F16


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode table used by byte-level BPE vocabularies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    codes = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes)}


def read_vocab(tokenizer_json: Path, count: int) -> list[bytes]:
    """The first `count` tokens (by id) of a HF tokenizer.json BPE vocabulary.

    Tokens are written as raw bytes (GPT-2 byte decoder applied), which is what
    the published ggml files hold.
    """
    vocab = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])[:count]
    if len(by_id) != count or by_id[-1][1] != count - 1:
        raise ValueError(f"{tokenizer_json}: vocabulary ids 0..{count - 1} are not contiguous")
    dec = _byte_decoder()
    tokens = []
    for text, _ in by_id:
        raw = bytes(dec[c] for c in text) if all(c in dec for c in text) else text.encode()
        tokens.append(raw)
    return tokens


def write_header(f: BinaryIO, hp: dict[str, int], ftype: int, mel: np.ndarray,
                 tokens: list[bytes]) -> None:
    keys = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
            "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels")
    f.write(struct.pack("<i", GGML_MAGIC))
    f.write(struct.pack("<11i", *(hp[k] for k in keys), ftype))
    f.write(struct.pack("<ii", *mel.shape))
    f.write(np.ascontiguousarray(mel, dtype="<f4").tobytes())
    f.write(struct.pack("<i", len(tokens)))
    for tok in tokens:
        f.write(struct.pack("<i", len(tok)))
        f.write(tok)


def write_tensor(f: BinaryIO, name: str, data: np.ndarray, ttype: int,
                 payload: bytes | None = None) -> None:
    raw_name = name.encode("utf-8")
    f.write(struct.pack("<iii", data.ndim, len(raw_name), ttype))
    f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
    f.write(raw_name)
    f.write(payload if payload is not None else data.tobytes())


def write_ggml(path: Path, hp: dict[str, int], mel: np.ndarray, tokens: list[bytes],
               tensors: list[tuple[str, np.ndarray, int]], quant: str | None) -> None:
    """Write an f16 file (quant=None) or a quantized one (quant='q8_0'/'q5_0')."""
    file_ftype = FTYPE_F16 if quant is None else ggml_quant.header_ftype(quant)
    label = "write ggml f16" if quant is None else f"quantize {quant}"
    with path.open("wb") as f, Progress(label, len(tensors), unit="tensor") as bar:
        write_header(f, hp, file_ftype, mel, tokens)
        for name, data, ttype in tensors:
            if quant is not None and _quantizable(name, data):
                qtype, payload = ggml_quant.quantize(quant, data.astype(np.float32))
                write_tensor(f, name, data, qtype, payload)
            else:
                write_tensor(f, name, data, ttype)
            bar.advance()


def _quantizable(name: str, data: np.ndarray) -> bool:
    return data.ndim == 2 and name not in _QUANT_SKIP and data.shape[-1] % 32 == 0


def load_mel_filters(path: Path, n_mels: int) -> np.ndarray:
    """Mel filterbank; upstream ggml files hold +0.0 where the npz has -0.0."""
    with np.load(path) as npz:
        mel = np.array(npz[f"mel_{n_mels}"], dtype=np.float32)
    return mel + np.float32(0.0)


def convert(inputs: dict[str, Path], outputs: dict[str, Path], options: dict) -> None:
    model = load_ct2_model(inputs["model.bin"])
    hp = hparams_from(model)
    mel = load_mel_filters(inputs["mel_filters.npz"], hp["n_mels"])
    tokens = read_vocab(inputs["tokenizer.json"], int(options.get("vocab_tokens", 50257)))
    tensors = [(name, *prepare_tensor(name, data)) for name, data in whisper_tensors(model, hp)]
    for role, path in outputs.items():
        if role == "ggml-f16":
            write_ggml(path, hp, mel, tokens, tensors, quant=None)
        elif role.startswith("ggml-"):
            write_ggml(path, hp, mel, tokens, tensors, quant=role.removeprefix("ggml-"))
        else:
            raise ValueError(f"whisper converter: unknown output role '{role}'")
