"""Bencode, the dictionary encoding of rtpengine's ng protocol.

Only what the ng protocol uses: byte strings, integers, lists and dictionaries. `str` is encoded
as UTF-8. Dictionary keys are written sorted, as the bencode standard asks (rtpengine does not
require it, but a deterministic encoding makes tests and packet captures easier to read).

Decoding returns `str` for every string that is valid UTF-8 (keys always are) and `bytes`
otherwise, because everything rtpengine answers with (SDP, tags, reasons) is text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

BValue = bytes | str | int | Sequence["BValue"] | Mapping[str, "BValue"]


class BencodeError(ValueError):
    """The data is not valid bencode (or a value cannot be encoded)."""


def bencode(value: BValue) -> bytes:
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Any, out: list[bytes]) -> None:
    # Exact types first: every ng request is a dict of str, int and lists of str, and the
    # isinstance checks against ABCs below cost more than the encoding itself.
    kind = type(value)
    if kind is str:
        raw = value.encode("utf-8")
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif kind is int:
        out.append(b"i%de" % value)
    elif kind is dict:
        out.append(b"d")
        items = []
        for key, item in value.items():
            if type(key) is str:
                key = key.encode("utf-8")
            elif not isinstance(key, bytes):
                raise BencodeError(f"dictionary key must be str or bytes, not {type(key).__name__}")
            items.append((key, item))
        items.sort(key=_first)
        for key, item in items:
            out.append(b"%d:" % len(key))
            out.append(key)
            _encode(item, out)
        out.append(b"e")
    elif kind is list:
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    else:
        _encode_other(value, out)


def _first(pair: tuple[bytes, Any]) -> bytes:
    return pair[0]


def _encode_other(value: Any, out: list[bytes]) -> None:
    # bool is an int subclass; `True` would silently become `i1e`, which rtpengine does not read
    # as a flag. Make the caller say what they mean ("yes", a list entry in `flags`, ...).
    if isinstance(value, bool):
        raise BencodeError("bool cannot be bencoded; use a string or a flag in 'flags'")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str):
        _encode(str(value), out)
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, Mapping):
        _encode(dict(value), out)
    elif isinstance(value, list | tuple):
        _encode(list(value), out)
    else:
        raise BencodeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    """Decode exactly one value; trailing bytes are an error."""
    try:
        value, end = _decode(data, 0)
    except RecursionError:
        raise BencodeError("nesting too deep") from None
    if end != len(data):
        raise BencodeError(f"trailing data at offset {end}")
    return value


def _decode(data: bytes, pos: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise BencodeError("unexpected end of data")
    lead = data[pos : pos + 1]
    if lead == b"i":
        end = data.find(b"e", pos)
        if end < 0:
            raise BencodeError("unterminated integer")
        digits = data[pos + 1 : end]
        if not digits or not digits.lstrip(b"-").isdigit():
            raise BencodeError(f"bad integer at offset {pos}")
        return int(digits), end + 1
    if lead == b"l":
        items: list[Any] = []
        pos += 1
        while data[pos : pos + 1] != b"e":
            item, pos = _decode(data, pos)
            items.append(item)
        return items, pos + 1
    if lead == b"d":
        result: dict[str, Any] = {}
        pos += 1
        while data[pos : pos + 1] != b"e":
            key, pos = _decode(data, pos)
            if not isinstance(key, str):
                raise BencodeError(f"dictionary key is not text at offset {pos}")
            result[key], pos = _decode(data, pos)
        return result, pos + 1
    if lead.isdigit():
        colon = data.find(b":", pos)
        if colon < 0 or not data[pos:colon].isdigit():
            raise BencodeError(f"bad string length at offset {pos}")
        start = colon + 1
        end = start + int(data[pos:colon])
        if end > len(data):
            raise BencodeError("string runs past end of data")
        raw = data[start:end]
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError:
            return raw, end
    raise BencodeError(f"unexpected byte {lead!r} at offset {pos}")
