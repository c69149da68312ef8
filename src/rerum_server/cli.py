"""The ``rerum`` command: ``serve`` (the cluster) and ``token`` (a bearer token for a local server)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from rerum_server.settings import ENVIRONMENT, Settings, SettingsError


def _default_data_dir() -> Path:
    return Path(os.environ.get("RERUM_DATA_DIR") or ENVIRONMENT["RERUM_DATA_DIR"][0])


@click.group()
@click.version_option(package_name="rerum-server")
def main() -> None:
    """A RERUM v1 compatible object store (PostgreSQL, multi-worker)."""


@main.command()
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="127.0.0.1")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "3001")), show_default="3001")
@click.option(
    "--workers", type=click.IntRange(min=1), default=lambda: os.cpu_count() or 1, show_default="CPUs"
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=_default_data_dir, show_default="./rerum-data"
)
def serve(host: str, port: int, workers: int, data_dir: Path) -> None:
    """Run the API with N workers; starts an embedded PostgreSQL when DATABASE_URL is unset."""
    from rerum_server.serve import serve as run_cluster

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        run_cluster(host, port, workers, data_dir)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--agent", required=True, help="Agent URI the token speaks for.")
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=_default_data_dir, show_default="./rerum-data"
)
@click.option(
    "--expires", type=click.IntRange(min=1), default=3600, show_default=True, help="Lifetime in seconds."
)
def token(agent: str, data_dir: Path, expires: int) -> None:
    """Print a bearer token signed by the local key of the server using DATA_DIR."""
    from rerum_server.auth.local_key import ensure_local_key, mint_token

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.uses_local_issuer:
        raise click.ClickException(
            "An OIDC issuer is configured; get tokens from it, not from `rerum token`."
        )
    ensure_local_key(data_dir)
    click.echo(
        mint_token(
            data_dir.resolve(),
            agent,
            agent_claim=settings.agent_claim,
            audience=settings.audience,
            expires_in=expires,
        )
    )
