"""The ``rerum`` command: ``serve`` (the cluster), ``token`` (a bearer token for a local server), ``verify``,
``import`` and ``export`` (a RERUM collection from and to mongoexport's format)."""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from rerum_server.settings import ENVIRONMENT, Settings, SettingsError

if TYPE_CHECKING:
    from rerum_server.verify.nemesis import Targets


def _default_data_dir() -> Path:
    return Path(os.environ.get("RERUM_DATA_DIR") or ENVIRONMENT["RERUM_DATA_DIR"][0])


@click.group()
@click.version_option(package_name="rerum-server")
def main() -> None:
    """A RERUM v1 compatible object store (PostgreSQL, multi-worker)."""


@main.command()
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="127.0.0.1")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to bind.  [default: $PORT or 3001]")
@click.option(
    "--workers", type=click.IntRange(min=1), default=lambda: os.cpu_count() or 1, show_default="CPUs"
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=_default_data_dir, show_default="./rerum-data"
)
def serve(host: str, port: int | None, workers: int, data_dir: Path) -> None:
    """Run the API with N workers; starts an embedded PostgreSQL when DATABASE_URL is unset."""
    from rerum_server.address import AddressUnavailable
    from rerum_server.cache.preflight import CredentialsRefused
    from rerum_server.serve import serve as run_cluster

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        run_cluster(host, Settings.from_env().port if port is None else port, workers, data_dir)
    except (SettingsError, AddressUnavailable, CredentialsRefused) as exc:
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


@main.command()
@click.option(
    "--url",
    "urls",
    multiple=True,
    help="Base URL of the deployment to verify, e.g. http://127.0.0.1:3001; repeat it for several hosts.",
)
@click.option(
    "--duration", type=click.FloatRange(min=1), default=60, show_default=True, help="Seconds of workload."
)
@click.option(
    "--clients", type=click.IntRange(min=1), default=16, show_default=True, help="Concurrent clients."
)
@click.option("--token", envvar="TOKEN", help="Bearer token for the writes (default: minted from DATA_DIR).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=_default_data_dir,
    show_default="./rerum-data",
    help="Data dir of a local server, whose key signs a token when --token is not given.",
)
@click.option("--save", "save_to", type=click.Path(dir_okay=False, path_type=Path), help="Save the history.")
@click.option(
    "--check",
    "check_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Re-check a saved history instead of running.",
)
@click.option("--faults", default="", help="Faults to inject, comma-separated, or 'all' (docs/verify.md).")
@click.option("--redis-url", help="The deployment's Redis (for redis-debug-sleep, -client-pause, -eviction).")
@click.option("--database-url", help="The deployment's PostgreSQL (for pg-terminate).")
@click.option(
    "--lab",
    is_flag=True,
    help="Verify a local lab instead of --url: 2 hosts x 4 workers sharing a PostgreSQL and a Redis "
    "of their own under DATA_DIR/lab; every fault kind can be injected there.",
)
@click.option("--fault-hold", type=click.FloatRange(min=0.5), default=3, show_default=True, help="Seconds.")
@click.option("--fault-gap", type=click.FloatRange(min=0.5), default=3, show_default=True, help="Seconds.")
def verify(
    urls: tuple[str, ...],
    duration: float,
    clients: int,
    token: str | None,
    data_dir: Path,
    save_to: Path | None,
    check_path: Path | None,
    faults: str,
    redis_url: str | None,
    database_url: str | None,
    lab: bool,
    fault_hold: float,
    fault_gap: float,
) -> None:
    """Run concurrent clients against URL, inject FAULTS, check the history for stale reads, print the table.

    Exits 1 if any read was stale, phantom or non-monotonic, a query or search missed or kept a version,
    an answer matched no single state (torn), or a fault could not be injected. How it decides:
    docs/verify.md.
    """
    from rerum_server.verify.checker import check
    from rerum_server.verify.history import load
    from rerum_server.verify.nemesis import Targets, parse_faults
    from rerum_server.verify.report import render
    from rerum_server.verify.run import VERIFY_AGENT

    if check_path is not None:
        try:
            history = load(check_path)
            report = check(history)
        except ValueError as exc:  # includes HistoryError: a history the checker cannot judge
            raise click.ClickException(f"{check_path}: {exc}") from exc
        click.echo(render(history, report))
        if not report.ok:
            raise SystemExit(1)
        return
    if lab == bool(urls):
        raise click.UsageError("Give --url (a deployment to verify), --lab, or --check (a saved history).")
    try:
        fault_names = parse_faults(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from exc
    options = _RunOptions(duration, clients, save_to, fault_names, fault_hold, fault_gap)
    if lab:
        from rerum_server.verify.lab import Lab

        click.echo(f"Starting the lab in {data_dir / 'lab'} ...", err=True)
        with Lab(data_dir / "lab") as running:
            _run_verification(running.urls, running.token(VERIFY_AGENT), running.targets(), options)
        return
    targets = Targets(redis_url=redis_url, database_url=database_url)
    _run_verification(list(urls), token or _local_token(data_dir, VERIFY_AGENT), targets, options)


@dataclass(frozen=True)
class _RunOptions:
    duration: float
    clients: int
    save_to: Path | None
    faults: list[str]
    fault_hold: float
    fault_gap: float


def _run_verification(urls: list[str], token: str, targets: Targets, options: _RunOptions) -> None:
    from rerum_server.verify.history import Recorder
    from rerum_server.verify.nemesis import Nemesis
    from rerum_server.verify.report import render
    from rerum_server.verify.run import verify as run_verification
    from rerum_server.verify.workload import WorkloadConfig

    recorder = Recorder()
    nemesis = None
    if options.faults:
        try:
            nemesis = Nemesis(
                options.faults, targets, recorder, hold_s=options.fault_hold, gap_s=options.fault_gap
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--faults") from exc
    shown = " ".join(urls)
    click.echo(f"Running {options.clients} clients for {options.duration:g} s against {shown} ...", err=True)
    config = WorkloadConfig(
        urls=tuple(url.rstrip("/") for url in urls),
        token=token,
        duration_s=options.duration,
        clients=options.clients,
    )
    history, report = run_verification(config, recorder=recorder, nemesis=nemesis, save_to=options.save_to)
    if report.total_checked == 0:
        # Nothing was checked (bad token, wrong URL...): that must not pass as "0 anomalies".
        failed = next((op for op in history.operations if op.outcome != "ok"), None)
        reason = "no operation completed" if failed is None else f"{failed.kind}: {failed.error}"
        raise click.ClickException(f"No read could be checked against {shown} ({reason}).")
    click.echo(render(history, report))
    if nemesis is not None and nemesis.errors:
        raise click.ClickException("Faults failed: " + "; ".join(nemesis.errors))
    if not report.ok:
        raise SystemExit(1)


def _local_token(data_dir: Path, agent: str) -> str:
    """A token signed by the local key of the server using DATA_DIR (as `rerum token` mints)."""
    from rerum_server.auth.local_key import local_key_path, mint_token

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.uses_local_issuer:
        raise click.ClickException("An OIDC issuer is configured; pass a token from it with --token.")
    if not local_key_path(data_dir).exists():
        raise click.ClickException(f"No local signing key in {data_dir}; pass --token or --data-dir.")
    return mint_token(data_dir.resolve(), agent, agent_claim=settings.agent_claim, audience=settings.audience)


@main.command("import")
@click.argument("source", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-")
@click.option(
    "--json-array",
    "--jsonArray",
    "json_array",
    is_flag=True,
    help="The input is one JSON array of documents.",
)
@click.option(
    "--id-prefix-from",
    metavar="URL",
    help="Rewrite object URIs starting with URL (the old deployment's id prefix, e.g. "
    "https://store.rerum.io/v1/id/) to this server's RERUM_ID_PREFIX.",
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=_default_data_dir, show_default="./rerum-data"
)
def import_(source: Path, json_array: bool, id_prefix_from: str | None, data_dir: Path) -> None:
    """Load a mongoexport of RERUM's collection (Extended JSON, gzip or not) from SOURCE or stdin.

    Resumable and idempotent: a rerun continues after the last stored batch and skips documents already
    stored. Rejected documents are listed (line, reason) and the rest imported; the exit status is 1 if
    any was. The cache is cleared at the end. See docs/import.md.
    """
    import asyncio

    from rerum_server.interchange.commands import CommandError, check_cache_reachable, import_items
    from rerum_server.interchange.framing import FramingError, array_elements, lines, open_export
    from rerum_server.interchange.pipeline import identify
    from rerum_server.interchange.prefixes import IdRewrite
    from rerum_server.interchange.progress import Progress

    try:
        settings = Settings.from_env()
        check_cache_reachable(settings, data_dir)
    except (SettingsError, CommandError) as exc:
        raise click.ClickException(str(exc)) from exc
    rewrite = IdRewrite(id_prefix_from, settings.naming.id_prefix) if id_prefix_from else None
    with click.open_file(str(source), "rb") as raw:
        size = _size_of(raw)
        stream = open_export(raw)
        framed = array_elements(stream) if json_array else lines(stream)
        progress = Progress(sys.stderr, lambda: raw.tell() / size if size else None)
        try:
            identity, items = identify(framed)
            summary, cache = asyncio.run(
                import_items(settings, data_dir, identity, items, rewrite=rewrite, progress=progress.update)
            )
        except (CommandError, FramingError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
        progress.finish(summary.read)
    for rejection in summary.rejected:
        click.echo(f"rejected {rejection.where}: {rejection.reason}", err=True)
    earlier = summary.earlier
    if earlier.items:
        click.echo(f"resumed after document {earlier.items:,} (stored by an earlier run)", err=True)
    click.echo(
        f"read {summary.read:,} documents: {summary.inserted:,} stored, {summary.present:,} already present, "
        f"{len(summary.rejected):,} rejected; {cache.note}",
        err=True,
    )
    if summary.rejected:
        raise SystemExit(1)


def _size_of(raw: object) -> int | None:
    """The size of a regular input file (for the ETA), None for a pipe."""
    try:
        stat = os.fstat(raw.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    import stat as kinds

    return stat.st_size if kinds.S_ISREG(stat.st_mode) and stat.st_size else None


@main.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-",
    help="File to write (gzip when it ends in .gz); stdout by default.",
)  # fmt: skip
@click.option("--json-array", "--jsonArray", "json_array", is_flag=True, help="Write one JSON array.")
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=_default_data_dir, show_default="./rerum-data"
)
def export(output: Path, json_array: bool, data_dir: Path) -> None:
    """Write every stored document (as RERUM's collection holds it, in insertion order) for `rerum import`."""
    import asyncio

    from rerum_server.interchange.commands import CommandError, export_to

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with _output(output) as out:
            count = asyncio.run(export_to(settings, data_dir, out, json_array=json_array))
    except CommandError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"exported {count:,} documents", err=True)


@contextlib.contextmanager
def _output(path: Path) -> Iterator[TextIO]:
    """Text output to ``path``: stdout for ``-``, gzip-compressed for a name ending in ``.gz``."""
    if str(path) == "-":
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            yield out
        finally:
            out.flush()
            out.detach()  # stdout stays open for click's own last line
    elif path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8", newline="\n") as out:
            yield out
    else:
        with path.open("w", encoding="utf-8", newline="\n") as out:
            yield out
