"""Secret recognizers: vendor keys in every context, passwords in prose, triggers as supersets, false positives."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid

import pytest
import regex

from spanguard.processors.redaction import RedactionConfig, Redactor, secrets
from spanguard.processors.redaction.entities import SECRET_ENTITIES
from spanguard.processors.redaction.secrets import secret_recognizers

RNG = random.Random(20240806)
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
UPPER_DIGITS = string.ascii_uppercase + string.digits


def rand(alphabet: str, n: int) -> str:
    """``n`` random characters of ``alphabet``; with letters and digits, always some of each kind (as real keys)."""
    while True:
        value = "".join(RNG.choice(alphabet) for _ in range(n))
        kinds = [set(value) & set(kind) for kind in (string.ascii_lowercase, string.ascii_uppercase, string.digits)]
        wanted = [set(alphabet) & set(kind) for kind in (string.ascii_lowercase, string.ascii_uppercase, string.digits)]
        varied = len(set(value)) > min(n, len(set(alphabet))) // 2
        if varied and all(have or not want for have, want in zip(kinds, wanted, strict=True)):
            return value


def rand_uuid() -> str:
    return str(uuid.UUID(int=RNG.getrandbits(128), version=4))


def aws_secret() -> str:
    return rand(B64, 40)


def _samples() -> list[tuple[str, str, str]]:
    """(entity, the secret that must disappear, the text placed in a context) for every vendor family."""
    out: list[tuple[str, str, str]] = []

    def add(entity: str, secret: str, text: str | None = None) -> None:
        out.append((entity, secret, secret if text is None else text))

    # LLM vendors
    add("OPENAI_API_KEY", "sk-proj-" + rand(URLSAFE, 64) + "T3BlbkFJ" + rand(URLSAFE, 64))
    add("OPENAI_API_KEY", "sk-svcacct-" + rand(URLSAFE, 58))
    add("OPENAI_API_KEY", "sk-admin-" + rand(URLSAFE, 58))
    add("OPENAI_API_KEY", "sk-" + rand(ALNUM, 20) + "T3BlbkFJ" + rand(ALNUM, 20))
    add("ANTHROPIC_API_KEY", "sk-ant-api03-" + rand(URLSAFE, 93) + "AA")
    add("ANTHROPIC_API_KEY", "sk-ant-admin01-" + rand(URLSAFE, 93) + "AA")
    add("LLM_API_KEY", "hf_" + rand(ALNUM, 34))
    add("LLM_API_KEY", "api_org_" + rand(ALNUM, 34))
    add("LLM_API_KEY", "gsk_" + rand(ALNUM, 52))
    add("LLM_API_KEY", "r8_" + rand(ALNUM, 37))
    add("LLM_API_KEY", "pplx-" + rand(ALNUM, 48))
    add("LLM_API_KEY", "xai-" + rand(ALNUM, 80))
    add("LLM_API_KEY", "sk-or-v1-" + rand(HEX, 64))
    add("LLM_API_KEY", f"lsv2_pt_{rand(HEX, 32)}_{rand(HEX, 10)}")
    add("LLM_API_KEY", f"lsv2_sk_{rand(HEX, 32)}_{rand(HEX, 10)}")
    add("LLM_API_KEY", "sk-lf-" + rand_uuid())
    add("LLM_API_KEY", "pk-lf-" + rand_uuid())
    add("LLM_API_KEY", f"pcsk_{rand(ALNUM, 5)}_{rand(ALNUM, 63)}")
    add("LLM_API_KEY", "fw_" + rand(ALNUM, 24))
    cohere = rand(ALNUM, 40)
    add("LLM_API_KEY", cohere, f"COHERE_API_KEY={cohere}")
    mistral = rand(ALNUM, 32)
    add("LLM_API_KEY", mistral, f"my Mistral API key is {mistral}")
    together = rand(HEX, 64)
    add("LLM_API_KEY", together, f"together_api_key = '{together}'")
    # Cloud
    for prefix in ("AKIA", "ASIA", "AROA", "ABIA", "ACCA", "A3TX"):
        add("AWS_ACCESS_KEY", prefix + rand(UPPER_DIGITS, 16))
    standalone = aws_secret()
    add("AWS_SECRET_KEY", standalone)
    labelled = aws_secret()
    add("AWS_SECRET_KEY", labelled, f"aws_secret_access_key = {labelled}")
    in_json = aws_secret()
    add("AWS_SECRET_KEY", in_json, f'"SecretAccessKey": "{in_json}"')
    near_id = aws_secret()
    add("AWS_SECRET_KEY", near_id, f"AKIA{rand(UPPER_DIGITS, 16)},{near_id}")
    add("GOOGLE_API_KEY", "AIza" + rand(URLSAFE, 35))
    add("GOOGLE_API_KEY", "GOCSPX-" + rand(URLSAFE, 28))
    add("GOOGLE_API_KEY", "ya29." + rand(URLSAFE, 120))
    add("GOOGLE_API_KEY", "1//0" + rand(URLSAFE, 60))
    storage = rand(B64, 86) + "=="
    add(
        "AZURE_KEY",
        storage,
        f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={storage};EndpointSuffix=core.windows.net",
    )
    bus = rand(B64, 43) + "="
    add(
        "AZURE_KEY",
        bus,
        "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
        f"SharedAccessKey={bus}",
    )
    add("AZURE_KEY", rand(ALNUM, 3) + "8Q~" + rand(ALNUM + "_~", 34))
    sig = rand(ALNUM, 43) + "%3D"
    add("AZURE_KEY", sig, f"https://acme.blob.core.windows.net/c/a.txt?sv=2022-11-02&sp=r&se=2025-01-01&sig={sig}")
    for prefix in ("dop_v1_", "doo_v1_", "dor_v1_"):
        add("CLOUD_TOKEN", prefix + rand(HEX, 64))
    add("CLOUD_TOKEN", "LTAI" + rand(ALNUM, 20))
    add("CLOUD_TOKEN", "HRKU-AA" + rand(URLSAFE, 58))
    heroku = rand_uuid()
    add("CLOUD_TOKEN", heroku, f"HEROKU_API_KEY={heroku}")
    add("CLOUD_TOKEN", "dapi" + rand(HEX, 32))
    add("CLOUD_TOKEN", "cfut_" + rand(ALNUM, 40) + rand(HEX, 8))
    cloudflare = rand(URLSAFE, 40)
    add("CLOUD_TOKEN", cloudflare, f"CLOUDFLARE_API_TOKEN={cloudflare}")
    add("CLOUD_TOKEN", "hvs." + rand(URLSAFE, 95))
    add("CLOUD_TOKEN", "hvb." + rand(URLSAFE, 140))
    add("CLOUD_TOKEN", rand(ALNUM, 14) + ".atlasv1." + rand(ALNUM, 67))
    add("CLOUD_TOKEN", "dp.pt." + rand(ALNUM, 43))
    add("CLOUD_TOKEN", "dp.st.prd." + rand(ALNUM, 43))
    add("CLOUD_TOKEN", "ops_eyJ" + rand(B64, 260))
    groups = [rand(UPPER_DIGITS, n) for n in (6, 11, 5, 5, 5)]
    add("CLOUD_TOKEN", "A3-" + "-".join(groups))
    add("CLOUD_TOKEN", "AGE-SECRET-KEY-1" + "".join(RNG.choice("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L") for _ in range(58)))
    # Payment
    for prefix in ("sk_live_", "rk_live_", "sk_test_", "rk_test_", "pk_live_", "pk_test_"):
        add("STRIPE_KEY", prefix + rand(ALNUM, RNG.choice([24, 99])))
    add("STRIPE_KEY", "whsec_" + rand(ALNUM, 32))
    add("PAYMENT_KEY", "sq0atp-" + rand(URLSAFE, 22))
    add("PAYMENT_KEY", "sq0csp-" + rand(URLSAFE, 43))
    add("PAYMENT_KEY", "EAAA" + rand(ALNUM, 60))
    for prefix in ("shpat_", "shpss_", "shpca_", "shppa_"):
        add("PAYMENT_KEY", prefix + rand(HEX, 32))
    add("PAYMENT_KEY", f"access_token$production${rand(string.ascii_lowercase + string.digits, 16)}${rand(HEX, 32)}")
    add("PAYMENT_KEY", f"AQE{rand(B64, 72)}=-{rand(B64, 43)}=")
    add("PAYMENT_KEY", f"FLWSECK_TEST-{rand('abcdefgh0123456789', 32)}-X")
    add("PAYMENT_KEY", f"FLWPUBK-{rand('abcdefgh0123456789', 32)}-X")
    # Source control and registries
    for prefix in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"):
        add("GITHUB_TOKEN", prefix + rand(ALNUM, 36))
    add("GITHUB_TOKEN", f"github_pat_{rand(ALNUM, 22)}_{rand(ALNUM, 59)}")
    for prefix in ("glpat-", "gldt-", "glrt-", "gloas-"):
        add("GITLAB_TOKEN", prefix + rand(URLSAFE, 20 if prefix != "gloas-" else 64))
    add("GITLAB_TOKEN", "glptt-" + rand(HEX, 40))
    add("GITLAB_TOKEN", "GR1348941" + rand(URLSAFE, 20))
    add("DEVTOOL_TOKEN", "ATBB" + rand(ALNUM, 32))
    add("DEVTOOL_TOKEN", "ATATT3" + rand(URLSAFE, 182) + "=" + rand(HEX, 8).upper())
    add("DEVTOOL_TOKEN", "npm_" + rand(ALNUM, 36))
    add("DEVTOOL_TOKEN", "pypi-AgEIcHlwaS5vcmc" + rand(URLSAFE, 150))
    add("DEVTOOL_TOKEN", "dckr_pat_" + rand(URLSAFE, 27))
    add("DEVTOOL_TOKEN", "sntrys_eyJ" + rand(B64, 150))
    add("DEVTOOL_TOKEN", "sntryu_" + rand(HEX, 64))
    add("DEVTOOL_TOKEN", "NRAK-" + rand(UPPER_DIGITS, 27))
    add("DEVTOOL_TOKEN", "glc_" + rand(B64, 80))
    add("DEVTOOL_TOKEN", f"glsa_{rand(ALNUM, 32)}_{rand(HEX, 8)}")
    add("DEVTOOL_TOKEN", "lin_api_" + rand(ALNUM, 40))
    add("DEVTOOL_TOKEN", "secret_" + rand(ALNUM, 43))
    add("DEVTOOL_TOKEN", "ntn_" + rand(string.digits, 11) + rand(ALNUM, 35))
    add("DEVTOOL_TOKEN", f"PMAK-{rand(HEX, 24)}-{rand(HEX, 34)}")
    # Chat and messaging
    add("SLACK_TOKEN", f"xoxb-{rand(string.digits, 12)}-{rand(string.digits, 13)}-{rand(ALNUM, 24)}")
    add("SLACK_TOKEN", f"xapp-1-A{rand(UPPER_DIGITS, 10)}-{rand(string.digits, 13)}-{rand(HEX, 64)}")
    hook = f"T{rand(UPPER_DIGITS, 8)}/B{rand(UPPER_DIGITS, 10)}/{rand(ALNUM, 24)}"
    add("SLACK_TOKEN", hook, f"https://hooks.slack.com/services/{hook}")
    add("MESSAGING_TOKEN", f"{RNG.choice('MNO')}{rand(ALNUM, 25)}.{rand(URLSAFE, 6)}.{rand(ALNUM, 27)}")
    discord = f"{rand(string.digits, 18)}/{rand(URLSAFE, 68)}"
    add("MESSAGING_TOKEN", discord, f"https://discord.com/api/webhooks/{discord}")
    add("MESSAGING_TOKEN", f"{rand(string.digits, 10)}:AA{rand(URLSAFE, 33)}")
    teams = f"{rand_uuid()}@{rand_uuid()}/IncomingWebhook/{rand(ALNUM, 32)}/{rand_uuid()}"
    add("MESSAGING_TOKEN", teams, f"https://acme.webhook.office.com/webhookb2/{teams}")
    add("MESSAGING_TOKEN", "SK" + rand(HEX, 32))
    add("MESSAGING_TOKEN", "AC" + rand(HEX, 32))
    twilio = rand(HEX, 32)
    add("MESSAGING_TOKEN", twilio, f"twilio auth token {twilio}")
    add("MESSAGING_TOKEN", f"SG.{rand(URLSAFE, 22)}.{rand(URLSAFE, 43)}")
    add("MESSAGING_TOKEN", "key-" + rand(HEX, 32))
    add("MESSAGING_TOKEN", rand(HEX, 32) + "-us14")
    add("MESSAGING_TOKEN", "EAAB" + rand(ALNUM, 150))
    # Generic shapes
    bearer = rand(ALNUM + "-._", 40)
    add("BEARER_TOKEN", bearer, f"Bearer {bearer}")
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(b'{"sub":"1234567890","iat":1716239022}').rstrip(b"=").decode()
    add("JWT", f"{header}.{payload}.{rand(URLSAFE, 43)}")
    password = rand(ALNUM + "!$", 14)
    add("URL_PASSWORD", password, f"postgres://admin:{password}@db.internal:5432/app")
    body = rand(B64, 64)
    add("PRIVATE_KEY", body, f"-----BEGIN PRIVATE KEY-----\n{body}\n{rand(B64, 64)}\n-----END PRIVATE KEY-----")
    return out


SAMPLES = _samples()

# (text, the whole value that must become one <SECRET>): passwords and PINs in prose, and tokens after key words.
PASSWORDS = [
    ("my password is Xy!9kq&,3 - do not share", "Xy!9kq&,3"),
    ("password: #Tr0ub4dor&3", "#Tr0ub4dor&3"),
    ("password: *x9Qm!", "*x9Qm!"),
    ("password: <secret>", "<secret>"),
    ("Password = 'p@ss;w,rd&1'", "p@ss;w,rd&1"),
    ('the password for the admin account is "correct horse battery staple".', "correct horse battery staple"),
    ("my wifi password was Sunny-Day-2024.", "Sunny-Day-2024"),
    ("I set my password to Xy!9kq", "Xy!9kq"),
    ("Please change your password to Gr8-Sc0tt! today", "Gr8-Sc0tt!"),
    ("new password = abc;d3f&g", "abc;d3f&g"),
    ("pw: s3cr3t!", "s3cr3t!"),
    ("pwd=Q1w2e3r4", "Q1w2e3r4"),
    ("DB_PASSWORD=hunter22", "hunter22"),
    ("passphrase: tr0ub4dor-and-3", "tr0ub4dor-and-3"),
    ("the PIN is 4821", "4821"),
    ("PIN: 0417", "0417"),
    ("my pin is 7730.", "7730"),
    ("pin code 5521", "5521"),
    ("Card PIN 9045, expires soon", "9045"),
    ("passcode 991-223", "991-223"),
    ("login jdoe / pass ^u&Mt3&I52", "^u&Mt3&I52"),
    ("user: ops, pass: LX^P0Kvx(7", "LX^P0Kvx(7"),
    ("my api key is 7fG2kLm9QxP3vR8tZ1", "7fG2kLm9QxP3vR8tZ1"),
    ("token 9aK2xLm3Pq7Rt5Vw", "9aK2xLm3Pq7Rt5Vw"),
    ("the secret was Zq8mN3kP5xR7tW2yB4", "Zq8mN3kP5xR7tW2yB4"),
    ("credential for prod: Hq7Lp2Ws9Xe4Rt6Yb1", "Hq7Lp2Ws9Xe4Rt6Yb1"),
    ("use the key x7k2m9p4q8r1s5t3u6v0 for staging", "x7k2m9p4q8r1s5t3u6v0"),
]

# Look like secrets, are not: nothing may be redacted.
CLEAN = [
    str(uuid.UUID(int=RNG.getrandbits(128), version=4)),
    f"request {uuid.UUID(int=RNG.getrandbits(128), version=4)} failed; token {uuid.UUID(int=RNG.getrandbits(128))}",
    "commit " + hashlib.sha1(b"spanguard").hexdigest(),
    "cache key " + hashlib.sha256(b"spanguard").hexdigest(),
    "sha256:" + hashlib.sha256(b"layer").hexdigest().upper(),
    "data:image/png;base64," + base64.b64encode(RNG.randbytes(3000)).decode(),
    json.dumps({"type": "image", "data": base64.b64encode(RNG.randbytes(1500)).decode()}),
    "Total: $1,299.99 (was $1,499.00), 20% off",
    "order ORD-2023-105750 shipped; invoice INV-2024-000123",
    "release v2.14.3, pin numpy==1.26.4 and torch 2.3.1+cu121",
    "at 2024-06-19T12:30:45.123Z the job ran for 00:04:31",
    "model gpt-4o-2024-08-06, token usage for model claude-3-5-sonnet-20241022 was 1532",
    "we follow the sk-learn-style-guide-for-everyone and sk_test_integrationsuite",
    "SELECT pk_id, sk_id FROM orders WHERE pk_id = 42",
    "The key insight is simple: the token budget is shared.",
    "max_tokens: 4096, tokens_used=1532, token_type: bearer",
    "KeyError: 'user_profile_settings' in handlers/user.py line 42",
    "password is required",
    "Your password is incorrect. Please try again.",
    "reset your password is easy",
    "The password is too short; the PIN is sent to your phone.",
    "Enter your PIN to continue, then pin the message.",
    "password: str, pin: int, api_key: Optional[str] = None",
    "password = os.environ['DB_PASSWORD'] or ${DB_PASSWORD} or {{ secrets.DB_PASSWORD }}",
    "password = getpass.getpass() if pass_through else None; pass the salt, bypass: true",
    "the key: idea is simple",
    "ApplicationLoadBalancerTargetGroupHttp2x and Ec2InstanceMetadataServiceEndpointConfig",
    "see https://example.com/Docs/Guides/Setup2024/Advanced/Keys.html",
    "password: <SECRET>, token=<SECRET>, key: <REDACTION_FAILED>, pw: <DROPPED_KEY>",
    "my password is <PASSWORD:3f2a9c1b> and the PIN is ****",
    "password: ****, secret = ********",
]


def contexts(text: str) -> list[str]:
    """``text`` bare in prose, inside a JSON string, after an Authorization header, in a URL and in code."""
    return [
        f"Here it is: {text} - why does it fail?",
        json.dumps({"tool": "deploy", "args": {"value": text, "retries": 3}}),
        f"Authorization: {text}\nAccept: application/json",
        f"https://api.example.com/v1/items?page=2&credential={text}&sort=asc",
        f'client = Client(api_key="{text}", timeout=30)\nprint(client.models.list())',
    ]


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactionConfig(time_budget_ms=60_000))


def _ids(samples: list[tuple[str, str, str]]) -> list[str]:
    return [f"{entity}-{i}" for i, (entity, *_) in enumerate(samples)]


# --- vendor keys ---


@pytest.mark.parametrize(("entity", "secret", "text"), SAMPLES, ids=_ids(SAMPLES))
def test_a_vendor_secret_is_redacted_in_every_context(redactor: Redactor, entity: str, secret: str, text: str) -> None:
    for i, context in enumerate(contexts(text)):
        result = redactor.redact_text(context)
        assert secret not in result.text, (i, result.text)
        if i == 0:
            assert entity in result.entities, result.entities


def test_every_rule_of_the_vendor_table_has_a_sample() -> None:
    for rule in secrets._VENDOR_RULES:
        found = any(regex.search(rule.regex, text, flags=regex.DOTALL) for _, _, text in SAMPLES)
        assert found, rule.name


def test_every_recognizer_is_in_secret_entities_in_run_order() -> None:
    assert [r.supported_entities[0] for r in secret_recognizers()] == list(SECRET_ENTITIES)


def test_the_fast_path_finds_what_presidio_finds(redactor: Redactor) -> None:
    by_entity = {r.supported_entities[0]: r for r in secret_recognizers()}
    for entity, _, text in SAMPLES:
        presidio = {(r.start, r.end) for r in by_entity[entity].analyze(text, [entity]) if r.score > 0}
        ours = {(d.start, d.end) for d in (redactor.analyze_texts([text])[0] or ()) if d.entity_type == entity}
        assert ours and ours <= presidio, (entity, text, ours, presidio)


def test_a_standalone_aws_secret_is_a_guess_and_a_labelled_one_is_not() -> None:
    secret = aws_secret()
    strict = Redactor(RedactionConfig(score_threshold=0.6))
    assert strict.redact_text(f"here: {secret}").text == f"here: {secret}"
    assert strict.redact_text(f"aws_secret_access_key={secret}").text == "aws_secret_access_key=<AWS_SECRET_KEY>"
    assert secret not in strict.redact_text(f"AKIAIOSFODNN7EXAMPLE {secret}").text


def test_a_hex_or_low_entropy_40_character_token_is_no_aws_secret(redactor: Redactor) -> None:
    for token in (rand(HEX, 40), rand(HEX, 40).upper(), "ApplicationLoadBalancerTargetGroupHttp2x"):
        assert redactor.redact_text(f"value {token} here").entities == ()


# --- passwords and generic tokens ---


@pytest.mark.parametrize(("text", "value"), PASSWORDS, ids=[t for t, _ in PASSWORDS])
def test_a_password_or_token_in_prose_is_redacted_whole(redactor: Redactor, text: str, value: str) -> None:
    result = redactor.redact_text(text)
    assert result.text == text.replace(value, "<SECRET>", 1)
    assert result.entities == ("SECRET",)


def test_redacting_a_redacted_password_changes_nothing() -> None:
    for config in (RedactionConfig(), RedactionConfig(default_operator="mask")):
        r = Redactor(config)
        for text, _ in PASSWORDS:
            once = r.redact_text(text).text
            assert r.redact_text(once).text == once, (config.default_operator, once)


# --- triggers ---


def _all_texts() -> list[str]:
    texts = [c for _, _, text in SAMPLES for c in contexts(text)]
    texts += [text for text, _ in PASSWORDS] + CLEAN
    # The same texts with a non-ASCII character: the redactor screens those with the triggers in Python, not RE2.
    return texts + ["héllo " + text for text in texts]


ALL_TEXTS = _all_texts()


@pytest.mark.parametrize("recognizer", secret_recognizers(), ids=lambda r: r.supported_entities[0])
def test_a_trigger_fires_on_every_text_its_recognizer_matches(redactor: Redactor, recognizer: object) -> None:
    entity = recognizer.supported_entities[0]  # type: ignore[attr-defined]
    matched = 0
    for text in ALL_TEXTS:
        if not any(r.score > 0 for r in recognizer.analyze(text, [entity])):  # type: ignore[attr-defined]
            continue
        matched += 1
        assert recognizer.trigger(text, text.lower()), (entity, text)  # type: ignore[attr-defined]
        assert redactor._needs_analysis(text), (entity, text)
        if text.isascii():
            assert redactor._screen(text), (entity, text)
    assert matched, entity


def _screened_texts() -> list[str]:
    """ALL_TEXTS and the leak corpus's texts (both phrasings, two seeds), for the pattern screens."""
    from redaction_corpus.generator import generate

    texts = [
        *ALL_TEXTS,
        "your new password Xy7!pq2w, change it after login",
        "Temporary passcode: 4471-99",
        "the wifi password is hunter2!",
        "I changed the password to Tr0ub4dor&3 today",
        "login admin / pass s3cr3t-value",
        "PIN is 4821",
        "api key is 7f3kQ9zL2mN8pR4tV6wX",
        "token 3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "secret: 9e107d9d372bb6826bd81d3542a419d6",
    ]
    for seed, phrasing in ((7, "primary"), (99, "alternate")):
        corpus = generate(seed, phrasing=phrasing)
        texts += [p.text for p in corpus.planted] + [p.value for p in corpus.planted] + [c.text for c in corpus.clean]
    return texts


@pytest.mark.parametrize(
    "recognizer",
    [r for r in secret_recognizers() if getattr(r, "pattern_screens", ())],
    ids=lambda r: r.supported_entities[0],
)
def test_a_pattern_screen_finds_every_ascii_text_its_pattern_matches(recognizer: object) -> None:
    """A pattern whose screen misses is skipped, so a screen must be a superset of its pattern (or it leaks)."""
    import re2

    patterns = recognizer.patterns  # type: ignore[attr-defined]
    screens = recognizer.pattern_screens  # type: ignore[attr-defined]
    flags = recognizer.global_regex_flags or 0  # type: ignore[attr-defined]
    matched = [0] * len(patterns)
    for text in _screened_texts():
        if not text.isascii():
            continue
        for i, (pattern, screen) in enumerate(zip(patterns, screens, strict=True)):
            if screen is None or regex.search(pattern.regex, text, flags=flags) is None:
                continue
            matched[i] += 1
            assert re2.search(screen, text) is not None, (pattern.name, text)
    assert all(matched), [p.name for p, n in zip(patterns, matched, strict=True) if not n]


# --- false positives ---


@pytest.mark.parametrize("text", CLEAN, ids=[t[:40] for t in CLEAN])
def test_clean_values_are_not_redacted(redactor: Redactor, text: str) -> None:
    result = redactor.redact_text(text)
    assert result.text == text
    assert result.entities == ()
