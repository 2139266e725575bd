"""Alembic environment: runs our migrations against the URL given by callnow.store.db."""

from alembic import context
from sqlalchemy import create_engine

from callnow.store.schema import metadata

config = context.config


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)  # type: ignore[arg-type]  # callnow's alembic.ini always sets it
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
