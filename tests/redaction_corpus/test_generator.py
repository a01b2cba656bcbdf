"""The corpus generator and the detector: determinism, real-world validity of the values, and what counts as arrival."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter

import phonenumbers
import pytest

from .detect import Detector, core, flatten
from .generator import (
    KINDS,
    NER_KINDS,
    generate,
    iban_valid,
    luhn_valid,
    nhs_check_digit,
    verhoeff_valid,
)
from .plant import LOCATIONS, SCAFFOLDING, Planter, bundles

SEEDS = (7, 1234, 20240806)


@pytest.fixture(scope="module", params=SEEDS)
def corpus(request):
    return generate(request.param)


def of(corpus, kind):
    values = [p for p in corpus.planted if p.kind == kind]
    assert values, kind
    return values


def test_same_seed_same_corpus_other_seed_other_values():
    a, b, c = generate(7), generate(7), generate(8)
    assert a.planted == b.planted and a.clean == b.clean
    assert len({p.value for p in a.planted} & {p.value for p in c.planted}) < 5


def test_phrasings_are_disjoint_and_selectable():
    for kind, spec in KINDS.items():
        assert set(spec.primary).isdisjoint(spec.alternate), kind
    primary, alternate = generate(7, phrasing="primary"), generate(7, phrasing="alternate")
    assert [p.value for p in primary.planted] == [p.value for p in alternate.planted]
    same = sum(a.text == b.text for a, b in zip(primary.planted, alternate.planted, strict=True))
    assert same <= 6  # only the values whose phrasing is fixed (a display name, a keyed SSN, ...)
    with pytest.raises(ValueError):
        generate(7, phrasing="other")  # type: ignore[arg-type]


def test_every_kind_every_value_in_its_text(corpus):
    assert set(KINDS) == {p.kind for p in corpus.planted}
    for p in corpus.planted:
        assert p.value in p.text, (p.kind, p.variant)
        assert all(core(part) in core(p.value) for part in p.distinct), (p.kind, p.variant)
    counts = Counter(p.kind for p in corpus.planted)
    assert counts["PHONE"] >= 30 and 200 <= len(corpus.planted) <= 400


def test_cards_are_luhn_valid_with_real_brand_prefixes(corpus):
    prefixes = {
        "visa": r"4",
        "mastercard": r"5[1-5]",
        "mastercard-2series": r"2(22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)",
        "amex": r"3[47]",
        "discover": r"6011|65|64[4-9]",
        "jcb": r"35(2[89]|[3-8]\d)",
        "diners": r"36|38|30[0-5]",
        "unionpay": r"62",
        "maestro": r"5018|6304|6759",
    }
    for p in of(corpus, "CREDIT_CARD"):
        digits = re.sub(r"\D", "", p.value)
        assert luhn_valid(digits) and 13 <= len(digits) <= 19, p.variant
        brand = p.variant.rsplit("-", 1)[0].replace("-13", "")
        if brand in prefixes:
            assert re.match(prefixes[brand], digits), p.variant


def test_ibans_have_valid_check_digits_and_country_lengths(corpus):
    lengths = {"DE": 22, "GB": 22, "FR": 27, "ES": 24, "NL": 18, "BE": 16, "CH": 21, "PL": 28, "BR": 29, "AE": 23}
    lengths |= {"IT": 27}
    for p in of(corpus, "IBAN"):
        compact = p.value.replace(" ", "")
        assert iban_valid(compact), p.variant
        assert len(compact) == lengths[compact[:2]], p.variant


def test_national_numbers_pass_their_checksums(corpus):
    for p in of(corpus, "IN_AADHAAR"):
        digits = re.sub(r"\D", "", p.value)
        assert len(digits) == 12 and digits[0] in "23456789" and verhoeff_valid(digits)
    for p in of(corpus, "UK_NHS"):
        digits = re.sub(r"\D", "", p.value)
        assert len(digits) == 10 and nhs_check_digit(digits[:9]) == int(digits[9])
    for p in of(corpus, "US_SSN"):
        area, group, serial = re.fullmatch(r"(\d{3})[- ]?(\d{2})[- ]?(\d{4})", p.value).groups()
        assert area not in ("000", "666") and area < "900" and group != "00" and serial != "0000"
    for p in of(corpus, "UK_NINO"):
        compact = p.value.replace(" ", "")
        assert re.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", compact), p.value
        assert compact[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
    for p in of(corpus, "IN_PAN"):
        assert re.fullmatch(r"[A-Z]{3}[PCHFATBLJG][A-Z]\d{4}[A-Z]", p.value)
    tax = {p.variant: p.value for p in of(corpus, "TAX_ID")}
    assert re.fullmatch(r"9\d\d-(5\d|6[0-5]|7\d|8[0-8]|9[0-2]|9[4-9])-\d{4}", tax["us-itin"])
    assert tax["es-dni"][-1] == "TRWAGMYFPDXBNJZSQVHLCKE"[int(tax["es-dni"][:8]) % 23]


def test_phone_numbers_are_valid_for_their_country_except_the_invalid_ones(corpus):
    regions = {"us": "US", "uk": "GB", "de": "DE", "fr": "FR", "in": "IN", "jp": "JP", "au": "AU", "br": "BR"}
    regions |= {"es": "ES", "001": "DE"}  # "001 ...": dialled from Europe (00 + country code 1)
    for p in of(corpus, "PHONE"):
        if p.variant.startswith("faker"):
            continue
        number = phonenumbers.parse(p.value, regions.get(p.variant.split("-")[0], "US"))
        assert phonenumbers.is_valid_number(number) != p.variant.startswith("plus-invalid"), p.variant


VENDOR_FORMATS = {
    # From the vendors' documentation of their key formats (prefix, length, alphabet).
    "STRIPE_KEY": r"(sk|rk|pk)_(live|test)_[0-9A-Za-z]{24,99}",
    "GOOGLE_API_KEY": r"AIza[0-9A-Za-z_-]{35}",
    "AWS_ACCESS_KEY_ID": r"(AKIA|ASIA)[A-Z2-7]{16}",
    "AWS_SECRET_KEY": r"[A-Za-z0-9/+]{40}",
    "GITHUB_TOKEN": r"gh[pousr]_[0-9A-Za-z]{36}|github_pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{59}",
    "GITLAB_TOKEN": r"glpat-[0-9A-Za-z_-]{20}",
    "SLACK_TOKEN": r"xox[bp]-\d{10,13}-\d{10,13}(-\d{10,13})?-[0-9A-Za-z]{24,32}"
    r"|xapp-1-A[0-9A-Z]{10}-\d{13}-[0-9a-f]{64}",
    "SLACK_WEBHOOK": r"https://hooks\.slack\.com/services/T[0-9A-Z]{8}/B[0-9A-Z]{10}/[0-9A-Za-z]{24}",
    "DISCORD_TOKEN": r"[A-Za-z0-9]{24}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{38}",
    "DISCORD_WEBHOOK": r"https://discord\.com/api/webhooks/\d{17,19}/[A-Za-z0-9_-]{68}",
    "TELEGRAM_BOT_TOKEN": r"\d{8,10}:AA[A-Za-z0-9_-]{33}",
    "TWILIO": r"(AC|SK)?[0-9a-f]{32}",
    "SENDGRID_KEY": r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
    "OPENAI_KEY": r"sk-([0-9A-Za-z]{20}T3BlbkFJ[0-9A-Za-z]{20}|[0-9A-Za-z]{48}"
    r"|(proj|svcacct)-[\w-]{74}T3BlbkFJ[\w-]{74})",
    "ANTHROPIC_KEY": r"sk-ant-(api03|admin01)-[A-Za-z0-9_-]{93}AA",
    "HUGGINGFACE_TOKEN": r"hf_[A-Za-z]{34}",
    "GROQ_KEY": r"gsk_[0-9A-Za-z]{52}",
    "NPM_TOKEN": r"npm_[0-9A-Za-z]{36}",
    "PYPI_TOKEN": r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{100,}",
}


def test_vendor_tokens_have_the_documented_shape(corpus):
    for kind, pattern in VENDOR_FORMATS.items():
        for p in of(corpus, kind):
            assert re.fullmatch(pattern, p.value), (kind, p.variant)
            assert all(len(part) >= 16 for part in p.distinct), (kind, p.variant)


def test_jwts_and_private_keys_decode(corpus):
    for p in of(corpus, "JWT"):
        head, body, signature = p.value.split(".")
        for part in (head, body):
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,342}", signature)
    for p in of(corpus, "PRIVATE_KEY"):
        match = re.fullmatch(r"-----BEGIN ([A-Z ]+)-----\n([A-Za-z0-9+/=\n]+)\n-----END \1-----", p.value)
        assert match and base64.b64decode(match.group(2).replace("\n", ""))
        assert all(len(line) <= 64 for line in match.group(2).splitlines())
    for p in of(corpus, "URL_CREDENTIALS"):
        (password,) = p.distinct
        assert f":{password}@" in p.value


def test_clean_corpus_has_every_kind_and_no_planted_value(corpus):
    kinds = Counter(c.kind for c in corpus.clean)
    assert len(kinds) >= 19 and min(kinds.values()) >= 6
    for c in corpus.clean:
        assert c.value in c.text
    ups = [c.value for c in corpus.clean if c.kind == "TRACKING_UPS"]
    assert all(re.fullmatch(r"1Z[0-9A-Z]{16}", v) for v in ups)
    planted = {p.value for p in corpus.planted}
    assert not planted & {c.value for c in corpus.clean}


# --- detection -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector(corpus):
    return Detector(corpus, SCAFFOLDING)


def test_every_value_arrives_in_its_own_text_and_not_in_the_text_around_it(corpus, detector):
    for p in corpus.planted:
        assert detector.detectable(p), (p.kind, p.variant)
        assert detector.arrived(p, p.text), (p.kind, p.variant)
        assert not detector.arrived(p, p.text.replace(p.value, "<REDACTED>")), (p.kind, p.variant)


def test_arrival_ignores_case_separators_and_json_escaping(corpus, detector):
    card = of(corpus, "CREDIT_CARD")[0]
    digits = re.sub(r"\D", "", card.value)
    assert detector.arrived(card, " ".join(digits[i : i + 4] for i in range(0, len(digits), 4)))
    assert detector.arrived(card, f"card ...{digits[:8]}")  # 8 digits in a row: a leak
    assert not detector.arrived(card, f"card ************{digits[-4:]}")  # the last four: not
    email = of(corpus, "EMAIL")[0]
    assert detector.arrived(email, email.value.upper())
    key = of(corpus, "PRIVATE_KEY")[0]
    strings: list[str] = []
    flatten(json.dumps({"content": json.dumps([{"text": key.value}])}), strings)
    assert detector.arrived(key, "\n".join(strings))
    pin = next(p for p in of(corpus, "PASSWORD") if p.variant == "pin-4")
    assert detector.arrived(pin, f"pin {pin.value}.")
    assert not detector.arrived(pin, f"order 9{pin.value}7")


def test_scan_finds_what_arrived_finds(corpus, detector):
    text = "\n".join(p.text for p in corpus.planted[::5])
    expected = {id(p) for p in corpus.planted if detector.arrived(p, text)}
    assert {id(p) for p in detector.scan(corpus.planted, [text])} == expected


def test_core():
    assert core("Ab-12 34/cD") == "ab1234cd"
    assert core("Müller 東京") == "müller東京"


# --- planting --------------------------------------------------------------------------------------------------------


def test_bundles_hold_distinct_kinds_and_every_value_once(corpus):
    values = [p for p in corpus.planted if p.kind not in NER_KINDS]
    grouped = bundles(values, 4)
    assert all(len({p.kind for p in b}) == len(b) <= 4 for b in grouped)
    assert sorted(id(p) for b in grouped for p in b) == sorted(id(p) for p in values)
    slots = Planter.slots(grouped)
    assert len(slots) == len(grouped) * len(LOCATIONS)
