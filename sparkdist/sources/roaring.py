"""Deletion vectors as table formats store them: Roaring bitmaps (32-bit, and the 64-bit "portable"
layout of buckets), Z85 text, and Delta Lake's framing of both, decoded with numpy alone.

Executors have pyarrow, numpy and pandas but no bitmap library, so the decoder is our own (the
formats are small and fully specified: the RoaringFormatSpec and Delta's PROTOCOL.md); Iceberg v3
deletion vectors hold the same 64-bit bitmaps, so they can share it.

>>> rows = decode_roaring64(encode_roaring64([0, 5, 70_000, 2**32 + 1]))
>>> rows.tolist()
[0, 5, 70000, 4294967297]
>>> z85_decode(z85_encode(b"\\x86\\x4f\\xd2\\x6f"))
b'\\x86O\\xd2o'
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sparkdist.errors import DataSourceError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DELTA_DV_MAGIC",
    "decode_delta_dv",
    "decode_roaring32",
    "decode_roaring64",
    "delta_dv_block",
    "encode_roaring64",
    "z85_decode",
    "z85_encode",
]

#: The magic number that opens a Delta deletion vector (little endian), before its 64-bit bitmap.
DELTA_DV_MAGIC = 1681511377

_COOKIE_NO_RUNS = 12346
_COOKIE_RUNS = 12347
_NO_OFFSET_THRESHOLD = 4
_ARRAY_MAX = 4096

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_VALUE = {c: i for i, c in enumerate(_Z85)}


class RoaringFormatError(DataSourceError):
    """Bytes that are not the bitmap they should be (truncated, wrong magic number, bad checksum)."""


def z85_decode(text: str) -> bytes:
    """Z85 (ZeroMQ's Base85) text as bytes; its length must be a multiple of 5."""
    if len(text) % 5:
        raise RoaringFormatError(f"Z85 text must have a multiple of 5 characters, got {len(text)}")
    out = bytearray()
    try:
        for i in range(0, len(text), 5):
            value = 0
            for ch in text[i : i + 5]:
                value = value * 85 + _Z85_VALUE[ch]
            out += value.to_bytes(4, "big")
    except (KeyError, OverflowError) as err:
        raise RoaringFormatError(f"not Z85 text: {text[:40]!r}") from err
    return bytes(out)


def z85_encode(data: bytes) -> str:
    """``data`` (zero-padded to a multiple of 4 bytes) as Z85 text."""
    data = data + b"\0" * (-len(data) % 4)
    chars: list[str] = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i : i + 4], "big")
        block = []
        for _ in range(5):
            value, digit = divmod(value, 85)
            block.append(_Z85[digit])
        chars += reversed(block)
    return "".join(chars)


def decode_roaring32(buf: bytes | memoryview, start: int = 0) -> tuple[np.ndarray, int]:
    """A serialized 32-bit Roaring bitmap (the portable format) at ``start`` of ``buf``: its values
    as a sorted uint32 array, and the offset just past it."""
    import numpy as np

    view = memoryview(buf)
    try:
        (cookie,) = struct.unpack_from("<I", view, start)
        pos = start + 4
        if cookie == _COOKIE_NO_RUNS:
            (n,) = struct.unpack_from("<I", view, pos)
            pos += 4
            runs = np.zeros(n, dtype=bool)
        elif cookie & 0xFFFF == _COOKIE_RUNS:
            n = (cookie >> 16) + 1
            flags = np.frombuffer(view, dtype=np.uint8, count=(n + 7) // 8, offset=pos)
            runs = np.unpackbits(flags, bitorder="little")[:n].astype(bool)
            pos += (n + 7) // 8
        else:
            raise RoaringFormatError(f"not a Roaring bitmap (cookie {cookie})")
        header = np.frombuffer(view, dtype="<u2", count=2 * n, offset=pos).reshape(n, 2)
        pos += 4 * n
        if cookie == _COOKIE_NO_RUNS or n >= _NO_OFFSET_THRESHOLD:
            pos += 4 * n  # the offsets: containers are read in order, so they are not needed
        parts = []
        for i in range(n):
            high = np.uint32(int(header[i, 0]) << 16)
            card = int(header[i, 1]) + 1
            if runs[i]:
                (n_runs,) = struct.unpack_from("<H", view, pos)
                pairs = np.frombuffer(view, dtype="<u2", count=2 * n_runs, offset=pos + 2).reshape(n_runs, 2)
                pos += 2 + 4 * n_runs
                low = _expand_runs(pairs[:, 0].astype(np.uint32), pairs[:, 1].astype(np.uint32) + 1)
            elif card > _ARRAY_MAX:
                bits = np.frombuffer(view, dtype=np.uint8, count=8192, offset=pos)
                pos += 8192
                low = np.flatnonzero(np.unpackbits(bits, bitorder="little")).astype(np.uint32)
            else:
                low = np.frombuffer(view, dtype="<u2", count=card, offset=pos).astype(np.uint32)
                pos += 2 * card
            parts.append(low | high)
    except (struct.error, ValueError) as err:
        raise RoaringFormatError(f"truncated Roaring bitmap ({len(view) - start} bytes)") from err
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
    return values, pos


def _expand_runs(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``start, start+1, ..., start+length-1`` for each run, concatenated."""
    import numpy as np

    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.uint32)
    ends = np.cumsum(lengths)
    offsets = np.repeat(starts.astype(np.int64) - (ends - lengths), lengths)
    out: np.ndarray = (np.arange(total, dtype=np.int64) + offsets).astype(np.uint32)
    return out


def decode_roaring64(buf: bytes | memoryview, start: int = 0) -> np.ndarray:
    """A 64-bit Roaring bitmap in the portable layout (a count of buckets, then each bucket's 32-bit
    key and 32-bit bitmap) at ``start`` of ``buf``, as a sorted int64 array."""
    import numpy as np

    view = memoryview(buf)
    try:
        (n,) = struct.unpack_from("<Q", view, start)
    except struct.error as err:
        raise RoaringFormatError("truncated 64-bit Roaring bitmap") from err
    pos = start + 8
    parts = []
    for _ in range(n):
        try:
            (key,) = struct.unpack_from("<I", view, pos)
        except struct.error as err:
            raise RoaringFormatError("truncated 64-bit Roaring bitmap") from err
        low, pos = decode_roaring32(view, pos + 4)
        parts.append(low.astype(np.int64) | (np.int64(key) << np.int64(32)))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def encode_roaring64(values: Iterable[int]) -> bytes:
    """Sorted distinct non-negative ints as a portable 64-bit Roaring bitmap (array and bitmap
    containers, no runs): what tests and writers need, not an optimal encoding."""
    import numpy as np

    arr = np.unique(np.asarray(list(values) if not hasattr(values, "dtype") else values, dtype=np.int64))
    keys = np.unique(arr >> 32)
    out = [struct.pack("<Q", len(keys))]
    for key in keys:
        low = (arr[(arr >> 32) == key] & 0xFFFFFFFF).astype(np.uint32)
        highs = np.unique(low >> 16)
        header, bodies = [], []
        for high in highs:
            part = (low[(low >> 16) == high] & 0xFFFF).astype(np.uint16)
            header.append(struct.pack("<HH", int(high), len(part) - 1))
            if len(part) > _ARRAY_MAX:
                bits = np.zeros(65536, dtype=np.uint8)
                bits[part] = 1
                bodies.append(np.packbits(bits, bitorder="little").tobytes())
            else:
                bodies.append(part.astype("<u2").tobytes())
        offsets, at = [], 8 + 8 * len(highs)
        for body in bodies:
            offsets.append(struct.pack("<I", at))
            at += len(body)
        out += [struct.pack("<I", int(key)), struct.pack("<II", _COOKIE_NO_RUNS, len(highs)), *header, *offsets]
        out += bodies
    return b"".join(out)


def decode_delta_dv(data: bytes | memoryview) -> np.ndarray:
    """A serialized Delta deletion vector (its magic number, then a 64-bit bitmap) as the sorted
    row positions it deletes."""
    view = memoryview(data)
    if len(view) < 4 or struct.unpack_from("<I", view, 0)[0] != DELTA_DV_MAGIC:
        raise RoaringFormatError("not a Delta deletion vector (wrong magic number)")
    return decode_roaring64(view, 4)


def delta_dv_block(block: bytes | memoryview, size: int, where: str) -> memoryview:
    """The serialized deletion vector in ``block``: the bytes at its ``offset`` in a Delta deletion
    vector file (its 4-byte big-endian size, ``size`` bytes, and their big-endian CRC-32), checked."""
    view = memoryview(block)
    if len(view) < 8 + size:
        raise RoaringFormatError(f"{where} is truncated: {len(view)} bytes where a vector of {size} should be")
    (stored,) = struct.unpack_from(">I", view, 0)
    if stored != size:
        raise RoaringFormatError(f"{where} holds a vector of {stored} bytes where the log says {size}")
    body = view[4 : 4 + size]
    (crc,) = struct.unpack_from(">I", view, 4 + size)
    if zlib.crc32(body) != crc:
        raise RoaringFormatError(f"{where}: the deletion vector fails its checksum")
    return body
