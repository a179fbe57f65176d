"""``mlpq db``: upgrade the ledger's schema, or show its revision."""

from __future__ import annotations

import click

from mlpq.api_cli.context import CONTEXT


def shown_url(url: str) -> str:
    """The database URL with its password masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.group(context_settings=CONTEXT)
def db() -> None:
    """The ledger's schema, migrated by Alembic.

    Nothing else migrates a ledger: every command and worker refuses one that is
    not at this mlpq's schema (only a new SQLite ledger at the default location
    is created on first use). Run 'mlpq db upgrade' to create or migrate it,
    e.g. before a deployment; running workers stop when it changes under them.

    \b
    Example:
      mlpq db current
    """


@db.command("upgrade", context_settings=CONTEXT)
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Migrate the ledger (SQLite or PostgreSQL) to this mlpq's newest revision; safe to repeat.

    \b
    Example:
      MLPQ_DATABASE_URL=postgresql://mlpq@db-host/mlpq mlpq db upgrade
    """
    from mlpq.db.migrate import upgrade_schema
    from mlpq.db.engine import make_engine

    url = ctx.find_root().obj.database_url
    engine = make_engine(url)
    try:
        before, after = upgrade_schema(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{shown_url(url)}: already at revision {after} (head)")
    else:
        click.echo(f"{shown_url(url)}: upgraded from {f'revision {before}' if before else 'empty'} "
                   f"to revision {after} (head)")


@db.command("current", context_settings=CONTEXT)
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the ledger's schema revision and whether it is this mlpq's newest.

    \b
    Example:
      mlpq db current
    """
    from mlpq.db.migrate import HEAD, current_revision
    from mlpq.db.engine import make_engine

    url = ctx.find_root().obj.database_url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    finally:
        engine.dispose()
    if revision == HEAD:
        click.echo(f"{shown_url(url)}: revision {revision} (head)")
    elif revision is None:
        click.echo(f"{shown_url(url)}: no schema yet (head is {HEAD}: mlpq db upgrade)")
    else:
        click.echo(f"{shown_url(url)}: revision {revision}, head is {HEAD} (mlpq db upgrade)")
