"""`callnow billing …` through Typer's CliRunner against a temporary SQLite database."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from callnow.billing import ledger
from callnow.billing.budgets import budget_for
from callnow.cli.billing import billing_app
from callnow.store.billing_models import ChargeRow, RateDeckRow
from callnow.store.db import make_engine, make_session_factory, migrate, transaction
from tests.billing.test_ledger import (
    LOCAL,
    MOBILE,
    NOV_20_2PM_SYDNEY,
    PLATFORM_DECK,
    add_finished_call,
    deck_csv,
    extension_id,
    seed_two_owners,
)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'billing.sqlite3'}"
    monkeypatch.setenv("CALLNOW_DATABASE_URL", url)
    monkeypatch.delenv("CALLNOW_CONFIG", raising=False)
    migrate(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        seed_two_owners(session)
    yield sessions
    engine.dispose()


def run(*args: str):
    return CliRunner().invoke(billing_app, list(args))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def import_platform(tmp_path: Path, text: str = PLATFORM_DECK, when: str = "2026-01-01"):
    path = write(tmp_path, f"deck-{when}.csv", text)
    return run("import-deck", str(path), "--name", f"Platform {when}", "--effective-from", when)


def test_a_deck_is_imported_listed_and_exported_unchanged(database, tmp_path):
    result = import_platform(tmp_path)
    assert result.exit_code == 0, result.output
    assert "imported for the platform" in result.stdout
    assert "2026-01-01T00:00:00+11:00" in result.stdout  # midnight in Sydney, the default zone
    listed = run("list-decks")
    assert "platform" in listed.stdout and "3 rates" in listed.stdout
    deck_id = listed.stdout.split("\t")[0]
    exported = run("export-deck", deck_id)
    assert exported.exit_code == 0
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert rows[0][0] == "prefix" and [row[0] for row in rows[1:]] == ["44", "61", "614"]
    assert rows[3][3] == "0.45"
    assert run("export-deck", "999").exit_code == 1


def test_a_bad_deck_prints_numbered_errors_exits_non_zero_and_keeps_the_old_deck(
    database, tmp_path
):
    assert import_platform(tmp_path).exit_code == 0
    bad = write(
        tmp_path,
        "bad.csv",
        deck_csv("614,mobile,0,0.20,30,6,0", "614,again,0,0.20,30,6,0", "44,uk,0,-0.05,1,1,0"),
    )
    result = run("import-deck", str(bad), "--name", "Cheaper", "--effective-from", "2026-06-01")
    assert result.exit_code == 1
    assert "bad.csv: line 3: duplicate prefix 614 (first on line 2)" in result.stderr
    assert "bad.csv: line 4: price_per_minute must not be negative" in result.stderr
    assert "Nothing imported" in result.stderr
    with transaction(database) as session:
        assert len(session.scalars(select(RateDeckRow)).all()) == 1
        leg = add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=60)
        assert ledger.post_charge_for_leg(session, leg).net_minor == 45


def test_a_tenant_deck_needs_a_known_tenant(database, tmp_path):
    path = write(tmp_path, "alice.csv", deck_csv("61,Alice,0,0.05,60,60,0"))
    ok = run(
        "import-deck",
        str(path),
        "--name",
        "A",
        "--effective-from",
        "2026-01-01",
        "--tenant",
        "Alice Pty",
    )
    assert ok.exit_code == 0 and "imported for Alice Pty" in ok.stdout
    unknown = run(
        "import-deck",
        str(path),
        "--name",
        "A",
        "--effective-from",
        "2026-01-01",
        "--tenant",
        "Nobody",
    )
    assert unknown.exit_code == 1 and "No tenant named 'Nobody'" in unknown.stderr


def test_the_statement_is_one_months_charges_of_one_extension_as_csv(database, tmp_path):
    import_platform(tmp_path)
    with transaction(database) as session:
        for owner, number, answered in (
            ("alice", LOCAL, NOV_20_2PM_SYDNEY),
            ("alice", MOBILE, NOV_20_2PM_SYDNEY),
            ("alice", MOBILE, datetime(2026, 10, 31, 22, 0, tzinfo=UTC)),  # 09:00 1 Nov, Sydney
            ("alice", MOBILE, datetime(2026, 10, 31, 12, 0, tzinfo=UTC)),  # 23:00 31 Oct
            ("bob", MOBILE, NOV_20_2PM_SYDNEY),
        ):
            leg = add_finished_call(session, owner, number, answered_at=answered, seconds=95)
            ledger.post_charge_for_leg(session, leg)
    result = run("statement", "--extension", "001002", "--month", "2026-11")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["answered_at"] for row in rows] == [
        "2026-11-01T09:00:00+11:00",
        "2026-11-20T14:00:00+11:00",
        "2026-11-20T14:00:00+11:00",
    ]
    assert {row["extension"] for row in rows} == {"001002"}
    assert sorted(row["gross"] for row in rows) == ["0.13", "0.79", "0.79"]
    assert run("statement", "--extension", "001002", "--month", "November").exit_code == 2
    assert run("statement", "--extension", "999999", "--month", "2026-11").exit_code == 1


def test_rerate_reports_differences_and_changes_nothing_on_a_dry_run(database, tmp_path):
    import_platform(tmp_path)
    with transaction(database) as session:
        posted = add_finished_call(
            session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=60
        )
        ledger.post_charge_for_leg(session, posted)
        add_finished_call(session, "alice", LOCAL, answered_at=NOV_20_2PM_SYDNEY, seconds=60)
    # A corrected deck, back-dated to before the call: the mobile minute is now 0.30.
    import_platform(
        tmp_path, deck_csv("614,mobile,0,0.30,60,60,0", "61,fixed,0,0.10,60,60,0"), "2026-11-01"
    )

    dry = run("rerate", "--from", "2026-11-20", "--to", "2026-11-20", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"leg {posted}" in dry.stdout and "0.50 -> 0.33" in dry.stdout
    assert "answered but never posted" in dry.stdout
    assert "Checked 2 answered calls: 2 differences, not changed (dry run)." in dry.stdout
    with database() as session:
        assert [c.gross_minor for c in session.scalars(select(ChargeRow))] == [50]

    applied = run("rerate", "--from", "2026-11-20", "--to", "2026-11-20")
    assert "corrected" in applied.stdout
    with database() as session:
        assert sorted(c.gross_minor for c in session.scalars(select(ChargeRow))) == [13, 33]
    again = run("rerate", "--from", "2026-11-20", "--to", "2026-11-20", "--dry-run")
    assert "2 answered calls: 0 differences" in again.stdout


def test_rerate_outside_the_period_sees_nothing(database, tmp_path):
    import_platform(tmp_path)
    with transaction(database) as session:
        add_finished_call(session, "alice", MOBILE, answered_at=NOV_20_2PM_SYDNEY, seconds=60)
    result = run("rerate", "--from", "2026-11-21", "--to", "2026-11-30", "--dry-run")
    assert "Checked 0 answered calls" in result.stdout
    assert run("rerate", "--from", "2026-11-30", "--to", "2026-11-01").exit_code == 2


def test_set_budget_sets_and_switches_off_limits(database):
    result = run("set-budget", "--extension", "001002", "--daily-cap", "20.00", "--prepaid", "5")
    assert result.exit_code == 0, result.output
    assert "daily cap 20.00, prepaid 5.00, credit limit off" in result.stdout
    with database() as session:
        budget = budget_for(session, extension_id(session, "001002"), datetime.now(UTC))
        assert (budget.daily_cap_remaining_minor, budget.prepaid_balance_minor) == (2000, 500)
    run("set-budget", "--extension", "001002", "--daily-cap", "off")
    with database() as session:
        budget = budget_for(session, extension_id(session, "001002"), datetime.now(UTC))
        assert (budget.daily_cap_remaining_minor, budget.prepaid_balance_minor) == (None, 500)
    tenant = run("set-budget", "--tenant", "Bob Pty", "--credit-limit", "100")
    assert "Tenant 'Bob Pty': daily cap off, prepaid off, credit limit 100.00." in tenant.stdout


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["--extension", "001002", "--daily-cap", "1.234"], 1),
        (["--extension", "001002", "--daily-cap", "-5"], 1),
        (["--extension", "123456", "--daily-cap", "5"], 1),
        (["--extension", "001002", "--tenant", "Bob Pty"], 2),
        ([], 2),
    ],
)
def test_set_budget_refuses_what_it_cannot_store(database, args, status):
    assert run("set-budget", *args).exit_code == status
