"""The embed variant of the public page: framable only by the owner's sites, the same signed
form without cookies, and the button's script and settings."""

import html
import json
import re

from callnow.domain.availability import Window
from tests.web.helpers import all_requests, form_token, set_profile
from tests.web.test_portal import log_in


def test_only_the_embed_variant_may_be_framed_and_only_by_the_owner_sites(world):
    set_profile(world, "alice", embed_origins="https://shop.example\nhttp://127.0.0.2:8081")
    framed = world.client.get("/callnow/alice?embed=1")
    assert framed.status_code == 200
    policy = framed.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://shop.example http://127.0.0.2:8081;" in policy
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" not in policy
    assert "x-frame-options" not in framed.headers  # it cannot name several sites
    assert 'action="/callnow/alice?embed=1"' in framed.text
    assert '<script src="/static/embed-frame.js" defer></script>' in framed.text
    whole = world.client.get("/callnow/alice")
    assert "frame-ancestors 'none'" in whole.headers["content-security-policy"]
    assert whole.headers["x-frame-options"] == "DENY"
    assert "embed-frame.js" not in whole.text
    # A hidden page's embed variant is the same 404 as any other, not framable.
    set_profile(world, "bob", enabled=False)
    hidden = world.client.get("/callnow/bob?embed=1")
    assert hidden.status_code == 404
    assert "frame-ancestors 'none'" in hidden.headers["content-security-policy"]


def test_a_request_from_the_overlay_needs_no_cookie_and_stays_framable(world):
    set_profile(world, "alice", embed_origins="https://shop.example")
    page = world.client.get("/callnow/alice?embed=1")
    assert "set-cookie" not in page.headers
    world.client.cookies.clear()  # a third-party frame may keep no cookies at all
    answer = world.client.post(
        "/callnow/alice?embed=1",
        data={"form_token": form_token(page.text), "name": "Mary", "number": "0290375678"},
    )
    assert answer.status_code == 303
    status_url = answer.headers["location"]
    assert re.fullmatch(r"/callnow/alice/requests/[\w-]+\?embed=1", status_url)
    [stored] = all_requests(world)
    assert stored.number_e164 == "+61290375678"
    status = world.client.get(status_url)
    assert (
        "frame-ancestors 'self' https://shop.example;" in status.headers["content-security-policy"]
    )
    assert 'cancel?embed=1"' in status.text
    plain = world.client.get(status_url.split("?")[0])
    assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]


def test_refusals_in_the_overlay_keep_the_embed_variant(world):
    set_profile(world, "alice", embed_origins="https://shop.example")
    page = world.client.get("/callnow/alice?embed=1")
    bad_token = world.client.post(
        "/callnow/alice?embed=1", data={"form_token": "forged", "number": "0290375678"}
    )
    assert bad_token.status_code == 400
    assert "https://shop.example" in bad_token.headers["content-security-policy"]
    bad_number = world.client.post(
        "/callnow/alice?embed=1",
        data={"form_token": form_token(page.text), "name": "Mary", "number": "call me"},
    )
    assert bad_number.status_code == 422
    assert 'action="/callnow/alice?embed=1"' in bad_number.text
    assert "https://shop.example" in bad_number.headers["content-security-policy"]
    assert all_requests(world) == []


def test_the_overlay_never_places_a_one_step_request(world):
    set_profile(world, "alice", one_step_allowed=True, image_validation=False)
    page = world.client.get("/callnow/alice?embed=1&name=Mary&number=0290375678")
    assert page.status_code == 200
    assert all_requests(world) == []


def test_the_captcha_is_asked_and_served_inside_the_overlay(world):
    set_profile(world, "alice", image_validation=True, embed_origins="https://shop.example")
    page = world.client.get("/callnow/alice?embed=1")
    token = form_token(page.text, "captcha_token")
    image = world.client.get(f"/callnow/alice/captcha/{token}.png")
    assert image.headers["content-type"] == "image/png"
    wrong = world.client.post(
        "/callnow/alice?embed=1",
        data={
            "form_token": form_token(page.text),
            "name": "Mary",
            "number": "0290375678",
            "captcha_token": token,
            "captcha_answer": "000000",
        },
    )
    assert wrong.status_code == 400
    assert 'action="/callnow/alice?embed=1"' in wrong.text


def _script_config(text: str) -> dict:
    match = re.search(r"\}\)\((\{.*\})\);\s*$", text)
    assert match, text[-200:]
    return json.loads(match[1])


def test_the_button_script_carries_the_page_settings(world):
    set_profile(
        world,
        "alice",
        embed_origins="https://shop.example",
        embed_label="Ring me </script>",
        embed_colour="#ffee00",
        embed_position="bottom-left",
    )
    script = world.client.get("/callnow/alice/embed.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "</script>" not in script.text
    config = _script_config(script.text)
    assert config == {
        "id": "alice",
        "page": "/callnow/alice",
        "frame": "/callnow/alice?embed=1",
        "label": "Ring me </script>",
        "colour": "#ffee00",
        "text": "#000000",
        "position": "bottom-left",
        "origins": ["https://shop.example"],
        "close": "Close",
        "frameTitle": "Ring me </script>: the call back form",
    }
    set_profile(world, "alice", enabled=False)
    gone = world.client.get("/callnow/alice/embed.js")
    assert gone.status_code == 404 and gone.text == ""


def _embed_form(world, **fields: str):
    home = world.client.get("/portal")
    data = {
        "csrf": form_token(home.text, "csrf"),
        "embed_origins": "",
        "embed_label": "Call me back",
        "embed_colour": "#0b62c4",
        "embed_position": "bottom-right",
        **fields,
    }
    return world.client.post("/portal/profiles/alice/embed", data=data)


def test_the_owner_sets_the_button_in_the_sharing_kit(world):
    log_in(world)
    home = world.client.get("/portal")
    snippet = html.unescape(
        re.search(r'id="embed-snippet-alice"[^>]*>([^<]*(?:<[^/][^<]*)*)</textarea>', home.text)[1]
    )
    assert 'href="http://testserver/callnow/alice" data-callnow="alice"' in snippet
    assert '<script src="http://testserver/callnow/alice/embed.js" async></script>' in snippet
    assert 'data-copy="embed-snippet-alice"' in home.text
    assert "data-callnow-preview" in home.text
    saved = _embed_form(
        world,
        embed_origins="https://Shop.Example/\nhttp://127.0.0.2:8081",
        embed_label="Ring me",
        embed_colour="#fa0",
        embed_position="inline",
    )
    assert saved.status_code == 303
    config = _script_config(world.client.get("/callnow/alice/embed.js").text)
    assert config["origins"] == ["https://shop.example", "http://127.0.0.2:8081"]
    assert (config["label"], config["colour"], config["position"]) == (
        "Ring me",
        "#ffaa00",
        "inline",
    )


def test_a_wrong_button_setting_changes_nothing_and_says_why(world):
    log_in(world)
    refused = _embed_form(
        world,
        embed_origins="https://shop.example/contact",
        embed_label="x" * 41,
        embed_colour="red",
        embed_position="top",
    )
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert "The button was not changed" in text
    assert "no path after the name" in text
    assert "at most 40 characters" in text
    assert "is not a colour" in text
    assert "position is one of" in text
    assert "https://shop.example/contact" in text  # what was typed stays in the form
    config = _script_config(world.client.get("/callnow/alice/embed.js").text)
    assert config["origins"] == [] and config["label"] == "Call me back"


def test_only_the_owner_may_set_the_button(world):
    log_in(world)
    assert _embed_form(world).status_code == 303
    other = world.client.post(
        "/portal/profiles/bob/embed",
        data={"csrf": form_token(world.client.get("/portal").text, "csrf")},
    )
    assert other.status_code == 404
    forged = world.client.post(
        "/portal/profiles/alice/embed", data={"csrf": "forged", "embed_origins": "https://x.y"}
    )
    assert forged.status_code == 303
    assert _script_config(world.client.get("/callnow/alice/embed.js").text)["origins"] == []


def test_out_of_hours_the_overlay_says_when_the_owner_is_back(world):
    set_profile(world, "alice", windows=[Window(0, 0, 1)], embed_origins="https://shop.example")
    page = world.client.get("/callnow/alice?embed=1")
    assert page.status_code == 200
    assert "Not available right now." in page.text
    assert "https://shop.example" in page.headers["content-security-policy"]


def test_a_limit_fired_inside_the_overlay_answers_in_a_framable_page(world):
    from sqlalchemy import update

    from callnow.domain.request_state import RequestState
    from callnow.store.models import CallRequest

    set_profile(world, "alice", embed_origins="https://shop.example")
    statuses = []
    for _ in range(5):
        page = world.client.get("/callnow/alice?embed=1")
        answer = world.client.post(
            "/callnow/alice?embed=1",
            data={"form_token": form_token(page.text), "name": "Mary", "number": "0290371234"},
        )
        statuses.append(answer.status_code)
        with world.sessions() as session, session.begin():  # the next request is a new one
            session.execute(update(CallRequest).values(state=RequestState.COMPLETED.value))
    assert statuses[-1] == 429, statuses
    assert "https://shop.example" in answer.headers["content-security-policy"]
    assert answer.headers["retry-after"] == "60"


def test_cancelling_inside_the_overlay_stays_in_the_embed_variant(world):
    set_profile(world, "alice", embed_origins="https://shop.example")
    page = world.client.get("/callnow/alice?embed=1")
    placed = world.client.post(
        "/callnow/alice?embed=1",
        data={"form_token": form_token(page.text), "name": "Mary", "number": "0290375678"},
    )
    status_url = placed.headers["location"]
    status = world.client.get(status_url)
    cancel_url = status_url.replace("?embed=1", "/cancel?embed=1")
    cancelled = world.client.post(cancel_url, data={"form_token": form_token(status.text)})
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == status_url
    [stored] = all_requests(world)
    assert stored.state == "cancelled"
