"""The portal speaks the owner's language: Accept-Language before sign-in, `users.language`
after; the preferences choose it, and the languages the page offers its visitors."""

import json

from sqlalchemy import select

from callnow.store.models import Profile, User
from callnow.web import owner_live
from callnow.web.sse import StreamTiming
from tests.web.helpers import form_token, post_form, set_profile
from tests.web.test_portal import log_in, preferences_form, rules_action


def set_language(world, email: str, language: str) -> None:
    with world.sessions() as session, session.begin():
        user = session.scalars(select(User).where(User.email == email)).one()
        user.language = language


def stored(world) -> tuple[str, str, str]:
    with world.sessions() as session:
        user = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        profile = session.scalars(select(Profile).where(Profile.callnow_id == "alice")).one()
        return user.language, profile.languages, profile.default_language


def test_before_sign_in_the_browser_language_is_spoken(world):
    page = world.client.get("/portal/login", headers={"Accept-Language": "sv, de-AT;q=0.8"})
    assert '<html lang="de" dir="ltr">' in page.text
    assert "<h1>Anmelden</h1>" in page.text
    arabic = world.client.get("/portal/reset", headers={"Accept-Language": "ar"})
    assert '<html lang="ar" dir="rtl">' in arabic.text
    assert "إعادة تعيين كلمة المرور" in arabic.text
    # A language CallNow does not ship falls back to English.
    assert "Log in" in world.client.get("/portal/login", headers={"Accept-Language": "sv"}).text


def test_a_wrong_password_is_refused_in_the_browser_language(world):
    page = world.client.get("/portal/login", headers={"Accept-Language": "de"})
    refused = world.client.post(
        "/portal/login",
        data={
            "csrf": form_token(page.text, "csrf"),
            "email": "alice@example.com",
            "password": "wrong password!",
        },
        headers={"Accept-Language": "de"},
    )
    assert refused.status_code == 401
    assert "E-Mail-Adresse und Passwort passen zu keinem Konto." in refused.text


def test_an_owner_with_language_de_gets_the_portal_in_german_whatever_the_browser_says(world):
    set_language(world, "alice@example.com", "de")
    log_in(world)
    home = world.client.get("/portal", headers={"Accept-Language": "en"})
    assert '<html lang="de" dir="ltr">' in home.text
    assert "Meine CallNow-Seiten" in home.text and "Ihre Seite teilen" in home.text
    assert "Abmelden" in home.text and "Log out" not in home.text
    prefs = world.client.get("/portal/profiles/alice/preferences")
    assert "Einstellungen für <code>alice</code>" in prefs.text
    # Weekdays come from the locale's own names.
    assert "<legend>Montag</legend>" in prefs.text and "Zeitfenster am Dienstag" in prefs.text
    assert 'value="de" lang="de" selected>Deutsch</option>' in prefs.text


def test_the_owner_chooses_their_language_and_the_pages_languages(world):
    log_in(world)
    _, data = preferences_form(world)
    form = {**data, "owner_language": "ar", "languages": ["de", "fr"], "default_language": "fr"}
    saved = world.client.post("/portal/profiles/alice/preferences", data=form)
    assert saved.status_code == 200
    # The answer already speaks the language just chosen.
    assert '<html lang="ar" dir="rtl">' in saved.text and "تم الحفظ." in saved.text
    assert stored(world) == ("ar", "de,fr", "fr")
    # Every shipped language offered is stored as "all" (later languages join by themselves).
    everything = ["en", "de", "fr", "es", "it", "pt", "nl", "pl", "ja", "ar"]
    form = {**data, "owner_language": "en", "languages": everything, "default_language": "de"}
    # A fresh form, as the browser would load it after the save.
    _, data = preferences_form(world)
    form["csrf"] = data["csrf"]
    assert world.client.post("/portal/profiles/alice/preferences", data=form).status_code == 200
    assert stored(world) == ("en", "", "de")


def test_refused_language_choices_save_nothing_and_say_why(world):
    log_in(world)
    _, data = preferences_form(world)
    default_not_offered = {
        **data,
        "owner_language": "de",
        "languages": ["en", "fr"],
        "default_language": "de",
    }
    refused = world.client.post("/portal/profiles/alice/preferences", data=default_not_offered)
    assert refused.status_code == 422
    assert "The default language must be one of the languages your page offers." in refused.text
    assert stored(world) == ("en", "", "en")  # not even the owner's own language changed
    # What was typed shows again.
    assert 'value="fr" checked' in refused.text and 'value="es" checked' not in refused.text

    unknown = {**data, "owner_language": "xx", "languages": ["en"], "default_language": "en"}
    refused = world.client.post("/portal/profiles/alice/preferences", data=unknown)
    assert refused.status_code == 422
    assert "&#39;xx&#39; is not a language CallNow speaks" in refused.text

    unknown_offered = {
        **data,
        "owner_language": "en",
        "languages": ["klingon"],
        "default_language": "en",
    }
    refused = world.client.post("/portal/profiles/alice/preferences", data=unknown_offered)
    assert refused.status_code == 422
    assert "&#39;klingon&#39; is not a language CallNow speaks" in refused.text

    none_offered = {**data, "owner_language": "en", "default_language": "en"}
    refused = world.client.post("/portal/profiles/alice/preferences", data=none_offered)
    assert refused.status_code == 422
    assert "Offer at least one language on your page." in refused.text
    assert stored(world) == ("en", "", "en")


def test_a_form_without_the_language_fields_leaves_them_as_they_are(world):
    set_language(world, "alice@example.com", "fr")
    log_in(world)
    _, data = preferences_form(world)
    assert world.client.post("/portal/profiles/alice/preferences", data=data).status_code == 200
    assert stored(world) == ("fr", "", "en")


def test_the_pending_streams_words_follow_the_owners_language(world, monkeypatch):
    monkeypatch.setattr(owner_live, "TIMING", StreamTiming(poll_s=0.02, max_s=30))
    set_language(world, "alice@example.com", "pl")
    set_profile(world, "alice", confirm_on_web=True)
    for number in ("0290375678", "0290375679"):
        assert post_form(world, "alice", name="Mary", number=number).status_code == 303
    log_in(world)
    page = world.client.get("/portal/pending", headers={"Accept-Language": "en"})
    assert "2 czekają" in page.text and "Przyjmij" in page.text
    with world.client.stream("GET", "/portal/pending/events") as response:
        data = (
            json.loads(line.removeprefix("data: "))
            for line in response.iter_lines()
            if line.startswith("data: ")
        )
        first = next(data)
    assert first["words"]["waiting"] == "2 czekają"
    assert (first["words"]["accept"], first["words"]["decline"]) == ("Przyjmij", "Odrzuć")
    token = first["items"][0]["token"]
    assert first["texts"][token]["details"].startswith("(strona alice, prośba o ")


def test_rule_descriptions_hours_errors_and_script_words_follow_the_owners_language(world):
    set_language(world, "alice@example.com", "de")
    log_in(world)
    rules_action(
        world,
        op="add",
        action="reject",
        number_match="prefix",
        number_value="04",
        name_match="contains",
        name_value="VIP",
    )
    rules = world.client.get("/portal/profiles/alice/rules").text
    assert "Abweisen, wenn die Nummer mit +614 beginnt und der Name „VIP“ enthält" in rules
    assert "Reject when" not in rules
    # A refused rule says why in German too.
    refused = rules_action(world, op="add", action="accept")
    assert refused.status_code == 422
    assert "Eine Regel braucht eine Bedingung für die Nummer oder den Namen." in refused.text
    # An hours row names its weekday the locale's way and its error in German.
    _, data = preferences_form(world)
    data.update(win_0_0_start="25:00", win_0_0_end="17:00")
    response = world.client.post("/portal/profiles/alice/preferences", data=data)
    assert response.status_code == 422
    assert "Zeiten, Zeile 1 (Mo.): „25:00“ ist keine Uhrzeit wie 09:30." in response.text
    assert "Hours row" not in response.text
    # The portal's scripts get their words from the page, in German.
    home = world.client.get("/portal").text
    assert 'data-copied="In die Zwischenablage kopiert."' in home
    assert 'data-title="Rückrufanfrage wartet"' in home
    assert 'data-named="{caller}, {number} (Seite {page})"' in home
