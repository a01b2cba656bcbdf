"""Attribute names: the GenAI conventions re-exported, and spanguard's own ``spanguard.*`` attributes.

The GenAI names come from ``opentelemetry-semantic-conventions`` and are never retyped here; spanguard's own
attributes are declared once in :data:`SPANGUARD_ATTRIBUTES`, which ``docs/attributes.md`` is generated from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
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
    GenAiOperationNameValues,
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

__all__ = [
    "APPROVAL_FINAL_STATUSES",
    "ERROR_TYPE",
    "EVALUATION_HUMAN_APPROVAL",
    "EVALUATION_HUMAN_CHECKLIST_PREFIX",
    "EVALUATION_HUMAN_LIKERT",
    "EVALUATION_HUMAN_REVIEW",
    "EVALUATION_HUMAN_THUMBS",
    "EVENTS",
    "GENERAL_ATTRIBUTE_NAMES",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_ATTRIBUTE_NAMES",
    "GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS",
    "GEN_AI_CLIENT_OPERATION_DURATION",
    "GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK",
    "GEN_AI_CLIENT_TOKEN_USAGE",
    "GEN_AI_CONTENT_ATTRIBUTES",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_EMBEDDINGS_DIMENSION_COUNT",
    "GEN_AI_EVALUATION_EXPLANATION",
    "GEN_AI_EVALUATION_NAME",
    "GEN_AI_EVALUATION_RESULT",
    "GEN_AI_EVALUATION_SCORE_LABEL",
    "GEN_AI_EVALUATION_SCORE_VALUE",
    "GEN_AI_INPUT_MESSAGES",
    "GEN_AI_OPERATION_CHAT",
    "GEN_AI_OPERATION_EMBEDDINGS",
    "GEN_AI_OPERATION_EXECUTE_TOOL",
    "GEN_AI_OPERATION_GENERATE_CONTENT",
    "GEN_AI_OPERATION_INVOKE_AGENT",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_OPERATION_TEXT_COMPLETION",
    "GEN_AI_OUTPUT_MESSAGES",
    "GEN_AI_OUTPUT_TYPE",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_CHOICE_COUNT",
    "GEN_AI_REQUEST_ENCODING_FORMATS",
    "GEN_AI_REQUEST_FREQUENCY_PENALTY",
    "GEN_AI_REQUEST_MAX_TOKENS",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_PRESENCE_PENALTY",
    "GEN_AI_REQUEST_SEED",
    "GEN_AI_REQUEST_STOP_SEQUENCES",
    "GEN_AI_REQUEST_STREAM",
    "GEN_AI_REQUEST_TEMPERATURE",
    "GEN_AI_REQUEST_TOP_K",
    "GEN_AI_REQUEST_TOP_P",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK",
    "GEN_AI_SYSTEM_INSTRUCTIONS",
    "GEN_AI_TOKEN_TYPE",
    "GEN_AI_TOOL_CALL_ARGUMENTS",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_CALL_RESULT",
    "GEN_AI_TOOL_DEFINITIONS",
    "GEN_AI_TOOL_DESCRIPTION",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
    "OPENAI_REQUEST_SERVICE_TIER",
    "OPENAI_RESPONSE_SERVICE_TIER",
    "OPENAI_RESPONSE_SYSTEM_FINGERPRINT",
    "SERVER_ADDRESS",
    "SERVER_PORT",
    "SPANGUARD_APPROVAL_GATE",
    "SPANGUARD_ATTRIBUTES",
    "SPANGUARD_EVAL_CASE_ID",
    "SPANGUARD_EVAL_DATASET_SHA256",
    "SPANGUARD_EVAL_JUDGE_REASONING",
    "SPANGUARD_EVAL_SCORER_REASONS",
    "SPANGUARD_EVAL_TARGET",
    "SPANGUARD_FREE_TEXT_ATTRIBUTES",
    "SPANGUARD_GATE_ACTION",
    "SPANGUARD_GATE_APPROVALS_REQUIRED",
    "SPANGUARD_GATE_APPROVAL_ID",
    "SPANGUARD_GATE_APPROVERS",
    "SPANGUARD_GATE_ARGUMENT_DIGEST",
    "SPANGUARD_GATE_ASKED",
    "SPANGUARD_GATE_ESCALATED",
    "SPANGUARD_GATE_OUTCOME",
    "SPANGUARD_GATE_POLL_FAILED",
    "SPANGUARD_GATE_REASONS",
    "SPANGUARD_GATE_RECORD_NOT_SAVED",
    "SPANGUARD_GATE_TIER",
    "SPANGUARD_GATE_WAIT_DURATION",
    "SPANGUARD_MODEL_PINNED",
    "SPANGUARD_REDACTION_COUNT",
    "SPANGUARD_REDACTION_ENTITIES",
    "SPANGUARD_RESPONSE_LOGPROB_MEAN",
    "SPANGUARD_REVIEW_ITEM_ID",
    "SPANGUARD_REVIEW_REVIEWER",
    "SPANGUARD_REVIEW_TIER",
    "SPANGUARD_RISK_REASONS",
    "SPANGUARD_RISK_TIER",
    "SPANGUARD_SAMPLING_RATE",
    "USER_AGENT_ORIGINAL",
    "USER_ID",
    "VALUES",
    "ApprovalOutcome",
    "ApprovalStatus",
    "Attribute",
    "AttributeType",
    "GateOutcome",
    "ReviewOutcome",
    "ReviewTier",
    "RiskTier",
    "SamplingStat",
    "StrEnum",
    "declared_attribute_names",
    "render_markdown",
]

GEN_AI_CONTENT_ATTRIBUTES: Final = (
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOOL_DEFINITIONS,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
)
"""The GenAI attributes that hold message content (JSON), recorded only when content capture is on."""

GEN_AI_OPERATION_CHAT: Final[str] = GenAiOperationNameValues.CHAT.value
GEN_AI_OPERATION_TEXT_COMPLETION: Final[str] = GenAiOperationNameValues.TEXT_COMPLETION.value
GEN_AI_OPERATION_GENERATE_CONTENT: Final[str] = GenAiOperationNameValues.GENERATE_CONTENT.value
GEN_AI_OPERATION_EMBEDDINGS: Final[str] = GenAiOperationNameValues.EMBEDDINGS.value
GEN_AI_OPERATION_INVOKE_AGENT: Final[str] = GenAiOperationNameValues.INVOKE_AGENT.value
GEN_AI_OPERATION_EXECUTE_TOOL: Final[str] = GenAiOperationNameValues.EXECUTE_TOOL.value
"""The ``gen_ai.operation.name`` values spanguard writes and reads, from the conventions' own enum."""

GEN_AI_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
"""The GenAI conventions' evaluation event (a log record's ``event_name``): the installed
``opentelemetry-semantic-conventions`` has the ``gen_ai.evaluation.*`` attributes but no events module, so the event
name is declared here, once."""

GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS: Final = "gen_ai.client.inference.operation.details"
"""The GenAI conventions' event that carries an inference's content (messages, instructions, tool definitions) when
content goes in an event rather than in span attributes; not in the installed package's modules either."""

SPANGUARD_GATE_RECORD_NOT_SAVED: Final = "spanguard.gate.record_not_saved"
"""Span event on a gate span: the call ran but its outcome could not be recorded in the review service."""

SPANGUARD_GATE_POLL_FAILED: Final = "spanguard.gate.poll_failed"
"""Span event on a gate span: one poll for the decision failed (``error.type`` says how); the gate polls again."""

EVALUATION_HUMAN_REVIEW: Final = "human_review"
EVALUATION_HUMAN_APPROVAL: Final = "human_approval"
EVALUATION_HUMAN_THUMBS: Final = "human_thumbs"
EVALUATION_HUMAN_LIKERT: Final = "human_likert"
EVALUATION_HUMAN_CHECKLIST_PREFIX: Final = "human_checklist."
"""The ``gen_ai.evaluation.name`` values of people's verdicts: a review decision, an approval gate's decision, a
rating, and one name per checklist item (the prefix, then the item's key). docs/review.md ("Verdicts") says more."""


class StrEnum(str, Enum):
    """A vocabulary value: an enum member that is its string everywhere (stored, sent as JSON, set on a span, compared).

    ``str()`` and f-strings give the value on every Python version (a plain ``(str, Enum)`` gives ``Class.MEMBER`` on
    3.11 and later); Python 3.10 has no ``enum.StrEnum``.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """Every member's value, in declaration order (``x in Tier.values()`` works for any string on 3.10)."""
        return tuple(member.value for member in cls)


class RiskTier(StrEnum):
    """A trace's risk tier (``spanguard.risk.tier``) and an action's tier under a gate policy."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class ReviewTier(StrEnum):
    """The review queue a trace goes to (``spanguard.review.tier``): green audit, yellow check, red dual approval."""

    SPOT_CHECK = "spot_check"
    FACTUAL_VERIFICATION = "factual_verification"
    DUAL_APPROVAL = "dual_approval"


class GateOutcome(StrEnum):
    """A gate span's ``spanguard.gate.outcome``: ran without asking, still waiting (a submit that did not wait),
    approved, run with a reviewer's edits, run at a yellow hard timeout, rejected, no decision in time, or no decision
    possible (the service or the policy failed; the call did not run)."""

    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    APPROVED = "approved"
    MODIFIED = "modified"
    PROCEEDED = "proceeded"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    UNAVAILABLE = "unavailable"


class ReviewOutcome(StrEnum):
    """A reviewer's decision on a review item (the ``human_review`` evaluation's label)."""

    APPROVE = "approve"
    REJECT = "reject"
    CORRECT = "correct"


class ApprovalOutcome(StrEnum):
    """A reviewer's decision on an approval request (the ``human_approval`` evaluation's label)."""

    APPROVE = "approve"
    REJECT = "reject"
    MODIFY = "modify"


class ApprovalStatus(StrEnum):
    """Where an approval request is (the review service's API, read by the gate in the app); decided ones are final."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    MODIFIED = "modified"
    TIMED_OUT = "timed_out"


class SamplingStat(StrEnum):
    """Keys of the tail sampler's ``stats`` that the collector's metrics read (the sampler writes them)."""

    BUFFERED_TRACES = "buffered_traces"
    EARLY_DECISIONS = "early_decisions"
    HELD_TRACES = "held_traces"
    SESSION_RECALLED = "session_recalled"
    REVIEW_BUDGET = "review_budget"


APPROVAL_FINAL_STATUSES: Final[frozenset[ApprovalStatus]] = frozenset(set(ApprovalStatus) - {ApprovalStatus.PENDING})
"""The statuses an approval request ends in (every one but pending); they never change again."""


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


VALUES: Final[tuple[tuple[str, type[StrEnum]], ...]] = (
    (f"`{SPANGUARD_RISK_TIER}`, `{SPANGUARD_GATE_TIER}`", RiskTier),
    (f"`{SPANGUARD_REVIEW_TIER}`", ReviewTier),
    (f"`{SPANGUARD_GATE_OUTCOME}`", GateOutcome),
    (f"`{GEN_AI_EVALUATION_SCORE_LABEL}` of a `{EVALUATION_HUMAN_REVIEW}` evaluation", ReviewOutcome),
    (f"`{GEN_AI_EVALUATION_SCORE_LABEL}` of a `{EVALUATION_HUMAN_APPROVAL}` evaluation", ApprovalOutcome),
)
"""Where spanguard writes each vocabulary's values (attributes and event attributes), listed in docs/attributes.md."""

EVENTS: Final[tuple[tuple[str, str], ...]] = (
    (
        GEN_AI_EVALUATION_RESULT,
        "A log record per human verdict: a review decision, a rating, a checklist answer or an "
        "approval gate's decision, linked to the reviewed trace or the gate's span.",
    ),
    (
        SPANGUARD_GATE_RECORD_NOT_SAVED,
        "On a gate span: the call ran but its outcome could not be recorded in the review service.",
    ),
    (
        SPANGUARD_GATE_POLL_FAILED,
        "On a gate span: one poll for the decision failed (`error.type` says how); the gate polls again.",
    ),
)
"""The events spanguard emits under its own or the conventions' names, listed in docs/attributes.md."""


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
    lines += ["", "## Values", "", "| where | values |", "|---|---|"]
    lines += [f"| {where} | {', '.join(f'`{v.value}`' for v in values)} |" for where, values in VALUES]
    lines += ["", "## Events", "", "| event | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {brief} |" for name, brief in EVENTS]
    return "\n".join(lines) + "\n"
