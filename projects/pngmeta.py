"""Metadata carried inside exported PNGs as iTXt chunks (UTF-8: prompts may be in any script).

The file is streamed: the chunks go in right after the IHDR chunk, the rest is copied a block at a time.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEAD = len(SIGNATURE) + 8 + 13 + 4  # the signature and the IHDR chunk, always first and 13 bytes long
BLOCK = 1 << 16


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def text_chunks(meta: Mapping[str, object]) -> bytes:
    """One iTXt chunk per non-empty value; keywords are Latin-1, 1-79 characters (PNG's rule)."""
    chunks = []
    for key, value in meta.items():
        if value is None or value == "":
            continue
        keyword = key.encode("latin-1")[:79]
        chunks.append(_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + str(value).encode("utf-8")))
    return b"".join(chunks)


def is_png(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(HEAD)
    return len(head) == HEAD and head.startswith(SIGNATURE) and head[12:16] == b"IHDR"


def png_with_text(path: Path, chunks: bytes) -> Iterator[bytes]:
    """The PNG at `path` with `chunks` after its header; its size is the file's plus len(chunks)."""
    with path.open("rb") as handle:
        yield handle.read(HEAD)
        yield chunks
        while block := handle.read(BLOCK):
            yield block


def read_text(data: bytes) -> dict[str, str]:
    """The iTXt and tEXt values of a PNG (for tests and re-import)."""
    found, pos = {}, len(SIGNATURE)
    while pos + 8 <= len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"iTXt":
            keyword, _, rest = body.partition(b"\x00")
            text = rest[2:].split(b"\x00", 2)[-1]
            found[keyword.decode("latin-1")] = text.decode("utf-8")
        elif kind == b"tEXt":
            keyword, _, text = body.partition(b"\x00")
            found[keyword.decode("latin-1")] = text.decode("latin-1")
        if kind == b"IEND":
            break
        pos += 12 + length
    return found
