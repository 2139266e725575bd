"""Bencode as rtpengine's ng protocol uses it."""

from __future__ import annotations

import pytest

from callnow.telephony.bencode import BencodeError, bdecode, bencode


def test_ping_message_encodes_like_the_protocol_docs() -> None:
    assert bencode({"command": "ping"}) == b"d7:command4:pinge"


def test_dictionary_keys_are_sorted_for_a_deterministic_encoding() -> None:
    assert bencode({"b": 1, "a": 2}) == b"d1:ai2e1:bi1ee"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"i0e"),
        (-42, b"i-42e"),
        ("", b"0:"),
        ("call-id", b"7:call-id"),
        ("é", b"2:\xc3\xa9"),  # length counts UTF-8 bytes, not characters
        (b"\x00\xff", b"2:\x00\xff"),
        ([], b"le"),
        (["trust address", 1], b"l13:trust addressi1ee"),
        ({"flags": ["fatal"]}, b"d5:flagsl5:fatalee"),
    ],
)
def test_encode(value: object, encoded: bytes) -> None:
    assert bencode(value) == encoded  # type: ignore[arg-type]  # any of the encodable kinds


def test_round_trip_of_a_typical_offer() -> None:
    offer = {
        "command": "offer",
        "call-id": "c1",
        "from-tag": "visitor",
        "sdp": "v=0\r\nm=audio 9 RTP/AVP 0\r\n",
        "flags": ["port latching"],
        "repeat-times": 2,
        "codec": {"strip": ["G722"]},
    }
    assert bdecode(bencode(offer)) == offer


def test_decoded_strings_are_text_unless_they_are_not_utf8() -> None:
    assert bdecode(b"d3:sdp3:v=03:raw2:\xff\xfee") == {"sdp": "v=0", "raw": b"\xff\xfe"}


def test_bool_is_refused_because_rtpengine_would_not_read_it_as_a_flag() -> None:
    with pytest.raises(BencodeError):
        bencode({"fatal": True})


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"i12",
        b"ie",
        b"i1x2e",
        b"5:abc",
        b"l",
        b"d3:key",
        b"di1ei2ee",
        b"x",
        b"i1ei2e",
        b"l" * 100_000,  # nesting deeper than Python's stack
    ],
)
def test_malformed_input_raises_bencode_error(data: bytes) -> None:
    with pytest.raises(BencodeError):
        bdecode(data)
