"""Every public method of the installed SDKs' resources is instrumented or listed as not instrumented, with a reason:
a new SDK release with a new call path fails here until it is decided."""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from typing import Any

import pytest
import wrapt

from spanguard.instrumentation import anthropic as anthropic_instrumentation
from spanguard.instrumentation import openai as openai_instrumentation
from spanguard.instrumentation._base import MANAGING_METHODS

REGISTRIES = {
    "openai.resources": openai_instrumentation.NOT_INSTRUMENTED,
    "anthropic.resources": anthropic_instrumentation.NOT_INSTRUMENTED,
}


def resource_methods(package: str) -> list[tuple[str, Any, str]]:
    """(``module.Class.method`` relative to ``package`` with ``Async`` dropped, class, method) of every resource."""
    base = importlib.import_module(package)
    out = []
    for info in pkgutil.walk_packages(base.__path__, package + "."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            if not any(b.__name__ in ("SyncAPIResource", "AsyncAPIResource") for b in cls.__mro__[1:]):
                continue
            relative = module.__name__[len(package) + 1 :]
            for name, function in vars(cls).items():
                if name.startswith("_") or not (
                    inspect.isfunction(function) or isinstance(function, wrapt.ObjectProxy)
                ):
                    continue
                out.append((f"{relative}.{cls.__name__.removeprefix('Async')}.{name}", cls, name))
    return out


def reason_for(path: str, registry: tuple[tuple[str, str], ...]) -> str | None:
    if any(fnmatch.fnmatchcase(path.rsplit(".", 1)[1], pattern) for pattern in MANAGING_METHODS):
        return "reads or manages stored objects"
    return next((reason for pattern, reason in registry if fnmatch.fnmatchcase(path, pattern)), None)


@pytest.mark.parametrize("package", list(REGISTRIES))
def test_every_sdk_method_is_instrumented_or_listed_with_a_reason(instrument, package):
    instrument()
    methods = resource_methods(package)
    assert len(methods) > 100, package  # the walk found the SDK's resources
    undecided, listed_but_wrapped = [], []
    for path, cls, name in methods:
        wrapped = isinstance(vars(cls)[name], wrapt.FunctionWrapper)
        reason = reason_for(path, REGISTRIES[package])
        if wrapped and reason is not None:
            listed_but_wrapped.append(path)
        elif not wrapped and reason is None:
            undecided.append(path)
    assert not undecided, f"neither instrumented nor listed in NOT_INSTRUMENTED: {sorted(set(undecided))}"
    assert not listed_but_wrapped, f"instrumented but listed as not: {sorted(set(listed_but_wrapped))}"


@pytest.mark.parametrize("package", list(REGISTRIES))
def test_every_listed_pattern_still_matches_a_method(package):
    """A pattern that matches nothing is a stale entry (the SDK moved or dropped the method)."""
    paths = [path for path, _, _ in resource_methods(package)]
    stale = [p for p, _ in REGISTRIES[package] if not any(fnmatch.fnmatchcase(path, p) for path in paths)]
    assert not stale, stale
