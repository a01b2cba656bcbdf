"""Secrets as Presidio pattern recognizers: vendor keys and tokens, bearer tokens, JWTs, URL and prose passwords,
private keys, one entity type each (so they also work inside Presidio's own ``AnalyzerEngine``).

What each type matches, and what is never taken for a secret: docs/redaction.md ("What is detected": Secrets).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Final, NamedTuple

import regex
from presidio_analyzer import Pattern, PatternRecognizer

from spanguard.processors.redaction.entities import (
    ANTHROPIC_API_KEY,
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    AZURE_KEY,
    BEARER_TOKEN,
    CLOUD_TOKEN,
    DEVTOOL_TOKEN,
    GITHUB_TOKEN,
    GITLAB_TOKEN,
    GOOGLE_API_KEY,
    JWT,
    LLM_API_KEY,
    MESSAGING_TOKEN,
    OPENAI_API_KEY,
    PAYMENT_KEY,
    PRIVATE_KEY,
    SECRET,
    SLACK_TOKEN,
    STRIPE_KEY,
    URL_PASSWORD,
)
from spanguard.processors.redaction.screen import SeparateScreen, SeparateTrigger, Trigger

STANDALONE_AWS_SECRET_SCORE: Final = 0.5
"""Score of a random-looking 40-character token with no AWS label or key id near it.

Above the default threshold (0.4): in LLM telemetry such a token is nearly always a credential (an AWS secret or some
other vendor's), and hiding an opaque blob costs a reader little while a leak costs a key rotation. Below 1.0, so a
vendor-specific detection of the same characters (a bearer token, a JWT part, a labelled key) gives the type, and a
``score_threshold`` above 0.5 turns the guess off.
"""

# Case-sensitive by default (key prefixes are); patterns opt into case-insensitivity with (?i:...).
_FLAGS: Final = regex.DOTALL | regex.MULTILINE

_AWS_ID = r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA|A3T[A-Z0-9])[A-Z0-9]{16}"
_PEM_BEGIN = r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_SECRET_NAMES = (
    r"api[_-]?key|apikey|access[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token|refresh[_-]?token"
    r"|auth[_-]?token|private[_-]?token|session[_-]?token|password|passwd|pwd|passphrase|secret|token"
)
# An identifier prefix such as DB_ or MISTRAL_API_ (no suffix: token_type, key_id, password_length are not secrets).
_NAME_PREFIX = r"(?:[a-z0-9]+[_.-]){0,6}"
# Token boundaries: a key is never preceded or followed by more key characters.
_B = r"(?<![A-Za-z0-9_-])"
_E = r"(?![A-Za-z0-9_-])"
# "NAME=", "NAME: ", '"NAME": "', "NAME => '": what stands between a key name and its value.
_ASSIGN = r"[\"']?[ \t]{0,3}(?::=|=>|[:=])[ \t]{0,3}[\"'`]?"
# ... or, in prose, "NAME is ".
_ASSIGN_OR_IS = rf"(?:{_ASSIGN}|[ \t]{{1,3}}(?i:is|was)[ \t]{{1,3}}[\"'`]?)"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# Passwords in prose. The words that are no password although they follow "password is" or "password:".
_STOP_WORDS = (
    "required|incorrect|invalid|wrong|correct|expired|empty|missing|needed|optional|mandatory|changed|reset|updated"
    "|set|sent|saved|stored|encrypted|hashed|hidden|shown|visible|weak|strong|secure|insecure|easy|hard|simple|long"
    "|short|too|not|also|still|now|only|very|case|the|a|an|your|my|his|her|their|our|its|this|that|it|same"
    "|different|being|been|be|to|for|of|in|on|at|and|or|but|with|as|by|from|used|generated|provided|given|entered"
    "|typed|protected|valid|unknown|known|blank|none|null|nil|undefined|true|false|yes|no|ok|okay|fine|good|bad"
    "|here|there|below|above|attached|enabled|disabled|something|str|string|int|bytes|text|secretstr|type|field"
    "|input|xxx|tbd|todo|redacted|masked|removed"
)
# What a password value is not: a stop word, spanguard's own marks, a mask, a template, an environment look-up, a call.
_NOT_A_PASSWORD = (
    rf"(?!(?i:{_STOP_WORDS})(?:[\s\"'`,.;:()\[\]]|$)"
    r"|<[A-Z][A-Z0-9_]*(?::[0-9a-f]{8})?>"
    r"|\*+(?![^\s\"'`.,;:?)\]}])"
    r"|\$\{|\{\{|%\(|\$[A-Za-z_]+(?![^\s\"'`])"
    r"|(?i:os\.environ|os\.getenv|process\.env|getenv\()"
    r"|[A-Za-z_][\w.]*\([^\s\"'`]*\))"
)
_MARK = r"(?!<[A-Z][A-Z0-9_]*(?::[0-9a-f]{8})?>|\*+[\"'])"
# A password value: quoted, up to its closing quote; else up to white space or a quote, without the sentence's final
# punctuation (so a value with & , ; ! # inside is redacted whole).
_PASSWORD_VALUE = (
    rf"(?:(?<=\"){_MARK}[^\"\n]{{4,128}}(?=\")"
    rf"|(?<='){_MARK}[^'\n]{{4,128}}(?=')"
    rf"|{_NOT_A_PASSWORD}[^\s\"'`]{{4,128}}(?<![.,;:?)\]}}]))"
)
# "pw" and "pin" are short: they count only in the spellings the trigger's literals list ("pw:", "pin is", ...).
_PASSWORD_WORDS = r"pass(?:word|wd|phrase|code)s?|pwd|pw(?=[ ]?[:=]|[ ](?:is|was)\b)"
_PIN_WORDS = (
    r"\bPIN\b|(?i:\bpin(?:[ _-]?(?:code|number)\b|(?=[ ]?[:=#]|[ ](?:is|was)\b))"
    # "card pin 3766": four or more digits right after "pin" are a PIN (a connector's pins are numbered 1-40 or so)
    r"|(?i:\bpin(?=[ ][0-9]{4,8}(?![0-9])))"
    r"|\b(?:passcode|pass[ ]code|pwd|password)\b)"
)
# A token that looks random: mixed case with a digit and a 12+ run of letters and digits (not a model name or a slug),
# or 20+ lower-case letters and digits with four digits and a letter past f (not hex).
_TOKEN = r"[A-Za-z0-9+/_-]"
_RANDOM_TOKEN = (
    rf"(?:(?={_TOKEN}*[0-9])(?={_TOKEN}*[A-Z])(?={_TOKEN}*[a-z])(?={_TOKEN}*?[A-Za-z0-9]{{12}})"
    rf"{_TOKEN}{{16,}}={{0,2}}(?![A-Za-z0-9+/=_~-])"
    r"|(?=[a-z0-9]*[0-9](?:[a-z0-9]*[0-9]){3})(?=[a-z0-9]*[g-z])[a-z0-9]{20,}(?![A-Za-z0-9+/=_~-]))"
)


class SecretRecognizer(PatternRecognizer):
    """A :class:`PatternRecognizer` for one secret type, with the cheap ``trigger`` the redactor screens with."""

    def __init__(
        self,
        entity: str,
        patterns: list[Pattern],
        trigger: Trigger | SeparateTrigger,
        context: list[str] | None = None,
        screens: Sequence[str | None] = (),
    ) -> None:
        """``screens``: one RE2 pattern per pattern (or None), finding every ASCII text its pattern finds: the
        redactor skips a pattern whose screen finds nothing (a recognizer with many patterns fires on any of them)."""
        super().__init__(
            supported_entity=entity,
            name=f"spanguard.{entity.lower()}",
            patterns=patterns,
            context=context,  # type: ignore[arg-type]  # Presidio takes None: no context words
            global_regex_flags=_FLAGS,
        )
        if screens and len(screens) != len(patterns):
            raise ValueError("screens: one per pattern")
        self.trigger = trigger
        self.pattern_screens: tuple[str | None, ...] = tuple(screens)


def _looks_random(text: str) -> bool:
    """Whether a key's text holds a digit or both letter cases, as generated keys do and words do not."""
    if any(c.isdigit() for c in text):
        return True
    return any(c.isupper() for c in text) and any(c.islower() for c in text)


def _entropy(text: str) -> float:
    """The Shannon entropy of ``text``, in bits per character."""
    n = len(text)
    return -sum(k / n * math.log2(k / n) for k in Counter(text).values())


class VendorKeyRecognizer(SecretRecognizer):
    """Vendor keys of one family, from :data:`_VENDOR_RULES`; a match that looks like words is dropped."""

    def validate_result(self, pattern_text: str) -> bool | None:
        """None (keep the rule's score) when the match looks generated, False when it is made of words."""
        return None if _looks_random(pattern_text) else False


class OpenAIKeyRecognizer(SecretRecognizer):
    """OpenAI API keys; the body must look random (see the module table)."""

    def __init__(self) -> None:
        super().__init__(
            OPENAI_API_KEY,
            [
                Pattern(
                    "openai key",
                    r"(?<![A-Za-z0-9_-])sk-(?!ant-|or-v1-|lf-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
                    r"(?![A-Za-z0-9_-])",
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


class AwsSecretKeyRecognizer(SecretRecognizer):
    """AWS secret access keys: labelled, next to a key id, or standing alone (see the module table)."""

    # Standing alone: not part of a longer token, a URL path (after a dot), a base64 blob or URL-encoded text.
    _BEFORE = r"(?<![A-Za-z0-9/+_.%~-])"
    _AFTER = r"(?![A-Za-z0-9/+=_%~-])"

    def __init__(self, screen: SeparateScreen | None = None) -> None:
        value = rf"{self._BEFORE}[A-Za-z0-9/+]{{40}}{self._AFTER}"
        super().__init__(
            AWS_SECRET_KEY,
            [
                Pattern(
                    "aws secret access key",
                    r"(?<=(?i:aws[_-]?secret[_-]?access[_-]?key|aws[_-]?secret[_-]?key|secret[_-]?access[_-]?key"
                    rf"|aws[_-]?secret)[\"']?\s{{0,3}}[:=]\s{{0,3}}[\"']?){value}",
                    1.0,
                ),
                Pattern(
                    "aws secret after a key id", rf"(?<![A-Za-z0-9]){_AWS_ID}(?![A-Za-z0-9]).{{1,120}}?\K{value}", 1.0
                ),
                Pattern("aws secret, standing alone", value, STANDALONE_AWS_SECRET_SCORE),
            ],
            # Every value above stands alone, so this finds them all.
            trigger=SeparateTrigger(
                r"(?:^|[^A-Za-z0-9/+_.%~-])[A-Za-z0-9/+]{40}(?:$|[^A-Za-z0-9/+=_%~-])", screen=screen
            ),
            context=["aws", "secret", "access"],
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """None (keep the score) for upper, lower and digit with 4.2+ bits per character; False otherwise.

        Generated keys have about 4.8 bits per character (below 4.2 once in many millions); CamelCase identifiers and
        readable text, which can also be 40 characters long, have 4.2 or less.
        """
        if not (
            any(c.isupper() for c in pattern_text)
            and any(c.islower() for c in pattern_text)
            and any(c.isdigit() for c in pattern_text)
        ):
            return False
        return None if _entropy(pattern_text) >= 4.2 else False


class _Rule(NamedTuple):
    """One vendor key shape: every match holds one of ``literals`` (or ``folded``, in lower case) or ``screen``."""

    entity: str
    name: str
    regex: str
    literals: tuple[str, ...] = ()
    folded: tuple[str, ...] = ()
    # An RE2-portable pattern every match holds, for shapes without a rare literal (Twilio's SK + 32 hex).
    screen: str | None = None
    score: float = 1.0


# A left boundary for the shape screens, so they never fire inside a base64 blob ("=" is only at its end).
_NOT_B64 = r"(?:^|[^A-Za-z0-9+/_-])"

_VENDOR_RULES: Final[tuple[_Rule, ...]] = (
    # LLM vendors
    _Rule(LLM_API_KEY, "hugging face token", rf"{_B}(?:hf|api_org)_[A-Za-z0-9]{{30,40}}{_E}", ("hf_", "api_org_")),
    _Rule(LLM_API_KEY, "groq key", rf"{_B}gsk_[A-Za-z0-9]{{48,56}}{_E}", ("gsk_",)),
    _Rule(LLM_API_KEY, "replicate token", rf"{_B}r8_[A-Za-z0-9_-]{{36,40}}{_E}", ("r8_",)),
    _Rule(LLM_API_KEY, "perplexity key", rf"{_B}pplx-[A-Za-z0-9]{{40,64}}{_E}", ("pplx-",)),
    _Rule(LLM_API_KEY, "xai key", rf"{_B}xai-[A-Za-z0-9_]{{70,90}}{_E}", ("xai-",)),
    _Rule(LLM_API_KEY, "openrouter key", rf"{_B}sk-or-v1-[0-9a-f]{{64}}{_E}", ("sk-or-v1-",)),
    _Rule(LLM_API_KEY, "langsmith key", rf"{_B}lsv2_(?:pt|sk)_[0-9a-f]{{32}}_[0-9a-f]{{10}}{_E}", ("lsv2_",)),
    _Rule(LLM_API_KEY, "langfuse key", rf"{_B}[sp]k-lf-{_UUID}{_E}", ("sk-lf-", "pk-lf-")),
    _Rule(LLM_API_KEY, "pinecone key", rf"{_B}pcsk_[A-Za-z0-9]{{4,8}}_[A-Za-z0-9]{{50,80}}{_E}", ("pcsk_",)),
    _Rule(LLM_API_KEY, "fireworks key", rf"{_B}fw_[A-Za-z0-9]{{20,40}}{_E}", ("fw_",)),
    _Rule(
        LLM_API_KEY,
        "llm key after its vendor's name",
        r"(?i:\b(?:cohere|co|mistral|together(?:[ _-]?ai)?|fireworks|deepseek|voyage)[ _-](?:ai[ _-])?(?:api[ _-]?)?"
        rf"(?:key|token)){_ASSIGN_OR_IS}\K[A-Za-z0-9_-]{{32,100}}{_E}",
        folded=("cohere", "co_api", "co-api", "mistral", "together", "fireworks", "deepseek", "voyage"),
    ),
    # Google
    _Rule(GOOGLE_API_KEY, "google api key", rf"{_B}AIza[A-Za-z0-9_-]{{35}}{_E}", ("AIza",)),
    _Rule(GOOGLE_API_KEY, "google oauth client secret", rf"{_B}GOCSPX-[A-Za-z0-9_-]{{28}}{_E}", ("GOCSPX-",)),
    _Rule(GOOGLE_API_KEY, "google oauth access token", rf"{_B}ya29\.[A-Za-z0-9_-]{{30,2048}}{_E}", ("ya29.",)),
    _Rule(GOOGLE_API_KEY, "google oauth refresh token", rf"(?<![A-Za-z0-9_/-])1//0[A-Za-z0-9_-]{{40,}}{_E}", ("1//0",)),
    # Azure
    _Rule(
        AZURE_KEY,
        "azure storage or service bus key",
        r"(?<=(?:AccountKey|SharedAccessKey)=)[A-Za-z0-9+/]{40,90}={0,2}",
        ("AccountKey=", "SharedAccessKey="),
    ),
    _Rule(
        AZURE_KEY,
        "azure entra client secret",
        r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
        ("Q~",),
    ),
    _Rule(AZURE_KEY, "azure sas signature", r"(?<=[?&;]sig=)[A-Za-z0-9%+/=]{30,}", ("sig=",)),
    # Other clouds and secret managers
    _Rule(
        CLOUD_TOKEN,
        "digitalocean token",
        rf"{_B}do[opr]_v1_[a-f0-9]{{64}}{_E}",
        ("dop_v1_", "doo_v1_", "dor_v1_"),
    ),
    _Rule(CLOUD_TOKEN, "alibaba access key id", r"(?<![A-Za-z0-9])LTAI[A-Za-z0-9]{12,28}(?![A-Za-z0-9])", ("LTAI",)),
    _Rule(CLOUD_TOKEN, "heroku key", rf"{_B}HRKU-AA[A-Za-z0-9_-]{{58}}{_E}", ("HRKU-",)),
    _Rule(
        CLOUD_TOKEN,
        "heroku key after its name",
        rf"(?i:\bheroku[\w.-]{{0,30}}?){_ASSIGN_OR_IS}\K{_UUID}(?![A-Za-z0-9-])",
        folded=("heroku",),
    ),
    _Rule(CLOUD_TOKEN, "databricks token", r"(?<![A-Za-z0-9_-])dapi[a-f0-9]{32}(?:-[0-9])?(?![A-Za-z0-9_])", ("dapi",)),
    _Rule(CLOUD_TOKEN, "cloudflare token", rf"{_B}cf[ua]t_[A-Za-z0-9]{{40,60}}{_E}", ("cfut_", "cfat_")),
    _Rule(
        CLOUD_TOKEN,
        "cloudflare key after its name",
        r"(?i:\b(?:cloudflare|cf)[_-](?:global[_-])?(?:api[_-]?)?(?:token|key))"
        rf"{_ASSIGN_OR_IS}\K[A-Za-z0-9_-]{{37,40}}{_E}",
        folded=("cloudflare", "cf_api", "cf-api", "cf_global"),
    ),
    _Rule(
        CLOUD_TOKEN,
        "vault token",
        rf"{_B}hv[sb]\.[A-Za-z0-9_-]{{60,}}(?:\.[A-Za-z0-9_-]+)*{_E}",
        ("hvs.", "hvb."),
    ),
    _Rule(
        CLOUD_TOKEN,
        "terraform cloud token",
        r"(?<![A-Za-z0-9])[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}(?![A-Za-z0-9_=-])",
        (".atlasv1.",),
    ),
    _Rule(
        CLOUD_TOKEN,
        "doppler token",
        rf"{_B}dp\.(?:pt|ct|sa|scim|audit|st(?:\.[a-z0-9_-]{{2,35}})?)\.[A-Za-z0-9]{{40,44}}{_E}",
        ("dp.pt.", "dp.ct.", "dp.sa.", "dp.scim.", "dp.audit.", "dp.st."),
    ),
    _Rule(CLOUD_TOKEN, "1password service account token", rf"{_B}ops_eyJ[A-Za-z0-9+/_-]{{100,}}={{0,3}}", ("ops_eyJ",)),
    _Rule(
        CLOUD_TOKEN,
        "1password secret key",
        r"(?<![A-Za-z0-9-])A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}"
        r"(?![A-Za-z0-9-])",
        ("A3-",),
    ),
    _Rule(
        CLOUD_TOKEN, "age secret key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", ("AGE-SECRET-KEY-1",)
    ),
    # Payment
    _Rule(
        STRIPE_KEY,
        "stripe key",
        rf"{_B}(?:sk|rk|pk)_(?:live|test|prod)_[A-Za-z0-9]{{10,247}}{_E}",
        ("sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_", "pk_live_", "pk_test_"),
    ),
    _Rule(STRIPE_KEY, "stripe webhook secret", rf"{_B}whsec_[A-Za-z0-9+/=]{{24,}}", ("whsec_",)),
    _Rule(PAYMENT_KEY, "square token", rf"{_B}sq0(?:atp|csp)-[A-Za-z0-9_-]{{22,60}}{_E}", ("sq0atp-", "sq0csp-")),
    _Rule(
        PAYMENT_KEY,
        "square access token",
        r"(?<![A-Za-z0-9_+-])EAAA[A-Za-z0-9_+=-]{60}(?![A-Za-z0-9_+=-])",
        ("EAAA",),
    ),
    _Rule(
        PAYMENT_KEY,
        "shopify token",
        rf"{_B}shp(?:at|ss|ca|pa)_[a-fA-F0-9]{{32}}{_E}",
        ("shpat_", "shpss_", "shpca_", "shppa_"),
    ),
    _Rule(
        PAYMENT_KEY,
        "braintree access token",
        r"access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}",
        ("access_token$",),
    ),
    _Rule(
        PAYMENT_KEY,
        "adyen api key",
        r"(?<![A-Za-z0-9+/-])AQE[A-Za-z0-9+/]{40,}={0,2}-[A-Za-z0-9+/]{20,}={0,2}(?:-[^\s\"'`]{8,40})?",
        ("AQE",),
    ),
    _Rule(
        PAYMENT_KEY,
        "flutterwave key",
        rf"{_B}FLW(?:SECK|PUBK)(?:_TEST)?-[a-hA-H0-9]{{32}}-X{_E}|{_B}FLWSECK_TEST[a-hA-H0-9]{{12}}{_E}",
        ("FLWSECK", "FLWPUBK"),
    ),
    # Source control, registries and developer tools (GitHub and Slack have their own recognizers below)
    _Rule(
        GITLAB_TOKEN,
        "gitlab token",
        rf"{_B}gl(?:pat|dt|ptt|rt|cbt|ft|imt|agent|oas|soat|ffct)-[A-Za-z0-9_-]{{20,}}(?:\.[A-Za-z0-9_-]+)*{_E}",
        ("glpat-", "gldt-", "glptt-", "glrt-", "glcbt-", "glft-", "glimt-", "glagent-", "gloas-", "glsoat-", "glffct-"),
    ),
    _Rule(GITLAB_TOKEN, "gitlab runner registration token", rf"{_B}GR1348941[A-Za-z0-9_-]{{20,}}{_E}", ("GR1348941",)),
    _Rule(
        DEVTOOL_TOKEN,
        "bitbucket app password",
        r"(?<![A-Za-z0-9_-])ATBB[A-Za-z0-9_=-]{28,}(?![A-Za-z0-9_=-])",
        ("ATBB",),
    ),
    _Rule(
        DEVTOOL_TOKEN,
        "atlassian api token",
        r"(?<![A-Za-z0-9_-])AT(?:ATT|CTT)3[A-Za-z0-9_=-]{100,}(?![A-Za-z0-9_=-])",
        ("ATATT3", "ATCTT3"),
    ),
    _Rule(DEVTOOL_TOKEN, "npm token", rf"{_B}npm_[A-Za-z0-9]{{36}}{_E}", ("npm_",)),
    _Rule(
        DEVTOOL_TOKEN,
        "pypi token",
        r"pypi-Ag(?:EIcHlwaS5vcmc|ENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,}",
        ("pypi-Ag",),
    ),
    _Rule(DEVTOOL_TOKEN, "docker hub token", rf"{_B}dckr_(?:pat|oat)_[A-Za-z0-9_-]{{24,40}}{_E}", ("dckr_",)),
    _Rule(
        DEVTOOL_TOKEN,
        "sentry token",
        rf"{_B}sntrys_eyJ[A-Za-z0-9+/=_]{{50,}}|{_B}sntryu_[a-f0-9]{{64}}{_E}",
        ("sntrys_", "sntryu_"),
    ),
    _Rule(
        DEVTOOL_TOKEN,
        "new relic key",
        rf"{_B}(?:NRAK-[A-Z0-9]{{27}}|NRJS-[a-f0-9]{{19}}|NRII-[A-Za-z0-9_-]{{32}}){_E}"
        r"|(?<![A-Za-z0-9])[a-f0-9]{36}NRAL(?![A-Za-z0-9])",
        ("NRAK-", "NRJS-", "NRII-", "NRAL"),
    ),
    _Rule(
        DEVTOOL_TOKEN,
        "grafana token",
        rf"{_B}glc_[A-Za-z0-9+/]{{32,400}}={{0,3}}|{_B}glsa_[A-Za-z0-9]{{32}}_[A-Fa-f0-9]{{8}}{_E}"
        r"|(?<![A-Za-z0-9])eyJrIjoi[A-Za-z0-9]{70,400}={0,3}",
        ("glc_", "glsa_", "eyJrIjoi"),
    ),
    _Rule(DEVTOOL_TOKEN, "linear key", rf"{_B}lin_(?:api|oauth)_[A-Za-z0-9]{{40}}{_E}", ("lin_api_", "lin_oauth_")),
    _Rule(
        DEVTOOL_TOKEN,
        "notion token",
        rf"{_B}secret_[A-Za-z0-9]{{43}}{_E}|{_B}ntn_[0-9]{{11}}[A-Za-z0-9]{{35}}{_E}",
        ("secret_", "ntn_"),
    ),
    _Rule(DEVTOOL_TOKEN, "postman key", rf"{_B}PMAK-[A-Fa-f0-9]{{24}}-[A-Fa-f0-9]{{34}}{_E}", ("PMAK-",)),
    # Chat and messaging (Slack has its own recognizer below)
    _Rule(
        MESSAGING_TOKEN,
        "twilio auth token after its name",
        rf"(?i:\btwilio[ _-]?(?:auth[ _-]?)?(?:token|secret))(?:{_ASSIGN_OR_IS}|[ \t]{{1,3}})\K[0-9a-f]{{32}}"
        r"(?![A-Za-z0-9])",
        screen=r"(?i:twilio[ _-]?(?:auth[ _-]?)?(?:token|secret))",
    ),
    _Rule(
        MESSAGING_TOKEN,
        "discord bot token",
        r"(?<![A-Za-z0-9_.-])[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}(?![A-Za-z0-9_.-])",
        # The dotted middle only: a run counted from every M, N or O would swell the screen's automaton.
        screen=r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27}",
    ),
    _Rule(
        MESSAGING_TOKEN,
        "discord webhook",
        r"(?<=discord(?:app)?\.com/api/webhooks/)[0-9]{17,20}/[A-Za-z0-9_-]{60,68}",
        ("/api/webhooks/",),
    ),
    _Rule(
        MESSAGING_TOKEN,
        "telegram bot token",
        r"(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])",
        (":AA",),
    ),
    _Rule(
        MESSAGING_TOKEN,
        "teams webhook",
        r"(?<=\.webhook\.office\.com/webhookb2/)[A-Za-z0-9@/_-]{40,}",
        ("webhook.office.com",),
    ),
    _Rule(
        MESSAGING_TOKEN,
        "twilio sid or key",
        r"(?<![A-Za-z0-9])(?:SK|AC)[0-9a-f]{32}(?![A-Za-z0-9])",
        screen=r"(?:SK|AC)[0-9a-f]{32}",
    ),
    _Rule(
        MESSAGING_TOKEN,
        "sendgrid key",
        rf"{_B}SG\.[A-Za-z0-9_-]{{16,32}}\.[A-Za-z0-9_-]{{30,50}}{_E}",
        screen=r"SG\.[A-Za-z0-9_-]{16}",
    ),
    _Rule(MESSAGING_TOKEN, "mailgun key", rf"{_B}key-[0-9a-f]{{32}}{_E}", screen=r"key-[0-9a-f]{32}"),
    _Rule(
        MESSAGING_TOKEN,
        "mailchimp key",
        r"(?<![A-Za-z0-9])[0-9a-f]{32}-us[0-9]{1,2}(?![A-Za-z0-9])",
        screen=r"[0-9a-f]{32}-us[0-9]",
    ),
    _Rule(
        MESSAGING_TOKEN,
        "facebook access token",
        r"(?<![A-Za-z0-9+/_-])EAA[A-Za-z0-9]{80,}(?![A-Za-z0-9+/=_-])",
        screen=rf"{_NOT_B64}EAA[A-Za-z0-9]{{80}}",
    ),
)


def _literal_pattern(literal: str) -> str:
    """``literal`` as a pattern that Python's ``re`` and RE2 read alike (only the metacharacters escaped)."""
    return re.sub(r"[.^$*+?()\[\]{}|\\]", r"\\\g<0>", literal)


def _vendor_trigger(rules: list[_Rule], screen: SeparateScreen) -> Trigger | SeparateTrigger:
    """The trigger of one family: its literals when every rule has some, else one pattern for all rules."""
    if all(rule.screen is None for rule in rules):
        literals = tuple(dict.fromkeys(lit for rule in rules for lit in rule.literals))
        folded = tuple(dict.fromkeys(lit for rule in rules for lit in rule.folded))
        return Trigger(literals=literals, folded=folded)
    if any(rule.folded for rule in rules):
        raise ValueError("a family screened by shapes takes no folded literals")
    # One alternation in an automaton of its own: its counted runs stay out of the redactor's combined passes.
    alternatives = [rule.screen or "|".join(map(_literal_pattern, rule.literals)) for rule in rules]
    return SeparateTrigger("|".join(alternatives), screen=screen)


def _vendor_recognizer(entity: str, screen: SeparateScreen) -> VendorKeyRecognizer:
    rules = [rule for rule in _VENDOR_RULES if rule.entity == entity]
    return VendorKeyRecognizer(
        entity, [Pattern(rule.name, rule.regex, rule.score) for rule in rules], trigger=_vendor_trigger(rules, screen)
    )


# A key word before 16 token characters, or a few words and a connector (lower-cased text).
_KEY_WORD_TOKEN = (
    r"(?:key|token|secret|credential|authorization|auth)s?(?:[ \t]{1,3}[\"'`]?[a-z0-9+/_-]{16}"
    r"|(?:[ \t]{1,3}[a-z]{1,15}){0,3}(?:[ \t]{0,3}[:=]|[ \t]{1,3}(?:is|was)))"
)
_KEY_WORD_TOKEN_SCREEN = f"(?i:{_KEY_WORD_TOKEN})"
_PASSWORD_SCREEN = r"(?i:pass(?:word|wd|phrase|code)|pwd|pw ?[:=]|pw (?:is|was))"


def _secret_recognizer(screen: SeparateScreen) -> SecretRecognizer:
    """Values after secret-like names, passwords and PINs in prose, and random tokens after key-like words."""
    # (?<!<): not the name in a hash mark such as <SECRET:3f2a9c1b>.
    name = rf"(?<!<)(?i:\b{_NAME_PREFIX}(?:{_SECRET_NAMES}))"
    password = rf"(?<!<)(?i:\b{_NAME_PREFIX}(?:{_PASSWORD_WORDS}))\b"
    prose_gap = r"(?:[ \t]+(?i:for|of|on)(?:[ \t]+[\w.@-]{1,40}){1,3})?"
    key_words = (
        r"api[ _-]?key|apikey|access[ _-]?key|secret[ _-]?key|license[ _-]?key|secret|credential|authorization|password"
    )
    return SecretRecognizer(
        SECRET,
        [
            Pattern(
                "secret assignment",
                rf"(?<={name}[\"']?[ \t\r\n]{{0,3}}[:=]\s{{0,3}}[\"']?)(?![<*]){_NOT_A_PASSWORD}[^\s\"'<>,;&]{{6,}}",
                0.6,
            ),
            Pattern(
                "password",
                rf"{password}(?:{_ASSIGN}|[ \t]+[-\u2013\u2014][ \t]+[\"'`]?"
                rf"|{prose_gap}[ \t]+(?i:is|was)(?:[ \t]*:)?[ \t]+[\"'`]?)\K{_PASSWORD_VALUE}",
                0.6,
            ),
            Pattern(
                "password set to",
                r"(?i:\b(?:set|change|changed|reset|update|updated)[ \t]+(?:(?:my|the|your|our|his|her|their|a|an|new)"
                r"[ \t]+){0,2}(?:(?:pass(?:word|wd|phrase|code)|pwd)[ \t]+to|(?:pw|pin)[ ]to))[ \t]+[\"'`]?\K"
                rf"{_PASSWORD_VALUE}",
                0.6,
            ),
            Pattern(
                "new password",
                r"(?<!<)(?i:\b(?:new|temp|temporary|default|initial|one[ -]time|current|old|admin|root|wifi|wi-fi)"
                # no connector, so the value must look like one: a digit or a symbol in it ("must", "policy" are words)
                rf"[ \t]+(?:{_PASSWORD_WORDS}))[ \t]+[\"'`]?\K(?=[^\s\"'`]*[0-9!@#$%^&*()_+=\[\]{{}}|~<>?/\\-])"
                rf"{_PASSWORD_VALUE}",
                0.6,
            ),
            Pattern(
                "user and pass",
                r"(?<!<)(?i:\b(?:login|user(?:name)?|usr)\b[ \t:=]{1,3}[^\s/,]{1,64}[ \t]*[/,][ \t]*pass(?:word|wd)?\b"
                rf"|\bpass(?=[ \t]*[:=]))(?:{_ASSIGN_OR_IS}|[ \t]{{1,3}})\K{_PASSWORD_VALUE}",
                0.6,
            ),
            Pattern(
                "pin",
                rf"(?<!<)(?:{_PIN_WORDS})(?:[\"']?[ \t]{{0,3}}(?::=|=>|[:=#])|[ \t]+(?i:is|was)(?:[ \t]*:)?)?"
                r"[ \t]*[\"']?\K[0-9][0-9-]{2,15}[0-9](?![0-9A-Za-z]|\.[0-9])",
                0.6,
            ),
            Pattern(
                "random token after a key word",
                r"(?<!<)(?i:\b(?:api[ _-]?key|apikey|access[ _-]?key|secret[ _-]?key|key|token|secret|credential"
                r"|authorization)s?)\b"
                r"(?:[ \t]{1,3}|(?:[ \t]{1,3}[A-Za-z]{1,15}){0,3}?"
                r"(?:[ \t]{0,3}[:=][ \t]{0,3}|[ \t]{1,3}(?i:is|was)[ \t]{1,3}))[\"'`]?\K"
                rf"{_RANDOM_TOKEN}",
                0.5,
            ),
            # A UUID is an id ("request id ..."), unless a secret's word says it is a key (many vendors' keys are).
            Pattern(
                "uuid after a secret word",
                r"(?<!<)(?:(?i:\b(?:" + key_words + r")s?)\b[ \t]{1,3}"
                # "token <uuid>" is how logs name a request's id: a token's UUID needs a connector
                r"|(?i:\b(?:token|" + key_words + r")s?)\b(?:[ \t]{1,3}[A-Za-z]{1,15}){0,3}?"
                r"(?:[ \t]{0,3}[:=][ \t]{0,3}|[ \t]{1,3}(?i:is|was)[ \t]{1,3}))[\"'`]?\K"
                rf"{_UUID}(?![A-Za-z0-9-])",
                0.5,
            ),
            # Hex is a digest as often as a secret ("sha256 ...", "commit ..."): only after a word that says secret.
            Pattern(
                "hex token after a secret word",
                r"(?<!<)(?i:\b(?:token|secret|credential|authorization|auth)s?)\b"
                r"(?:[ \t]{0,3}[:=][ \t]{0,3}|[ \t]{1,3}(?i:is|was)[ \t]{1,3}|[ \t]{1,3})[\"'`]?\K"
                r"(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{32,}(?![A-Za-z0-9+/=_~-])",
                0.5,
            ),
        ],
        # Patterns only, in an automaton of their own, tested exactly (a literal such as "key" or "token" would send
        # every text that merely mentions one through the patterns above). Each alternative is a superset of
        # one pattern, on the lower-cased text: a name before ":" or "="; a password word before a connector; "pw"
        # and "pin" in the spellings the patterns accept; a key word before 16 token characters, or a few words and a
        # connector (no window of any characters: that, with the other screens, outgrows RE2's DFA).
        screens=[
            rf"(?i:(?:{_SECRET_NAMES})[\"']?[ \t\r\n]{{0,3}}[:=])",
            _PASSWORD_SCREEN,
            r"(?i:(?:pass(?:word|wd|phrase|code)s?|pwd)[ \t]+to|(?:pw|pin) to)",
            _PASSWORD_SCREEN,
            r"(?i:[/,][ \t]*pass|pass[ \t]*[:=])",
            r"(?i:pin|pass ?code|pwd|password)",
            _KEY_WORD_TOKEN_SCREEN,
            _UUID,
            r"[0-9a-fA-F]{32}",
        ],
        trigger=SeparateTrigger(
            r"(?:key|secret|token|passw[a-z0-9_]*|pwd|passphrase)[\"']?[ \t\r\n]{0,3}[:=]"
            r"|(?:pass(?:word|wd|phrase|code)s?|pass[ \t]code|pwd)[\"' \t:=#]"
            r"|pw(?: ?[:=]| (?:is|was|to)[ \t:])|pass[ \t]*[:=]|[/,][ \t]*pass(?:word|wd)?[ \t:=]"
            r"|(?:^|[^a-z0-9_])pin(?:[\"' \t:=#]|[_-]?code|[_-]?number)"
            rf"|{_KEY_WORD_TOKEN}",
            folded=True,
            screen=screen,
        ),
    )


def secret_recognizers() -> list[SecretRecognizer]:
    """A fresh instance of every secret recognizer, in :data:`SECRET_ENTITIES` order."""
    screen = SeparateScreen()
    return [
        OpenAIKeyRecognizer(),
        SecretRecognizer(
            ANTHROPIC_API_KEY,
            [Pattern("anthropic key", r"(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])", 1.0)],
            trigger=Trigger(literals=("sk-ant-",)),
        ),
        _vendor_recognizer(LLM_API_KEY, screen),
        SecretRecognizer(
            AWS_ACCESS_KEY,
            [Pattern("aws access key id", rf"(?<![A-Za-z0-9]){_AWS_ID}(?![A-Za-z0-9])", 1.0)],
            trigger=Trigger(patterns=(_AWS_ID,)),
        ),
        AwsSecretKeyRecognizer(screen),
        _vendor_recognizer(GOOGLE_API_KEY, screen),
        _vendor_recognizer(AZURE_KEY, screen),
        _vendor_recognizer(CLOUD_TOKEN, screen),
        _vendor_recognizer(STRIPE_KEY, screen),
        _vendor_recognizer(PAYMENT_KEY, screen),
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
            trigger=Trigger(literals=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
        ),
        _vendor_recognizer(GITLAB_TOKEN, screen),
        _vendor_recognizer(DEVTOOL_TOKEN, screen),
        SecretRecognizer(
            SLACK_TOKEN,
            [
                Pattern("slack token", r"(?<![A-Za-z0-9-])xox[abprse]-[A-Za-z0-9-]{10,}", 1.0),
                Pattern("slack app token", r"(?<![A-Za-z0-9-])xapp-[0-9]+-[A-Za-z0-9-]{10,}", 1.0),
                Pattern(
                    "slack webhook",
                    r"(?<=hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9_/+-]{10,}",
                    1.0,
                ),
            ],
            trigger=Trigger(literals=("xox", "xapp-", "hooks.slack.com")),
        ),
        _vendor_recognizer(MESSAGING_TOKEN, screen),
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
        _secret_recognizer(screen),
    ]
