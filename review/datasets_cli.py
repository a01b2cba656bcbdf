"""``spanguard dataset export``: reviewed items and rejected approvals as eval cases, SFT rows or DPO rows (JSON Lines).

``--db`` reads the review store here (:func:`spanguard.review.datasets.export_rows`); ``--endpoint`` streams the
service's ``GET /v1/datasets/export``. The file is written next to ``--out`` and renamed over it once complete, so an
export run again replaces it whole, with the same ids. A progress bar on stderr when it is a terminal. Any failure is
one line on stderr and exit code 2. Behaviour: docs/datasets.md ("Export").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from spanguard._logging import safe_url
from spanguard.exporters.datasets import KINDS, encode_line
from spanguard.review.gates_cli import TOKEN_ENV, _detail, _first_line

__all__ = ["EXPORT_ROUTE", "DatasetError", "add_arguments", "run"]

EXPORT_ROUTE = "/v1/datasets/export"
TIMEOUT_S = 60.0


class DatasetError(Exception):
    """An export that cannot be made; the message is the one line the command prints."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``dataset`` subcommands to ``parser``."""
    commands = parser.add_subparsers(dest="dataset_command", metavar="COMMAND", required=True)
    export = commands.add_parser("export", help="export reviewed items as eval cases, SFT rows or DPO rows")
    export.add_argument("--out", required=True, help="the JSON Lines file to write (replaced atomically)")
    export.add_argument("--kind", choices=KINDS, default="eval", help="eval cases (default), sft rows or DPO rows")
    source = export.add_mutually_exclusive_group()
    source.add_argument(
        "--db", help="the review store: sqlite:///path (default sqlite:///.spanguard/review.db) or a PostgreSQL URL"
    )
    source.add_argument("--endpoint", help="the review service's URL (asks GET /v1/datasets/export)")
    export.add_argument("--token", help=f"a reviewer token for --endpoint (default: ${TOKEN_ENV})")
    export.add_argument("--config", help="the review service's config, for its store (--db only)")
    export.add_argument("--tier", help="review tiers and/or risk tiers, comma-separated")
    export.add_argument("--outcome", help="approve, reject, correct, comma-separated")
    export.add_argument("--since", help="reviewed at or after (ISO 8601 date or time; UTC without a zone)")
    export.add_argument("--dataset", help="only this dataset's cases")
    export.add_argument("--tag", help="only cases with this tag")
    export.add_argument(
        "--unit",
        help="session: session items only; trace: every trace item, those reviewed within a session too "
        "(default: session items and the traces not in one)",
    )
    export.add_argument(
        "--include-approved", action="store_true", help="sft: approved outputs too, not only corrections"
    )


def run(args: argparse.Namespace) -> int:
    """Run a ``dataset`` subcommand; returns the exit code."""
    try:
        written, read = export(args)
    except DatasetError as error:
        print(f"spanguard dataset: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written} {args.kind} line(s) from {read} reviewed source(s) to {args.out}", file=sys.stderr)
    return 0


def export(args: argparse.Namespace) -> tuple[int, int]:
    """Write the export ``args`` ask for; (lines written, sources read)."""
    from spanguard.review.datasets import parse_filter
    from spanguard.review.store import ReviewError

    filters = {
        "tier": args.tier,
        "outcome": args.outcome,
        "since": args.since,
        "dataset": args.dataset,
        "unit": args.unit,
    }
    try:
        parsed = parse_filter(**filters, tag=args.tag)
    except ReviewError as error:
        raise DatasetError(f"--{error}") from None
    if args.endpoint:
        if args.config:
            raise DatasetError("--config applies to --db only")
        token = args.token or os.environ.get(TOKEN_ENV)
        if not token:
            raise DatasetError(f"--endpoint needs a reviewer token: --token or ${TOKEN_ENV}")
        params = {key: value for key, value in {**filters, "tag": args.tag}.items() if value}
        params["kind"] = args.kind
        if args.include_approved:
            params["include_approved"] = "true"
        return _write(args.out, lambda progress: _from_endpoint(args.endpoint, token, params, progress), None)
    if args.token:
        raise DatasetError("--token applies to --endpoint only")
    return _from_db(args, parsed)


def _from_db(args: argparse.Namespace, filters: Any) -> tuple[int, int]:
    from sqlalchemy.exc import SQLAlchemyError

    from spanguard.review.config import load_config
    from spanguard.review.datasets import count_sources, export_rows
    from spanguard.review.store import ReviewStore
    from spanguard.yamlconfig import ConfigError

    try:
        url = load_config(args.config, db=args.db).db
    except ConfigError as error:
        raise DatasetError(" ".join(str(error).split("\n"))) from None
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///")).expanduser()
        if not path.is_file():  # never create an empty store just to export from it
            raise DatasetError(f"no review store at {path}")
    try:
        store = ReviewStore(url)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        raise DatasetError(f"--db {safe_url(url)}: {type(error).__name__}: {_first_line(error)}") from None
    try:
        total = count_sources(store, filters, args.kind, include_approved=args.include_approved)

        def rows(progress: Callable[[int], None]) -> Iterator[dict[str, Any] | None]:
            for line, read in export_rows(store, args.kind, filters, include_approved=args.include_approved):
                progress(read)
                yield line

        return _write(args.out, rows, total)
    except SQLAlchemyError as error:
        reason = _first_line(getattr(error, "orig", None) or error)
        # A table or column the store lacks (the datasets table, the session columns): its schema is older than this.
        missing = "dataset_cases" in str(error) or any(s in reason for s in ("no such column", "does not exist"))
        hint = " (run `spanguard review migrate` on it)" if missing else ""
        raise DatasetError(f"cannot read the review store at {safe_url(url)}{hint}: {reason}") from None
    finally:
        store.shutdown()


def _from_endpoint(
    endpoint: str, token: str, params: dict[str, str], progress: Callable[[int], None]
) -> Iterator[dict[str, Any] | None]:
    import httpx

    shown = safe_url(endpoint)
    url = endpoint.rstrip("/") + EXPORT_ROUTE
    try:
        with httpx.stream(
            "GET", url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S
        ) as response:
            if response.status_code != 200:
                response.read()
                detail = _detail(response)
                if response.status_code in (401, 403):
                    raise DatasetError(
                        f"the review service at {shown} refused the token ({response.status_code}{detail})"
                    )
                raise DatasetError(f"the review service at {shown} answered {response.status_code}{detail}")
            for number, text in enumerate(response.iter_lines(), 1):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                except ValueError:
                    raise DatasetError(f"the review service's line {number} is not JSON") from None
                if not isinstance(line, dict):
                    raise DatasetError(f"the review service's line {number} is not a JSON object")
                progress(number)
                yield line
    except httpx.InvalidURL as error:
        raise DatasetError(f"--endpoint {shown!r} is not a URL: {error}") from None
    except httpx.UnsupportedProtocol:
        raise DatasetError(f"--endpoint {shown!r} must be an http:// or https:// URL") from None
    except httpx.HTTPError as error:
        raise DatasetError(f"cannot read from the review service at {shown}: {type(error).__name__}") from None


def _write(
    out: str, rows: Callable[[Callable[[int], None]], Iterator[dict[str, Any] | None]], total: int | None
) -> tuple[int, int]:
    """Write ``rows`` to a temporary file beside ``out`` and rename it over ``out``; (lines written, sources read)."""
    target = Path(out)
    if target.is_dir():
        raise DatasetError(f"--out {out} is a directory")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise DatasetError(f"--out {out}: no folder {folder}")
    written = read = 0
    try:
        handle = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=folder, prefix=f".{target.name}.", suffix=".tmp", delete=False
        )
    except OSError as error:
        raise DatasetError(f"--out {out}: {error.strerror or type(error).__name__}") from None
    try:
        with handle, _progress(total) as advance:

            def seen(count: int) -> None:
                nonlocal read
                read = count
                advance(count)

            for line in rows(seen):
                if line is not None:
                    handle.write(encode_line(line) + "\n")
                    written += 1
        os.replace(handle.name, target)
    except OSError as error:
        raise DatasetError(f"--out {out}: {error.strerror or type(error).__name__}") from None
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)  # a failed export leaves the old file as it was, and no partial one
    return written, read


def _progress(total: int | None) -> Any:
    """A context giving ``advance(sources read)``: a rich progress bar on a terminal's stderr, else nothing."""
    if not sys.stderr.isatty():
        return nullcontext(lambda _count: None)
    from contextlib import contextmanager

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    @contextmanager
    def bar() -> Iterator[Callable[[int], None]]:
        columns = [TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("export", total=total)
            step = max(1, (total or 0) // 500)  # a refresh every 0.2 % is plenty, and cheap on 100k items

            def advance(count: int) -> None:
                if count % step == 0 or count == total:
                    progress.update(task, completed=count)

            yield advance

    return bar()
