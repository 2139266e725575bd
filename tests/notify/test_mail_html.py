"""Owner mails carry an HTML part beside the plain text, sent through a real SMTP server
process: the same words, answer links as buttons, the visitor's words escaped, the owner's
language and writing direction. (tests/browser/test_notice_pages.py opens it in Chromium.)"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sqlalchemy import select

from callnow.store.models import User
from tests.notify.test_mail_outbox import mail_settings, send_pass
from tests.support.smtp import html_of, text_of
from tests.web.helpers import post_form, set_profile

HOSTILE_NAME = 'Tom <img src=x onerror="alert(1)"> & Jerry'


class _Page(HTMLParser):
    """The tags, links (href and words) and text of an HTML part, as a mail program sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[tuple[str, str]] = []  # (words, href), in order
        self.text: list[str] = []
        self._href: str | None = None
        self.root: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "html":
            self.root = dict(attrs)
        if tag == "a":
            self._href = dict(attrs)["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._href is not None:
            self.links.append((" ".join(data.split()), self._href))


def parsed(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_an_awaiting_mail_offers_its_answers_as_buttons_with_the_same_links(world, smtp_server):
    set_profile(world, "alice", confirm_on_web=True)
    assert post_form(world, "alice", name=HOSTILE_NAME, number="0290375678").status_code == 303
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    assert message.get_content_type() == "multipart/alternative"
    text, page = text_of(message), parsed(html_of(message))

    [accept] = re.findall(r"Accept \(call them back\): (http\S+)", text)
    [decline] = re.findall(r"Decline: (http\S+)", text)
    # A button says what it does; its address is the plain text's, so both parts answer alike.
    links = dict(page.links)
    assert links["Accept (call them back)"] == accept
    assert links["Decline"] == decline
    assert links["http://testserver/portal/requests"] == "http://testserver/portal/requests"
    assert "http://testserver/portal/notifications" in links
    # The visitor's name is words on the page, never markup.
    assert "img" not in page.tags
    shown = "".join(page.text)
    assert f"{HOSTILE_NAME} (+61290375678) asked on your page alice to be called back." in shown
    assert message["Subject"] in shown  # the heading
    assert page.root == {"lang": "en", "dir": "ltr"}


def test_an_arabic_owner_gets_a_right_to_left_html_part(world, smtp_server):
    with world.sessions() as session, session.begin():
        user = session.scalars(select(User).where(User.email == "alice@example.com")).one()
        user.language = "ar"
    set_profile(world, "alice", confirm_on_web=True)
    assert post_form(world, "alice", name="Mary", number="0290375678").status_code == 303
    assert send_pass(world, mail_settings(world, smtp_server)) == 1
    [message] = smtp_server.wait_for(1)
    page = parsed(html_of(message))
    assert page.root == {"lang": "ar", "dir": "rtl"}
    # Both answers are buttons in Arabic words, at the plain text's addresses.
    answers = {words: link for words, link in page.links if "/mail-answer/" in link}
    assert len(answers) == 2
    assert set(answers.values()) <= set(re.findall(r"http://\S+", text_of(message)))
    assert all(not words.startswith("http") for words in answers)


def test_a_digest_has_a_section_per_notice_in_its_html_part(world, smtp_server):
    settings = mail_settings(world, smtp_server, digest_burst=1, digest_gap_s=0)
    set_profile(world, "alice", confirm_on_web=True)
    assert post_form(world, "alice", name="First", number="0290375600").status_code == 303
    assert send_pass(world, settings) == 1
    for n in range(3):
        posted = post_form(world, "alice", name=f"Visitor {n}", number=f"02903757{n:02d}")
        assert posted.status_code == 303
    assert send_pass(world, settings) == 3
    digest = smtp_server.wait_for(2)[1]
    html = html_of(digest)
    headings = re.findall(r"<h2[^>]*>([^<]*)</h2>", html)
    assert [h.split(" ", 1)[0] for h in headings] == ["1.", "2.", "3."]
    assert all("Call back Visitor" in h for h in headings)
    buttons = [link for _, link in parsed(html).links if "/mail-answer/" in link]
    assert len(buttons) == 6
    assert sorted(buttons) == sorted(re.findall(r"http://\S+/mail-answer/\S+", text_of(digest)))
