"""Gate overhead benchmark: what ``spanguard gate`` costs per case on top of calling the target itself.

N synthetic eval cases (default 2,000, from a generator below: a question, its correction, and three cheap
assertions each: ``equals-correction``, ``contains``, ``regex``; no judge) are run, in-process and in the same run:

- ``bare``: a plain loop calling the same Python target on each case's messages (the floor: the target alone);
- ``bare+checks``: the same loop plus the three checks written by hand (normalised equality, substring, ``re``);
- ``gate (sync target)``: :func:`run_gate_sync` with the real :class:`Caller` and :class:`PythonTarget` (a sync
  target runs in a worker thread, as in CI), the real scorers, no cache;
- ``gate (async target)``: the same with an ``async def`` target (no thread hop);

each for ``--rounds`` rounds (median taken), after one untimed warm-up round. Prints microseconds per case and each
row's ratio to ``bare`` and to ``bare+checks``. Then, once, the full CLI (``python -m spanguard.cli gate``) in a
subprocess on the same cases, wall-clock including interpreter start-up and imports. Always exits 0: a benchmark
reports, it does not assert.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from spanguard.review.evalgate.config import GateConfig
from spanguard.review.evalgate.dataset import load_dataset
from spanguard.review.evalgate.runner import CaseStatus, run_gate_sync
from spanguard.review.evalgate.scorers import normalise
from spanguard.review.evalgate.targets import Caller, PythonTarget

CITIES = ["Canberra", "Ottawa", "Brasília", "Nairobi", "Wellington", "Hanoi", "Lima", "Oslo", "Accra", "Bern"]
COUNTRIES = ["Australia", "Canada", "Brazil", "Kenya", "New Zealand", "Vietnam", "Peru", "Norway", "Ghana", "Swiss"]

TARGET_SOURCE = """
import re

_CAPITALS = dict(zip({countries!r}, {cities!r}))
_COUNTRY = re.compile(r"capital of (.+?)\\?")


def answer(messages):
    country = _COUNTRY.search(messages[-1]["content"]).group(1)
    return f"{{_CAPITALS[country]}} is the capital of {{country}}."


async def answer_async(messages):
    return answer(messages)
"""


def cases(n: int) -> list[dict[str, Any]]:
    """``n`` corrected cases with three cheap assertions; about one in ten the target gets wrong."""
    out = []
    for i in range(n):
        country, city = COUNTRIES[i % len(COUNTRIES)], CITIES[i % len(CITIES)]
        expected = f"{city} is the capital of {country}." if i % 10 else f"{city} is not the capital of {country}."
        out.append(
            {
                "schema_version": 1,
                "id": f"case_{i:05d}",
                "input": {
                    "messages": [
                        {"role": "system", "content": "Answer in one sentence."},
                        {"role": "user", "content": f"Case {i}: what is the capital of {country}?"},
                    ]
                },
                "outcome": "correct",
                "original_output": {"role": "assistant", "content": f"Sydney is the capital of {country}."},
                "expected_output": {"role": "assistant", "content": expected},
                "assertions": [
                    {"type": "equals-correction"},
                    {"type": "contains", "value": city},
                    {"type": "regex", "value": r"^[A-Z][^.]* is the capital of [A-Z][\w ]+\.$"},
                ],
                "tags": ["bench"],
            }
        )
    return out


def _bare(dataset: Any, answer: Any) -> float:
    started = time.perf_counter()
    for case in dataset.cases:
        answer(case.messages())
    return time.perf_counter() - started


def _bare_checks(dataset: Any, answer: Any) -> float:
    started = time.perf_counter()
    passed = 0
    for case in dataset.cases:
        text = answer(case.messages())
        expected, contains, regex = case.expected_output.content, case.assertions[1].value, case.assertions[2].value
        passed += normalise(text) == normalise(expected) and contains in text and re.search(regex, text) is not None
    return time.perf_counter() - started


def _gate(dataset: Any, target: Any, config: GateConfig) -> tuple[float, Any]:
    started = time.perf_counter()
    run = run_gate_sync(dataset, Caller(target, concurrency=config.concurrency, timeout=60, retries=0), config)
    return time.perf_counter() - started, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2_000, help="synthetic cases (default 2,000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (default 5)")
    parser.add_argument("--concurrency", type=int, default=4, help="the gate's concurrency (default 4, its default)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gate-bench-") as tmp:
        root = Path(tmp)
        data = root / "cases.jsonl"
        data.write_text("".join(json.dumps(c) + "\n" for c in cases(args.cases)), "utf-8")
        module = root / "bench_target.py"
        module.write_text(textwrap.dedent(TARGET_SOURCE.format(countries=COUNTRIES, cities=CITIES)), "utf-8")
        sys.path.insert(0, str(root))
        import bench_target  # the same module the CLI loads by path

        dataset = load_dataset(data)
        config = GateConfig(cache=None, concurrency=args.concurrency)
        sync_target = PythonTarget(bench_target.answer, f"{module}:answer")
        async_target = PythonTarget(bench_target.answer_async, f"{module}:answer_async")
        variants: dict[str, Any] = {
            "bare": lambda: _bare(dataset, bench_target.answer),
            "bare+checks": lambda: _bare_checks(dataset, bench_target.answer),
            "gate (sync target)": lambda: _gate(dataset, sync_target, config)[0],
            "gate (async target)": lambda: _gate(dataset, async_target, config)[0],
        }
        _, run = _gate(dataset, sync_target, config)  # warm-up, and a check that the gate really scored
        counts = {status.value: run.count(status) for status in CaseStatus if run.count(status)}
        for measure in variants.values():
            measure()
        timings = {name: statistics.median(measure() for _ in range(args.rounds)) for name, measure in variants.items()}

        n = len(dataset.cases)
        print(f"{n:,} cases, 3 cheap scorers each, concurrency {args.concurrency}, median of {args.rounds} rounds")
        print(f"gate statuses: {counts}")
        bare, checks = timings["bare"], timings["bare+checks"]
        print(f"{'variant':<22} {'µs/case':>10} {'x bare':>10} {'x bare+checks':>14}")
        for name, seconds in timings.items():
            print(f"{name:<22} {seconds / n * 1e6:>10.1f} {seconds / bare:>10.1f} {seconds / checks:>14.1f}")

        command = [sys.executable, "-m", "spanguard.cli", "gate", "--dataset", str(data), "--target"]
        command += [f"{module}:answer", "--no-cache", "--quiet", "--report", str(root / "report.json")]
        started = time.perf_counter()
        cli = subprocess.run(command, capture_output=True, text=True, cwd=root, check=False)
        wall = time.perf_counter() - started
        help_started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "spanguard.cli", "gate", "--help"], capture_output=True, check=False)
        startup = time.perf_counter() - help_started
        print(
            f"full CLI in a subprocess: {wall:.2f} s wall ({wall / n * 1e6:.0f} µs/case), exit {cli.returncode}; "
            f"'spanguard gate --help' alone (start-up and imports): {startup:.2f} s"
        )


if __name__ == "__main__":
    main()
