"""Which webhook URLs an owner may set.

Only plain http(s) addresses with a host, and never credentials in the URL: a secret in the
address would be shown in the portal, logged by proxies and kept in every delivery row. The
receiver authenticates us by the HMAC signature header instead.

SSRF: the sender POSTs from inside the provider's network, so a URL naming a private address
(127.0.0.1, 10/8, a metadata service) would let an owner make us talk to it. The web checks here
are about the shape of the URL only; loopback must stay allowed because the tests receive on
127.0.0.1. A production deployment should send webhooks through an egress proxy or firewall that
only lets public destinations out (and the sender never follows redirects).
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_CHARS = 500


class InvalidWebhookUrl(ValueError):
    pass


def check_webhook_url(raw: str) -> str:
    """The URL as it will be stored, or InvalidWebhookUrl with a reason an owner can act on."""
    url = raw.strip()
    if not url:
        raise InvalidWebhookUrl("Please enter the address to send status changes to.")
    if len(url) > MAX_URL_CHARS:
        raise InvalidWebhookUrl(f"The address is at most {MAX_URL_CHARS} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidWebhookUrl("The address may not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number or out of range
    except ValueError as exc:
        raise InvalidWebhookUrl("That is not a valid web address.") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidWebhookUrl("The address must start with http:// or https://.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl(
            "Please do not put a user name or password in the address; "
            "check our signature header instead."
        )
    if not parts.hostname:
        raise InvalidWebhookUrl("The address needs a host name.")
    if port == 0:
        raise InvalidWebhookUrl("Port 0 cannot be used.")
    if parts.fragment:
        raise InvalidWebhookUrl("The address may not contain a #fragment.")
    return url
