"""Which language a visitor reads: their browser's among the page's, their choice, remembered."""

import re

import pytest

from callnow.store import accounts
from callnow.web import live
from callnow.web.sse import StreamTiming
from tests.web.helpers import all_requests, form_token, set_profile
from tests.web.test_embed import _script_config
from tests.web.test_live_status import sse_messages, status_events

GERMAN = {"accept-language": "de-DE,de;q=0.9,en;q=0.5"}
ARABIC = {"accept-language": "ar"}


@pytest.fixture(autouse=True)
def quick_streams(monkeypatch):
    monkeypatch.setattr(live, "TIMING", StreamTiming(poll_s=0.02, heartbeat_s=15, max_s=30))


def _html_lang(html: str) -> tuple[str, str]:
    match = re.search(r'<html lang="(\w+)" dir="(\w+)">', html)
    assert match
    return match.group(1), match.group(2)


def test_the_browser_language_is_used_when_the_page_offers_it(world):
    page = world.client.get("/callnow/alice", headers=GERMAN)
    assert _html_lang(page.text) == ("de", "ltr")
    assert "Bitten Sie Alice Pty Owner um einen Rückruf" in page.text
    assert "Ihre Telefonnummer" in page.text
    assert "Rückruf anfordern" in page.text
    # The country list of the number hint is German too.
    assert "Australien" in page.text
    arabic = world.client.get("/callnow/alice", headers=ARABIC)
    assert _html_lang(arabic.text) == ("ar", "rtl")
    assert "اطلب من Alice Pty Owner معاودة الاتصال بك" in arabic.text


def test_a_page_offers_only_its_languages_and_falls_back_to_its_default(world):
    set_profile(world, "alice", languages="fr,en", default_language="fr")
    # The browser's English (a lower choice) is offered, so it wins over the page's default.
    assert _html_lang(world.client.get("/callnow/alice", headers=GERMAN).text)[0] == "en"
    page = world.client.get("/callnow/alice", headers={"accept-language": "de, ja;q=0.5"})
    assert _html_lang(page.text) == ("fr", "ltr")
    assert "Demandez à Alice Pty Owner de vous rappeler" in page.text
    # The switch lists exactly the offered languages, each named in itself.
    switch = re.search(r'<nav class="languages".*?</nav>', page.text, re.S).group(0)
    assert "Français" in switch and "English" in switch and "Deutsch" not in switch
    # A language the page does not offer cannot be forced.
    assert _html_lang(world.client.get("/callnow/alice?lang=de").text)[0] == "fr"


def test_a_choice_by_link_is_remembered(world):
    page = world.client.get("/callnow/alice?lang=pl", headers=GERMAN)
    assert _html_lang(page.text)[0] == "pl"
    assert page.cookies.get("callnow_lang") == "pl"
    again = world.client.get("/callnow/alice", headers=GERMAN)
    assert _html_lang(again.text)[0] == "pl"


def test_the_switch_keeps_what_was_typed_and_sends_nothing(world):
    page = world.client.get("/callnow/alice", headers=GERMAN)
    assert 'name="switch_language" value="ja"' in page.text
    response = world.client.post(
        "/callnow/alice",
        headers=GERMAN,
        data={
            "form_token": form_token(page.text),
            "lang": "de",
            "name": "Mary <Q>",
            "number": "0290375678",
            "switch_language": "ja",
        },
    )
    assert response.status_code == 200
    assert _html_lang(response.text)[0] == "ja"
    assert 'value="Mary &lt;Q&gt;"' in response.text
    assert 'value="0290375678"' in response.text
    assert response.cookies.get("callnow_lang") == "ja"
    assert all_requests(world) == []
    # The page it shows carries a fresh form token that still works, now in Japanese.
    sent = world.client.post(
        "/callnow/alice",
        headers=GERMAN,
        data={
            "form_token": form_token(response.text),
            "lang": "ja",
            "name": "Mary",
            "number": "0290375678",
        },
    )
    assert sent.status_code == 303
    assert len(all_requests(world)) == 1
    status = world.client.get(sent.headers["location"], headers=GERMAN)
    assert _html_lang(status.text)[0] == "ja"
    assert "折り返し電話のご依頼" in status.text


def test_errors_come_back_in_the_language_of_the_form(world):
    page = world.client.get("/callnow/alice", headers=ARABIC)
    response = world.client.post(
        "/callnow/alice",
        headers=ARABIC,
        data={"form_token": form_token(page.text), "lang": "ar", "name": "M", "number": "abc"},
    )
    assert response.status_code == 422
    assert "توجد مشكلة" in response.text
    assert "يحتوي رقم الهاتف على حروف؛ يُرجى كتابة الأرقام فقط." in response.text


def test_the_status_page_and_its_stream_speak_the_request_language(world):
    page = world.client.get("/callnow/alice", headers=GERMAN)
    sent = world.client.post(
        "/callnow/alice",
        headers=GERMAN,
        data={
            "form_token": form_token(page.text),
            "lang": "de",
            "name": "Mary",
            "number": "0290375678",
        },
    )
    url = sent.headers["location"]
    # The browser alone chooses German again, so the address needs no language.
    assert "lang=" not in url
    status = world.client.get(url, headers=GERMAN)
    assert _html_lang(status.text)[0] == "de"
    assert "Ihre Rückrufanfrage" in status.text
    assert "In der Warteschlange" in status.text
    events = re.search(r'data-events="([^"]+)"', status.text).group(1)
    assert events.endswith("?lang=de")
    with world.client.stream("GET", events.replace("&amp;", "&")) as response:
        first = next(status_events(sse_messages(response.iter_lines())))
    assert first["data"]["message"] == ("Ihre Anfrage wartet; wir rufen gleich Alice Pty Owner an.")


def test_a_visitor_who_switched_gets_their_language_on_the_status_page_without_a_cookie(world):
    page = world.client.get("/callnow/alice", headers=GERMAN)
    world.client.cookies.clear()
    sent = world.client.post(
        "/callnow/alice",
        headers=GERMAN,
        data={
            "form_token": form_token(page.text),
            "lang": "it",
            "name": "Mary",
            "number": "0290375678",
        },
    )
    assert sent.headers["location"].endswith("?lang=it")
    world.client.cookies.clear()
    status = world.client.get(sent.headers["location"], headers=GERMAN)
    assert _html_lang(status.text)[0] == "it"


def test_unknown_pages_and_errors_speak_the_browser_language(world):
    missing = world.client.get("/callnow/nobody_here", headers=GERMAN)
    assert missing.status_code == 404
    assert "Diese CallNow-Seite ist nicht verfügbar" in missing.text
    edge = world.client.get("/no/such/page", headers={"accept-language": "nl"})
    assert edge.status_code == 404
    assert "Op dit adres staat geen pagina." in edge.text


def test_the_button_speaks_the_site_visitor_language_unless_the_owner_chose_a_label(world):
    script = world.client.get("/callnow/alice/embed.js", headers=GERMAN)
    config = _script_config(script.text)
    assert config["label"] == "Rückruf anfordern"
    assert config["close"] == "Schließen"
    assert config["frameTitle"] == "Rückruf anfordern: das Rückrufformular"
    assert "Accept-Language" in script.headers["vary"]
    set_profile(world, "alice", embed_label="Ring me")
    script = world.client.get("/callnow/alice/embed.js", headers=GERMAN)
    assert _script_config(script.text)["label"] == "Ring me"


def test_the_call_api_stays_english(world):
    with world.sessions() as session, session.begin():
        user = accounts.by_email(session, "alice@example.com")
        secret = accounts.issue_api_key(session, user).secret
    response = world.client.post(
        "/api/v1/profiles/alice/requests",
        headers={"authorization": f"Bearer {secret}", **GERMAN},
        json={"name": "Mary", "number": "abc"},
    )
    assert response.status_code == 422
    assert response.json()["errors"]["number"] == (
        "The phone number contains letters; please type digits only."
    )
