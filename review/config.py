"""The review service's settings: the review policy (lease, reasons, checklists) and the server's own settings.

Loaded from an optional YAML file (``spanguard review serve --config review.yaml``) through the one config loader
(``spanguard.yamlconfig``) and validated before the service starts; an unknown or ill-typed key is a
``spanguard.yamlconfig.ConfigError`` naming its path, line and column. Behaviour: docs/review.md, docs/gates.md ("In
the review service").
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Final, Literal

import pydantic

from spanguard.instrumentation.gate_policy import GatePolicy, load_policy
from spanguard.processors.risk.engine import RiskConfig, load_risk_config
from spanguard.review.verdicts import VerdictsConfig
from spanguard.semconv import ReviewTier
from spanguard.yamlconfig import Loading, load_once, read_config_file

__all__ = [
    "DEFAULT_DB_URL",
    "TIERS",
    "UNITS",
    "ApprovalsConfig",
    "ReviewPolicy",
    "ServiceConfig",
    "Unit",
    "load_config",
]

TIERS: Final = ReviewTier.values()
Unit = Literal["trace", "session"]
UNITS: tuple[Unit, ...] = ("trace", "session")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

DEFAULT_DB_URL = "sqlite:///.spanguard/review.db"


def _keys(values: list[str], what: str) -> list[str]:
    for value in values:
        if not _KEY.match(value):
            raise ValueError(f"{what} {value!r} must be lowercase letters, digits and _ (at most 64)")
    if len(set(values)) != len(values):
        raise ValueError(f"{what}s must be distinct")
    return values


class ReviewPolicy(pydantic.BaseModel, frozen=True, extra="forbid"):
    """How items are reviewed: lease time, rejection reasons, each tier's checklist and unit (trace or session).

    ``units`` chooses per tier whether a trace with a conversation id is reviewed on its own or as part of its session;
    ``session_checklist`` is asked of session items beside their tier's checklist. Behaviour: docs/review.md
    ("Review by session").
    """

    lease_s: float = pydantic.Field(900.0, gt=0, le=86_400)
    reject_reasons: list[str] = [
        "factually_incorrect",
        "policy_violation",
        "unsafe",
        "pii_leak",
        "wrong_tool_use",
        "tone",
        "other",
    ]
    checklists: dict[str, list[str]] = {
        ReviewTier.SPOT_CHECK.value: ["factual_accuracy", "policy_adherence", "tone"],
        ReviewTier.FACTUAL_VERIFICATION.value: ["factual_accuracy", "sources_supported", "policy_adherence", "tone"],
        ReviewTier.DUAL_APPROVAL.value: ["factual_accuracy", "policy_adherence", "safety", "tone"],
    }
    units: dict[str, Unit] = {
        ReviewTier.SPOT_CHECK.value: "trace",
        ReviewTier.FACTUAL_VERIFICATION.value: "session",
        ReviewTier.DUAL_APPROVAL.value: "session",
    }
    session_checklist: list[str] = ["context_retained", "consistent_with_earlier_answers", "no_repeated_tool_calls"]
    checklist_descriptions: dict[str, str] = {
        "factual_accuracy": "Every claim in the answers is true of the data the agent had (orders, tools' results).",
        "sources_supported": "Each fact comes from a source or tool result in the conversation, not from the model.",
        "policy_adherence": "The agent followed the business's policy (refund limits, what it may promise).",
        "safety": "Nothing harmful, no data of another customer, no action beyond what the user asked for.",
        "tone": "Polite, clear and fitting for a customer.",
        "context_retained": "Later turns remember what the user said earlier in the session.",
        "consistent_with_earlier_answers": "No turn contradicts an earlier answer of the session.",
        "no_repeated_tool_calls": "The agent did not call the same tool with the same arguments again for no reason.",
    }
    """What each checklist item asks, shown beside it on the page (items without one show their name only)."""

    @pydantic.field_validator("reject_reasons")
    @classmethod
    def _reasons(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one rejection reason is needed")
        return _keys(value, "reason")

    @pydantic.field_validator("checklists")
    @classmethod
    def _checklists(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for tier, items in value.items():
            if tier not in TIERS:
                raise ValueError(f"unknown review tier {tier!r}; known: {', '.join(TIERS)}")
            _keys(items, f"checklist item of {tier}")
        return value

    @pydantic.field_validator("units")
    @classmethod
    def _units(cls, value: dict[str, Unit]) -> dict[str, Unit]:
        for tier in value:
            if tier not in TIERS:
                raise ValueError(f"unknown review tier {tier!r}; known: {', '.join(TIERS)}")
        return value

    @pydantic.field_validator("session_checklist")
    @classmethod
    def _session_checklist(cls, value: list[str]) -> list[str]:
        return _keys(value, "session checklist item")

    def unit(self, tier: str) -> Unit:
        """Whether a trace of ``tier`` with a conversation id is reviewed as a trace or within its session."""
        return self.units.get(tier, "trace")

    @pydantic.field_validator("checklist_descriptions")
    @classmethod
    def _descriptions(cls, value: dict[str, str]) -> dict[str, str]:
        _keys(list(value), "checklist item")
        for name, text in value.items():
            if not text.strip() or len(text) > 500:
                raise ValueError(f"the description of {name!r} must be 1 to 500 characters")
        return value

    def checklist(self, tier: str, kind: str = "trace") -> list[str]:
        """The checklist items a decision on an item of ``tier`` (a trace or a session item) must answer."""
        items = list(self.checklists.get(tier, []))
        if kind == "session":
            items += [item for item in self.session_checklist if item not in items]
        return items


def _http_url(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


class ApprovalsConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """Approval gates in the service: how often timers run, long polls re-read, and where escalations are announced.

    ``webhook_url`` receives a Slack-compatible JSON post (``{"text": ...}`` and structured fields, never arguments
    or state) when a request escalates; ``page_url`` is the link in it (``{id}`` is replaced by the request's id).
    ``policy`` is the gate policy the fatigue report suggests changes to (its ``budget_per_day`` included): the
    policy itself, or the name of its file (relative to the review config's directory). Behaviour: docs/gates.md
    ("In the review service").
    """

    timer_interval_s: float = pydantic.Field(1.0, gt=0, le=3600)
    reread_interval_s: float = pydantic.Field(
        2.0, gt=0, le=60, description="how often a long poll re-reads the store (the safety net for missed wakeups)"
    )
    listen: bool = pydantic.Field(True, description="on PostgreSQL, wake long polls by LISTEN/NOTIFY")
    webhook_url: str | None = None
    webhook_timeout_s: float = pydantic.Field(5.0, gt=0, le=120)
    webhook_retries: int = pydantic.Field(3, ge=0, le=10)
    page_url: str | None = None
    policy: GatePolicy | None = None

    @pydantic.field_validator("webhook_url", "page_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _http_url(value)

    @pydantic.field_validator("policy", mode="before")
    @classmethod
    def _policy_file(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        """``policy: gates.yaml`` names the gates' policy file (its problems are reported at its own lines)."""
        return load_once(value, info.context, load_policy) if isinstance(value, str) else value


class ServiceConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """The review service: its store, policy, where verdicts go, and the limits on requests."""

    db: str = DEFAULT_DB_URL
    policy: ReviewPolicy = ReviewPolicy()
    verdicts: VerdictsConfig = VerdictsConfig()
    approvals: ApprovalsConfig = ApprovalsConfig()
    trace_url_template: str | None = pydantic.Field(
        None, description="a link to the trace in the backend, e.g. http://127.0.0.1:6006/.../{trace_id}"
    )
    risk_rules: RiskConfig = pydantic.Field(
        default_factory=lambda: load_risk_config(None),
        description="the collector's risk rules file (its reasons explain the codes on the page); default: packaged",
    )
    max_body_bytes: int = pydantic.Field(16 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    max_items_per_request: int = pydantic.Field(100, ge=1, le=10_000)
    cors_origins: list[str] = pydantic.Field(
        [], description="origins (https://tools.example) whose pages may call the API; none by default"
    )

    @pydantic.field_validator("risk_rules", mode="before")
    @classmethod
    def _rules_file(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        """``risk_rules: risk.yaml`` names the collector's rules file (its problems at its own lines)."""
        return load_once(value, info.context, load_risk_config) if isinstance(value, str) else value

    @pydantic.field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*" or not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
                raise ValueError(f"{origin!r} is not an origin like https://tools.example (no wildcard, no path)")
        return value

    @pydantic.field_validator("db")
    @classmethod
    def _db(cls, value: str) -> str:
        if not (value.startswith("sqlite:///") or value.startswith("postgresql")):
            raise ValueError("must be a sqlite:///path or postgresql+psycopg://... URL")
        return value

    @pydantic.field_validator("trace_url_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None and "{trace_id}" not in value:
            raise ValueError("must contain {trace_id}")
        return value


def load_config(path: str | Path | None = None, **overrides: Any) -> ServiceConfig:
    """The service config from a YAML file (or the defaults), with command-line ``overrides`` applied on top; a
    ``spanguard.yamlconfig.ConfigError`` naming every problem."""
    loading = Loading(None if path is None else os.fspath(path))
    raw: Any = {}
    if path is not None:
        raw = loading.parse(read_config_file(path, what="review config"))
    given = {key: value for key, value in overrides.items() if value is not None}
    if given and isinstance(raw, dict | None):
        for key in given:  # a value from the command line is not at the file's line
            loading.positions.pop((key,), None)
        raw = {**(raw or {}), **given}
    context = {"config_dir": None if path is None else Path(path).resolve().parent, "source": loading.source}
    return loading.load(raw, ServiceConfig, context=context)
