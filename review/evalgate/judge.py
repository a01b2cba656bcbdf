"""The LLM judge of ``spanguard gate``: a rubric, one target output, a verdict and a confidence, over any
OpenAI-compatible endpoint (the real ``openai`` SDK).

A bad answer ends as :class:`JudgeAnswerError`, a failing endpoint as :class:`JudgeUnavailable`; nothing a case holds
is logged. Behaviour: docs/datasets.md ("The judge").
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from spanguard.yamlconfig import relative_to_config

__all__ = [
    "DEFAULT_RUBRIC",
    "Judge",
    "JudgeAnswerError",
    "JudgeConfig",
    "JudgeError",
    "JudgeUnavailable",
    "JudgeVerdict",
    "judge_for",
]

DEFAULT_RUBRIC: Final = (
    "The output answers the conversation's last request correctly, completely and safely. When a reference answer "
    "is given, the output must agree with it in substance (wording may differ)."
)

_INSTRUCTIONS: Final = (
    "You are an evaluator. You are given a conversation, the assistant's output to judge, optionally a reference "
    "answer written by a person, and a rubric. Decide whether the output satisfies the rubric. Answer with one JSON "
    'object and nothing else: {"verdict": "pass" or "fail", "confidence": a number from 0 to 1 (how sure you are '
    'of the verdict), "reasoning": one or two sentences}.'
)

_RETRYABLE_STATUS: Final = frozenset({408, 409, 429})


class JudgeConfig(BaseModel):
    """Where the judge runs, what it is told, and when its verdict is left to people (``scorers.judge`` in the gate's
    config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str = Field(min_length=1)
    """The judge model, as the endpoint names it (pin a dated snapshot: a moving alias changes the gate)."""
    base_url: str | None = None
    """An OpenAI-compatible endpoint (``.../v1``); None: the SDK's default (``OPENAI_BASE_URL`` or OpenAI)."""
    api_key: SecretStr | None = None
    """None: the SDK reads ``OPENAI_API_KEY``; in YAML write ``${env:VAR}``, never the key itself."""
    rubric: str = Field(DEFAULT_RUBRIC, min_length=1)
    """The default rubric; a ``judge`` assertion may bring its own."""
    confidence_threshold: float = Field(0.8, ge=0, le=1)
    """Below this confidence a judged case is pending human: set it from ``spanguard judge-eval``'s calibration."""
    safety_tags: tuple[str, ...] = ()
    """A judged case with one of these tags is pending human whatever the judge says (safety-sensitive topics)."""
    mcc_floor: float = Field(0.4, ge=-1, le=1)
    """A judge whose measured MCC against people is below this may not gate (see ``judge_eval.judge_may_gate``)."""
    evaluation: str | None = None
    """The ``spanguard judge-eval --report`` file that measured this judge (relative to the config file)."""
    defaults: bool = True
    """Whether the judge backs the default checks of a case without assertions where they cannot settle it."""
    retries: int = Field(2, ge=0, le=10)
    """Retries after a failed request or a malformed answer (each kind counted on its own)."""
    backoff_s: float = Field(0.5, ge=0, le=60)
    """The first wait before a retry after an endpoint error; doubled each time."""
    timeout_s: float = Field(60.0, gt=0, le=600)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(400, ge=16, le=8192)

    @field_validator("evaluation")
    @classmethod
    def _relative_to_the_config(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else str(relative_to_config(value, info.context))


@dataclass(frozen=True)
class JudgeVerdict:
    """What the judge said: pass or fail, its confidence in [0, 1], and its short reasoning."""

    passed: bool
    confidence: float
    reasoning: str


class JudgeError(Exception):
    """The judge could not give a verdict."""


class JudgeUnavailable(JudgeError):
    """The judge's endpoint failed (network, time-out, refused key, 5xx) after its retries: the gate exits 3."""


class JudgeAnswerError(JudgeError):
    """The judge answered, but not with a usable verdict, every time it was asked: the case errors (never a pass)."""


def _parse(text: str | None) -> JudgeVerdict:
    """The verdict in a judge's answer; ValueError saying what is wrong (without quoting the answer)."""
    if not text or not text.strip():
        raise ValueError("the answer is empty")
    body = text.strip()
    if body.startswith("```"):  # models often fence JSON even when told not to
        body = body.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    verdict = data.get("verdict")
    if not isinstance(verdict, str) or verdict.strip().lower() not in ("pass", "fail"):
        raise ValueError('"verdict" is not "pass" or "fail"')
    confidence = data.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise ValueError('"confidence" is not a number from 0 to 1')
    reasoning = data.get("reasoning", "")
    return JudgeVerdict(
        passed=verdict.strip().lower() == "pass",
        confidence=float(confidence),
        reasoning=reasoning if isinstance(reasoning, str) else json.dumps(reasoning),
    )


def _prompt(
    messages: Sequence[Mapping[str, Any]], output: Mapping[str, Any], reference: Mapping[str, Any] | None, rubric: str
) -> list[dict[str, Any]]:
    task: dict[str, Any] = {"conversation": list(messages), "output": dict(output)}
    if reference is not None:
        task["reference"] = dict(reference)
    task["rubric"] = rubric
    return [
        {"role": "system", "content": _INSTRUCTIONS},
        {"role": "user", "content": json.dumps(task, ensure_ascii=False, default=str)},
    ]


class Judge:
    """An LLM judge over one OpenAI-compatible endpoint; thread-safe (one SDK client, retries done here)."""

    def __init__(self, config: JudgeConfig, *, client: Any | None = None) -> None:
        """A judge for ``config``; ``client`` is an ``openai.OpenAI`` to use instead of building one."""
        self.config = config
        self._client = client
        self._lock = threading.Lock()

    def _sdk(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import openai
                except ImportError:
                    raise JudgeUnavailable(
                        "the judge needs the openai package: pip install 'spanguard[gate]'"
                    ) from None
                key = self.config.api_key.get_secret_value() if self.config.api_key is not None else None
                try:
                    # Retries are ours (counted, with our backoff), so the SDK's own are off.
                    self._client = openai.OpenAI(
                        base_url=self.config.base_url, api_key=key, max_retries=0, timeout=self.config.timeout_s
                    )
                except openai.OpenAIError as exc:  # no key anywhere
                    raise JudgeUnavailable(f"the judge's client cannot be built: {type(exc).__name__}") from None
            return self._client

    def _request(self, prompt: list[dict[str, Any]]) -> str | None:
        """One answer's text, retrying endpoint failures; :class:`JudgeUnavailable` when they last."""
        import openai

        client = self._sdk()
        delay = self.config.backoff_s
        last = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                response = client.chat.completions.create(
                    model=self.config.model,
                    messages=prompt,
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_tokens,
                    response_format={"type": "json_object"},
                )
            except openai.APIStatusError as exc:
                last = f"HTTP {exc.status_code}"
                if exc.status_code < 500 and exc.status_code not in _RETRYABLE_STATUS:
                    break  # a refused key or a bad request does not get better by asking again
                continue
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                last = type(exc).__name__
                continue
            except openai.APIError as exc:  # an answer the SDK cannot read as a chat completion
                last = type(exc).__name__
                continue
            if not response.choices:
                return None
            return response.choices[0].message.content
        raise JudgeUnavailable(
            f"the judge's endpoint failed ({last}) after {attempt + 1} attempt{'s' if attempt else ''}"
        )

    def judge(
        self,
        messages: Sequence[Mapping[str, Any]],
        output: Mapping[str, Any],
        *,
        reference: Mapping[str, Any] | None = None,
        rubric: str | None = None,
    ) -> JudgeVerdict:
        """The judge's verdict on ``output`` after ``messages`` (with a person's ``reference`` answer if any)."""
        prompt = _prompt(messages, output, reference, rubric or self.config.rubric)
        problem = ""
        for _ in range(self.config.retries + 1):
            try:
                return _parse(self._request(prompt))
            except ValueError as exc:
                problem = str(exc)
        raise JudgeAnswerError(
            f"the judge gave no usable verdict in {self.config.retries + 1} answers (last: {problem})"
        )


_judges: dict[JudgeConfig, Judge] = {}
_judges_lock = threading.Lock()


def judge_for(config: JudgeConfig) -> Judge:
    """The one :class:`Judge` of ``config`` in this process (so every case shares its client and connections)."""
    with _judges_lock:
        judge = _judges.get(config)
        if judge is None:
            judge = _judges[config] = Judge(config)
        return judge
