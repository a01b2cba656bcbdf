"""The ``risk`` processor's config model (``processors.risk`` in the collector's config). Behaviour: docs/risk.md."""

from __future__ import annotations

import pydantic

from spanguard.processors.risk.engine import (
    DetectorsConfig,
    RiskConfig,
    Rule,
    duplicate_rule_names,
    load_risk_config,
)
from spanguard.yamlconfig import ConfigError, Problem, format_path, load_once

__all__ = ["RiskProcessorConfig"]


class RiskProcessorConfig(pydantic.BaseModel, frozen=True, extra="forbid"):
    """``processors.risk``: a rules file, or rules and detectors inline (the packaged defaults when neither).

    A relative ``rules_file`` is found next to the collector's config file; it is read once, when the config loads.
    """

    rules_file: str | None = None
    """A risk rules file (docs/risk.md); a relative name is found next to the collector's config file, and the file
    is read once, when the config loads."""
    rules: tuple[Rule, ...] | None = None
    """Rules inline, as in a rules file."""
    detectors: DetectorsConfig | None = None
    """Detectors inline, as in a rules file."""
    _risk: RiskConfig = pydantic.PrivateAttr()

    @pydantic.model_validator(mode="after")
    def _loads(self, info: pydantic.ValidationInfo) -> RiskProcessorConfig:
        if self.rules_file is not None and (self.rules is not None or self.detectors is not None):
            raise ValueError("give either rules_file or inline rules/detectors, not both")
        if self.rules_file is not None:
            # A ConfigError is a ValueError: the collector's loader reports its problems at the rules file's own
            # lines. A file two risk processors name is read once.
            self._risk = load_once(self.rules_file, info.context, load_risk_config)
        elif self.rules is None and self.detectors is None:
            self._risk = load_risk_config(None)
        else:
            duplicates = duplicate_rule_names(self.rules or ())
            if duplicates:
                raise ConfigError([Problem(format_path(path), message, None) for path, message in duplicates])
            self._risk = RiskConfig(rules=self.rules or (), detectors=self.detectors or DetectorsConfig())
        return self

    def risk_config(self) -> RiskConfig:
        """The validated risk configuration this section describes."""
        return self._risk
