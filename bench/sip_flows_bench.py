"""Complete callback flows per second through the live engine, at rising rates.

Run: .venv/bin/python bench/sip_flows_bench.py [--rates 10,25,50,100] [--window 10] [--bridged 5]
     .venv/bin/python bench/sip_flows_bench.py --media [--rates 5,10,20] (phones talk; with and
     without transcoding, side by side)

One flow is the whole callback, as in production: the engine (CallbackEngine + LiveTelephony:
sippy SIP stack, rtpengine media, espeak-ng prompts) rings the owner's phone, plays the
confirmation prompt, the owner presses 1 by SIP INFO, the engine calls the visitor through
the trunk, bridges both in rtpengine, and after `--bridged` seconds the maximum call duration
hangs both legs up. SIPp plays both phones (peers/sipp/answer_info_dtmf.xml for the owner,
answer.xml for the trunk). Everything runs on 127.0.0.1; this process *is* the engine process
(the recorder is in memory: the store's cost is not included).

Each step starts flows at a fixed rate for `--window` seconds, then waits for them to end
(bounded); the steps stop at the first one with a failed flow. Reported per step:

- flows started, completed (both legs answered and bridged until the maximum duration) and
  failed (any other outcome, or no outcome in time), and the start rate actually achieved;
- call-setup latency: from `engine.start_callback()` being called to the owner's INVITE on the
  wire. The wire time is the kernel's receive timestamp of the INVITE at the owner's SIPp,
  taken by a packet sniffer subprocess (AF_PACKET on lo, needs root); without root the
  engine's own write-ahead timestamp (just before the rtpengine offer and the INVITE) is used
  and the table says so;
- CPU (percent of one core) and peak RSS of the engine process, and of rtpengine.

With `--media` the phones talk: SIPp streams G.711 RTP from each phone's answer until the BYE
(rtp_stream of a raw 400 Hz tone; peers/sipp/bench_media_owner.xml answers PCMU, the callees
bench_media_callee_pcmu.xml and bench_media_callee_pcma.xml answer only their own law), and
every rate runs twice, alternating: once through a trunk whose callee answers PCMU like the
owner (rtpengine relays), once through a trunk whose callee answers only PCMA (rtpengine
transcodes every packet both ways). Two trunks chosen by number prefix carry the two lanes.
rtpengine's own `statistics` (media being transcoded, packets relayed) is sampled during each
step and printed, so the transcoded lane is seen to transcode and the other not; the two
lanes' figures and their ratio close the report.

Prompts are cached by text. By default the visitors' numbers come from a pool of 20, so each
prompt is rendered once (during the warm-up) and the steps measure SIP and media; with
`--unique-numbers` every flow has a number of its own and espeak-ng renders a prompt per flow,
as real traffic would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import logging
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
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
    Sipp,
    cpu_percent,
    free_udp_port,
    mib,
    percentile,
    print_machine,
    reserved_rtp_ports,
    sample,
    start_sipp,
    thread_cpu,
)

from callnow import logs  # noqa: E402
from callnow.bootstrap import freeze_startup_objects, tune_thread_switching  # noqa: E402
from callnow.config import RtpengineSettings, Settings, SipSettings, TrunkSettings  # noqa: E402
from callnow.domain.flow import AcceptanceMode, FlowLimits, RequestFacts  # noqa: E402
from callnow.domain.request_state import RequestState  # noqa: E402
from callnow.engine.live import LiveTelephony  # noqa: E402
from callnow.engine.runner import CallbackEngine  # noqa: E402
from callnow.telephony.rtpengine import RtpengineUnavailable  # noqa: E402
from callnow.telephony.rtpengine_process import RtpengineProcess  # noqa: E402

OWNER_EXTERNAL = "+61299990000"
# Number lanes (E.164 digits after +61290): the plain run and --media's same-codec trunk use
# lane 3, --media's transcoding trunk lane 4; the trunks' prefixes pick by lane.
SAME_LANE, TRANSCODE_LANE = "3", "4"
LANE_NAMES = {SAME_LANE: "same codec", TRANSCODE_LANE: "transcoded"}
NUMBER_POOL = 20
# A flow that has not ended this long after its bridged time is counted as failed.
DRAIN_MARGIN_S = 15.0
# Every step ends within window + bridged + margin; this caps the whole run as well.
RTP_BLOCKS = 30  # 6,000 ports: ~1,500 calls in flight (4 ports per anchored call)


# -- sniffer (runs as a subprocess: `--sniff-port N`) ----------------------------------------

_SO_TIMESTAMPNS = 35
_ETH_P_ALL = 0x0003
_SO_ATTACH_FILTER = 26
_PACKET_HOST = 0


def _udp_dst_port_filter(port: int) -> bytes:
    """Classic BPF for "IPv4, UDP, not a fragment, destination port `port`" on lo."""
    drop, accept = 10, 9
    program = [
        (0x28, 0, 0, 12),  # ldh [12]            ethertype
        (0x15, 0, drop - 2, 0x0800),  # jeq IPv4
        (0x30, 0, 0, 23),  # ldb [23]            IP protocol
        (0x15, 0, drop - 4, 17),  # jeq UDP
        (0x28, 0, 0, 20),  # ldh [20]            fragment offset
        (0x45, drop - 6, 0, 0x1FFF),  # jset -> drop
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf)   IP header length
        (0x48, 0, 0, 16),  # ldh [x+16]          UDP destination port
        (0x15, accept - 9, drop - 9, port),  # jeq port
        (0x06, 0, 0, 0x40000),  # accept
        (0x06, 0, 0, 0),  # drop
    ]
    return b"".join(struct.pack("HBBI", *ins) for ins in program)


def sniff(port: int) -> None:
    """Print "<request-URI user> <kernel timestamp>" for each INVITE sent to `port`."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    code = _udp_dst_port_filter(port)
    buf = ctypes.create_string_buffer(code)
    prog = struct.pack("HL", len(code) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, prog)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    sock.bind(("lo", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    print("ready", flush=True)
    out = sys.stdout
    while True:
        data, ancillary, _flags, address = sock.recvmsg(65535, 64)
        if address[2] != _PACKET_HOST:
            continue  # lo shows each packet twice (outgoing and incoming); keep one
        ihl = (data[14] & 0x0F) * 4
        payload = data[14 + ihl + 8 :]
        if not payload.startswith(b"INVITE sip:"):
            continue
        user = payload[11 : payload.find(b"@", 11)].decode("ascii", "replace")
        stamp = time.time()
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                seconds, nanos = struct.unpack("qq", value[:16])
                stamp = seconds + nanos / 1e9
        out.write(f"{user} {stamp:.6f}\n")
        out.flush()


class WireTimes:
    """Runs the sniffer subprocess; maps request-URI user -> first INVITE's wire time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.times: dict[str, float] = {}
        self.available = False
        self.why_not = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--sniff-port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline().strip()
        if first != "ready":
            self._proc.wait(5)
            err = self._proc.stderr.read() if self._proc.stderr else ""
            self.why_not = (err.strip().splitlines() or ["sniffer did not start"])[-1]
            return
        self.available = True
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            user, _, stamp = line.strip().partition(" ")
            self.times.setdefault(user, float(stamp))

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(3)


class CountWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}: {record.getMessage()[:80]}"] += 1


# -- a step --------------------------------------------------------------------------------


@dataclass
class StepResult:
    rate: float
    lane: str = SAME_LANE
    started: int = 0
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    start_span_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    engine_cpu: float = 0.0
    engine_cpu_s: float = 0.0
    # Percent of one core while flows were arriving (the drain afterwards is quieter).
    engine_cpu_arrivals: float = 0.0
    threads_cpu_s: dict[str, float] = field(default_factory=dict)
    engine_rss_peak: int = 0
    rtpengine_cpu: float = 0.0
    rtpengine_cpu_arrivals: float = 0.0
    rtpengine_rss_peak: int = 0
    # CPU seconds of every process a flow runs through over the step: the machine's cores are
    # shared by all of them, so their sum per flow is what decides the highest rate.
    rtpengine_cpu_s: float = 0.0
    sipp_cpu_s: float = 0.0
    max_in_flight: int = 0
    # Round trips of ng requests as the engine saw them, and how late the asyncio loop ran
    # a 20 ms timer: together they tell a slow rtpengine from a busy engine.
    ng_rtt_ms: list[float] = field(default_factory=list)
    ng_rtt_by_command: dict[str, list[float]] = field(default_factory=dict)
    ng_timeouts: int = 0
    loop_lag_ms: list[float] = field(default_factory=list)
    # Pauses of Python's cyclic garbage collector by generation (ms): they stop every thread.
    gc_pauses_ms: dict[int, list[float]] = field(default_factory=dict)
    # rtpengine's `statistics` sampled through the step (--media): the most media streams it
    # was transcoding at once, the most sessions, and the packets it relayed over the step.
    transcoded_peak: int = 0
    sessions_peak: int = 0
    relayed_packets: int = 0

    @property
    def label(self) -> str:
        """The step's rate, marked `T` for the transcoded lane of --media."""
        return f"{self.rate:g}" + ("T" if self.lane == TRANSCODE_LANE else "")

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def achieved_rate(self) -> float:
        return (self.started - 1) / self.start_span_s if self.start_span_s > 0 else 0.0


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.counter = 0
        self.rtp_pid: int | None = None
        self.sipp_pids: list[int] = []

    def facts(self, tag: str, lane: str = SAME_LANE) -> tuple[RequestFacts, str]:
        self.counter += 1
        internal = str(10_000_000 + self.counter)  # unique: identifies the owner's INVITE
        number = (
            f"+61290{lane}{self.counter:06d}"
            if self.args.unique_numbers
            else f"+61290{lane}{7000 + self.counter % NUMBER_POOL:04d}"
        )
        facts = RequestFacts(
            request_ref=f"{tag}-{self.counter}",
            visitor_e164=number,
            owner_internal_number=internal,
            owner_external_e164=OWNER_EXTERNAL,
            acceptance=AcceptanceMode.CONFIRM,
            caller_name="Mary Jones",
        )
        return facts, internal

    async def run_step(
        self,
        engine: CallbackEngine,
        telephony: LiveTelephony,
        recorder: MemoryRecorder,
        wire: WireTimes,
        rate: float,
        window_s: float,
        lane: str = SAME_LANE,
    ) -> StepResult:
        result = StepResult(rate, lane)
        loop = asyncio.get_running_loop()
        handed: dict[str, tuple[float, str]] = {}  # internal number -> (wall time, ref)
        tasks: list[asyncio.Task[None]] = []
        bridged = self.args.bridged

        async def one(facts: RequestFacts, internal: str) -> None:
            handed[internal] = (time.time(), facts.request_ref)
            try:
                # Bounded too: past rtpengine's capacity its ng requests time out one by one.
                async with asyncio.timeout(bridged + DRAIN_MARGIN_S + window_s):
                    handle = await engine.start_callback(facts)
            except Exception as exc:
                result.failed[f"start: {type(exc).__name__}"] += 1
                return
            try:
                async with asyncio.timeout(bridged + DRAIN_MARGIN_S + window_s):
                    outcome = await handle.outcome
            except TimeoutError:
                handle.abort("bench_timeout")
                result.failed["no outcome in time"] += 1
                return
            if (outcome.state, outcome.reason) == (RequestState.COMPLETED, "max_duration_reached"):
                result.ok += 1
            else:
                result.failed[f"{outcome.state}/{outcome.reason}"] += 1

        engine_pid = None
        rtp_pid = self.rtp_pid
        first_engine, first_rtp = sample(engine_pid), sample(rtp_pid) if rtp_pid else None
        first_sipp = [sample(pid) for pid in self.sipp_pids]
        peaks = [first_engine.rss_bytes, first_rtp.rss_bytes if first_rtp else 0]
        sampling = True

        media = self.args.media
        relayed_before = await rtpengine_statistics(telephony) if media else None

        async def sampler() -> None:
            ticks = 0
            while sampling:
                peaks[0] = max(peaks[0], sample(engine_pid).rss_bytes)
                if rtp_pid:
                    peaks[1] = max(peaks[1], sample(rtp_pid).rss_bytes)
                result.max_in_flight = max(result.max_in_flight, len(engine.active))
                if media and ticks % 4 == 0:  # once a second: rtpengine counts its media
                    with contextlib.suppress(RtpengineUnavailable):
                        now = await rtpengine_statistics(telephony)
                        result.transcoded_peak = max(result.transcoded_peak, now.transcoded)
                        result.sessions_peak = max(result.sessions_peak, now.sessions)
                ticks += 1
                await asyncio.sleep(0.25)

        threads_before = thread_cpu()
        sampler_task = loop.create_task(sampler())
        gc_started: list[float] = [0.0]

        def gc_watch(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                pause = (time.perf_counter() - gc_started[0]) * 1000
                result.gc_pauses_ms.setdefault(info["generation"], []).append(pause)

        gc.callbacks.append(gc_watch)

        async def lag_probe() -> None:
            while sampling:
                before = loop.time()
                await asyncio.sleep(0.02)
                result.loop_lag_ms.append((loop.time() - before - 0.02) * 1000)

        lag_task = loop.create_task(lag_probe())
        client = telephony.rtpengine
        plain_request = client.request

        async def timed_request(command: str, **params: object) -> dict[str, object]:
            started = loop.time()
            try:
                return await plain_request(command, **params)
            except RtpengineUnavailable:
                result.ng_timeouts += 1
                raise
            finally:
                rtt = (loop.time() - started) * 1000
                result.ng_rtt_ms.append(rtt)
                result.ng_rtt_by_command.setdefault(command, []).append(rtt)

        client.request = timed_request  # type: ignore[method-assign]
        count = max(1, round(rate * window_s))
        t_start = loop.time()
        last_start = t_start
        for i in range(count):
            delay = t_start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            facts, internal = self.facts(f"r{rate:g}{lane}", lane)
            tasks.append(loop.create_task(one(facts, internal)))
            last_start = loop.time()
        result.started = count
        result.start_span_s = last_start - t_start
        result.engine_cpu_arrivals = cpu_percent(first_engine, sample(engine_pid))
        if rtp_pid and first_rtp:
            result.rtpengine_cpu_arrivals = cpu_percent(first_rtp, sample(rtp_pid))
        await asyncio.gather(*tasks)
        gc.callbacks.remove(gc_watch)
        sampling = False
        await sampler_task
        await lag_task
        client.request = plain_request  # type: ignore[method-assign]
        last_engine = sample(engine_pid)
        result.engine_cpu = cpu_percent(first_engine, last_engine)
        result.engine_cpu_s = last_engine.cpu_s - first_engine.cpu_s
        threads_after = thread_cpu()
        result.threads_cpu_s = {
            name: used - threads_before.get(name, 0.0) for name, used in threads_after.items()
        }
        result.engine_rss_peak = peaks[0]
        if rtp_pid and first_rtp:
            last_rtp = sample(rtp_pid)
            result.rtpengine_cpu = cpu_percent(first_rtp, last_rtp)
            result.rtpengine_cpu_s = last_rtp.cpu_s - first_rtp.cpu_s
            result.rtpengine_rss_peak = peaks[1]
        result.sipp_cpu_s = sum(
            sample(pid).cpu_s - first.cpu_s
            for pid, first in zip(self.sipp_pids, first_sipp, strict=True)
        )
        if relayed_before is not None:
            relayed_after = await rtpengine_statistics(telephony)
            result.relayed_packets = relayed_after.relayed - relayed_before.relayed

        await asyncio.sleep(0.3)  # let the sniffer catch up with the last INVITEs
        for internal, (handed_at, ref) in handed.items():
            if wire.available:
                on_wire = wire.times.get(internal)
            else:
                noted = recorder.owner_dialling_at.get(ref)
                on_wire = noted.timestamp() if noted else None
            if on_wire is not None:
                result.latencies_ms.append((on_wire - handed_at) * 1000)
        return result


@dataclass(frozen=True)
class MediaCounts:
    transcoded: int  # media streams rtpengine is transcoding now
    sessions: int  # calls it holds now
    relayed: int  # packets it relayed since it started


async def rtpengine_statistics(telephony: LiveTelephony) -> MediaCounts:
    """rtpengine's own counters (the ng `statistics` command)."""
    reply = await telephony.rtpengine.request("statistics")
    stats = reply["statistics"]
    now, total = stats["currentstatistics"], stats["totalstatistics"]
    return MediaCounts(
        int(now["transcodedmedia"]), int(now["sessionsown"]), int(total["relayedpackets"])
    )


def write_tone(workdir: Path, law: str) -> None:
    """One second of a 400 Hz tone as raw G.711 (`law`: mu-law or a-law), for SIPp's
    rtp_stream, which loads it from its working directory when it reads the scenario."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = "bench_tone.pcmu" if law == "mu-law" else "bench_tone.pcma"
    raw = ["-t", "raw", "-r", "8000", "-c", "1", "-e", law]
    tone = ["synth", "1", "sine", "400", "vol", "0.3"]
    subprocess.run(["sox", "-n", *raw, str(workdir / name), *tone], check=True)


def print_media_comparison(results: list[StepResult]) -> None:
    """--media: the same-codec and the transcoded lane side by side, and their ratio."""
    print()
    print("with media (RTP both ways from every phone): same codec vs transcoded, per rate")
    head = (
        f"{'rate/s':>7} {'lane':>11} {'ok/started':>11} {'setup p99':>9} "
        f"{'transcoding':>11} {'sessions':>8} {'relayed pkts':>12} "
        f"{'rtpe CPU/flow':>13} {'all CPU/flow':>12}"
    )
    print(head)
    print("-" * len(head))
    by_rate: dict[float, dict[str, StepResult]] = {}
    for r in results:
        by_rate.setdefault(r.rate, {})[r.lane] = r
        per = 1000 / max(1, r.started)
        everything = (r.engine_cpu_s + r.rtpengine_cpu_s + r.sipp_cpu_s) * per
        print(
            f"{r.rate:>7g} {LANE_NAMES[r.lane]:>11} {f'{r.ok}/{r.started}':>11} "
            f"{percentile(r.latencies_ms, 99):>7.1f}ms {r.transcoded_peak:>11} "
            f"{r.sessions_peak:>8} {r.relayed_packets:>12} "
            f"{r.rtpengine_cpu_s * per:>11.1f}ms {everything:>10.1f}ms"
        )
    print("(transcoding, sessions: the most rtpengine reported at once during the step)")
    print()
    best: dict[str, float] = {}
    for lane in (SAME_LANE, TRANSCODE_LANE):
        clean = [
            r.rate for r in results if r.lane == lane and r.failures == 0 and r.ok == r.started
        ]
        best[lane] = max(clean, default=0)
        print(f"highest rate with zero failed flows, {LANE_NAMES[lane]}: {best[lane]:g} flows/s")
    if best[SAME_LANE]:
        print(f"ratio transcoded / same codec: {best[TRANSCODE_LANE] / best[SAME_LANE]:.2f}")
    for rate, lanes in sorted(by_rate.items()):
        same, coded = lanes.get(SAME_LANE), lanes.get(TRANSCODE_LANE)
        if same and coded and same.rtpengine_cpu_s > 0:
            ratio = (coded.rtpengine_cpu_s / coded.started) / (same.rtpengine_cpu_s / same.started)
            print(f"  at {rate:g}/s rtpengine CPU per flow, transcoded / same codec: {ratio:.2f}")


def print_table(results: list[StepResult], latency_source: str) -> None:
    print()
    print(f"call-setup latency: start_callback() -> owner INVITE, measured {latency_source}")
    head = (
        f"{'rate/s':>7} {'started':>7} {'ok':>6} {'failed':>6} {'start/s':>8} {'in flight':>9} "
        f"{'setup p50':>9} {'p99':>8} {'max':>8} {'CPU arrive':>10} {'step':>5} {'CPU/flow':>9} "
        f"{'engine RSS':>10} {'rtpe CPU':>8} {'step':>5} "
        f"{'rtpe RSS':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        lat = r.latencies_ms
        print(
            f"{r.label:>7} {r.started:>7} {r.ok:>6} {r.failures:>6} {r.achieved_rate:>8.1f} "
            f"{r.max_in_flight:>9} {percentile(lat, 50):>7.1f}ms {percentile(lat, 99):>6.1f}ms "
            f"{max(lat) if lat else float('nan'):>6.1f}ms {r.engine_cpu_arrivals:>9.0f}% "
            f"{r.engine_cpu:>4.0f}% "
            f"{1000 * r.engine_cpu_s / max(1, r.started):>7.1f}ms "
            f"{mib(r.engine_rss_peak):>7.0f}MiB {r.rtpengine_cpu_arrivals:>7.0f}% "
            f"{r.rtpengine_cpu:>4.0f}% "
            f"{mib(r.rtpengine_rss_peak):>5.0f}MiB"
        )
    print(
        "(engine CPU in percent of one core: while flows arrive, and over the whole step; "
        "CPU/flow = the step's engine CPU time / flows)"
    )
    print("ng round trip seen by the engine, and the asyncio loop's lateness on a 20 ms timer:")
    for r in results:
        rtt, lag = r.ng_rtt_ms, r.loop_lag_ms
        print(
            f"  {r.label:>6}/s: ng p50 {percentile(rtt, 50):.1f}ms p99 {percentile(rtt, 99):.1f}ms"
            f" ({len(rtt)} requests, {r.ng_timeouts} timed out); loop late p50 "
            f"{percentile(lag, 50):.1f}ms p99 {percentile(lag, 99):.1f}ms max "
            f"{max(lag, default=float('nan')):.0f}ms"
        )
        by_command = sorted(r.ng_rtt_by_command.items())
        print("         " + ", ".join(f"{c} p50 {percentile(v, 50):.1f}ms" for c, v in by_command))
    print("garbage collector pauses (they stop every thread), by generation:")
    for r in results:
        text = ", ".join(
            f"gen{gen} {len(p)}x total {sum(p):.0f}ms max {max(p):.0f}ms"
            for gen, p in sorted(r.gc_pauses_ms.items())
        )
        print(f"  {r.label:>6}/s: {text or 'none'}")
    print("CPU per flow by process (what the step's flows cost the machine's cores):")
    for r in results:
        per = 1000 / max(1, r.started)
        engine, rtpe, sipp = r.engine_cpu_s * per, r.rtpengine_cpu_s * per, r.sipp_cpu_s * per
        print(
            f"  {r.label:>6}/s: engine {engine:.1f}ms + rtpengine {rtpe:.1f}ms + "
            f"SIPp x2 {sipp:.1f}ms = {engine + rtpe + sipp:.1f}ms"
        )
    print("engine CPU per flow by thread:")
    for r in results:
        split = sorted(r.threads_cpu_s.items(), key=lambda kv: -kv[1])
        text = ", ".join(
            f"{name} {1000 * used / max(1, r.started):.1f}ms" for name, used in split if used > 0
        )
        print(f"  {r.label:>6}/s: {text}")
    clean = [r for r in results if r.failures == 0 and r.ok == r.started]
    best = max((r.rate for r in clean), default=0)
    print()
    print(f"highest rate with zero failed flows: {best:g} flows/s")
    for r in results:
        if r.failures:
            print(f"  at {r.label}/s: {dict(r.failed)}")


async def main_async(args: argparse.Namespace) -> int:
    rates = [float(x) for x in args.rates.split(",") if x.strip()]
    work = Path(tempfile.mkdtemp(prefix="callnow-bench-"))
    # As the service logs (plain tracebacks, no locals): structlog's own default would render
    # each error with every local variable, which under overload blocks the loop for seconds.
    logs.configure("warning")
    warnings = CountWarnings()
    logging.getLogger().addHandler(warnings)

    if args.media:
        for phone, law in (("owner", "mu-law"), ("trunk", "mu-law"), ("coded", "a-law")):
            write_tone(work / phone, law)
        owner = start_sipp("bench_media_owner.xml", work / "owner", {})
        trunk = start_sipp("bench_media_callee_pcmu.xml", work / "trunk", {})
        coded: Sipp | None = start_sipp("bench_media_callee_pcma.xml", work / "coded", {})
        lanes = [SAME_LANE, TRANSCODE_LANE]
    else:
        owner = start_sipp("answer_info_dtmf.xml", work / "owner", {"digit": "1"})
        trunk = start_sipp("answer.xml", work / "trunk", {})
        coded = None
        lanes = [SAME_LANE]
    phones = [sipp for sipp in (owner, trunk, coded) if sipp is not None]
    wire = WireTimes(owner.port)
    wire.start()
    latency_source = (
        "at the owner's SIPp socket (kernel timestamp, AF_PACKET sniffer)"
        if wire.available
        else f"to the engine's write-ahead of the owner leg (no sniffer: {wire.why_not})"
    )
    results: list[StepResult] = []
    try:
        with reserved_rtp_ports(RTP_BLOCKS) as (port_min, port_max):
            settings = Settings(
                data_dir=work,
                demo_data=False,
                sip=SipSettings(
                    listen_host=HOST,
                    listen_port=free_udp_port(),
                    owner_uri_template=f"sip:{{internal}}@{HOST}:{owner.port}",
                ),
                trunk=TrunkSettings(
                    name="same",
                    prefixes=[f"61290{SAME_LANE}"],
                    uri_template=f"sip:{{e164}}@{HOST}:{trunk.port}",
                ),
                trunks=[
                    TrunkSettings(
                        name="transcode",
                        prefixes=[f"61290{TRANSCODE_LANE}"],
                        uri_template=f"sip:{{e164}}@{HOST}:{coded.port}",
                    )
                ]
                if coded is not None
                else [],
                rtpengine=RtpengineSettings(
                    # With --rtpengine-arg the bench starts rtpengine itself, with those args.
                    mode="external" if args.rtpengine_arg else "spawn",
                    ng_host=HOST,
                    ng_port=free_udp_port(),
                    dtmf_log_port=free_udp_port(),
                    port_min=port_min,
                    port_max=port_max,
                    timeout_s=2.0,
                ),
            )
            limits = FlowLimits(
                owner_ring_s=15,
                visitor_ring_s=15,
                digit_wait_s=10,
                max_call_duration_s=args.bridged,
            )
            bench = Bench(args)
            own_rtpengine = None
            if args.rtpengine_arg:
                own_rtpengine = RtpengineProcess(settings.rtpengine, extra_args=args.rtpengine_arg)
                await own_rtpengine.start()
            telephony = await LiveTelephony.start(settings, prompt_cache_dir=work / "prompts")
            if args.gc_threshold:
                gc.set_threshold(*(int(x) for x in args.gc_threshold.split(",")))
            spawned = own_rtpengine or telephony.process
            bench.rtp_pid = spawned.pid if spawned else None
            bench.sipp_pids = [sipp.process.pid for sipp in phones]
            recorder = MemoryRecorder()
            engine = CallbackEngine(telephony, recorder, limits=limits)
            freeze_startup_objects()  # as `callnow engine` does once it is ready
            try:
                rtp_pid = bench.rtp_pid
                print(
                    f"SIPp owner udp:{owner.port}, trunk udp:{trunk.port}"
                    + (f", transcoding trunk udp:{coded.port}" if coded else "")
                    + "; "
                    f"engine udp:{telephony.sip_address[1]}; rtpengine pid {rtp_pid} "
                    f"ports {port_min}-{port_max}; bridged {args.bridged:g}s; "
                    f"window {args.window:g}s; gc thresholds {gc.get_threshold()}"
                )
                t0 = time.monotonic()
                for lane in lanes:
                    warm = await bench.run_step(
                        engine, telephony, recorder, wire, 5, NUMBER_POOL / 5, lane
                    )
                    print(
                        f"warm-up ({LANE_NAMES[lane]}): {warm.ok}/{warm.started} flows ok at "
                        f"5/s in {time.monotonic() - t0:.1f}s (renders the {NUMBER_POOL} "
                        f"prompts), setup p50 {percentile(warm.latencies_ms, 50):.1f}ms"
                    )
                    if warm.failures:
                        print(f"warm-up failed: {dict(warm.failed)}")
                        return 1
                failed_lanes: set[str] = set()
                for index, rate in enumerate(rates):
                    # Alternate which lane goes first: the machine drifts within a run.
                    order = lanes if index % 2 == 0 else lanes[::-1]
                    for lane in order:
                        if lane in failed_lanes:
                            continue
                        result = await bench.run_step(
                            engine, telephony, recorder, wire, rate, args.window, lane
                        )
                        results.append(result)
                        print(
                            f"step {result.label}/s: {result.ok}/{result.started} ok, "
                            f"{result.failures} failed, start rate "
                            f"{result.achieved_rate:.1f}/s, setup p50 "
                            f"{percentile(result.latencies_ms, 50):.1f}ms "
                            f"p99 {percentile(result.latencies_ms, 99):.1f}ms"
                            + (
                                f", transcoding up to {result.transcoded_peak} media, "
                                f"{result.relayed_packets} packets relayed"
                                if args.media
                                else ""
                            ),
                            flush=True,
                        )
                        if result.failures or result.ok < result.started:
                            failed_lanes.add(lane)
                    if failed_lanes == set(lanes):
                        break
            finally:
                await engine.shutdown("bench_over")
                await telephony.stop()
                if own_rtpengine is not None:
                    own_rtpengine.stop()
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # a failed run leaves no SIPp logs behind
        raise
    finally:
        wire.stop()
        for sipp in phones:
            sipp.stop()
    print_table(results, latency_source)
    if args.media:
        print_media_comparison(results)
    for sipp in phones:
        for kind, n in sipp.error_kinds().most_common(5):
            print(f"SIPp {sipp.name} logged {n} x {kind}")
    if warnings.counts:
        print("\nwarnings/errors logged by the engine (count, first 10):")
        for text, n in warnings.counts.most_common(10):
            print(f"  {n:>5} x {text}")
    if args.keep:
        print(f"\nSIPp logs kept in {work}")
    else:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rates", default="10,25,50,75,100,150", help="flows/s per step, rising")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of arrivals per step")
    parser.add_argument(
        "--bridged", type=float, default=5.0, help="seconds each call stays bridged"
    )
    parser.add_argument(
        "--unique-numbers",
        action="store_true",
        help="a new visitor number per flow (espeak-ng renders every prompt)",
    )
    parser.add_argument(
        "--rtpengine-arg",
        action="append",
        default=[],
        help="extra rtpengine option (repeatable), e.g. --rtpengine-arg=--num-threads=4",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (SIPp error logs)"
    )
    parser.add_argument(
        "--gc-threshold",
        default="",
        help="override the engine's garbage-collector thresholds, e.g. 700,10,10 (CPython's)",
    )
    parser.add_argument(
        "--media",
        action="store_true",
        help="phones talk (RTP both ways); each rate runs with and without transcoding",
    )
    parser.add_argument("--sniff-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sniff_port:
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
            sniff(args.sniff_port)
        return 0
    print_machine("CallNow: complete callback flows per second (live engine, SIPp phones)")
    # As `callnow engine` and `callnow serve` run: the GIL handed over after 1 ms.
    tune_thread_switching()
    print(f"switch interval: {sys.getswitchinterval() * 1000:g} ms")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
