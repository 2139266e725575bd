"""Fetches that only look at a page: link previews, prefetches and mail-link scanners.

A one-step link places a paid call on a plain GET, so anything that fetches a link without a
person asking (a chat app drawing a preview, a mail gateway checking a link, a browser
prefetching) must get the page and place nothing. A person's click sends none of these signs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Headers that announce a speculative fetch, and the words in them that say so.
PURPOSE_HEADERS = ("sec-purpose", "purpose", "x-purpose", "x-moz")
_PURPOSE_WORDS = re.compile(r"\b(prefetch|prerender|preview)\b", re.IGNORECASE)

# User agents of link unfurlers and scanners (matched anywhere, case-insensitively).
PREVIEW_AGENTS = (
    "slackbot",
    "slack-imgproxy",
    "facebookexternalhit",
    "facebookcatalog",
    "facebot",
    "meta-externalagent",
    "twitterbot",
    "whatsapp",
    "telegrambot",
    "discordbot",
    "linkedinbot",
    "skypeuripreview",
    "microsoft office",
    "ms-office",
    "msoffice",
    "outlook-ios",
    "outlook-android",
    "microsoftpreview",
    "bingpreview",
    "google-safety",
    "googleimageproxy",
    "google-pagerenderer",
    "google-inspectiontool",
    "googlebot",
    "applebot",
    "iframely",
    "embedly",
    "pinterest",
    "redditbot",
    "mattermost",
    "rocket.chat",
    "viber",
    "snapchat",
    "kakaotalk",
    "vkshare",
    "bitlybot",
    "mimecast",
    "proofpoint",
    "barracuda",
    "safelinks",
)
# Generic words any self-describing robot uses ("Link Preview Bot"); whole words only, so a
# phone model such as "CUBOT" is not mistaken for one.
_ROBOT_WORDS = re.compile(r"\b(bot|crawler|spider|preview|scanner|unfurl\w*)\b", re.IGNORECASE)

UA_MAX_CHARS = 512


def is_look_only(method: str, headers: Mapping[str, str]) -> bool:
    """True when this fetch must not act: HEAD, an announced prefetch or preview, or a known
    previewer's or scanner's user agent. `headers` keys are lower-case."""
    if method.upper() == "HEAD":
        return True
    for name in PURPOSE_HEADERS:
        if _PURPOSE_WORDS.search(headers.get(name, "")[:200]):
            return True
    agent = headers.get("user-agent", "")[:UA_MAX_CHARS]
    lowered = agent.lower()
    if any(marker in lowered for marker in PREVIEW_AGENTS):
        return True
    return bool(_ROBOT_WORDS.search(agent))
