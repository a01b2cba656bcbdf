"""A pytest plugin that runs an eval dataset as tests, one per case: ``pytest --spanguard-dataset cases.jsonl
--spanguard-target mod:fn``.

Registered through the ``pytest11`` entry point, so it is loaded by every pytest run where spanguard is installed:
without ``--spanguard-dataset`` it adds its options and does nothing else (nothing of spanguard is imported). A case
that fails is a test failure naming its scorers' reasons; a pending-human case is skipped; a target that fails is an
error. Scores share the gate's cache. Behaviour: docs/datasets.md ("The gate").
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CaseItem", "DatasetFile", "pytest_addoption", "pytest_collection_modifyitems"]

_CACHE = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's options (inert unless ``--spanguard-dataset`` is given)."""
    group = parser.getgroup("spanguard", "spanguard eval gate")
    group.addoption("--spanguard-dataset", metavar="PATH", help="run the eval cases in PATH, one test per case")
    group.addoption("--spanguard-target", metavar="TARGET", help="module:function, file.py:function or a URL")
    group.addoption("--spanguard-model", metavar="MODEL", help="the model a URL target is asked for")
    group.addoption("--spanguard-config", metavar="PATH", help="the gate's config (YAML), as spanguard gate --config")


class CaseFailed(Exception):
    """A case that did not pass: its outcome, shown without a traceback."""

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        super().__init__(outcome.reason)


class DatasetFile(pytest.File):
    """The dataset file: one :class:`CaseItem` per case."""

    def collect(self) -> Any:
        from spanguard.review.evalgate.dataset import DatasetError, load_dataset

        try:
            dataset = load_dataset(self.path)
        except DatasetError as error:
            raise pytest.UsageError(f"spanguard: invalid dataset:\n{error}") from None
        for case in dataset.cases:
            yield CaseItem.from_parent(self, name=case.id, case=case, line=dataset.lines.get(case.id), dataset=dataset)


class CaseItem(pytest.Item):
    """One eval case as a test."""

    def __init__(self, *, case: Any, line: int | None, dataset: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.line = line
        self.dataset = dataset
        self.add_marker(pytest.mark.spanguard_case)
        for tag in case.tags:
            self.user_properties.append(("tag", tag))

    def runtest(self) -> None:
        from spanguard.review.evalgate.dataset import Dataset
        from spanguard.review.evalgate.runner import CaseStatus, run_gate
        from spanguard.review.evalgate.targets import Caller, load_target

        settings, cache = self.config.stash[_CACHE]
        target = load_target(settings.target, model=settings.model, timeout=settings.timeout)
        one = Dataset(self.dataset.path, (self.case,), {self.case.id: self.line or 0}, self.dataset.sha256)

        async def go() -> Any:
            caller = Caller(
                target,
                concurrency=1,
                timeout=settings.timeout,
                retries=settings.retries,
                backoff=settings.backoff,
            )
            return await run_gate(one, caller, settings, cache=cache, save_cache=False)

        outcome = asyncio.run(go()).cases[0]
        self.user_properties.append(("score", outcome.score))
        if outcome.status is CaseStatus.PASSED:
            return
        if outcome.status is CaseStatus.PENDING_HUMAN:
            pytest.skip(f"pending human: {outcome.reason}")
        raise CaseFailed(outcome)

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            outcome = excinfo.value.outcome
            lines = [f"case {outcome.id} {outcome.status.value}: {outcome.reason}"]
            lines += [
                f"  {s.name}: {'error: ' + s.error if s.error else s.reason} (score {s.score:.2f})"
                for s in outcome.scorers
            ]
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, (self.line - 1 if self.line else None), f"spanguard case {self.case.id}"


def pytest_configure(config: pytest.Config) -> None:
    """Check the options and load the gate's settings, only when a dataset is given."""
    config.addinivalue_line("markers", "spanguard_case: an eval case run by the spanguard plugin")
    dataset = config.getoption("spanguard_dataset", None)
    if not dataset:
        return
    target = config.getoption("spanguard_target")
    from spanguard.review.evalgate.config import load_config
    from spanguard.review.evalgate.runner import ScoreCache
    from spanguard.yamlconfig import ConfigError

    try:
        settings = load_config(config.getoption("spanguard_config"))
    except ConfigError as error:
        raise pytest.UsageError(f"spanguard: {error}") from None
    settings.target = target or settings.target
    settings.model = config.getoption("spanguard_model") or settings.model
    if not settings.target:
        raise pytest.UsageError("spanguard: --spanguard-dataset needs --spanguard-target (or target: in the config)")
    from spanguard.review.evalgate.targets import TargetError, load_target

    try:
        load_target(settings.target, model=settings.model, timeout=settings.timeout)
    except TargetError as error:
        raise pytest.UsageError(f"spanguard: {error}") from None
    config.stash[_CACHE] = (settings, ScoreCache(settings.cache))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add one test per case of ``--spanguard-dataset`` (nothing without it)."""
    dataset = config.getoption("spanguard_dataset", None)
    if not dataset:
        return
    path = Path(dataset).resolve()
    if not path.is_file():
        raise pytest.UsageError(f"spanguard: no dataset at {dataset}")
    node = DatasetFile.from_parent(session, path=path)
    items.extend(node.collect())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Save the score cache."""
    found = session.config.stash.get(_CACHE, None)
    if found is not None:
        found[1].save()
