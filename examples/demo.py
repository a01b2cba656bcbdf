"""``make demo``: run the example agent with spanguard and print its spans as a tree.

The collector and review service arrive with later work; until then the spans are kept in memory and shown here.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rich.console import Console
from rich.tree import Tree

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent

SHOWN = (
    "gen_ai.conversation.id",
    "user.id",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "spanguard.model.pinned",
    "gen_ai.response.finish_reasons",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.tool.name",
)


def label(span: ReadableSpan) -> str:
    """One line per span: name, duration and the attributes a reader looks for first."""
    duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    details = ", ".join(
        f"{key.rsplit('.', 1)[-1] if key.startswith('gen_ai.usage') else key}={span.attributes[key]}"
        for key in SHOWN
        if span.attributes and key in span.attributes
    )
    return f"[bold]{span.name}[/bold] [dim]{duration_ms:.1f} ms[/dim]  [cyan]{details}[/cyan]"


def print_tree(spans: list[ReadableSpan], console: Console) -> None:
    """Print the spans of each trace as a tree, parents above children."""
    children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
    ids = {span.context.span_id for span in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children[parent].append(span)

    def add(node: Tree, span: ReadableSpan) -> None:
        branch = node.add(label(span))
        for child in children.get(span.context.span_id, []):
            add(branch, child)

    for root in children[None]:
        tree = Tree(f"trace [magenta]{root.context.trace_id:032x}[/magenta]")
        add(tree, root)
        console.print(tree)


def main() -> int:
    """Run the agent against the embedded fake provider and show what spanguard captured."""
    console = Console()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    console.rule("the example agent (real OpenAI SDK -> local fake provider)")
    agent.main([])
    spans = list(exporter.get_finished_spans())
    console.rule(f"{len(spans)} spans captured by spanguard.instrument()")
    print_tree(spans, console)
    console.print(
        "\nThese spans follow the OpenTelemetry GenAI conventions. Set OTEL_EXPORTER_OTLP_ENDPOINT and run "
        "[bold]python examples/agent.py[/bold] to send them to any OTLP backend."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
