"""``spanguard review``: serve the review service, apply its migrations, and manage its tokens."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
from typing import Any

from spanguard._logging import LOG_ENCODINGS, LOG_LEVELS, configure_logging, safe_url
from spanguard.review.config import ServiceConfig, load_config
from spanguard.review.store import ROLES, ReviewError, ReviewStore
from spanguard.yamlconfig import ConfigError

__all__ = ["ReviewServer", "add_arguments", "run"]

logger = logging.getLogger("spanguard.review")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``review`` subcommands to ``parser``."""
    commands = parser.add_subparsers(dest="review_command", metavar="COMMAND", required=True)
    serve = commands.add_parser("serve", help="run the review service (API and reviewers' page)")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks one)")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="the service's log level (default info)")
    serve.add_argument(
        "--log-format", choices=LOG_ENCODINGS, default="json", help="json lines (default) or console lines"
    )
    migrate = commands.add_parser("migrate", help="bring the store's schema up to date, then exit")
    _common(migrate)
    token = commands.add_parser("token", help="manage bearer tokens")
    tokens = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = tokens.add_parser("create", help="create a token and print it (the only time it is shown)")
    _common(create)
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--name", required=True, help="who holds it (the reviewer's name in decisions and audit)")
    revoke = tokens.add_parser("revoke", help="revoke every token of a name")
    _common(revoke)
    revoke.add_argument("--name", required=True, help="whose tokens to revoke (as given to token create)")
    listing = tokens.add_parser("list", help="list tokens: name, role, created, last used (never the token)")
    _common(listing)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", help="the store: sqlite:///path (default sqlite:///.spanguard/review.db) or a PostgreSQL URL"
    )
    parser.add_argument("--config", help="a review config YAML (policy, verdicts endpoint, limits)")


def run(args: argparse.Namespace) -> int:
    """Run a ``review`` subcommand; returns the exit code."""
    try:
        config = load_config(args.config, db=args.db)
    except ConfigError as error:
        print(f"spanguard review: {error}", file=sys.stderr)
        return 2
    store = ReviewStore(config.db, config.policy)
    try:
        store.migrate()
        if args.review_command == "migrate":
            print(f"review store {safe_url(config.db)} is at revision {store.revision()}")
            return 0
        if args.review_command == "token":
            if args.token_command == "create":
                print(store.create_token(args.name, args.role))
            elif args.token_command == "list":
                _print_tokens(store)
            else:
                print(f"revoked {store.revoke_tokens(args.name)} token(s) of {args.name}")
            return 0
        configure_logging(args.log_level, args.log_format)
        return _serve(config, store, args.host, args.port)
    except ReviewError as error:
        print(f"spanguard review: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a database that cannot be reached, a port in use: one line, not a traceback
        print(f"spanguard review: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        store.shutdown()


def _print_tokens(store: ReviewStore) -> None:
    rows = [("NAME", "ROLE", "CREATED (UTC)", "LAST USED (UTC)", "STATUS")]
    for token in store.tokens():
        used = token.last_used_at.strftime("%Y-%m-%d %H:%M") if token.last_used_at else "never"
        status = "revoked" if token.revoked else "active"
        rows.append((token.name, token.role, token.created_at.strftime("%Y-%m-%d %H:%M"), used, status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _serve(config: ServiceConfig, store: ReviewStore, host: str, port: int) -> int:
    stop = threading.Event()
    # Handlers of its own, before it serves: SIGTERM (containers, systemd) stops it as cleanly as Ctrl-C, and a SIGINT
    # that the parent left ignored (a background job of a non-interactive shell) still stops it.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    server = ReviewServer(config, store, host=host, port=port)
    server.start()
    print(f"review service on http://{host}:{server.port}/ (store {safe_url(config.db)})", flush=True)
    try:
        while not stop.wait(0.5) and server.running:
            pass
    finally:
        server.shutdown()
    return 0


class ReviewServer:
    """The review service under uvicorn in a thread: ``start()``, ``port``, ``wait()``, ``shutdown()``."""

    def __init__(self, config: ServiceConfig, store: ReviewStore, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config, self.store, self.host, self.requested_port = config, store, host, port
        self.port: int | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._emitter: Any = None
        self._app: Any = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Bind, start serving, and return once the server accepts connections."""
        import uvicorn

        from spanguard.review.api import create_app
        from spanguard.review.verdicts import VerdictEmitter

        with self._lock:
            if self._server is not None:
                return
            if self.config.verdicts.endpoint:
                self._emitter = VerdictEmitter(self.config.verdicts)
            app = create_app(self.config, self.store, emitter=self._emitter)
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only then, and without it every
            # response waits ~40 ms for the client's delayed ACK (uvicorn writes headers and body separately).
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, self.requested_port))
                sock.listen(1024)
            except OSError:
                sock.close()
                raise
            # The lifespan starts and stops the approvals' timers and listener with the server.
            server = uvicorn.Server(
                uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, server_header=False)
            )
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name="spanguard-review-http", daemon=True
            )
            self._server, self._thread, self._app = server, thread, app
            thread.start()
            deadline = time.monotonic() + 10
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise OSError(f"the review service on {self.host}:{self.requested_port} failed to start")
                time.sleep(0.005)
            self.port = sock.getsockname()[1]

    @property
    def app(self) -> Any:
        """The ASGI app being served (None before start and after shutdown)."""
        return self._app

    @property
    def running(self) -> bool:
        """Whether the server's thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C raises KeyboardInterrupt here, in the main thread)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop serving (in-flight requests get ``timeout`` seconds) and flush verdicts; idempotent."""
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
            emitter, self._emitter = self._emitter, None
            app, self._app = self._app, None
        if app is not None:
            app.state.approvals.close_waiters()  # long polls answer now, or uvicorn would wait up to a minute for them
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout)
        if emitter is not None:
            emitter.shutdown()
