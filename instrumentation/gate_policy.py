"""An approval-gate policy: which actions ask a person, after how long a request escalates and when it is denied.

The policy maps actions to tiers (red always asks, yellow asks when its condition holds, green never asks), gives a
default tier to unlisted actions, the number of distinct approvers a red action needs, and per-tier soft and hard
timeouts. :func:`decide` is pure: the action, its arguments and an optional tier override in, the gate's decision
out; anything it cannot judge asks a person. :func:`load_policy` reads a policy file through the shared config loader
and :func:`policy_from_env` the one ``SPANGUARD_GATE_POLICY`` names. Behaviour: docs/gates.md ("Policy").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Union, cast

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator

from spanguard.durations import Duration
from spanguard.instrumentation.gate_conditions import Condition, ConditionError
from spanguard.semconv import RiskTier
from spanguard.yamlconfig import load_data, load_file, load_text

__all__ = [
    "POLICY_ENV",
    "ActionPolicy",
    "GateDecision",
    "GatePolicy",
    "Tier",
    "TierTimeouts",
    "decide",
    "load_policy",
    "policy_from_env",
    "policy_from_mapping",
    "policy_from_text",
]

Tier = Union[RiskTier, Literal["green", "yellow", "red"]]
"""A tier as a caller may give it (``gate(tier="red")``): the enum or its value."""
HardTimeoutOutcome = Literal["deny", "proceed"]

DEFAULT_SOFT_TIMEOUT = 15 * 60.0  # seconds: the request escalates
DEFAULT_HARD_TIMEOUT = 4 * 3600.0  # seconds: the request is denied (a yellow one may proceed, if the policy says so)
POLICY_ENV: Final = "SPANGUARD_GATE_POLICY"
"""The environment variable naming the policy file (unset or empty: the default policy)."""


class TierTimeouts(BaseModel, frozen=True, extra="forbid"):
    """When a waiting request of a tier escalates (``soft_timeout``) and when it ends (``hard_timeout``)."""

    soft_timeout: Duration = DEFAULT_SOFT_TIMEOUT
    hard_timeout: Duration = DEFAULT_HARD_TIMEOUT
    on_hard_timeout: HardTimeoutOutcome = "deny"

    @model_validator(mode="after")
    def _ordered(self) -> TierTimeouts:
        if self.soft_timeout > self.hard_timeout:
            raise ValueError(
                f"soft_timeout ({self.soft_timeout:g}s) must not be after hard_timeout ({self.hard_timeout:g}s)"
            )
        return self


class ActionPolicy(BaseModel, frozen=True, extra="forbid"):
    """One action's tier, the condition under which a yellow action asks, and a red action's number of approvers."""

    tier: RiskTier
    when: str | None = None
    approvals: int = Field(1, ge=1, le=5)
    _condition: Condition | None = PrivateAttr(None)

    @field_validator("when")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Condition.parse(value)
            except ConditionError as error:
                raise ValueError(f"condition {value!r} {error}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ActionPolicy:
        if self.when is not None and self.tier != RiskTier.YELLOW:
            raise ValueError(f"'when' applies to yellow actions only (this one is {self.tier})")
        if self.approvals > 1 and self.tier != RiskTier.RED:
            raise ValueError(f"'approvals' above 1 applies to red actions only (this one is {self.tier})")
        if self.when is not None:
            self._condition = Condition.parse(self.when)
        return self

    @property
    def condition(self) -> Condition | None:
        """The parsed ``when`` condition (None: a yellow action without one always asks)."""
        return self._condition


def _shorthand(value: Any) -> Any:
    return {"tier": value} if isinstance(value, str) else value


class GatePolicy(BaseModel, frozen=True, extra="forbid"):
    """A whole policy, validated when it is built (``GatePolicy.model_validate(mapping)``)."""

    version: Literal[1] = 1
    default_tier: RiskTier = RiskTier.YELLOW
    budget_per_day: int = Field(10, ge=1)
    tiers: dict[Literal["yellow", "red"], TierTimeouts] = Field(default_factory=dict)
    actions: dict[str, ActionPolicy] = Field(default_factory=dict)

    @field_validator("actions", mode="before")
    @classmethod
    def _tier_shorthand(cls, value: Any) -> Any:
        """``lookup_order: green`` is short for ``lookup_order: {tier: green}``."""
        if isinstance(value, Mapping):
            return {key: _shorthand(item) for key, item in value.items()}
        return value

    @field_validator("tiers")
    @classmethod
    def _no_proceeding_red(cls, value: dict[str, TierTimeouts]) -> dict[str, TierTimeouts]:
        red = value.get(RiskTier.RED)
        if red is not None and red.on_hard_timeout != "deny":
            raise ValueError("a red action is never run unapproved: tiers.red.on_hard_timeout must be 'deny'")
        return value

    def timeouts(self, tier: Tier) -> TierTimeouts:
        """The timeouts of a tier (the defaults where the policy sets none)."""
        by_tier = cast("dict[str, TierTimeouts]", self.tiers)  # keyed by the tiers' values, which RiskTier members are
        return by_tier.get(tier, TierTimeouts()) if tier != RiskTier.GREEN else TierTimeouts()


def load_policy(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> GatePolicy:
    """The policy in the YAML file at ``path`` (empty: the defaults); a ``spanguard.yamlconfig.ConfigError`` whose
    lines read ``policy.yaml:7:11: actions.issue_refund.when: condition ...`` when it cannot be read or used."""
    return load_file(path, GatePolicy, what="gate policy", environ=environ)


def policy_from_text(text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None) -> GatePolicy:
    """The policy in YAML ``text`` (see :func:`load_policy`); ``source`` names it in messages."""
    return load_text(text, GatePolicy, source=source, environ=environ)


def policy_from_mapping(data: Mapping[str, Any]) -> GatePolicy:
    """The policy in an already parsed mapping; the ``ConfigError`` names each bad key's path (no positions)."""
    return load_data(data, GatePolicy)


def policy_from_env(environ: Mapping[str, str] | None = None) -> GatePolicy:
    """The policy in the file ``SPANGUARD_GATE_POLICY`` names, or the default policy when it is unset or empty.

    A file that is named but cannot be read or used raises the ``ConfigError``: never the default in its place, so
    that a gate with a broken policy fails closed.
    """
    env = os.environ if environ is None else environ
    path = env.get(POLICY_ENV, "")
    return load_policy(path, environ=env) if path.strip() else GatePolicy()


@dataclass(frozen=True)
class GateDecision:
    """What the gate does with one call: whether it asks, how many approvers, when it escalates and ends."""

    action: str
    tier: RiskTier
    asks: bool
    approvals: int
    reasons: tuple[str, ...]
    soft_timeout_s: float
    hard_timeout_s: float
    on_hard_timeout: HardTimeoutOutcome


def decide(policy: GatePolicy, action: str, arguments: Any, *, tier: Tier | None = None) -> GateDecision:
    """The gate's decision for ``action`` called with ``arguments``; ``tier`` (from ``gate(tier=...)``) overrides
    the policy's tier. What cannot be judged (arguments that are not an object, a condition that errors) asks."""
    listed = policy.actions.get(action)
    chosen = RiskTier(tier) if tier is not None else listed.tier if listed is not None else policy.default_tier
    reasons: list[str] = []
    if tier is not None:
        reasons.append(f"tier {tier} set on the gate")
    elif listed is None:
        reasons.append(f"{action!r} is not in the policy: default tier {chosen}")
    else:
        reasons.append(f"policy tier {chosen}")
    asks = chosen == RiskTier.RED
    if chosen == RiskTier.YELLOW:
        condition = listed.condition if listed is not None and tier is None else None
        if condition is None:
            asks = True
        elif not isinstance(arguments, Mapping):
            asks = True
            reasons.append("the arguments are not an object, so the condition cannot be told")
        else:
            try:
                asks = condition.evaluate(arguments)
            except ConditionError as error:
                asks = True
                reasons.append(f"condition {condition.text!r} could not be told: {error}")
            else:
                reasons.append(f"condition {condition.text!r} {'holds' if asks else 'does not hold'}")
    approvals = listed.approvals if listed is not None and chosen == RiskTier.RED and listed.tier == RiskTier.RED else 1
    timeouts = policy.timeouts(chosen)
    return GateDecision(
        action=action,
        tier=chosen,
        asks=asks,
        approvals=approvals,
        reasons=tuple(reasons),
        soft_timeout_s=timeouts.soft_timeout,
        hard_timeout_s=timeouts.hard_timeout,
        on_hard_timeout="deny" if chosen == RiskTier.RED else timeouts.on_hard_timeout,
    )
