"""Reader for CTranslate2 `model.bin` files (binary format version 6).

Layout (little endian):
    u32 version
    str spec_name            (u16 length incl. NUL, bytes, NUL)
    u32 spec_revision
    u32 n_variables
    n_variables x { str name, u8 rank, u32 dims[rank], u8 dtype, u32 nbytes, data }
    u32 n_aliases
    n_aliases x { str alias, str target }
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

# CTranslate2 DataType enum -> numpy dtype
_DTYPES = {
    0: np.float32,
    1: np.int8,
    2: np.int16,
    3: np.int32,
    4: np.float16,
}


class CT2FormatError(ValueError):
    """Raised when a model.bin does not look like a CTranslate2 model."""


@dataclass
class CT2Model:
    version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        name = self.aliases.get(name, name)
        try:
            return self.variables[name]
        except KeyError:
            raise CT2FormatError(f"CTranslate2 model has no variable '{name}'") from None

    def scalar(self, name: str) -> int:
        return int(self.get(name).reshape(-1)[0])


class _Cursor:
    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        fmt = "<" + fmt
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals

    def string(self) -> str:
        (n,) = self.unpack("H")
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        if not raw.endswith(b"\0"):
            raise CT2FormatError("unterminated string in model.bin")
        return raw[:-1].decode("utf-8")

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise CT2FormatError("model.bin is truncated")
        view = self.buf[self.pos:self.pos + n]
        self.pos += n
        return view


def parse_ct2(data: bytes) -> CT2Model:
    """Parse a whole model.bin held in memory. Arrays are views into `data`."""
    cur = _Cursor(memoryview(data))
    (version,) = cur.unpack("I")
    if version < 5 or version > 6:
        raise CT2FormatError(f"unsupported CTranslate2 binary version {version}")
    spec = cur.string()
    (revision,) = cur.unpack("I")
    (count,) = cur.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = cur.string()
        (rank,) = cur.unpack("B")
        dims = cur.unpack("I" * rank) if rank else ()
        (dtype_id,) = cur.unpack("B")
        (nbytes,) = cur.unpack("I")
        if dtype_id not in _DTYPES:
            raise CT2FormatError(f"variable '{name}' has unsupported dtype id {dtype_id}")
        arr = np.frombuffer(cur.take(nbytes), dtype=_DTYPES[dtype_id])
        variables[name] = arr.reshape(dims) if rank else arr
    aliases: dict[str, str] = {}
    (n_alias,) = cur.unpack("I")
    for _ in range(n_alias):
        alias = cur.string()
        aliases[alias] = cur.string()
    if cur.pos != len(data):
        raise CT2FormatError(f"{len(data) - cur.pos} trailing bytes after model.bin aliases")
    return CT2Model(version, spec, revision, variables, aliases)
