"""Risk classification (the ``risk`` processor): each trace gets a tier (green < yellow < red) and its reasons.

The engine (rules, detectors, the classifier) is :mod:`spanguard.processors.risk.engine`; the collector component is
``config.py`` and ``factory.py`` here, the packaged rules ``default_rules.yaml``. Behaviour: docs/risk.md.
"""

from spanguard.processors.risk.engine import (
    DETECTOR_REASONS,
    TIERS,
    AttributeCondition,
    DetectorsConfig,
    Match,
    RiskClassifier,
    RiskConfig,
    Rule,
    StringMatch,
    Tier,
    TraceRisk,
    highest_tier,
    load_risk_config,
    load_risk_config_text,
    tier_rank,
)

__all__ = [
    "DETECTOR_REASONS",
    "TIERS",
    "AttributeCondition",
    "DetectorsConfig",
    "Match",
    "RiskClassifier",
    "RiskConfig",
    "Rule",
    "StringMatch",
    "Tier",
    "TraceRisk",
    "highest_tier",
    "load_risk_config",
    "load_risk_config_text",
    "tier_rank",
]
