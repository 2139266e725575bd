"""Which responses to the owner's INVITE show that the PBX diverted the call (voicemail)."""

from __future__ import annotations

import pytest

from callnow.domain.diversion import DivertSign, divert_sign, history_cause, split_entries


def test_a_181_shows_a_divert() -> None:
    assert divert_sign(181) == DivertSign("181", "Call Is Being Forwarded")


@pytest.mark.parametrize("code", [100, 180, 183, 302, 486, 603])
def test_other_provisional_and_failure_responses_show_none(code: int) -> None:
    assert divert_sign(code, ["<sip:1001@pbx>;reason=no-answer"]) is None


def test_a_plain_answer_shows_none() -> None:
    assert divert_sign(200) is None
    assert divert_sign(200, [], []) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("<sip:1001@pbx.example.com>;reason=no-answer;counter=1", "no-answer"),
        ('"John" <sip:1001@pbx.example.com>;reason="user-busy";counter=1', "user-busy"),
        ("<tel:+61299990000>;counter=1;reason=unconditional", "unconditional"),
        ("<sip:1001@pbx.example.com>", ""),
        # RFC 5806: one entry per redirection, most recent first.
        (
            "<sip:1002@pbx>;reason=deflection, <sip:1001@pbx;user=phone>;reason=no-answer",
            "deflection",
        ),
    ],
)
def test_an_answer_with_a_diversion_entry_shows_a_divert(value: str, reason: str) -> None:
    assert divert_sign(200, [value]) == DivertSign("diversion", reason)


def test_a_diversion_header_without_an_address_is_ignored() -> None:
    assert divert_sign(200, ["", "  "]) is None


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        # RFC 7044's escaped Reason header on the target that did not answer.
        (
            "<sip:1001@pbx.example.com?Reason=SIP%3Bcause%3D408%3Btext%3D%22Timeout%22>;"
            "index=1.1, <sip:vm@pbx.example.com>;index=1.2;mp=1.1",
            408,
        ),
        # RFC 4458's cause parameter on the voicemail URI.
        ("<sip:1001@pbx>;index=1, <sip:vm1001@pbx;cause=486>;index=1.1;mp=1", 486),
        ("<sip:1001@pbx;cause=302>;index=1", 302),
        ("<sip:1001@pbx?reason=SIP%3bcause%3d480>;index=1", 480),
    ],
)
def test_history_info_with_a_failure_cause_shows_a_divert(value: str, cause: int) -> None:
    assert divert_sign(202, history_info=[value]) == DivertSign("history-info", f"cause={cause}")


@pytest.mark.parametrize(
    "value",
    [
        # Ordinary routing: an alias mapped to the owner's registered phone, no cause.
        "<sip:1001@pbx.example.com>;index=1, <sip:1001@10.0.0.7:5062>;index=1.1;rc=1",
        "<sip:1001@pbx?Reason=SIP%3Bcause%3D200>;index=1",
        "garbage without an address",
    ],
)
def test_history_info_without_a_failure_cause_shows_none(value: str) -> None:
    assert divert_sign(200, history_info=[value]) is None


def test_the_first_sign_found_is_reported() -> None:
    sign = divert_sign(
        200, ["<sip:1001@pbx>;reason=time-of-day"], ["<sip:1001@pbx;cause=486>;index=1"]
    )
    assert str(sign) == "diversion (time-of-day)"


def test_entries_split_on_commas_outside_addresses_and_quotes() -> None:
    value = '"Smith, J" <sip:a@x;p=1,2>;index=1,<sip:b@y>;index=1.1 , '
    assert split_entries(value) == [
        '"Smith, J" <sip:a@x;p=1,2>;index=1',
        "<sip:b@y>;index=1.1",
    ]


def test_history_cause_reads_either_form() -> None:
    assert history_cause("<sip:a@x?Reason=SIP%3Bcause%3D486>") == 486
    assert history_cause("<sip:a@x;cause=404>;index=1") == 404
    assert history_cause("<sip:a@x>;index=1") is None
