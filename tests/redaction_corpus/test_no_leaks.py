"""No planted PII or secret arrives anywhere: in-process, through the collector, or in the review store.

The corpus (``generator.py``, seed ``SEED``, ``primary`` phrasings; names left out, they need a NER model) is planted
in every location a span can carry a value (``plant.LOCATIONS``), a few values of different kinds per trace. What
arrives is flattened to strings and searched trace by trace for each value's distinctive fragments (``detect.py``:
any 8 letters or digits of the value in a row, case and separators ignored; shorter values whole).

Paths: the app's exporter and an app processor registered before ``instrument()`` (``on_end`` and ``on_start``); the
LLM request headers of a session; the collector (default ``redaction`` but for its time budget) over OTLP gRPC and
HTTP to a sink; the review exporter into the review service, read back through its API and from its SQLite rows.
Failures list, per kind, the locations that leaked (values are never printed). The clean corpus must arrive unchanged
(at most 1 % altered).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

from .detect import Detector, preview
from .generator import NER_KINDS, Corpus, generate
from .harness import Arrived, CollectorRun, InProcessRun, Leak, clean_altered, leaks, run_collector, run_in_process
from .plant import LOCATIONS, SCAFFOLDING, Planter, Slot, bundles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))

from sink import OtlpSink

SEED = 7
BUNDLE = 4
CLEAN_BUNDLE = 6
MAX_CLEAN_ALTERED = 0.01


def make_slots(corpus: Corpus) -> list[Slot]:
    values = [p for p in corpus.planted if p.kind not in NER_KINDS]
    slots = Planter.slots(bundles(values, BUNDLE))
    return slots + Planter.clean_slots(corpus.clean, CLEAN_BUNDLE, start=len(slots))


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate(SEED, phrasing="primary")


@pytest.fixture(scope="module")
def detector(corpus: Corpus) -> Detector:
    return Detector(corpus, SCAFFOLDING)


@pytest.fixture(scope="module")
def redacted(fake_server, corpus: Corpus) -> InProcessRun:
    return run_in_process(fake_server, make_slots(corpus), redact=True)


@pytest.fixture(scope="module")
def raw(fake_server, corpus: Corpus) -> InProcessRun:
    return run_in_process(fake_server, make_slots(corpus), redact=False)


@pytest.fixture(scope="module")
def collected(raw: InProcessRun, tmp_path_factory) -> CollectorRun:
    return run_collector(raw.spans, raw.slots, OtlpSink, tmp_path_factory.mktemp("leaks"))


def report(title: str, found: list[Leak], slots: Iterable[Slot]) -> str:
    """Which kinds leaked where: per stage and location, then per kind its locations grouped by leaked/planted."""
    planted: dict[tuple[str, str], int] = defaultdict(int)
    per_location: dict[str, int] = defaultdict(int)
    for slot in slots:
        for p in slot.values:
            planted[(p.kind, slot.location)] += 1
            per_location[slot.location] += 1
    by_kind: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    by_location: dict[str, set[int]] = defaultdict(set)
    by_stage: dict[str, set[tuple[str, int]]] = defaultdict(set)
    variants: dict[str, set[str]] = defaultdict(set)
    for leak in found:
        by_kind[leak.planted.kind][leak.location].add(id(leak.planted))
        by_location[leak.location].add(id(leak.planted))
        by_stage[leak.stage].add((leak.location, id(leak.planted)))
        variants[leak.planted.kind].add(leak.planted.variant)
    pairs = len({(leak.location, id(leak.planted)) for leak in found})
    lines = [f"{title}: {pairs} of {sum(planted.values())} (value, location) pairs leaked, {len(by_kind)} kinds"]
    if len(by_stage) > 1:
        lines.append("  by stage: " + ", ".join(f"{stage} {len(p)}" for stage, p in sorted(by_stage.items())))
    lines.append(
        "  by location: "
        + ", ".join(f"{loc} {len(by_location[loc])}/{per_location[loc]}" for loc in LOCATIONS if by_location.get(loc))
    )
    for kind in sorted(by_kind, key=lambda k: -sum(len(v) for v in by_kind[k].values())):
        groups: dict[str, list[str]] = defaultdict(list)
        for where, ids in sorted(by_kind[kind].items(), key=lambda item: LOCATIONS.index(item[0])):
            groups[f"{len(ids)}/{planted[(kind, where)]}"].append(where)
        shown = "; ".join(f"{ratio} in {' '.join(wheres)}" for ratio, wheres in groups.items())
        lines.append(f"  {kind} [{', '.join(sorted(variants[kind]))}]: {shown}")
    return "\n".join(lines)


def assert_no_leaks(title: str, detector: Detector, slots: list[Slot], stages: dict[str, Arrived]) -> None:
    found = leaks(detector, slots, stages)
    if found:  # pytest.fail, not assert: the assertion's repr would print the values
        pytest.fail(report(title, found, slots), pytrace=False)


# --- the harness itself ----------------------------------------------------------------------------------------------


def test_every_value_is_detectable(corpus: Corpus, detector: Detector):
    undetectable = [f"{p.kind}/{p.variant}" for p in corpus.planted if not detector.detectable(p)]
    assert not undetectable


def test_every_planted_value_reaches_the_raw_spans(raw: InProcessRun, detector: Detector):
    """Unredacted, every value arrives in its location: the planting and the detection work."""
    found = {(leak.location, id(leak.planted)) for leak in leaks(detector, raw.slots, {"exported": raw.exported})}
    missing = sorted(
        {
            f"{p.kind}/{p.variant}@{slot.location}"
            for slot in raw.slots
            for p in slot.values
            if (slot.location, id(p)) not in found
        }
    )
    assert not missing, f"{len(missing)} planted values never reached the raw spans: {missing[:20]}"
    checked, altered = clean_altered(raw.slots, raw.exported)
    assert checked and not altered


# --- the in-process path ---------------------------------------------------------------------------------------------


def test_no_leak_to_the_apps_exporter(redacted: InProcessRun, detector: Detector):
    assert_no_leaks("in-process exporter", detector, redacted.slots, {"exported": redacted.exported})


def test_no_leak_to_an_app_processor_on_end(redacted: InProcessRun, detector: Detector):
    assert_no_leaks("app processor on_end", detector, redacted.slots, {"on_end": redacted.on_end})


def test_no_leak_to_an_app_processor_on_start(redacted: InProcessRun, detector: Detector):
    assert_no_leaks("app processor on_start", detector, redacted.slots, {"on_start": redacted.on_start})


def test_no_session_user_id_leaks_to_the_llm_provider(redacted: InProcessRun, detector: Detector):
    """``session(user_id=...)`` travels in W3C baggage: it must not reach the LLM provider's request headers."""
    found = []
    for slot in redacted.slots:
        if slot.location != "session_user_id":
            continue
        for headers in slot.request_headers:
            strings = [f"{key}: {value}" for key, value in headers.items()]
            found += [Leak("headers", slot.location, p, slot.sdk) for p in detector.arrivals(slot.values, strings)]
    if found:
        pytest.fail(report("LLM request headers", found, redacted.slots), pytrace=False)


def test_clean_corpus_is_kept_in_process(redacted: InProcessRun):
    checked, altered = clean_altered(redacted.slots, redacted.exported)
    shown = sorted({f"{kind}@{location}: {value[:40]!r}" for kind, location, value in altered})
    assert len(altered) <= MAX_CLEAN_ALTERED * checked, f"{len(altered)}/{checked} clean values altered: {shown}"


# --- the collector and the review store ------------------------------------------------------------------------------


def test_collector_received_every_span(raw: InProcessRun, collected: CollectorRun):
    traces = {slot.trace_id for slot in raw.slots}
    assert collected.sink_spans == len([s for s in raw.spans if s.context.trace_id in traces])
    assert collected.review_items == len(traces)


def test_no_leak_through_the_collector(collected: CollectorRun, detector: Detector):
    stages = {protocol: arrived for protocol, arrived in collected.sink.items()}
    assert_no_leaks("collector (OTLP gRPC + HTTP) to sink", detector, collected.slots, stages)


def test_no_leak_into_the_review_store(collected: CollectorRun, detector: Detector):
    stages = {"api": collected.review_api, "rows": collected.review_rows}
    found = leaks(detector, collected.slots, stages)
    values = {id(p): p for slot in collected.slots for p in slot.values}.values()
    elsewhere = sorted(
        f"{p.kind}/{p.variant} {preview(p.value)}" for p in detector.scan(values, collected.review_other_rows)
    )
    if found or elsewhere:
        message = report("review store (API items and SQLite rows)", found, collected.slots)
        pytest.fail(message + (f"\n  in rows of no trace: {elsewhere}" if elsewhere else ""), pytrace=False)


def test_clean_corpus_is_kept_through_the_collector(collected: CollectorRun):
    arrived: Arrived = {}
    for per_protocol in collected.sink.values():
        arrived.update(per_protocol)
    checked, altered = clean_altered(collected.slots, arrived)
    shown = sorted({f"{kind}@{location}: {value[:40]!r}" for kind, location, value in altered})
    assert checked and len(altered) <= MAX_CLEAN_ALTERED * checked, f"{len(altered)}/{checked} altered: {shown}"
