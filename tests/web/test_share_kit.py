"""The portal's sharing kit: addresses to copy, QR codes to print, an e-mail signature."""

import html
import re
import struct

from tests.web.test_portal import log_in


def test_the_home_page_offers_every_part_of_the_kit(world):
    log_in(world)
    home = world.client.get("/portal")
    assert home.status_code == 200
    # The addresses are plain selectable text; copy buttons appear only with scripts.
    assert '<code id="url-path-alice">http://testserver/callnow/alice</code>' in home.text
    assert re.search(
        r'<button type="button" class="copy secondary" data-copy="url-path-alice" hidden', home.text
    )
    for kind in ("svg", "png"):
        for size in ("card", "poster"):
            assert f'href="/portal/profiles/alice/qr.{kind}?size={size}" download' in home.text
    snippet = html.unescape(re.search(r'id="sig-html-alice"[^>]*>([^<]*)</textarea>', home.text)[1])
    assert 'href="http://testserver/callnow/alice"' in snippet
    assert "bgcolor=" in snippet and "Call me back" in snippet
    assert "Call me back: http://testserver/callnow/alice" in home.text
    assert '<script src="/static/share.js" defer></script>' in home.text


def png_width(data: bytes) -> int:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", data[16:20])[0]


def test_the_qr_code_downloads_in_print_sizes(world):
    log_in(world)
    card = world.client.get("/portal/profiles/alice/qr.png?size=card")
    poster = world.client.get("/portal/profiles/alice/qr.png?size=poster")
    assert card.headers["content-type"] == "image/png"
    assert 'filename="callnow-alice-card.png"' in card.headers["content-disposition"]
    # 25 mm and 200 mm at 300 dpi: about 295 and 2362 pixels.
    assert 250 <= png_width(card.content) <= 300
    assert 2200 <= png_width(poster.content) <= 2400
    svg = world.client.get("/portal/profiles/alice/qr.svg?size=poster")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert re.search(rb'width="(19\d|200)(\.\d+)?mm"', svg.content)


def test_the_qr_download_refuses_unknown_sizes_and_other_owners_pages(world):
    log_in(world)
    wrong = world.client.get("/portal/profiles/alice/qr.png?size=billboard")
    assert wrong.status_code == 422
    assert "size=card or size=poster" in wrong.text
    assert world.client.get("/portal/profiles/alice/qr.gif").status_code == 422
    assert world.client.get("/portal/profiles/bob/qr.svg").status_code == 404
    world.client.cookies.clear()
    assert world.client.get("/portal/profiles/alice/qr.svg").status_code == 303
