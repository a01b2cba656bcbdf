"""Secrets as Presidio recognizers: API keys, cloud and chat tokens, bearer tokens, JWTs, URL passwords, private keys.

Each recognizer is a plain :class:`presidio_analyzer.PatternRecognizer` (so it also works inside Presidio's own
``AnalyzerEngine``), with one entity type each:

============================  ======================================================================================
entity                        what it matches (the redacted span)
============================  ======================================================================================
``OPENAI_API_KEY``            ``sk-...``, ``sk-proj-...``, ``sk-svcacct-...``, ``sk-admin-...`` (not ``sk-ant-``); the
                              body must be 20+ key characters with at least one digit and an upper-case letter or
                              four digits, so words such as ``sk-learn-style-guide`` are not keys
``ANTHROPIC_API_KEY``         ``sk-ant-...``
``AWS_ACCESS_KEY``            access key ids ``AKIA``/``ASIA``/... followed by 16 upper-case letters or digits
``AWS_SECRET_KEY``            the 40-character secret after ``aws_secret_access_key=`` / ``"aws_secret": "`` / ...
``GITHUB_TOKEN``              ``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_`` tokens and ``github_pat_`` tokens
``SLACK_TOKEN``               ``xoxa-``/``xoxb-``/``xoxp-``/``xoxr-``/``xoxs-``/``xoxe-`` tokens, and the secret path
                              of ``hooks.slack.com/services/...`` webhook URLs
``BEARER_TOKEN``              the token after ``Bearer`` (16+ token characters)
``JWT``                       ``eyJ<header>.eyJ<payload>.<signature>``
``URL_PASSWORD``              the credentials ``user:password`` of ``scheme://user:password@host`` (username too,
                              since it is often personal; the host stays)
``PRIVATE_KEY``               a PEM private key from ``-----BEGIN ... PRIVATE KEY-----`` to its ``-----END ...`` line,
                              multi-line; a key cut short (no END line) is matched over its header lines and its
                              base64 lines of 16 characters or more
``SECRET``                    the value assigned to a key named like a secret in free text: ``api_key=...``,
                              ``password: ...``, ``"client_secret": "..."``, ``token=...`` (6+ characters)
============================  ======================================================================================

Every recognizer also carries a *trigger* (:class:`Trigger`): a cheap test that any text it can match passes. The
redactor only runs a recognizer on texts its trigger finds, and skips texts no trigger finds at all.
"""

from __future__ import annotations

import re
from typing import Final

import regex
from presidio_analyzer import Pattern, PatternRecognizer

OPENAI_API_KEY: Final = "OPENAI_API_KEY"
ANTHROPIC_API_KEY: Final = "ANTHROPIC_API_KEY"
AWS_ACCESS_KEY: Final = "AWS_ACCESS_KEY"
AWS_SECRET_KEY: Final = "AWS_SECRET_KEY"
GITHUB_TOKEN: Final = "GITHUB_TOKEN"
SLACK_TOKEN: Final = "SLACK_TOKEN"
BEARER_TOKEN: Final = "BEARER_TOKEN"
JWT: Final = "JWT"
URL_PASSWORD: Final = "URL_PASSWORD"
PRIVATE_KEY: Final = "PRIVATE_KEY"
SECRET: Final = "SECRET"

SECRET_ENTITIES: Final[tuple[str, ...]] = (
    OPENAI_API_KEY,
    ANTHROPIC_API_KEY,
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    GITHUB_TOKEN,
    SLACK_TOKEN,
    BEARER_TOKEN,
    JWT,
    URL_PASSWORD,
    PRIVATE_KEY,
    SECRET,
)
"""Every secret entity type, in the order their recognizers run."""

# Case-sensitive by default (key prefixes are); patterns opt into case-insensitivity with (?i:...).
_FLAGS: Final = regex.DOTALL | regex.MULTILINE

_AWS_PREFIXES = "AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA"
_PEM_BEGIN = r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_SECRET_NAMES = (
    r"api[_-]?key|apikey|access[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token|refresh[_-]?token"
    r"|auth[_-]?token|private[_-]?token|session[_-]?token|password|passwd|pwd|passphrase|secret|token"
)


class Trigger:
    """A cheap test that every text a recognizer can match passes.

    When ``literals`` or ``folded`` are given, one of ``literals`` must be in the text or one of ``folded`` in the
    lower-cased text. Then, when any patterns are given, one of ``patterns`` must find the text or one of
    ``folded_patterns`` the lower-cased text. Substring tests run at C speed, and the patterns (:mod:`re`) start with
    a literal character, which Python's ``re`` scans for quickly.
    """

    __slots__ = ("folded", "folded_patterns", "literals", "patterns")

    def __init__(
        self,
        *,
        literals: tuple[str, ...] = (),
        folded: tuple[str, ...] = (),
        patterns: tuple[str, ...] = (),
        folded_patterns: tuple[str, ...] = (),
    ) -> None:
        if not (literals or folded or patterns or folded_patterns):
            raise ValueError("a trigger needs literals or patterns")
        self.literals = literals
        self.folded = folded
        self.patterns = tuple(re.compile(p) for p in patterns)
        self.folded_patterns = tuple(re.compile(p) for p in folded_patterns)

    def __call__(self, text: str, lower: str) -> bool:
        """Whether ``text`` (``lower`` is ``text.lower()``) may hold a match."""
        if self.literals or self.folded:
            for literal in self.literals:
                if literal in text:
                    break
            else:
                for literal in self.folded:
                    if literal in lower:
                        break
                else:
                    return False
        if not (self.patterns or self.folded_patterns):
            return True
        for pattern in self.patterns:
            if pattern.search(text) is not None:
                return True
        for pattern in self.folded_patterns:
            if pattern.search(lower) is not None:
                return True
        return False


class SecretRecognizer(PatternRecognizer):
    """A :class:`PatternRecognizer` for one secret type, with the cheap ``trigger`` the redactor screens with."""

    def __init__(
        self, entity: str, patterns: list[Pattern], trigger: Trigger, context: list[str] | None = None
    ) -> None:
        super().__init__(
            supported_entity=entity,
            name=f"spanguard.{entity.lower()}",
            patterns=patterns,
            context=context,
            global_regex_flags=_FLAGS,
        )
        self.trigger = trigger


class OpenAIKeyRecognizer(SecretRecognizer):
    """OpenAI API keys; the body must look random (see the module table)."""

    def __init__(self) -> None:
        super().__init__(
            OPENAI_API_KEY,
            [
                Pattern(
                    "openai key",
                    r"(?<![A-Za-z0-9_-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])",
                    0.6,
                )
            ],
            trigger=Trigger(literals=("sk-",)),
            context=["key", "openai", "api"],
        )

    def validate_result(self, pattern_text: str) -> bool:
        """True when the body holds a digit and an upper-case letter, or four digits (random, not words)."""
        body = pattern_text[3:]
        digits = sum(c.isdigit() for c in body)
        upper = any(c.isupper() for c in body)
        return digits >= 4 or (digits >= 1 and upper)


def secret_recognizers() -> list[SecretRecognizer]:
    """A fresh instance of every secret recognizer, in :data:`SECRET_ENTITIES` order."""
    return [
        OpenAIKeyRecognizer(),
        SecretRecognizer(
            ANTHROPIC_API_KEY,
            [Pattern("anthropic key", r"(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])", 1.0)],
            trigger=Trigger(literals=("sk-ant-",)),
        ),
        SecretRecognizer(
            AWS_ACCESS_KEY,
            [Pattern("aws access key id", rf"(?<![A-Za-z0-9])(?:{_AWS_PREFIXES})[A-Z0-9]{{16}}(?![A-Za-z0-9])", 1.0)],
            trigger=Trigger(patterns=(rf"(?:{_AWS_PREFIXES})[A-Z0-9]{{16}}",)),
        ),
        SecretRecognizer(
            AWS_SECRET_KEY,
            [
                Pattern(
                    "aws secret access key",
                    r"(?<=(?i:aws[_-]?secret[_-]?access[_-]?key|aws[_-]?secret[_-]?key|secret[_-]?access[_-]?key"
                    r"|aws[_-]?secret)[\"']?\s{0,3}[:=]\s{0,3}[\"']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
                    1.0,
                )
            ],
            trigger=Trigger(folded=("secret",), folded_patterns=(r"secret[\w-]*[\"']?\s{0,3}[:=]",)),
        ),
        SecretRecognizer(
            GITHUB_TOKEN,
            [
                Pattern(
                    "github token",
                    r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"
                    r"(?![A-Za-z0-9_])",
                    1.0,
                )
            ],
            trigger=Trigger(patterns=(r"gh[pousr]_|github_pat_",)),
        ),
        SecretRecognizer(
            SLACK_TOKEN,
            [
                Pattern("slack token", r"(?<![A-Za-z0-9-])xox[abprse]-[A-Za-z0-9-]{10,}", 1.0),
                Pattern("slack webhook", r"(?<=hooks\.slack\.com/services/)[A-Za-z0-9_/-]{10,}", 1.0),
            ],
            trigger=Trigger(literals=("xox", "hooks.slack.com")),
        ),
        SecretRecognizer(
            BEARER_TOKEN,
            [Pattern("bearer token", r"(?<=(?i:\bbearer)\s{1,5})[A-Za-z0-9._~+/-]{16,}=*", 0.8)],
            trigger=Trigger(folded=("bearer",), folded_patterns=(r"bearer\s{1,5}[\w.~+/-]{16}",)),
        ),
        SecretRecognizer(
            JWT,
            [
                Pattern(
                    "jwt",
                    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*(?![A-Za-z0-9_-])",
                    1.0,
                )
            ],
            trigger=Trigger(literals=("eyJ",)),
        ),
        SecretRecognizer(
            URL_PASSWORD,
            [
                Pattern(
                    "url credentials",
                    r"(?<=\b[A-Za-z][A-Za-z0-9+.-]{0,20}://)[^\s:/?#@\"'<>]*:[^\s/?#\"'<>]+(?=@[^\s@/?#\"'<>]+)",
                    1.0,
                )
            ],
            trigger=Trigger(literals=("://",), patterns=(r"://[^\s/]*:[^\s/]*@",)),
        ),
        SecretRecognizer(
            PRIVATE_KEY,
            [
                Pattern(
                    "pem private key",
                    rf"{_PEM_BEGIN}.{{0,20000}}?-----END[A-Z0-9 ]{{0,40}}PRIVATE KEY(?: BLOCK)?-----",
                    1.0,
                ),
                Pattern(
                    "pem private key, cut short",
                    rf"{_PEM_BEGIN}(?:(?:\s|\\[rn])+(?:[A-Za-z0-9+/=]{{16,}}|[A-Za-z][A-Za-z-]*: ?[^\s\\][^\n\\]*))*",
                    1.0,
                ),
            ],
            trigger=Trigger(literals=("-----BEGIN",)),
        ),
        SecretRecognizer(
            SECRET,
            [
                Pattern(
                    "secret assignment",
                    rf"(?<=(?i:\b(?:{_SECRET_NAMES}))[\"']?\s{{0,3}}[:=]\s{{0,3}}[\"']?)(?![<*])[^\s\"'<>,;&]{{6,}}",
                    0.6,
                )
            ],
            trigger=Trigger(
                folded=("key", "secret", "token", "passw", "pwd", "passphrase"),
                folded_patterns=(r"(?:key|secret|token|passw\w*|pwd|passphrase)[\"']?\s{0,3}[:=]",),
            ),
        ),
    ]
