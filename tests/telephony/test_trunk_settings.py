"""`[trunk]` settings are bounded and validated, with a message that says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from callnow.config import TrunkSettings
from callnow.engine.live.uris import UnsafeNumber, caller_id_as


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"display_name": 'Acme "Sales"'}, "display_name"),
        ({"display_name": "Acme\r\nVia: evil"}, "display_name"),
        ({"display_name": "x" * 65}, "display_name"),
        ({"from_user": "sales"}, "from_user"),
        ({"from_domain": "bad domain"}, "from_domain"),
        ({"outbound_proxy": "proxy.example.net"}, "outbound_proxy"),
        ({"outbound_proxy": "proxy.example.net:70000"}, "port must be 1-65535"),
        ({"caller_id_format": "e.164"}, "caller_id_format"),
        ({"privacy": "all"}, "privacy"),
        ({"codecs": []}, "codecs"),
        ({"codecs": ["PCMA", "PCMA"]}, "must not repeat"),
        ({"codecs": ["GSM"]}, "codecs"),
        ({"supported": ["100rel, timer"]}, "supported"),
        ({"name": "Main Trunk"}, "name"),
        ({"prefixes": ["+61"]}, "prefixes"),
        ({"prefixes": ["061"]}, "prefixes"),
        ({"setup_timeout_s": 0}, "setup_timeout_s"),
        ({"registration": True}, "needs register_user or username"),
        ({"registration": True, "username": "u", "registrar": "reg:0"}, "port must be 1-65535"),
        ({"registrar": "registrar.example.net"}, "registrar"),
        ({"register_user": "a b"}, "register_user"),
        ({"register_expires_s": 10}, "register_expires_s"),
    ],
)
def test_bad_trunk_settings_are_refused_by_name(setting: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrunkSettings(**setting)  # type: ignore[arg-type]


def test_defaults_offer_alaw_then_mulaw_and_assert_the_caller_id() -> None:
    trunk = TrunkSettings()
    assert trunk.codecs == ["PCMA", "PCMU"]
    assert (trunk.caller_id_format, trunk.p_asserted_identity, trunk.privacy) == (
        "e164",
        True,
        "none",
    )
    assert trunk.outbound_proxy_address is None
    assert TrunkSettings(outbound_proxy="sbc.example.net:5061").outbound_proxy_address == (
        "sbc.example.net",
        5061,
    )


@pytest.mark.parametrize(
    ("form", "shown"),
    [("e164", "+61299990000"), ("e164_no_plus", "61299990000"), ("national", "0299990000")],
)
def test_caller_id_formats(form: str, shown: str) -> None:
    assert caller_id_as("+61299990000", form, "AU") == shown


def test_a_foreign_number_has_no_national_form() -> None:
    with pytest.raises(UnsafeNumber, match="no national form"):
        caller_id_as("+6421123456", "national", "AU")


def test_trunks_need_names_of_their_own() -> None:
    from callnow.config import Settings

    with pytest.raises(ValidationError, match="two trunks are named 'main'"):
        Settings(trunks=[TrunkSettings()])


def test_the_registrar_defaults_to_the_proxy_then_the_template_host() -> None:
    assert TrunkSettings(uri_template="sip:{e164}@carrier.example:5070").registrar_address == (
        "carrier.example",
        5070,
    )
    assert TrunkSettings(uri_template="sip:{e164}@carrier.example").registrar_address == (
        "carrier.example",
        5060,
    )
    proxied = TrunkSettings(outbound_proxy="edge.example:5080", registrar="")
    assert proxied.registrar_address == ("edge.example", 5080)
    assert TrunkSettings(registrar="reg.example:5061").registrar_address == ("reg.example", 5061)


def test_prefixes_choose_the_numbers_a_trunk_may_dial() -> None:
    from callnow.engine.live.trunks import TrunkRoute, routes_for

    mobile = TrunkRoute.from_settings(TrunkSettings(name="mobile", prefixes=["614"]))
    anything = TrunkRoute.from_settings(TrunkSettings(name="any"))
    assert [r.name for r in routes_for((mobile, anything), "+61411222333")] == ["mobile", "any"]
    assert [r.name for r in routes_for((mobile, anything), "+61290375678")] == ["any"]
    assert routes_for((mobile,), "+14155550100") == []


def test_a_carrier_deck_orders_trunks_and_a_bad_one_is_named(tmp_path: Path) -> None:
    from callnow.engine.live.trunks import TrunkRoute, routes_for

    header = "prefix,description,connection_fee,price_per_minute,initial_increment,"
    header += "subsequent_increment,minimum_charge\n"
    cheap = tmp_path / "cheap.csv"
    cheap.write_text(header + "61,Australia,0,0.010,60,60,0\n")
    plain = TrunkRoute.from_settings(TrunkSettings(name="plain"))
    priced = TrunkRoute.from_settings(TrunkSettings(name="priced", rate_deck=str(cheap)))
    assert [r.name for r in routes_for((plain, priced), "+61290375678")] == ["priced", "plain"]
    assert [r.name for r in routes_for((plain, priced), "+14155550100")] == ["plain", "priced"]
    broken = tmp_path / "broken.csv"
    broken.write_text(header + "+61,Australia,0,cheap,60,60,0\n")
    with pytest.raises(ValueError, match=r"trunk bad: rate_deck .*broken.csv is not a valid deck"):
        TrunkRoute.from_settings(TrunkSettings(name="bad", rate_deck=str(broken)))
    with pytest.raises(ValueError, match="cannot read rate_deck"):
        TrunkRoute.from_settings(TrunkSettings(name="bad", rate_deck=str(tmp_path / "none.csv")))
