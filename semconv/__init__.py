"""Attribute names: the GenAI conventions re-exported, and spanguard's own ``spanguard.*`` attributes.

The GenAI names come from ``opentelemetry-semantic-conventions`` and are never retyped here; spanguard's own
attributes are declared once in :data:`SPANGUARD_ATTRIBUTES`, which ``docs/attributes.md`` is generated from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv._incubating.attributes import openai_attributes as _openai
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
    GEN_AI_EVALUATION_EXPLANATION,
    GEN_AI_EVALUATION_NAME,
    GEN_AI_EVALUATION_SCORE_LABEL,
    GEN_AI_EVALUATION_SCORE_VALUE,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_OUTPUT_TYPE,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_CHOICE_COUNT,
    GEN_AI_REQUEST_ENCODING_FORMATS,
    GEN_AI_REQUEST_FREQUENCY_PENALTY,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_PRESENCE_PENALTY,
    GEN_AI_REQUEST_SEED,
    GEN_AI_REQUEST_STOP_SEQUENCES,
    GEN_AI_REQUEST_STREAM,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_REQUEST_TOP_K,
    GEN_AI_REQUEST_TOP_P,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_ID,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOKEN_TYPE,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_DEFINITIONS,
    GEN_AI_TOOL_DESCRIPTION,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)
from opentelemetry.semconv._incubating.attributes.openai_attributes import (
    OPENAI_REQUEST_SERVICE_TIER,
    OPENAI_RESPONSE_SERVICE_TIER,
    OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
)
from opentelemetry.semconv._incubating.attributes.user_attributes import USER_ID
from opentelemetry.semconv._incubating.metrics.gen_ai_metrics import (
    GEN_AI_CLIENT_OPERATION_DURATION,
    GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
    GEN_AI_CLIENT_TOKEN_USAGE,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.user_agent_attributes import USER_AGENT_ORIGINAL

GEN_AI_CONTENT_ATTRIBUTES: Final = (
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOOL_DEFINITIONS,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
)
"""The GenAI attributes that hold message content (JSON), recorded only when content capture is on."""

GEN_AI_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
"""The GenAI conventions' evaluation event (a log record's ``event_name``): the installed
``opentelemetry-semantic-conventions`` has the ``gen_ai.evaluation.*`` attributes but no events module, so the event
name is declared here, once."""

AttributeType = Literal["boolean", "int", "double", "string", "string[]"]


@dataclass(frozen=True)
class Attribute:
    """One of spanguard's own span attributes: its name, value type and one-line meaning."""

    name: str
    type: AttributeType
    brief: str


SPANGUARD_MODEL_PINNED: Final = "spanguard.model.pinned"
SPANGUARD_RESPONSE_LOGPROB_MEAN: Final = "spanguard.response.logprob.mean"
SPANGUARD_REDACTION_COUNT: Final = "spanguard.redaction.count"
SPANGUARD_REDACTION_ENTITIES: Final = "spanguard.redaction.entities"
SPANGUARD_RISK_TIER: Final = "spanguard.risk.tier"
SPANGUARD_RISK_REASONS: Final = "spanguard.risk.reasons"
SPANGUARD_SAMPLING_RATE: Final = "spanguard.sampling.rate"
SPANGUARD_REVIEW_TIER: Final = "spanguard.review.tier"
SPANGUARD_APPROVAL_GATE: Final = "spanguard.approval.gate"
SPANGUARD_REVIEW_REVIEWER: Final = "spanguard.review.reviewer"
SPANGUARD_REVIEW_ITEM_ID: Final = "spanguard.review.item_id"
SPANGUARD_GATE_ACTION: Final = "spanguard.gate.action"
SPANGUARD_GATE_TIER: Final = "spanguard.gate.tier"
SPANGUARD_GATE_REASONS: Final = "spanguard.gate.reasons"
SPANGUARD_GATE_ASKED: Final = "spanguard.gate.asked"
SPANGUARD_GATE_OUTCOME: Final = "spanguard.gate.outcome"
SPANGUARD_GATE_APPROVAL_ID: Final = "spanguard.gate.approval_id"
SPANGUARD_GATE_APPROVERS: Final = "spanguard.gate.approvers"
SPANGUARD_GATE_APPROVALS_REQUIRED: Final = "spanguard.gate.approvals_required"
SPANGUARD_GATE_ARGUMENT_DIGEST: Final = "spanguard.gate.argument_digest"
SPANGUARD_GATE_WAIT_DURATION: Final = "spanguard.gate.wait.duration"
SPANGUARD_GATE_ESCALATED: Final = "spanguard.gate.escalated"
SPANGUARD_EVAL_CASE_ID: Final = "spanguard.eval.case_id"
SPANGUARD_EVAL_DATASET_SHA256: Final = "spanguard.eval.dataset_sha256"
SPANGUARD_EVAL_TARGET: Final = "spanguard.eval.target"
SPANGUARD_EVAL_JUDGE_REASONING: Final = "spanguard.eval.judge.reasoning"
SPANGUARD_EVAL_SCORER_REASONS: Final = "spanguard.eval.scorer_reasons"

GATE_OUTCOME_NOT_REQUIRED: Final = "not_required"
GATE_OUTCOME_PENDING: Final = "pending"
GATE_OUTCOME_APPROVED: Final = "approved"
GATE_OUTCOME_MODIFIED: Final = "modified"
GATE_OUTCOME_PROCEEDED: Final = "proceeded"
GATE_OUTCOME_REJECTED: Final = "rejected"
GATE_OUTCOME_TIMED_OUT: Final = "timed_out"
GATE_OUTCOME_UNAVAILABLE: Final = "unavailable"
GATE_OUTCOMES: Final = (
    GATE_OUTCOME_NOT_REQUIRED,
    GATE_OUTCOME_PENDING,
    GATE_OUTCOME_APPROVED,
    GATE_OUTCOME_MODIFIED,
    GATE_OUTCOME_PROCEEDED,
    GATE_OUTCOME_REJECTED,
    GATE_OUTCOME_TIMED_OUT,
    GATE_OUTCOME_UNAVAILABLE,
)
"""What a gate span's ``spanguard.gate.outcome`` may be: ran without asking, still waiting (a submit that did not
wait), approved, run with a reviewer's edits, run at a yellow hard timeout, rejected, no decision in time, or no
decision possible (the service or the policy failed; the call did not run)."""

SPANGUARD_ATTRIBUTES: Final[tuple[Attribute, ...]] = (
    Attribute(
        SPANGUARD_MODEL_PINNED,
        "boolean",
        "True when the requested model is a dated or versioned snapshot, false when it is an alias that the "
        "provider may move to another model.",
    ),
    Attribute(
        SPANGUARD_REDACTION_COUNT, "int", "How many values redaction replaced, masked, hashed or dropped in this span."
    ),
    Attribute(
        SPANGUARD_REDACTION_ENTITIES,
        "string[]",
        "The entity types redaction found in this span (for example EMAIL_ADDRESS, CREDIT_CARD); never the values.",
    ),
    Attribute(SPANGUARD_RISK_TIER, "string", "The risk tier of the span's trace: red, yellow or green."),
    Attribute(
        SPANGUARD_RISK_REASONS,
        "string[]",
        "Why the trace has its tier: the names of the rules and detectors that fired.",
    ),
    Attribute(
        SPANGUARD_SAMPLING_RATE,
        "double",
        "The probability with which the trace was kept (1.0 for red), so counts can be re-weighted.",
    ),
    Attribute(
        SPANGUARD_REVIEW_TIER,
        "string",
        "The review queue the trace goes to: spot_check (green audit), factual_verification (yellow) or "
        "dual_approval (red).",
    ),
    Attribute(
        SPANGUARD_APPROVAL_GATE,
        "boolean",
        "True on the span of an approval gate (an agent action that waits for a person); its trace is always red.",
    ),
    Attribute(
        SPANGUARD_REVIEW_REVIEWER,
        "string",
        "On a gen_ai.evaluation.result event of a human verdict: the reviewer who gave it (their token's name).",
    ),
    Attribute(
        SPANGUARD_GATE_ACTION, "string", "On a gate span: the action the gate guards (for example issue_refund)."
    ),
    Attribute(
        SPANGUARD_GATE_TIER, "string", "On a gate span: the action's tier under the gate policy: green, yellow or red."
    ),
    Attribute(
        SPANGUARD_GATE_REASONS,
        "string[]",
        "On a gate span: why the gate asked or did not (the policy tier, the condition and whether it held).",
    ),
    Attribute(SPANGUARD_GATE_ASKED, "boolean", "On a gate span: true when the call waited for a person."),
    Attribute(
        SPANGUARD_GATE_OUTCOME,
        "string",
        "On a gate span: not_required, pending, approved, modified, proceeded, rejected, timed_out or unavailable.",
    ),
    Attribute(
        SPANGUARD_GATE_APPROVAL_ID,
        "string",
        "On a gate span, and on the gen_ai.evaluation.result event of a decision on it: the approval request's id "
        "in the review service.",
    ),
    Attribute(
        SPANGUARD_GATE_APPROVERS, "string[]", "On a gate span: the reviewers who approved (their tokens' names)."
    ),
    Attribute(
        SPANGUARD_GATE_APPROVALS_REQUIRED,
        "int",
        "On a gate span: how many distinct reviewers must approve (2 or more for an M-of-N red action).",
    ),
    Attribute(
        SPANGUARD_GATE_ARGUMENT_DIGEST,
        "string",
        "On a gate span: the SHA-256 of the canonical JSON of action, arguments and session the approval is bound to.",
    ),
    Attribute(SPANGUARD_GATE_WAIT_DURATION, "double", "On a gate span: seconds the call waited for a decision."),
    Attribute(
        SPANGUARD_GATE_ESCALATED, "boolean", "On a gate span: true when the request passed its soft timeout unanswered."
    ),
    Attribute(
        SPANGUARD_REVIEW_ITEM_ID,
        "int",
        "On a gen_ai.evaluation.result event of a human verdict: the id of the review item (the reviewed trace) "
        "in the review store.",
    ),
    Attribute(
        SPANGUARD_EVAL_CASE_ID,
        "string",
        "The eval case's id: on the root span of a review item spanguard gate escalated (a pending-human case), and "
        "on the gen_ai.evaluation.result event of a judge's verdict.",
    ),
    Attribute(
        SPANGUARD_EVAL_DATASET_SHA256,
        "string",
        "On the root span of an escalated eval case: the SHA-256 of the dataset file the case came from.",
    ),
    Attribute(SPANGUARD_EVAL_TARGET, "string", "On the root span of an escalated eval case: the target that answered."),
    Attribute(
        SPANGUARD_EVAL_JUDGE_REASONING,
        "string",
        "On the chat span of an escalated eval case: the LLM judge's own reasoning (free text; may quote the case).",
    ),
    Attribute(
        SPANGUARD_EVAL_SCORER_REASONS,
        "string[]",
        "On the chat span of an escalated eval case: each scorer's short reason, as 'name: reason'.",
    ),
)
"""Every ``spanguard.*`` attribute the code may emit, declared once."""

SPANGUARD_FREE_TEXT_ATTRIBUTES: Final[frozenset[str]] = frozenset(
    {SPANGUARD_EVAL_JUDGE_REASONING, SPANGUARD_EVAL_SCORER_REASONS}
)
"""The ``spanguard.*`` attributes that hold free text (a judge's words may quote what it judged): redaction scans them,
where it passes every other ``spanguard.*`` attribute (ids, tiers, codes) through."""


def _names_in(module: object) -> frozenset[str]:
    return frozenset(
        value
        for key, value in vars(module).items()
        if key.isupper() and isinstance(value, str) and "." in value and not key.startswith("_")
    )


GEN_AI_ATTRIBUTE_NAMES: Final[frozenset[str]] = _names_in(_gen_ai) | _names_in(_openai)
"""Every attribute name the GenAI conventions define (from ``opentelemetry-semantic-conventions``)."""

GENERAL_ATTRIBUTE_NAMES: Final[frozenset[str]] = frozenset(
    {ERROR_TYPE, SERVER_ADDRESS, SERVER_PORT, USER_ID, USER_AGENT_ORIGINAL}
)
"""General OpenTelemetry attributes spanguard emits beside the GenAI ones."""


def declared_attribute_names() -> frozenset[str]:
    """Return every attribute name spanguard may emit: the conventions' and its own."""
    return GEN_AI_ATTRIBUTE_NAMES | GENERAL_ATTRIBUTE_NAMES | {a.name for a in SPANGUARD_ATTRIBUTES}


def render_markdown() -> str:
    """Render the table of spanguard's own attributes as the Markdown of ``docs/attributes.md``."""
    lines = [
        "# spanguard attributes",
        "",
        "Generated from `semconv/__init__.py` by `python -m spanguard.semconv`; do not edit by hand.",
        "",
        "spanguard emits the OpenTelemetry GenAI semantic conventions (`gen_ai.*`, from",
        "`opentelemetry-semantic-conventions`) plus `server.address`, `server.port`, `error.type` and `user.id`.",
        "Its own attributes are these:",
        "",
        "| attribute | type | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{a.name}` | {a.type} | {a.brief} |" for a in SPANGUARD_ATTRIBUTES]
    return "\n".join(lines) + "\n"
