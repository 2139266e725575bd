"""The SDP edits RFC 3264 asks of us: directions in answers, origins kept or replaced."""

from __future__ import annotations

import pytest

from callnow.telephony.sdp import (
    answer_direction,
    codec_names,
    continue_origin,
    direction,
    origin,
    own_origin,
    with_direction,
)

OFFER = (
    "v=0\r\no=phone 42 7 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
)


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendrecv", "sendrecv"),
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
    ],
)
def test_an_answer_mirrors_the_offered_direction(offered: str, answered: str) -> None:
    held = with_direction(OFFER, offered)  # type: ignore[arg-type]
    assert direction(held) == offered
    assert answer_direction(direction(held)) == answered


def test_no_attribute_is_sendrecv_and_a_zero_address_is_the_old_hold() -> None:
    assert direction(OFFER) == "sendrecv"
    assert direction(OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0")) == "inactive"


def test_media_level_direction_wins_over_the_session_level() -> None:
    sdp = OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n") + "a=sendrecv\r\n"
    assert direction(sdp) == "sendrecv"


def test_with_direction_leaves_one_attribute() -> None:
    sdp = with_direction(with_direction(OFFER, "sendonly"), "inactive")
    assert sdp.count("a=inactive") == 1 and "a=sendonly" not in sdp


def test_a_re_offer_keeps_the_session_origin_with_a_higher_version() -> None:
    rewritten = continue_origin(OFFER.replace("o=phone 42 7", "o=other 9 1"), OFFER)
    assert origin(rewritten) == "o=phone 42 8 IN IP4 192.0.2.10"


def test_own_origin_leaves_nothing_of_the_party() -> None:
    mine = own_origin(OFFER, 1234, "198.51.100.1")
    assert origin(mine) == "o=callnow 1234 1 IN IP4 198.51.100.1"
    assert "o=phone" not in mine and "42" not in mine


def test_codec_names_in_offered_order() -> None:
    assert codec_names(OFFER) == ["PCMA", "PCMU", "telephone-event"]
