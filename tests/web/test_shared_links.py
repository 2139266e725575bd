"""Shared links never break and never act by themselves: renamed IDs redirect and stay held;
link previews, prefetches and HEAD get the page and place nothing."""

from datetime import UTC, datetime, timedelta

import pytest

from callnow.domain.callnow_id import RETIRED_ID_HELD
from callnow.services import page_settings
from callnow.store import accounts, profiles, retired_ids
from tests.web.helpers import all_requests, set_profile


def rename(world, old: str, new: str, now: datetime | None = None) -> None:
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, old)
        owner = profile.extension.owner
        page_settings.change_page(
            session,
            profile,
            page_settings.PageChanges(callnow_id=new),
            actor=owner,
            via="test",
            details={},
            now=now,
        )


def claim(world, owner_page: str, wanted: str, now: datetime | None = None) -> dict[str, str]:
    with world.sessions() as session, session.begin():
        profile = profiles.by_callnow_id(session, owner_page)
        user = accounts.by_email(session, f"{owner_page}@example.com")
        try:
            page_settings.change_page(
                session,
                profile,
                page_settings.PageChanges(callnow_id=wanted),
                actor=user,
                via="test",
                details={},
                now=now,
            )
        except page_settings.InvalidChanges as invalid:
            return invalid.errors
    return {}


def test_a_renamed_id_redirects_permanently_and_keeps_one_step_fields(world):
    rename(world, "alice", "alice.sales")
    page = world.client.get("/callnow/alice")
    assert page.status_code == 301
    assert page.headers["location"] == "/callnow/alice.sales"
    link = world.client.get("/callnow/ALICE?name=Mary&number=0290375678")
    assert link.status_code == 301
    assert link.headers["location"] == "/callnow/alice.sales?name=Mary&number=0290375678"
    by_query = world.client.get("/callnow?id=alice")
    assert (by_query.status_code, by_query.headers["location"]) == (301, "/callnow/alice.sales")
    assert world.client.get("/callnow/alice.sales").status_code == 200


def test_renaming_twice_still_leads_old_links_to_the_current_id(world):
    rename(world, "alice", "alice2")
    rename(world, "alice2", "alice3")
    assert world.client.get("/callnow/alice").headers["location"] == "/callnow/alice3"
    assert world.client.get("/callnow/alice2").headers["location"] == "/callnow/alice3"


def test_a_renamed_id_cannot_be_claimed_by_another_page_for_a_year(world):
    now = datetime.now(UTC)
    rename(world, "alice", "alice.sales", now)
    errors = claim(world, "bob", "alice", now + timedelta(days=364))
    assert "stays reserved for at least a year" in errors["callnow_id"]
    assert timedelta(days=365) <= RETIRED_ID_HELD
    # After the hold the ID is free; it then stops redirecting to the old page.
    assert claim(world, "bob", "alice", now + RETIRED_ID_HELD + timedelta(days=1)) == {}
    assert world.client.get("/callnow/alice").status_code == 200
    assert "Bob Pty Owner" in world.client.get("/callnow/alice").text


def test_the_owner_may_take_their_old_id_back(world):
    rename(world, "alice", "alice.sales")
    assert claim(world, "alice.sales", "alice") == {}
    assert world.client.get("/callnow/alice").status_code == 200
    assert world.client.get("/callnow/alice.sales").headers["location"] == "/callnow/alice"


def test_a_hidden_page_is_not_revealed_by_its_old_id(world):
    rename(world, "alice", "alice.sales")
    set_profile(world, "alice.sales", enabled=False)
    gone = world.client.get("/callnow/alice")
    assert gone.status_code == 404
    assert gone.text == world.client.get("/callnow/nobody_here").text


def test_the_portal_says_what_a_rename_does_before_saving(world):
    from tests.web.test_portal import log_in

    log_in(world)
    form = world.client.get("/portal/profiles/alice/preferences")
    assert "keeps redirecting" in form.text
    assert "at least a year" in form.text
    assert 'name="confirm_rename"' in form.text


def test_a_rename_through_the_api_records_the_redirect_too(world):
    with world.sessions() as session, session.begin():
        user = accounts.by_email(session, "alice@example.com")
        key = {"authorization": f"Bearer {accounts.issue_api_key(session, user).secret}"}
    renamed = world.client.patch(
        "/api/v1/profiles/alice", headers=key, json={"callnow_id": "alice.sales"}
    )
    assert renamed.status_code == 200
    assert world.client.get("/callnow/alice").headers["location"] == "/callnow/alice.sales"
    with world.sessions() as session, session.begin():
        bob = profiles.by_callnow_id(session, "bob")
        assert retired_ids.held_for_another(session, "alice", bob.id, datetime.now(UTC))
    with world.sessions() as session:
        profile = profiles.by_callnow_id(session, "alice.sales")
        [retired] = retired_ids.retired_by(session, profile.id)
        assert retired.callnow_id == "alice"
        assert retired.held_until - retired.retired_at == RETIRED_ID_HELD


ONE_STEP = "/callnow/alice?name=Mary&number=0290375678"

PREVIEWS = [
    {"Sec-Purpose": "prefetch"},
    {"Sec-Purpose": "prefetch;prerender"},
    {"Purpose": "prefetch"},
    {"X-Purpose": "preview"},
    {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
    {"User-Agent": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"},
    {"User-Agent": "Twitterbot/1.0"},
    {"User-Agent": "WhatsApp/2.23.20.0 A"},
    {"User-Agent": "TelegramBot (like TwitterBot)"},
    {"User-Agent": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"},
    {
        "User-Agent": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"
    },
    {"User-Agent": "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5"},
    {"User-Agent": "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.4266; Pro)"},
    {"User-Agent": "Mozilla/5.0 (compatible; Google-Safety; +http://www.google.com/bot.html)"},
    {"User-Agent": "Link Preview Bot"},
]


@pytest.mark.parametrize("headers", PREVIEWS, ids=lambda h: next(iter(h.values()))[:24])
def test_a_link_preview_gets_the_filled_in_page_and_places_nothing(world, headers):
    set_profile(world, "alice", one_step_allowed=True)
    preview = world.client.get(ONE_STEP, headers=headers)
    assert preview.status_code == 200
    assert 'value="Mary"' in preview.text
    assert all_requests(world) == []


def test_a_person_following_the_one_step_link_is_called_back_in_one_step(world):
    set_profile(world, "alice", one_step_allowed=True)
    browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
    click = world.client.get(ONE_STEP, headers={"User-Agent": browser})
    assert click.status_code == 303
    assert [r.channel for r in all_requests(world)] == ["one_step"]


def test_head_answers_like_get_and_places_nothing(world):
    set_profile(world, "alice", one_step_allowed=True)
    for url in ("/callnow/alice", "/callnow?id=alice", ONE_STEP):
        head = world.client.head(url)
        assert head.status_code == 200, url
        assert head.headers["content-type"].startswith("text/html")
    assert all_requests(world) == []


def test_a_status_page_under_the_old_id_redirects_to_the_current_one(world):
    from tests.web.helpers import post_form

    status_url = post_form(world, "alice", name="Mary", number="0290375678").headers["location"]
    rename(world, "alice", "alice.sales")
    moved = world.client.get(status_url)
    assert moved.status_code == 301
    assert moved.headers["location"] == status_url.replace("/alice/", "/alice.sales/")
    # Another page's ID with this token is still refused.
    assert world.client.get(status_url.replace("/alice/", "/bob/")).status_code == 404
