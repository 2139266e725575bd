"""Re-INVITEs from either phone once a leg is up (hold, resume, a new address), per RFC 3264.

Once bridged, the offer goes through rtpengine and on to the other leg by a re-INVITE of ours,
so the other phone hears the hold too and media follows both ways; the other leg's answer
comes back through rtpengine as ours (`sendonly` is answered `recvonly`, `inactive`
`inactive`). Before the bridge only this leg and rtpengine's side of it exist: it is answered
from our last SDP with the direction RFC 3264 asks for. The re-INVITE is always answered,
whatever fails on the way.
"""

from __future__ import annotations

import logging

from callnow.domain.calls import LegRole
from callnow.telephony.rtpengine import AnchoredCallback
from callnow.telephony.sdp import answer_direction, continue_origin, direction, with_direction
from callnow.telephony.sip import Leg, ReinviteRejected

log = logging.getLogger(__name__)


async def answer_reoffer(
    *,
    request_ref: str,
    media: AnchoredCallback,
    role: LegRole,
    leg: Leg,
    other: Leg | None,
    bridged: bool,
    offer: str | None,
) -> None:
    """Answer `leg`'s re-INVITE carrying `offer` (None: an offerless re-INVITE)."""
    answer: str | None = None
    try:
        if bridged and other is not None and not other.done and offer:
            answer = await pass_reoffer(
                request_ref=request_ref, media=media, role=role, other=other, offer=offer
            )
    except Exception:
        log.exception("callback %s: passing on the %s re-INVITE failed", request_ref, role)
    # Ours carries the o= line this phone knows, one version up (RFC 3264 8).
    mine = leg.local_answer(offer) if answer is None else continue_origin(answer, leg.local_sdp)
    await leg.answer_update(mine)


async def pass_reoffer(
    *, request_ref: str, media: AnchoredCallback, role: LegRole, other: Leg, offer: str
) -> str:
    """Offer `role`'s new SDP through rtpengine to the `other` leg; returns the answer for
    `role`'s phone. When the other phone refuses or does not answer, it keeps its last state
    and rtpengine is answered for it from its last SDP with the direction asked for."""
    tag = media.owner_tag if role is LegRole.OWNER else media.visitor_tag
    for_other = continue_origin(await media.reoffer_from(tag, offer), other.local_sdp)
    try:
        other_answer = await other.reinvite(for_other)
    except (ReinviteRejected, TimeoutError, RuntimeError) as exc:
        log.warning("callback %s: re-INVITE passed on was refused: %s", request_ref, exc)
        other_answer = None
    if not other_answer:
        last = other.remote_sdp or ""
        wanted = answer_direction(direction(for_other))
        other_answer = with_direction(last, wanted)
    return await media.reanswer_to(tag, other_answer)
