"""How many bridged callbacks one engine process holds open at once, and what each costs.

Run: .venv/bin/python bench/bridged_calls_bench.py [--steps 100,250,500,1000] [--ramp 50]

The live engine (CallbackEngine + LiveTelephony) sets up real callbacks, exactly as in
production: the owner's phone (SIPp, peers/sipp/bench_owner_inf.xml) answers and presses 1 by
SIP INFO, the trunk's phone (bench_trunk_inf.xml) answers, and the engine bridges both legs in
rtpengine through the ng client (offer, answer, re-offer/answer with port latching). Nobody
hangs up: the calls stay bridged while the number held open climbs step by step (100, 250,
500, 1000 by default). At each step the benchmark reports

- the engine's RSS and its growth per held call (SIP dialogs, flows, channels and timers),
- rtpengine's RSS and its growth per call (two anchored legs, four UDP ports),
- the engine's and rtpengine's CPU while merely holding the calls (no new calls),
- audio on a sample: the first `--sample` calls have their media at RTP peers of this process
  (the phones' SDP points there, through the -inf CSV); each side sends 0.5 s of audio and
  must receive the other side's, through rtpengine.

A step fails if a call is not bridged within its time, a held call ends on its own, or the
sample's audio does not get through; the steps stop there. At the end every call is hung up
through the engine (two BYEs each) and the teardown is timed. Everything is on 127.0.0.1; the
recorder is in memory, so the store's cost is not included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _machine import (  # noqa: E402
    HOST,
    MemoryRecorder,
    ProcSample,
    cpu_percent,
    free_udp_port,
    mib,
    print_machine,
    reserved_rtp_ports,
    sample,
    start_sipp,
)

from callnow import logs  # noqa: E402
from callnow.config import RtpengineSettings, Settings, SipSettings, TrunkSettings  # noqa: E402
from callnow.domain.calls import LegRole  # noqa: E402
from callnow.domain.flow import AcceptanceMode, FlowLimits, RequestFacts  # noqa: E402
from callnow.domain.request_state import RequestState  # noqa: E402
from callnow.engine.live import LiveChannel, LiveTelephony  # noqa: E402
from callnow.engine.ports import EventSink  # noqa: E402
from callnow.engine.runner import CallbackEngine, CallbackHandle  # noqa: E402
from callnow.telephony.rtpengine_process import RtpengineProcess  # noqa: E402
from tests.peers.rtp import RtpPeer  # noqa: E402

VISITOR = "+61290375678"
OWNER_EXTERNAL = "+61299990000"
AUDIO_PACKETS = 25  # 0.5 s each way per sample call
BRIDGE_TIMEOUT_S = 30.0  # a call not bridged this long after its start has failed
HOLD_S = 5.0  # CPU is measured over this quiet hold at each step
# Four ports per anchored call, plus room: 30 blocks of 200 = 6,000 ports.
RTP_BLOCKS = 30


class CapturingTelephony:
    """LiveTelephony as the engine's Telephony, keeping each callback's channel for the bench
    (to read the SDP of its legs: which of our RTP peers a call's media goes to)."""

    def __init__(self, live: LiveTelephony) -> None:
        self.live = live
        self.channels: dict[str, LiveChannel] = {}

    async def open_call(self, facts: RequestFacts, events: EventSink) -> LiveChannel:
        channel = await self.live.open_call(facts, events)
        self.channels[facts.request_ref] = channel
        return channel


def _media_port(sdp: str | None) -> int | None:
    found = re.search(r"^m=audio (\d+) ", sdp or "", re.M)
    return int(found.group(1)) if found else None


@dataclass
class SampleCall:
    owner: RtpPeer
    visitor: RtpPeer
    ref: str | None = None  # the callback whose phones answered with these peers' ports


def match_samples(samples: list[SampleCall], telephony: CapturingTelephony) -> int:
    """Find each sample's callback by the phones' answer SDP; returns the matched count."""
    by_owner = {c.owner.port: c for c in samples}
    by_visitor = {c.visitor.port: c for c in samples}
    for ref, channel in telephony.channels.items():
        legs = channel.legs
        if LegRole.OWNER not in legs or LegRole.VISITOR not in legs:
            continue
        owner = by_owner.get(_media_port(legs[LegRole.OWNER].remote_sdp) or -1)
        visitor = by_visitor.get(_media_port(legs[LegRole.VISITOR].remote_sdp) or -1)
        if owner is not None and owner is visitor:
            owner.ref = ref
    return sum(1 for c in samples if c.ref is not None)


@dataclass
class StepRow:
    target: int
    bridged: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    setup_s: float = 0.0
    engine: ProcSample | None = None
    rtpengine: ProcSample | None = None
    engine_cpu: float = 0.0
    rtpengine_cpu: float = 0.0
    audio_ok: int = 0
    audio_checked: int = 0

    @property
    def ok(self) -> bool:
        return (
            not self.failed
            and self.bridged == self.target
            and self.audio_ok == self.audio_checked
            and self.audio_checked > 0
        )


async def check_audio(calls: list[SampleCall], telephony: CapturingTelephony) -> int:
    """Each sample call: both phones talk at once; count calls where both heard the other."""

    async def one(call: SampleCall) -> bool:
        assert call.ref is not None
        channel = telephony.channels[call.ref]
        owner_leg, visitor_leg = channel.legs[LegRole.OWNER], channel.legs[LegRole.VISITOR]
        # Where each phone must send: rtpengine's port in the SDP we sent that phone.
        owner_to = (HOST, _media_port(owner_leg.local_sdp) or 0)
        visitor_to = (HOST, _media_port(visitor_leg.local_sdp) or 0)
        call.owner.clear()
        call.visitor.clear()
        await asyncio.gather(
            call.owner.send_audio(owner_to, AUDIO_PACKETS, fill=0x11),
            call.visitor.send_audio(visitor_to, AUDIO_PACKETS, fill=0x22),
        )
        await call.visitor.wait_for_packets(AUDIO_PACKETS, timeout_s=3)
        await call.owner.wait_for_packets(AUDIO_PACKETS, timeout_s=3)
        visitor_heard = [p for p in call.visitor.audio_packets() if p.payload[:1] == b"\x11"]
        owner_heard = [p for p in call.owner.audio_packets() if p.payload[:1] == b"\x22"]
        return min(len(visitor_heard), len(owner_heard)) >= 0.9 * AUDIO_PACKETS

    results = await asyncio.gather(*(one(c) for c in calls))
    return sum(results)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.count = 0
        self.handles: dict[str, CallbackHandle] = {}

    def facts(self) -> RequestFacts:
        self.count += 1
        return RequestFacts(
            request_ref=f"held-{self.count}",
            visitor_e164=VISITOR,  # one prompt text: rendered once, in the warm-up
            owner_internal_number=str(10_000_000 + self.count),
            owner_external_e164=OWNER_EXTERNAL,
            acceptance=AcceptanceMode.CONFIRM,
            caller_name="Mary Jones",
        )

    async def start_calls(
        self,
        n: int,
        rate: float,
        engine: CallbackEngine,
        live: LiveTelephony,
        recorder: MemoryRecorder,
        failed: Counter[str],
        one_at_a_time: bool = False,
    ) -> list[str]:
        """Start `n` callbacks at `rate`/s; return the refs that reached CONNECTED in time."""
        loop = asyncio.get_running_loop()
        refs: list[str] = []
        t0 = loop.time()
        for i in range(n):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            facts = self.facts()
            try:
                self.handles[facts.request_ref] = await engine.start_callback(facts)
            except Exception as exc:
                failed[f"start: {type(exc).__name__}: {exc}"[:80]] += 1
                continue
            refs.append(facts.request_ref)
            if one_at_a_time:
                await self.wait_bridged([facts.request_ref], recorder, failed)
        return await self.wait_bridged(refs, recorder, failed)

    async def wait_bridged(
        self, refs: list[str], recorder: MemoryRecorder, failed: Counter[str]
    ) -> list[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BRIDGE_TIMEOUT_S
        pending = set(refs)
        while pending and loop.time() < deadline:
            for ref in list(pending):
                if recorder.states.get(ref) is RequestState.CONNECTED:
                    pending.discard(ref)
                elif self.handles[ref].done():
                    outcome = self.handles[ref].outcome.result()
                    failed[f"ended before the bridge: {outcome.reason}"] += 1
                    pending.discard(ref)
            await asyncio.sleep(0.05)
        for ref in pending:
            failed[f"not bridged in {BRIDGE_TIMEOUT_S:g}s: {recorder.states.get(ref)}"] += 1
        return [r for r in refs if recorder.states.get(r) is RequestState.CONNECTED]

    def ended_early(self, skip: set[str]) -> Counter[str]:
        ended: Counter[str] = Counter()
        for ref, handle in self.handles.items():
            if ref not in skip and handle.done() and not handle.outcome.cancelled():
                ended[f"held call ended: {handle.outcome.result().reason}"] += 1
        return ended


def print_table(rows: list[StepRow], baseline: tuple[ProcSample, ProcSample]) -> None:
    base_engine, base_rtp = baseline
    print()
    head = (
        f"{'held':>6} {'bridged':>7} {'setup':>7} {'engine RSS':>10} {'per call':>9} "
        f"{'engine CPU':>10} {'rtpengine RSS':>13} {'per call':>9} {'rtpe CPU':>8} "
        f"{'audio ok':>8}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        assert row.engine is not None and row.rtpengine is not None
        per_engine = (row.engine.rss_bytes - base_engine.rss_bytes) / max(1, row.bridged)
        per_rtp = (row.rtpengine.rss_bytes - base_rtp.rss_bytes) / max(1, row.bridged)
        print(
            f"{row.target:>6} {row.bridged:>7} {row.setup_s:>6.1f}s "
            f"{mib(row.engine.rss_bytes):>7.1f}MiB {per_engine / 1024:>6.1f}KiB "
            f"{row.engine_cpu:>9.1f}% {mib(row.rtpengine.rss_bytes):>10.1f}MiB "
            f"{per_rtp / 1024:>6.1f}KiB {row.rtpengine_cpu:>7.1f}% "
            f"{row.audio_ok:>3}/{row.audio_checked:<4}"
        )
    print(
        f"(per call: RSS growth over the baseline after the warm-up, engine "
        f"{mib(base_engine.rss_bytes):.1f}MiB, rtpengine {mib(base_rtp.rss_bytes):.1f}MiB; "
        f"CPU: average over a {HOLD_S:g}s hold with no new calls, percent of one core)"
    )
    passed = [r.target for r in rows if r.ok]
    print(f"\nmost bridged calls held with every check passing: {max(passed, default=0)}")
    for row in rows:
        if row.failed:
            print(f"  at {row.target}: {dict(row.failed)}")
        if row.audio_ok != row.audio_checked:
            print(f"  at {row.target}: audio through on {row.audio_ok}/{row.audio_checked}")


async def main_async(args: argparse.Namespace) -> int:
    steps = sorted(int(x) for x in args.steps.split(",") if x.strip())
    most = steps[-1]
    work = Path(tempfile.mkdtemp(prefix="callnow-bridged-"))
    # As the service logs (plain tracebacks, no locals): structlog's own default would render
    # each error with every local variable, which under overload blocks the loop for seconds.
    logs.configure("warning")

    samples = [SampleCall(RtpPeer(), RtpPeer()) for _ in range(args.sample)]
    for call in samples:
        await call.owner.start()
        await call.visitor.start()
    # One CSV row per incoming call, in order: the warm-up call (discarded media), then the
    # sample calls (our RTP peers), then everybody else (SIPp's own, discarded, media port).
    rows = most + args.sample + 50
    owner_csv, trunk_csv = work / "owner.csv", work / "trunk.csv"
    discard = free_udp_port()  # nothing listens: RTP sent there is dropped by the kernel

    def write_csv(path: Path, ports: list[int]) -> None:
        filler = [discard] * (rows - len(ports) - 1)
        path.write_text("SEQUENTIAL\n" + "".join(f"{p};\n" for p in [discard, *ports, *filler]))

    write_csv(owner_csv, [c.owner.port for c in samples])
    write_csv(trunk_csv, [c.visitor.port for c in samples])
    owner = start_sipp(
        "bench_owner_inf.xml", work / "owner", {"digit": "1"}, ["-inf", str(owner_csv)]
    )
    trunk = start_sipp("bench_trunk_inf.xml", work / "trunk", {}, ["-inf", str(trunk_csv)])

    rows_out: list[StepRow] = []
    baseline: tuple[ProcSample, ProcSample] | None = None
    teardown_s = float("nan")
    try:
        with reserved_rtp_ports(RTP_BLOCKS) as (port_min, port_max):
            media = RtpengineSettings(
                mode="external",
                ng_host=HOST,
                ng_port=free_udp_port(),
                dtmf_log_port=free_udp_port(),
                port_min=port_min,
                port_max=port_max,
                timeout_s=3.0,
            )
            # Our own rtpengine, so the silent bridged calls are not timed out after its
            # default 60 s without RTP (most calls here never carry audio).
            rtpengine = RtpengineProcess(media, extra_args=["--timeout=3600", "--delete-delay=0"])
            await rtpengine.start()
            settings = Settings(
                data_dir=work,
                demo_data=False,
                sip=SipSettings(
                    listen_host=HOST,
                    listen_port=free_udp_port(),
                    owner_uri_template=f"sip:{{internal}}@{HOST}:{owner.port}",
                ),
                trunk=TrunkSettings(uri_template=f"sip:{{e164}}@{HOST}:{trunk.port}"),
                rtpengine=media,
            )
            limits = FlowLimits(
                owner_ring_s=20, visitor_ring_s=20, digit_wait_s=15, max_call_duration_s=3600
            )
            live = await LiveTelephony.start(settings, prompt_cache_dir=work / "prompts")
            telephony = CapturingTelephony(live)
            recorder = MemoryRecorder()
            engine = CallbackEngine(telephony, recorder, limits=limits)  # type: ignore[arg-type]
            bench = Bench(args)
            assert rtpengine.pid is not None
            try:
                print(
                    f"SIPp owner udp:{owner.port}, trunk udp:{trunk.port}; engine "
                    f"udp:{live.sip_address[1]}; rtpengine pid {rtpengine.pid} ports "
                    f"{port_min}-{port_max}; ramp {args.ramp:g} calls/s; "
                    f"audio sample {args.sample} calls"
                )
                # Warm-up: one callback renders the prompt and warms every code path; it is
                # then hung up so the baseline holds no call.
                warm_failed: Counter[str] = Counter()
                warm = await bench.start_calls(1, 1, engine, live, recorder, warm_failed)
                if not warm:
                    print(f"warm-up failed: {dict(warm_failed)}")
                    return 1
                bench.handles[warm[0]].abort("warmup")
                await bench.handles[warm[0]].outcome
                await asyncio.sleep(1.0)
                gc.collect()
                baseline = (sample(), sample(rtpengine.pid))

                held = 0
                for target in steps:
                    row = StepRow(target)
                    t0 = time.monotonic()
                    if held == 0 and samples:
                        # The sample first, one by one: the CSV hands their ports out in the
                        # order INVITEs arrive, and both legs of a call must get a pair.
                        held += len(
                            await bench.start_calls(
                                len(samples), args.ramp, engine, live, recorder, row.failed, True
                            )
                        )
                    held += len(
                        await bench.start_calls(
                            target - held, args.ramp, engine, live, recorder, row.failed
                        )
                    )
                    row.setup_s = time.monotonic() - t0
                    row.bridged = held
                    await asyncio.sleep(1.0)
                    gc.collect()
                    first_engine, first_rtp = sample(), sample(rtpengine.pid)
                    await asyncio.sleep(HOLD_S)
                    row.engine, row.rtpengine = sample(), sample(rtpengine.pid)
                    row.engine_cpu = cpu_percent(first_engine, row.engine)
                    row.rtpengine_cpu = cpu_percent(first_rtp, row.rtpengine)
                    if any(c.ref is None for c in samples):
                        match_samples(samples, telephony)
                    present = [c for c in samples if c.ref is not None]
                    row.audio_checked = len(samples)
                    row.audio_ok = await check_audio(present, telephony)
                    row.failed.update(bench.ended_early(set(warm)))
                    rows_out.append(row)
                    print(
                        f"step {target}: {row.bridged} bridged in {row.setup_s:.1f}s, engine "
                        f"{mib(row.engine.rss_bytes):.1f}MiB, rtpengine "
                        f"{mib(row.rtpengine.rss_bytes):.1f}MiB, audio "
                        f"{row.audio_ok}/{row.audio_checked}, failures {dict(row.failed)}",
                        flush=True,
                    )
                    if not row.ok:
                        break
            finally:
                t_down = time.monotonic()
                await engine.shutdown("bench_over")  # BYE on both legs of every held call
                teardown_s = time.monotonic() - t_down
                await live.stop()
                rtpengine.stop()
    except BaseException:
        if not args.keep_logs:
            shutil.rmtree(work, ignore_errors=True)  # a failed run leaves no logs behind
        raise
    finally:
        owner.stop()
        trunk.stop()
        for call in samples:
            call.owner.close()
            call.visitor.close()
    if baseline is not None and rows_out:
        print_table(rows_out, baseline)
        print(f"teardown of all held calls (engine.shutdown, two BYEs each): {teardown_s:.1f}s")
    for sipp in (owner, trunk):
        for kind, n in sipp.error_kinds().most_common(5):
            print(f"SIPp {sipp.name} logged {n} x {kind}")
    if args.keep_logs:
        print(f"logs kept in {work}")
    else:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
    return 0 if rows_out and rows_out[-1].ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", default="100,250,500,1000", help="calls held open, rising")
    parser.add_argument("--ramp", type=float, default=50.0, help="new callbacks per second")
    parser.add_argument("--sample", type=int, default=20, help="calls whose audio is checked")
    parser.add_argument("--keep-logs", action="store_true", help="keep SIPp's logs and CSVs")
    args = parser.parse_args()
    print_machine("CallNow: bridged callbacks held open at once (live engine, rtpengine)")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
