"""The datasets routes of the review service (docs/datasets.md, "Datasets in the review service").

:func:`add_dataset_routes` adds them to the review app with its auth dependency: adding reviewed items and rejected
approval requests to named datasets with tags, listing datasets and their cases, and the export as streamed JSON
Lines. The store's errors (:class:`~spanguard.review.store.ReviewError` and its kinds) are answered by the app's
handlers: 422, 404, 409.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pydantic
from fastapi import Depends, FastAPI, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse

from spanguard.exporters.datasets import ExportKind, encode_line
from spanguard.review.datasets import DatasetStore, check_name, export_rows, parse_filter
from spanguard.review.schemas import ITEM_ID, NO_NUL, ErrorOut
from spanguard.review.store import ITEM_ID_MAX, Principal, ReviewError, ReviewStore

__all__ = ["NDJSON", "add_dataset_routes"]

NDJSON = "application/x-ndjson"
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no such item, approval request, dataset or case"},
    409: {
        "model": ErrorOut,
        "description": "the item is not reviewed yet or is reviewed within a session item, or the approval request "
        "was not rejected",
    },
}
NamePath = Annotated[str, PathParam(max_length=64, description="the dataset's name: a-z, 0-9, _ - ., up to 64")]


class CaseIn(pydantic.BaseModel):
    """A source to add to a dataset: exactly one of ``item_id`` and ``approval_id``, and tags."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    item_id: Annotated[int | None, pydantic.Field(None, ge=1, le=ITEM_ID_MAX, strict=True), ITEM_ID] = None
    approval_id: Annotated[str | None, pydantic.Field(None, max_length=64), NO_NUL] = None
    tags: list[Annotated[str, pydantic.Field(max_length=64), NO_NUL]] = pydantic.Field([], max_length=20)

    @pydantic.model_validator(mode="after")
    def _one_source(self) -> CaseIn:
        if (self.item_id is None) == (self.approval_id is None):
            raise ValueError("give exactly one of item_id and approval_id")
        return self


class CaseOut(pydantic.BaseModel):
    """A case of a dataset, with its source's summary."""

    id: int
    case_id: str
    item_id: int | None
    approval_id: str | None
    trace_id: str | None
    tags: list[str]
    added_by: str
    added_at: str
    outcome: str | None
    tier: str | None
    risk_tier: str | None
    preview: str


class DatasetSummary(pydantic.BaseModel):
    """A dataset's name, how many cases it has, and when a case was last added."""

    name: str
    cases: int
    updated_at: str | None


class DatasetList(pydantic.BaseModel):
    """Every dataset, by name."""

    datasets: list[DatasetSummary]


class DatasetPage(pydantic.BaseModel):
    """A page of one dataset's cases, oldest first, and how many it has in all."""

    name: str
    total: int
    cases: list[CaseOut]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def _case(row: dict[str, Any]) -> CaseOut:
    return CaseOut(**{**row, "added_at": _iso(row["added_at"]) or ""})


def _name(name: str) -> None:
    try:
        check_name(name)
    except ReviewError as error:
        raise ReviewError(f"path.{error}") from None


def add_dataset_routes(app: FastAPI, store: ReviewStore, *, caller: Callable[..., Callable[..., Principal]]) -> None:
    """Add the datasets routes to ``app``; ``caller(*roles)`` makes the auth dependency, as for the app's own routes."""
    datasets = DatasetStore(store)
    reviewer = Depends(caller("reviewer", "admin"))

    # Before /v1/datasets/{name}: "export" is a reserved name, and this route must win the match.
    @app.get(
        "/v1/datasets/export",
        tags=["datasets"],
        summary="Export reviewed items and rejected approvals as eval cases, SFT rows or DPO rows (JSON Lines).",
        response_class=StreamingResponse,
        responses={200: {"content": {NDJSON: {}}, "description": "one JSON object a line"}},
    )
    def export(
        _: Principal = reviewer,
        kind: Annotated[ExportKind, Query(description="eval, sft or preference")] = "eval",
        tier: Annotated[str | None, Query(max_length=200), NO_NUL] = None,
        outcome: Annotated[str | None, Query(max_length=200), NO_NUL] = None,
        since: Annotated[str | None, Query(max_length=64), NO_NUL] = None,
        dataset: Annotated[str | None, Query(max_length=64), NO_NUL] = None,
        tag: Annotated[str | None, Query(max_length=64), NO_NUL] = None,
        unit: Annotated[
            str | None,
            Query(max_length=16, description="session or trace; default: session items and traces not in one"),
            NO_NUL,
        ] = None,
        include_approved: bool = False,
    ) -> StreamingResponse:
        try:
            filters = parse_filter(tier=tier, outcome=outcome, since=since, dataset=dataset, tag=tag, unit=unit)
        except ReviewError as error:
            raise ReviewError(f"query.{error}") from None  # the parameter's path, as for FastAPI's own 422s
        rows = export_rows(store, kind, filters, include_approved=include_approved)
        first = next(rows, None)  # read before answering, so a store that is down is a 503, not a cut stream

        def lines() -> Iterator[bytes]:
            buffer: list[str] = []
            for line, _ in itertools.chain([first] if first is not None else [], rows):
                if line is not None:
                    buffer.append(encode_line(line))
                if len(buffer) >= 200:
                    yield ("\n".join(buffer) + "\n").encode("utf-8")
                    buffer.clear()
            if buffer:
                yield ("\n".join(buffer) + "\n").encode("utf-8")

        return StreamingResponse(lines(), media_type=NDJSON)

    @app.get("/v1/datasets", tags=["datasets"], summary="Every dataset, with its number of cases.")
    def list_datasets(_: Principal = reviewer) -> DatasetList:
        return DatasetList(
            datasets=[
                DatasetSummary(name=d["name"], cases=d["cases"], updated_at=_iso(d["updated_at"]))
                for d in datasets.datasets()
            ]
        )

    @app.post(
        "/v1/datasets/{name}/cases",
        tags=["datasets"],
        summary="Add a reviewed item (or a rejected approval request) to a dataset, with tags; idempotent.",
        status_code=201,
        responses={200: {"model": CaseOut, "description": "already in the dataset (tags merged)"}, **_ERRORS},
    )
    def add_case(name: NamePath, body: CaseIn, principal: Principal = reviewer) -> Response:
        _name(name)
        case, created = datasets.add(
            name, item_id=body.item_id, approval_id=body.approval_id, tags=body.tags, actor=principal.name
        )
        payload = _case(datasets.case(name, case.id)).model_dump_json()
        return Response(payload, status_code=201 if created else 200, media_type="application/json")

    @app.get("/v1/datasets/{name}", tags=["datasets"], summary="A dataset's cases, oldest first.", responses=_ERRORS)
    def get_dataset(
        name: NamePath,
        _: Principal = reviewer,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> DatasetPage:
        _name(name)
        total, rows = datasets.cases(name, limit=limit, offset=offset)
        if total == 0:
            return JSONResponse({"detail": f"no dataset {name}"}, status_code=404)  # type: ignore[return-value]
        return DatasetPage(name=name, total=total, cases=[_case(row) for row in rows])

    @app.delete(
        "/v1/datasets/{name}/cases/{case}",
        tags=["datasets"],
        summary="Remove a case from a dataset.",
        status_code=204,
        responses=_ERRORS,
    )
    def remove_case(
        name: NamePath,
        case: Annotated[int, PathParam(ge=1, le=ITEM_ID_MAX), ITEM_ID],
        _: Principal = reviewer,
    ) -> Response:
        _name(name)
        datasets.remove(name, case)
        return Response(status_code=204)
