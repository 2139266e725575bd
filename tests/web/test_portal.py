"""The owner portal: log in, share links, preferences, rules, requests and API keys."""

import re

from tests.support.world import PASSWORD
from tests.web.helpers import all_requests, form_token, post_form


def log_in(world, email="alice@example.com", password=PASSWORD):
    page = world.client.get("/portal/login")
    return world.client.post(
        "/portal/login",
        data={"csrf": form_token(page.text, "csrf"), "email": email, "password": password},
    )


def test_the_portal_asks_for_a_login_first(world):
    response = world.client.get("/portal")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/login"


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(world):
    response = log_in(world, password="wrong password!")
    assert response.status_code == 401
    assert "do not match an account" in response.text
    unknown = log_in(world, email="nobody@example.com")
    assert unknown.status_code == 401


def test_a_failed_login_keeps_the_email_typed(world):
    response = log_in(world, password="wrong password!")
    assert 'value="alice@example.com"' in response.text


def test_login_without_the_form_token_is_refused(world):
    response = world.client.post(
        "/portal/login", data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400


def test_after_login_the_owner_sees_both_share_addresses_and_a_qr_code(world):
    assert log_in(world).status_code == 303
    home = world.client.get("/portal")
    assert home.status_code == 200
    assert "http://testserver/callnow/alice" in home.text
    assert "http://testserver/callnow?id=alice" in home.text
    assert "<svg" in home.text
    assert "bob" not in home.text


def test_the_session_cookie_is_httponly_and_samesite_lax(world):
    response = log_in(world)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def log_out(world):
    page = world.client.get("/portal")
    return world.client.post("/portal/logout", data={"csrf": form_token(page.text, "csrf")})


def test_logging_out_ends_the_session(world):
    log_in(world)
    assert log_out(world).status_code == 303
    assert world.client.get("/portal").status_code == 303


def preferences_form(world, callnow_id="alice"):
    page = world.client.get(f"/portal/profiles/{callnow_id}/preferences")
    assert page.status_code == 200
    return page, {
        "csrf": form_token(page.text, "csrf"),
        "callnow_id": callnow_id,
        "enabled": "on",
        "confirmation_required": "on",
        "show_name": "on",
        "require_caller_name": "on",
        "welcome_message": "Call me!",
    }


def test_the_owner_changes_preferences_and_the_public_page_follows(world):
    # Seen once before the change: this process holds the page from here on.
    assert "Call me!" not in world.client.get("/callnow/alice").text
    log_in(world)
    _, data = preferences_form(world)
    data.pop("show_name")
    data.update(
        win_0_0_start="09:00",
        win_0_0_end="17:00",
        win_4_0_start="22:00",
        win_4_0_end="02:00",
        display_name="Alice Smith",
    )
    saved = world.client.post("/portal/profiles/alice/preferences", data=data)
    assert saved.status_code == 200
    assert "Saved." in saved.text
    public = world.client.get("/callnow/alice")
    assert "Call me!" in public.text
    assert "Alice Pty Owner" not in public.text
    assert "Mon 09:00–17:00" in public.text
    assert "Fri 22:00–02:00 (next day)" in public.text
    assert "Alice Smith" not in public.text  # saved, but show_name is off


def test_the_owner_can_pick_a_new_callnow_id(world):
    log_in(world)
    _, data = preferences_form(world)
    data["callnow_id"] = "Alice.Smith"
    unconfirmed = world.client.post("/portal/profiles/alice/preferences", data=data)
    assert unconfirmed.status_code == 422
    assert "to confirm" in unconfirmed.text
    assert world.client.get("/callnow/alice").status_code == 200  # nothing was saved
    data["confirm_rename"] = "on"
    assert world.client.post("/portal/profiles/alice/preferences", data=data).status_code == 200
    assert world.client.get("/callnow/alice.smith").status_code == 200
    # Printed links keep working: the old address redirects for good.
    old = world.client.get("/callnow/alice")
    assert (old.status_code, old.headers["location"]) == (301, "/callnow/alice.smith")
    page = world.client.get("/portal/profiles/alice.smith/preferences")
    assert "<code>alice</code>" in page.text


def test_a_taken_or_reserved_id_is_refused_and_nothing_is_saved(world):
    log_in(world)
    _, data = preferences_form(world)
    data.update(callnow_id="bob", welcome_message="changed")
    taken = world.client.post("/portal/profiles/alice/preferences", data=data)
    assert taken.status_code == 422
    assert "is taken" in taken.text
    data["callnow_id"] = "admin"
    assert "reserved" in world.client.post("/portal/profiles/alice/preferences", data=data).text
    assert "changed" not in world.client.get("/callnow/alice").text


def test_bad_hours_and_time_zones_are_refused_with_reasons(world):
    log_in(world)
    _, data = preferences_form(world)
    data.update(win_0_0_start="25:00", win_0_0_end="17:00", timezone="Mars/Base")
    response = world.client.post("/portal/profiles/alice/preferences", data=data)
    assert response.status_code == 422
    assert "Hours row 1 (Mon)" in response.text
    assert "not a known time zone" in response.text
    # What the owner typed stays in the form to correct.
    assert 'value="25:00"' in response.text
    data.update(win_0_0_start="09:00", win_0_0_end="", timezone="")
    half = world.client.post("/portal/profiles/alice/preferences", data=data)
    assert half.status_code == 422
    assert "Monday, window 1: give both a start and an end." in half.text


def test_the_hours_editor_round_trips_an_overnight_window_and_a_day_with_two(world):
    log_in(world)
    _, data = preferences_form(world)
    data.update(
        win_1_0_start="08:00",
        win_1_0_end="12:00",
        win_1_1_start="13:00",
        win_1_1_end="17:30",
        win_5_0_start="22:00",
        win_5_0_end="02:00",
        timezone="Europe/Berlin",
    )
    assert world.client.post("/portal/profiles/alice/preferences", data=data).status_code == 200
    page = world.client.get("/portal/profiles/alice/preferences").text
    for name, value in [
        ("win_1_0_start", "08:00"),
        ("win_1_0_end", "12:00"),
        ("win_1_1_start", "13:00"),
        ("win_1_1_end", "17:30"),
        ("win_5_0_start", "22:00"),
        ("win_5_0_end", "02:00"),
        ("win_0_0_start", ""),
    ]:
        assert re.search(rf'type="time" id="{name}" name="{name}" value="{value}"', page), name
    assert '<option value="Europe/Berlin" selected>' in page
    public = world.client.get("/callnow/alice").text
    assert "Tue 08:00–12:00" in public and "Tue 13:00–17:30" in public
    assert "Sat 22:00–02:00 (next day)" in public
    # Emptying a row removes its window; the other stays.
    data.update(win_1_0_start="", win_1_0_end="")
    world.client.post("/portal/profiles/alice/preferences", data=data)
    public = world.client.get("/callnow/alice").text
    assert "Tue 08:00–12:00" not in public and "Tue 13:00–17:30" in public


def test_the_owner_edits_the_name_their_page_shows(world):
    log_in(world)
    _, data = preferences_form(world)
    data["display_name"] = "Alice at Acme"
    assert world.client.post("/portal/profiles/alice/preferences", data=data).status_code == 200
    assert "Alice at Acme" in world.client.get("/callnow/alice").text
    data["display_name"] = "x" * 81
    too_long = world.client.post("/portal/profiles/alice/preferences", data=data)
    assert too_long.status_code == 422
    assert "at most 80 characters" in too_long.text


def test_an_owner_cannot_open_or_change_another_owners_preferences(world):
    log_in(world)
    assert world.client.get("/portal/profiles/bob/preferences").status_code == 404
    _, data = preferences_form(world)
    data["callnow_id"] = "bob"
    assert world.client.post("/portal/profiles/bob/preferences", data=data).status_code == 404


def test_a_preferences_post_without_the_session_token_is_refused(world):
    log_in(world)
    _, data = preferences_form(world)
    data["csrf"] = "forged"
    data["welcome_message"] = "hijacked"
    assert world.client.post("/portal/profiles/alice/preferences", data=data).status_code == 400
    assert "hijacked" not in world.client.get("/callnow/alice").text


def rules_action(world, **fields):
    page = world.client.get("/portal/profiles/alice/rules")
    return world.client.post(
        "/portal/profiles/alice/rules", data={"csrf": form_token(page.text, "csrf"), **fields}
    )


def test_rules_are_added_ordered_and_deleted(world):
    log_in(world)
    rules_action(world, op="add", action="reject", number_match="prefix", number_value="04")
    rules_action(world, op="add", action="accept", name_match="exact", name_value="Mum")
    page = world.client.get("/portal/profiles/alice/rules").text
    assert page.index("Reject when number starts with +614") < page.index("Accept when name is")
    rules_action(world, op="up", index="1")
    page = world.client.get("/portal/profiles/alice/rules").text
    assert page.index("Accept when name is") < page.index("Reject when number starts")
    rules_action(world, op="delete", index="0")
    page = world.client.get("/portal/profiles/alice/rules").text
    assert "Accept when name is" not in page


def test_rules_are_edited_in_place_with_only_the_moves_that_make_sense(world):
    log_in(world)
    rules_action(world, op="add", action="reject", number_match="prefix", number_value="04")
    rules_action(world, op="add", action="confirm", name_match="contains", name_value="VIP")
    rules_action(
        world, op="add", action="reject", number_match="scope", number_value="international"
    )
    page = world.client.get("/portal/profiles/alice/rules").text
    assert page.count(">Move up</button>") == 2 and page.count(">Move down</button>") == 2
    assert "Move up: rule 1" not in page and "Move down: rule 3" not in page
    assert "Anyone can type any name, so this rule" not in page
    # The edit form starts from the rule as it is.
    assert 'id="number_value-0" name="number_value" value="+614"' in page
    edited = rules_action(
        world, op="edit", index="1", action="accept", name_match="contains", name_value="VIP"
    )
    assert edited.status_code == 303
    page = world.client.get("/portal/profiles/alice/rules").text
    assert "Accept when name contains “VIP”" in page
    assert "Confirm when name contains" not in page
    assert page.count("Anyone can type any name, so this rule") == 1
    bad = rules_action(world, op="edit", index="0", action="reject", number_match="prefix")
    assert bad.status_code == 422
    assert (
        "Reject when number starts with +614"
        in world.client.get("/portal/profiles/alice/rules").text
    )


def test_a_rule_changes_what_happens_to_a_request(world):
    assert world.client.get("/callnow/alice").status_code == 200  # held from here on
    log_in(world)
    rules_action(
        world, op="add", action="accept", number_match="exact", number_value="02 9037 5678"
    )
    post_form(world, "alice", name="Mary", number="0290375678")
    assert all_requests(world)[0].decision == "accept"


def test_a_rule_without_conditions_is_refused(world):
    log_in(world)
    response = rules_action(world, op="add", action="reject")
    assert response.status_code == 422
    assert "needs a number or a name condition" in response.text


def test_the_owner_sees_their_requests_and_not_others(world):
    post_form(world, "alice", name="Mary", number="0290375678")
    post_form(world, "bob", name="Eve", number="0412345678")
    log_in(world)
    page = world.client.get("/portal/requests").text
    assert "Mary" in page and "+61290375678" in page
    assert "Eve" not in page


def test_an_api_key_is_shown_once_and_can_be_revoked(world):
    log_in(world)
    page = world.client.get("/portal/api-keys")
    created = world.client.post(
        "/portal/api-keys",
        data={"csrf": form_token(page.text, "csrf"), "op": "create", "label": "CRM"},
    )
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', created.text).group(1)
    assert (
        world.client.get(
            "/api/v1/profiles", headers={"authorization": f"Bearer {secret}"}
        ).status_code
        == 200
    )
    listing = world.client.get("/portal/api-keys").text
    assert secret not in listing
    key_id = secret.split("_")[1]
    world.client.post(
        "/portal/api-keys",
        data={"csrf": form_token(listing, "csrf"), "op": "revoke", "key_id": key_id},
    )
    assert (
        world.client.get(
            "/api/v1/profiles", headers={"authorization": f"Bearer {secret}"}
        ).status_code
        == 401
    )


def test_preference_and_rule_changes_are_audited(world):
    from callnow.store import audit

    log_in(world)
    _, data = preferences_form(world)
    world.client.post("/portal/profiles/alice/preferences", data=data)
    rules_action(world, op="add", action="reject", number_match="prefix", number_value="04")
    with world.sessions() as session:
        entries = audit.recent(session)
        assert [e.action for e in entries] == ["rules.add", "profile.update"]
        assert entries[0].actor == "alice@example.com (portal)"
        assert entries[0].details == {"rules": ["Reject when number starts with +614"]}


def test_logins_are_throttled_per_account(world):
    statuses = [log_in(world, password=f"wrong password {i}").status_code for i in range(7)]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    assert log_in(world).status_code == 429  # even the right password waits
