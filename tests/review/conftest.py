"""Review fixtures: a database URL for each store the service supports (SQLite, and PostgreSQL when it is up)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from otlp_logs import GrpcLogsServicer, Received
from sqlalchemy import create_engine, text

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """A PostgreSQL URL on a schema of its own (dropped by nobody: schemas are cheap and names unique)."""
    try:
        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"review_{uuid.uuid4().hex[:12]}"
        with engine.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {name}"))
        engine.dispose()
    except Exception as error:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database test) is not reachable: {type(error).__name__}")
    return f"{PG_ADMIN}?options=-csearch_path%3D{name}"


def database_url(kind: str, directory) -> str:
    """A fresh, empty database of ``kind`` (sqlite or postgresql)."""
    return f"sqlite:///{directory / 'review.db'}" if kind == "sqlite" else postgres_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database, once on SQLite and once on PostgreSQL."""
    return database_url(request.param, tmp_path)


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    """A real OTLP/gRPC logs receiver on loopback: its endpoint, and what it received."""
    received = Received()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(GrpcLogsServicer(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)
