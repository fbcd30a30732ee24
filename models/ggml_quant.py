"""ggml block quantization (reference implementations, bit exact).

Mirrors ggml-quants.c `quantize_row_q8_0_ref` and `quantize_row_q5_0_ref`,
which are what whisper.cpp's `quantize` example uses (no importance matrix).
All arithmetic is float32 like the C code; fp16 scales use round-to-nearest-even.
"""

from __future__ import annotations

import numpy as np

QK = 32
GGML_QNT_VERSION = 2
GGML_QNT_VERSION_FACTOR = 1000

# name -> (ggml_type id, ggml_ftype id)
_TYPES = {
    "q8_0": (8, 7),
    "q5_0": (6, 8),
}

_Q8_0 = np.dtype([("d", "<f2"), ("qs", "i1", (QK,))])
_Q5_0 = np.dtype([("d", "<f2"), ("qh", "<u4"), ("qs", "u1", (QK // 2,))])


def header_ftype(quant: str) -> int:
    """The hparams ftype whisper.cpp's quantize writes: version * 1000 + ftype."""
    return GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + _lookup(quant)[1]


def quantize(quant: str, x: np.ndarray) -> tuple[int, bytes]:
    """Quantize a float32 matrix row by row; returns (ggml type id, bytes)."""
    type_id = _lookup(quant)[0]
    if x.shape[-1] % QK:
        raise ValueError(f"row length {x.shape[-1]} is not a multiple of {QK}")
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK)
    if quant == "q8_0":
        return type_id, _q8_0(blocks).tobytes()
    return type_id, _q5_0(blocks).tobytes()


def _lookup(quant: str) -> tuple[int, int]:
    try:
        return _TYPES[quant]
    except KeyError:
        raise ValueError(f"unsupported quantization '{quant}' (have {sorted(_TYPES)})") from None


def _inverse(d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)


def _roundf(x: np.ndarray) -> np.ndarray:
    """C roundf: halves away from zero (computed exactly in float64)."""
    ax = np.abs(x.astype(np.float64))
    return np.copysign(np.floor(ax + 0.5), x)


def _q8_0(blocks: np.ndarray) -> np.ndarray:
    amax = np.abs(blocks).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    scaled = blocks * _inverse(d)[:, None]
    out = np.empty(len(blocks), dtype=_Q8_0)
    out["d"] = d.astype(np.float16)
    out["qs"] = _roundf(scaled).astype(np.int8)
    return out


def _q5_0(blocks: np.ndarray) -> np.ndarray:
    idx = np.abs(blocks).argmax(axis=1)  # first index of the largest |x|, as in C
    signed_max = blocks[np.arange(len(blocks)), idx]
    d = (signed_max / np.float32(-16)).astype(np.float32)
    shifted = blocks * _inverse(d)[:, None] + np.float32(16.5)
    xi = np.minimum(np.trunc(shifted), 31).astype(np.uint8)
    lo, hi = xi[:, : QK // 2], xi[:, QK // 2:]
    out = np.empty(len(blocks), dtype=_Q5_0)
    out["d"] = d.astype(np.float16)
    out["qs"] = (lo & 0x0F) | ((hi & 0x0F) << 4)
    bits = np.concatenate([(lo >> 4) & 1, (hi >> 4) & 1], axis=1).astype(np.uint32)
    out["qh"] = (bits << np.arange(QK, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    return out
