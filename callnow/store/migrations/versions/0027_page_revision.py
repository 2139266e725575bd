"""A page's revision, renewed by the database on every change the public page reads

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 13:30:00.000000

Each web process keeps the pages it served and compares `profiles.revision` on every visit
(`store/held_pages.py`). Triggers renew it, not our code, so no write path (the portal, the
provider's API, a CLI command, an admin's SQL) can leave a process serving an old page: a missed
change would ring an owner who had just turned on do-not-disturb.

- The page's own trigger is the only one that gives a revision: a new random number on every
  insert and update of the row. Random, not a count: a page deleted and made again under the
  same id (SQLite reuses the highest id) must not match a copy of the old one.
- Its hours and rules (insert, update, delete), its extension, its tenant and its owner (update)
  touch the page's row, and that trigger renews it. The extension's trigger names its columns
  (`UPDATE OF`) and leaves out `busy_until`: the engine writes it on every busy answer, and the
  public page does not read it. An update that sets it together with another column still
  fires. A column added to `extensions` later must be added to that list (the tests fail until
  it is).

SQLite drops a table's triggers when a batch migration rebuilds it (anything beyond adding a
column): a later migration that rebuilds one of these six tables must create its triggers again
(`tests/store/test_held_pages.py` fails until it does).
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# Every column of `extensions` but `busy_until`, which the engine writes on every busy answer
# and the page does not read. Named, not guarded by a WHEN on `busy_until`: such a guard would
# miss an update that sets it and another column together.
_EXTENSION_UPDATE = (
    "UPDATE OF id, tenant_id, owner_user_id, internal_number, external_number, display_name"
)

# (trigger, table, event, the pages it touches as a WHERE clause, with NEW or OLD as the event has)
_TOUCHES = (
    ("page_revision_windows_in", "availability_windows", "INSERT", "id = NEW.profile_id"),
    (
        "page_revision_windows_up",
        "availability_windows",
        "UPDATE",
        "id IN (OLD.profile_id, NEW.profile_id)",
    ),
    ("page_revision_windows_out", "availability_windows", "DELETE", "id = OLD.profile_id"),
    ("page_revision_rules_in", "rules", "INSERT", "id = NEW.profile_id"),
    ("page_revision_rules_up", "rules", "UPDATE", "id IN (OLD.profile_id, NEW.profile_id)"),
    ("page_revision_rules_out", "rules", "DELETE", "id = OLD.profile_id"),
    ("page_revision_extension", "extensions", _EXTENSION_UPDATE, "extension_id = NEW.id"),
    (
        "page_revision_tenant",
        "tenants",
        "UPDATE",
        "extension_id IN (SELECT id FROM extensions WHERE tenant_id = NEW.id)",
    ),
    (
        "page_revision_owner",
        "users",
        "UPDATE",
        "extension_id IN (SELECT id FROM extensions WHERE owner_user_id = NEW.id)",
    ),
)

# Touching a page: its own trigger then gives it a new revision.
_TOUCH = "UPDATE profiles SET revision = revision WHERE {where}"


def upgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False)
        )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    # SQLite cannot change the row in a BEFORE trigger: an AFTER trigger updates it again. Its
    # guard stops it from answering its own update (recursive triggers are off by default; the
    # guard keeps that true if they are ever turned on). `random()` is any signed 64-bit
    # integer; `abs()` of the lowest one would fail the write.
    renew = "BEGIN UPDATE profiles SET revision = random() WHERE id = NEW.id; END"
    op.execute(f"CREATE TRIGGER page_revision_new AFTER INSERT ON profiles {renew}")
    op.execute(
        "CREATE TRIGGER page_revision_page AFTER UPDATE ON profiles"
        f" WHEN NEW.revision = OLD.revision {renew}"
    )
    for name, table, event, where in _TOUCHES:
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table}"
            f" BEGIN {_TOUCH.format(where=where)}; END"
        )


def _postgresql_triggers() -> None:
    op.execute(
        "CREATE FUNCTION page_revision_page() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN NEW.revision := floor(random() * 9.0e18)::bigint; RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER page_revision_page BEFORE INSERT OR UPDATE ON profiles"
        " FOR EACH ROW EXECUTE FUNCTION page_revision_page()"
    )
    for name, table, event, where in _TOUCHES:
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN {_TOUCH.format(where=where)}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    triggers = [(name, table) for name, table, _event, _where in _TOUCHES]
    triggers.append(("page_revision_page", "profiles"))
    if not postgresql:
        triggers.append(("page_revision_new", "profiles"))
    for name, table in triggers:
        if postgresql:
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
        else:
            op.execute(f"DROP TRIGGER {name}")
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_column("revision")
