"""A small file of the engine's records that have not reached the database yet.

When the database cannot take a callback's records (it is down, or so busy that a write waits
longer than the engine may wait), the records go here, one JSON line per unit, and a line
`{"landed": seq}` follows once the unit is stored. At start an engine replays what it, or a
dead engine on the same host, left unlanded, before it claims new work.

Each engine appends to a file of its own, locked (`flock`) for its life: a file that can be
locked belongs to an engine that is gone, so its records are taken over; the lock is dropped by
the kernel however the engine ended, SIGKILL included. Lines are flushed and fsynced as they are
written; a torn last line (a crash mid-write) is skipped, as that unit never left the engine
as "written".
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from callnow.domain.calls import (
    CallRecord,
    Disposition,
    LegAnsweredAt,
    LegDialling,
    LegHangupPrepared,
    LegRecorded,
    LegRole,
    OwnerBusyUntil,
    PreparedHangup,
    StateChanged,
    StoreWrite,
)
from callnow.domain.request_state import RequestState

log = logging.getLogger(__name__)

SUFFIX = ".records.jsonl"


@dataclass(frozen=True)
class JournalledUnit:
    request_ref: str
    writes: tuple[StoreWrite, ...]


class RecordJournal:
    def __init__(self, directory: Path, engine_id: str) -> None:
        self._directory = directory
        self._path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', engine_id)}{SUFFIX}"
        self._file: IO[str] | None = None
        self._seq = 0
        self._outstanding = 0

    def open(self) -> list[tuple[int, JournalledUnit]]:
        """Lock this engine's file and return every unit left unlanded in this directory, by
        this engine id before (a restart) or by engines that are gone, oldest file first. They
        are copied into this engine's file, so they stay durable until they land here; each
        comes with its seq there."""
        self._directory.mkdir(parents=True, exist_ok=True)
        left: list[JournalledUnit] = []
        own: IO[str] = self._path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(own, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as held:
            own.close()
            raise RuntimeError(f"another engine runs with the journal {self._path}") from held
        own.seek(0)
        left.extend(_unlanded(own))
        orphans: list[tuple[Path, IO[str]]] = []
        for path in sorted(self._directory.glob(f"*{SUFFIX}"), key=_age):
            if path == self._path:
                continue
            handle: IO[str] = path.open("r+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()  # a live engine's file
                continue
            left.extend(_unlanded(handle))
            orphans.append((path, handle))
        own.seek(0)
        own.truncate()
        self._file = own
        self._seq = self._outstanding = 0
        # Seq numbers restart with the file: the units left behind become this file's first.
        copied = [(self.add(unit), unit) for unit in left]
        for path, handle in orphans:
            path.unlink()  # its units are safe in our file now
            handle.close()
        if left:
            log.warning("%d unit(s) of records left unstored by an engine; storing them", len(left))
        return copied

    @property
    def path(self) -> Path:
        return self._path

    def add(self, unit: JournalledUnit) -> int:
        """Append a unit; returns its seq for `landed`."""
        self._seq += 1
        seq = self._seq
        line = {"seq": seq, "ref": unit.request_ref, "writes": [encode(w) for w in unit.writes]}
        self._append(line)
        self._outstanding += 1
        return seq

    def landed(self, seq: int) -> None:
        self._append({"landed": seq})
        self._outstanding -= 1
        if self._outstanding == 0 and self._file is not None:
            # Nothing left to replay: start the file afresh rather than let it grow for ever.
            self._file.seek(0)
            self._file.truncate()
            self._seq = 0

    def close(self) -> None:
        if self._file is not None:
            if self._outstanding == 0:
                self._path.unlink(missing_ok=True)  # an engine id is used once: no litter
            self._file.close()  # drops the lock; what is unlanded stays for the next start
            self._file = None

    def _append(self, line: dict[str, Any]) -> None:
        assert self._file is not None, "open() the journal first"
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _unlanded(handle: IO[str]) -> list[JournalledUnit]:
    units: dict[int, JournalledUnit] = {}
    for number, text in enumerate(handle, start=1):
        try:
            line = json.loads(text)
            if "landed" in line:
                units.pop(int(line["landed"]), None)
            else:
                writes = tuple(decode(w) for w in line["writes"])
                units[int(line["seq"])] = JournalledUnit(str(line["ref"]), writes)
        except (ValueError, KeyError, TypeError):
            log.warning("journal %s: line %d unreadable (a crash mid-write?)", handle.name, number)
    return [units[seq] for seq in sorted(units)]


# -- the records as JSON ----------------------------------------------------------------------


def encode(write: StoreWrite) -> dict[str, Any]:
    match write:
        case LegDialling(role=role, destination=destination, at=at):
            return {"kind": "dialling", "role": role.value, "destination": destination,
                    "at": at.isoformat()}  # fmt: skip
        case LegAnsweredAt(role=role, at=at):
            return {"kind": "answered", "role": role.value, "at": at.isoformat()}
        case LegHangupPrepared(role=role, hangup=hangup):
            return {"kind": "hangup", "role": role.value, "hangup": asdict(hangup)}
        case LegRecorded(record=record):
            return {"kind": "recorded", "record": _encode_record(record)}
        case OwnerBusyUntil(until=until):
            return {"kind": "owner_busy", "until": until.isoformat()}
        case StateChanged(state=state, reason=reason, at=at):
            return {"kind": "state", "state": state.value, "reason": reason, "at": at.isoformat()}
    raise TypeError(f"not a store write: {write!r}")


def decode(data: dict[str, Any]) -> StoreWrite:
    match data["kind"]:
        case "dialling":
            return LegDialling(LegRole(data["role"]), data["destination"], _time(data["at"]))
        case "answered":
            return LegAnsweredAt(LegRole(data["role"]), _time(data["at"]))
        case "hangup":
            return LegHangupPrepared(LegRole(data["role"]), PreparedHangup(**data["hangup"]))
        case "recorded":
            return LegRecorded(_decode_record(data["record"]))
        case "owner_busy":
            return OwnerBusyUntil(_time(data["until"]))
        case "state":
            return StateChanged(RequestState(data["state"]), data["reason"], _time(data["at"]))
    raise ValueError(f"unknown record kind {data['kind']!r}")


def _encode_record(record: CallRecord) -> dict[str, Any]:
    return {
        "request_ref": record.request_ref,
        "role": record.role.value,
        "destination": record.destination,
        "started_at": record.started_at.isoformat(),
        "ringing_at": _iso(record.ringing_at),
        "answered_at": _iso(record.answered_at),
        "ended_at": record.ended_at.isoformat(),
        "sip_code": record.sip_code,
        "disposition": record.disposition.value,
        "billable_seconds": record.billable_seconds,
    }


def _decode_record(data: dict[str, Any]) -> CallRecord:
    return CallRecord(
        request_ref=data["request_ref"],
        role=LegRole(data["role"]),
        destination=data["destination"],
        started_at=_time(data["started_at"]),
        ringing_at=_maybe_time(data["ringing_at"]),
        answered_at=_maybe_time(data["answered_at"]),
        ended_at=_time(data["ended_at"]),
        sip_code=data["sip_code"],
        disposition=Disposition(data["disposition"]),
        billable_seconds=int(data["billable_seconds"]),
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _maybe_time(text: str | None) -> datetime | None:
    return None if text is None else _time(text)
