"""Labelled PII, secrets and names to plant in spans, and a clean corpus of ordinary identifiers that are not PII.

Deterministic from a seed: one ``random.Random(seed)`` and Faker instances seeded from it, in several locales. Each
kind has two disjoint sets of phrasings (the context a value is written in): ``primary`` (the tests) and
``alternate`` (the benchmark), so a benchmark run can use another seed and other phrasings than the tests.

Values follow the real formats: Luhn-valid cards of every brand, IBANs with their mod-97 check digits (and national
checks where there are simple ones), Verhoeff-valid Aadhaar numbers, mod-11 NHS numbers, SSN/ITIN/EIN ranges the
agencies issue, and vendor tokens with their documented prefix, length and alphabet around a random body (never a
real key). A value's ``distinct`` parts are what must not arrive (see ``detect.py``): the random body of a token,
the password of a URL, the digits of a number.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from faker import Faker

__all__ = [
    "CLEAN_KINDS",
    "KINDS",
    "LOCALES",
    "NER_KINDS",
    "PHRASINGS",
    "CleanValue",
    "Corpus",
    "KindSpec",
    "Planted",
    "generate",
]

Phrasing = Literal["primary", "alternate", "all"]
PHRASINGS: tuple[str, ...] = ("primary", "alternate", "all")

#: Faker locales the values are drawn from (each kind uses those that have its provider).
LOCALES: tuple[str, ...] = (
    "en_US",
    "en_GB",
    "de_DE",
    "fr_FR",
    "es_ES",
    "it_IT",
    "pt_BR",
    "nl_NL",
    "pl_PL",
    "sv_SE",
    "en_IN",
    "hi_IN",
    "ja_JP",
    "zh_CN",
    "ko_KR",
    "ru_RU",
    "tr_TR",
    "en_AU",
    "en_CA",
    "ar_AA",
)

B62 = string.ascii_letters + string.digits
B64URL = B62 + "-_"
B64 = B62 + "+/"
HEX = "0123456789abcdef"
B32 = string.ascii_uppercase + "234567"
UPPER_ALNUM = string.ascii_uppercase + string.digits
#: Assigned North American area codes (NANPA), so numbers are valid, not just well-formed.
US_AREA_CODES = (
    "201 202 206 212 213 214 216 303 305 312 313 404 408 412 415 425 469 503 512 602 612 617 646 650 702 713 718 720 "
    "773 786 805 818 832 858 917 919 929 954 972"
).split()


@dataclass(frozen=True)
class KindSpec:
    """What a kind is: its group, the JSON key and the attribute key that name it, and its phrasings."""

    group: Literal["pii", "secret", "ner"]
    json_key: str
    attr_key: str
    primary: tuple[str, ...]
    alternate: tuple[str, ...]


@dataclass(frozen=True)
class Planted:
    """One labelled value: its kind (the report's entity type), how it is written, and what must not arrive."""

    kind: str
    variant: str
    value: str
    text: str
    """The value in a sentence or line with its context (``{v}`` of a phrasing filled in)."""
    distinct: tuple[str, ...]
    """The parts of the value that must not arrive (the whole value unless the value has a public prefix)."""
    attr_value: str = ""
    """The value as stored under its kind's attribute key (``Bearer <token>`` for a header); default: the value."""

    @property
    def group(self) -> str:
        return KINDS[self.kind].group

    @property
    def json_key(self) -> str:
        return KINDS[self.kind].json_key

    @property
    def attr_key(self) -> str:
        return KINDS[self.kind].attr_key

    @property
    def stored(self) -> str:
        return self.attr_value or self.value


@dataclass(frozen=True)
class CleanValue:
    """An ordinary identifier or text that is not PII: it must arrive unchanged."""

    kind: str
    value: str
    text: str


@dataclass(frozen=True)
class Corpus:
    seed: int
    phrasing: str
    planted: tuple[Planted, ...]
    clean: tuple[CleanValue, ...]
    templates: tuple[str, ...] = field(repr=False, default=())
    """Every phrasing and clean template of both sets, for the detector's list of non-distinctive text."""

    def kinds(self) -> list[str]:
        return sorted({p.kind for p in self.planted})


def _spec(group: str, json_key: str, attr_key: str, primary: list[str], alternate: list[str]) -> KindSpec:
    return KindSpec(group, json_key, attr_key, tuple(primary), tuple(alternate))  # type: ignore[arg-type]


KINDS: dict[str, KindSpec] = {
    # --- personal data --------------------------------------------------------------------------------------------
    "EMAIL": _spec(
        "pii",
        "email",
        "user.email",
        ["Please send the receipt to {v}.", "my email is {v}", "Contact: {v}", "cc {v} on the reply pls"],
        ["You can reach me at {v} anytime.", "email -> {v}", "Reply-To: {v}", "it's {v} (work address)"],
    ),
    "PHONE": _spec(
        "pii",
        "phone",
        "customer.phone",
        ["Call me on {v} after 5pm.", "my number is {v}", "Phone: {v}", "text me at {v} if the courier is late"],
        ["You can ring {v} during office hours.", "tel {v}", "Mobile no. {v}", "whatsapp {v} pls"],
    ),
    "CREDIT_CARD": _spec(
        "pii",
        "card_number",
        "payment.card.number",
        [
            "Charge it to my card {v}, exp 04/28.",
            "card number: {v}",
            "use the visa ending... actually full number is {v}",
            "cc# {v}",
        ],
        ["Please bill {v} for the upgrade.", "my credit card is {v}", "PAN {v} (corporate card)", "card: {v}"],
    ),
    "IBAN": _spec(
        "pii",
        "iban",
        "customer.iban",
        ["Refund to my IBAN {v} please.", "IBAN: {v}", "bank account {v}", "wire it to {v}, thanks"],
        ["My account for the transfer is {v}.", "iban {v}", "Kontonummer (IBAN) {v}", "pay out to {v}"],
    ),
    "US_SSN": _spec(
        "pii",
        "ssn",
        "customer.ssn",
        ["My SSN is {v}.", "customer.ssn: {v}", "social security number {v}", "ssn={v}"],
        ["Social Security No. {v} for the credit check", "SSN: {v}", "ss# {v}", "last form asked for my ssn, it's {v}"],
    ),
    "IP_ADDRESS": _spec(
        "pii",
        "ip",
        "client.address",
        ["The login came from {v}.", "my IP is {v}", "client ip: {v}", "blocked {v} again??"],
        ["Requests from {v} are failing.", "source address {v}", "whitelist {v} pls", "connected from {v} at home"],
    ),
    "UK_NINO": _spec(
        "pii",
        "ni_number",
        "customer.ni_number",
        ["My National Insurance number is {v}.", "NI number: {v}", "NINO {v}", "ni no {v}"],
        ["National Insurance No. {v} for payroll", "NI: {v}", "my nat ins number is {v}", "NINo {v}"],
    ),
    "PASSPORT": _spec(
        "pii",
        "passport_number",
        "traveller.passport_number",
        ["My passport number is {v}.", "Passport No. {v}", "passport: {v}", "booked with passport {v}"],
        ["Passport number {v}, expires 2031.", "passport# {v}", "Reisepass Nr. {v}", "pp no {v}"],
    ),
    "IN_AADHAAR": _spec(
        "pii",
        "aadhaar",
        "customer.aadhaar",
        ["My Aadhaar number is {v}.", "Aadhaar: {v}", "aadhar no {v}", "UID {v}"],
        ["Aadhaar card {v} for KYC", "aadhaar {v}", "my aadhar is {v}", "Aadhaar No. {v}"],
    ),
    "IN_PAN": _spec(
        "pii",
        "pan",
        "customer.pan",
        ["My PAN is {v}.", "PAN: {v}", "pan card {v}", "PAN number {v} for TDS"],
        ["Permanent Account Number {v}", "pan no. {v}", "my pan card no is {v}", "PAN {v}"],
    ),
    "UK_NHS": _spec(
        "pii",
        "nhs_number",
        "patient.nhs_number",
        ["My NHS number is {v}.", "NHS No: {v}", "nhs number {v}", "patient NHS {v}"],
        ["NHS number {v} for the referral", "NHS# {v}", "my nhs no is {v}", "NHS Number: {v}"],
    ),
    "US_DRIVER_LICENSE": _spec(
        "pii",
        "drivers_license",
        "customer.drivers_license",
        ["My driver's license number is {v}.", "DL# {v}", "driver license: {v}", "DLN {v}"],
        ["Driver's licence no. {v} for the rental", "license number {v}", "my DL is {v}", "Drivers License {v}"],
    ),
    "TAX_ID": _spec(
        "pii",
        "tax_id",
        "customer.tax_id",
        ["My tax ID is {v}.", "TIN: {v}", "tax identification number {v}", "tax id {v}"],
        ["Taxpayer ID {v} for the invoice", "tax no. {v}", "my TIN is {v}", "Tax ID: {v}"],
    ),
    "DATE_OF_BIRTH": _spec(
        "pii",
        "date_of_birth",
        "user.date_of_birth",
        ["My date of birth is {v}.", "DOB: {v}", "born on {v}", "dob {v}"],
        ["Date of birth {v}, for the insurance form", "d.o.b. {v}", "birthday: {v}", "I was born {v}"],
    ),
    "STREET_ADDRESS": _spec(
        "pii",
        "address",
        "customer.address",
        ["Please ship to {v}.", "my address is {v}", "Address: {v}", "deliver to {v} pls"],
        ["Send the replacement to {v}.", "shipping address {v}", "I live at {v}", "new address: {v}"],
    ),
    # --- secrets --------------------------------------------------------------------------------------------------
    "STRIPE_KEY": _spec(
        "secret",
        "api_key",
        "stripe.api_key",
        ["Here is our Stripe key: {v}", "STRIPE_KEY={v}", "stripe {v}", "try with {v}"],
        ["Stripe.api_key = '{v}'", "the stripe secret is {v}", "key: {v}", "use {v} for payments"],
    ),
    "GOOGLE_API_KEY": _spec(
        "secret",
        "api_key",
        "google.api_key",
        ["Maps key: {v}", "GOOGLE_API_KEY={v}", "use {v} for geocoding", "key={v}"],
        ["our google key is {v}", 'apiKey: "{v}"', "https://maps.googleapis.com/maps/api/js?key={v}", "{v}"],
    ),
    "AWS_ACCESS_KEY_ID": _spec(
        "secret",
        "access_key_id",
        "aws.access_key_id",
        ["access key id {v}", "AWS_ACCESS_KEY_ID={v}", "the IAM key {v} is failing", "{v}"],
        ["aws key: {v}", "AccessKeyId: {v}", "credentials {v}", "using {v} in us-east-1"],
    ),
    "AWS_SECRET_KEY": _spec(
        "secret",
        "secret",
        "aws.credentials.secret",
        ["{v}", "secret: {v}", "here you go {akid} {v}", "SecretAccessKey={v}"],
        ["key pair {akid}:{v}", "and the secret is {v}", "SECRET_KEY={v}", "paste this in: {v}"],
    ),
    "GITHUB_TOKEN": _spec(
        "secret",
        "token",
        "github.token",
        ["GitHub token: {v}", "GITHUB_TOKEN={v}", "git clone https://{v}@github.com/acme/app.git", "gh auth with {v}"],
        ["my PAT is {v}", "token {v}", "export GH_TOKEN={v}", "use {v} for the CI"],
    ),
    "GITLAB_TOKEN": _spec(
        "secret",
        "token",
        "gitlab.token",
        ["GitLab token: {v}", "PRIVATE-TOKEN: {v}", "CI_JOB_TOKEN={v}", "glab auth login -t {v}"],
        ["our gitlab PAT {v}", "token={v}", "gitlab {v}", "use {v} to push"],
    ),
    "SLACK_TOKEN": _spec(
        "secret",
        "token",
        "slack.token",
        ["Slack bot token: {v}", "SLACK_BOT_TOKEN={v}", "token {v}", "use {v} for the bot"],
        ["slack token is {v}", "xoxb?? i think it's {v}", "SLACK_TOKEN: {v}", "auth with {v}"],
    ),
    "SLACK_WEBHOOK": _spec(
        "secret",
        "webhook_url",
        "slack.webhook_url",
        ["Post alerts to {v}", "SLACK_WEBHOOK_URL={v}", "webhook: {v}", "curl -X POST {v}"],
        ["the incoming webhook is {v}", "url={v}", "alerts go to {v}", "hook {v}"],
    ),
    "DISCORD_TOKEN": _spec(
        "secret",
        "token",
        "discord.bot_token",
        ["Discord bot token: {v}", "DISCORD_TOKEN={v}", "client.run('{v}')", "bot token {v}"],
        ["my discord token is {v}", "token: {v}", "Authorization: Bot {v}", "bot {v}"],
    ),
    "DISCORD_WEBHOOK": _spec(
        "secret",
        "webhook_url",
        "discord.webhook_url",
        ["Webhook: {v}", "DISCORD_WEBHOOK={v}", "post to {v}", "curl -H 'Content-Type: application/json' {v}"],
        ["our discord hook is {v}", "url: {v}", "send it to {v}", "webhook_url={v}"],
    ),
    "TELEGRAM_BOT_TOKEN": _spec(
        "secret",
        "token",
        "telegram.bot_token",
        ["Telegram bot token: {v}", "TELEGRAM_TOKEN={v}", "https://api.telegram.org/bot{v}/getMe", "token {v}"],
        ["botfather gave me {v}", "bot token: {v}", "TOKEN = '{v}'", "use {v}"],
    ),
    "TWILIO": _spec(
        "secret",
        "credential",
        "twilio.credential",
        ["Twilio: {v}", "TWILIO_AUTH_TOKEN={v}", "twilio {v}", "account {v}"],
        ["twilio creds {v}", "auth token {v}", "TWILIO_API_KEY={v}", "sid {v}"],
    ),
    "SENDGRID_KEY": _spec(
        "secret",
        "api_key",
        "sendgrid.api_key",
        ["SendGrid key: {v}", "SENDGRID_API_KEY={v}", "sg key {v}", "Authorization: Bearer {v}"],
        ["our sendgrid key is {v}", "apikey {v}", "key={v}", "mail key {v}"],
    ),
    "OPENAI_KEY": _spec(
        "secret",
        "api_key",
        "openai.api_key",
        ["OpenAI key: {v}", "OPENAI_API_KEY={v}", 'openai.api_key = "{v}"', "try my key {v}"],
        ["my openai key is {v}", "key {v}", "export OPENAI_API_KEY='{v}'", "use {v} for the eval"],
    ),
    "ANTHROPIC_KEY": _spec(
        "secret",
        "api_key",
        "anthropic.api_key",
        ["Anthropic key: {v}", "ANTHROPIC_API_KEY={v}", "x-api-key: {v}", "claude key {v}"],
        ["my anthropic key is {v}", "api key {v}", "export ANTHROPIC_API_KEY={v}", "use {v}"],
    ),
    "HUGGINGFACE_TOKEN": _spec(
        "secret",
        "token",
        "huggingface.token",
        ["HF token: {v}", "HF_TOKEN={v}", "huggingface-cli login --token {v}", "hf {v}"],
        ["my hugging face token is {v}", "token={v}", "HUGGING_FACE_HUB_TOKEN={v}", "use {v} to pull"],
    ),
    "GROQ_KEY": _spec(
        "secret",
        "api_key",
        "groq.api_key",
        ["Groq key: {v}", "GROQ_API_KEY={v}", "groq {v}", "key {v}"],
        ["my groq key is {v}", 'api_key="{v}"', "export GROQ_API_KEY={v}", "use {v}"],
    ),
    "NPM_TOKEN": _spec(
        "secret",
        "token",
        "npm.token",
        ["npm token: {v}", "//registry.npmjs.org/:_authToken={v}", "NPM_TOKEN={v}", "publish with {v}"],
        ["my npm token is {v}", "authToken {v}", "token={v}", "use {v} in CI"],
    ),
    "PYPI_TOKEN": _spec(
        "secret",
        "token",
        "pypi.token",
        ["PyPI token: {v}", "TWINE_PASSWORD={v}", "password = {v}", "upload with {v}"],
        ["my pypi token is {v}", "token {v}", "UV_PUBLISH_TOKEN={v}", "use {v}"],
    ),
    "JWT": _spec(
        "secret",
        "token",
        "auth.token",
        ["token: {v}", "Cookie: session={v}", "the JWT is {v}", "id_token={v}"],
        ["here's my session token {v}", "jwt {v}", "access_token: {v}", "{v}"],
    ),
    "PRIVATE_KEY": _spec(
        "secret",
        "private_key",
        "tls.private_key",
        ["Here is the key:\n{v}", "private key:\n{v}", "{v}", "key file contents:\n{v}\n"],
        ["the deploy key is\n{v}", "id_rsa:\n{v}", "pasting it here\n{v}", 'PRIVATE_KEY="{v}"'],
    ),
    "URL_CREDENTIALS": _spec(
        "secret",
        "dsn",
        "db.connection_string",
        ["DATABASE_URL={v}", "connect with {v}", "dsn: {v}", "psql {v}"],
        ["our connection string is {v}", "url={v}", "broker {v}", "use {v}"],
    ),
    "BEARER_TOKEN": _spec(
        "secret",
        "authorization",
        "http.request.header.authorization",
        [
            "Authorization: Bearer {v}",
            "curl -H 'Authorization: Bearer {v}' https://api.acme.io/v1/me",
            "bearer {v}",
            "headers = {{'Authorization': 'Bearer {v}'}}",
        ],
        [
            "Authorization: bearer {v}",
            "auth header was Bearer {v}",
            '-H "Authorization: Bearer {v}"',
            "access token {v}",
        ],
    ),
    "GENERIC_SECRET": _spec(
        "secret",
        "api_key",
        "app.api_key",
        ["my api key is {v}", "api_key={v}", "X-API-Key: {v}", "client_secret: {v}"],
        ["the access token is {v}", 'token = "{v}"', "secret {v}", "apikey: {v}"],
    ),
    "PASSWORD": _spec(
        "secret",
        "password",
        "user.password",
        ["my password is {v}", "password: {v}", "pwd={v}", "login jdoe / pass {v}"],
        ["my passcode is {v}", "Password - {v}", "pw: {v}", "i set the password to {v} yesterday"],
    ),
    # --- names (NER only) -----------------------------------------------------------------------------------------
    "PERSON": _spec(
        "ner",
        "name",
        "user.full_name",
        ["My name is {v}.", "This is {v} from accounts.", "Customer: {v}", "please ask {v} to call back"],
        ["Hi, I'm {v} and I need help.", "Name: {v}", "{v} approved the refund", "regards, {v}"],
    ),
}

#: Kinds that only a NER model can find (measured by the benchmark with the model on, not asserted by the tests).
NER_KINDS: frozenset[str] = frozenset(kind for kind, spec in KINDS.items() if spec.group == "ner")

#: The PIN / passcode phrasings used for short numeric passwords (both sets).
_PIN_PHRASES = (("my PIN is {v}", "PIN: {v}"), ("card pin {v}", "the passcode is {v}"))

CLEAN_KINDS: tuple[str, ...] = (
    "ORDER_NUMBER",
    "PO_NUMBER",
    "INVOICE_NUMBER",
    "TICKET",
    "REFERENCE",
    "TRACKING_UPS",
    "TRACKING_FEDEX",
    "TRACKING_USPS",
    "TIMESTAMP_ISO",
    "EPOCH_SECONDS",
    "EPOCH_MILLIS",
    "VERSION",
    "UUID",
    "PRICE",
    "GIT_SHA",
    "SHA256",
    "BUILD_NUMBER",
    "PROSE",
    "CODE",
)

_CLEAN_PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ORDER_NUMBER": (("Where is my order {v}?", "order {v} still says processing"), ("Order #{v}", "re: order {v}")),
    "PO_NUMBER": (("PO {v} was approved.", "purchase order {v}"), ("PO# {v}", "our PO is {v}")),
    "INVOICE_NUMBER": (("Invoice {v} is overdue.", "invoice no. {v}"), ("inv {v}", "see invoice {v}")),
    "TICKET": (("Ticket {v} is reopened.", "support ticket {v}"), ("case {v}", "re ticket {v}")),
    "REFERENCE": (("Your reference is {v}.", "ref {v}"), ("booking ref {v}", "confirmation {v}")),
    "TRACKING_UPS": (("UPS tracking {v}", "tracking number {v}"), ("ups {v}", "track {v}")),
    "TRACKING_FEDEX": (("FedEx tracking {v}", "tracking no {v}"), ("fedex {v}", "shipment {v}")),
    "TRACKING_USPS": (("USPS tracking {v}", "tracking # {v}"), ("usps {v}", "parcel {v}")),
    "TIMESTAMP_ISO": (("It failed at {v}.", "timestamp {v}"), ("since {v}", "last seen {v}")),
    "EPOCH_SECONDS": (("created_at={v}", "ts {v}"), ("epoch {v}", "at {v}")),
    "EPOCH_MILLIS": (("timestamp_ms={v}", "event time {v}"), ("ts_ms {v}", "t={v}")),
    "VERSION": (("Upgraded to {v}.", "version {v}"), ("running {v}", "since release {v}")),
    "UUID": (("request id {v}", "trace {v}"), ("id: {v}", "correlation {v}")),
    "PRICE": (("It costs {v}.", "total {v}"), ("price {v}", "charged {v}")),
    "GIT_SHA": (("Fixed in commit {v}.", "revert {v}"), ("sha {v}", "cherry-pick {v}")),
    "SHA256": (("sha256 checksum {v}", "digest {v}"), ("sha256:{v}", "hash {v}")),
    "BUILD_NUMBER": (("Build {v} is green.", "build number {v}"), ("CI build {v}", "job {v}")),
    "PROSE": (("{v}",), ("{v}",)),
    "CODE": (("{v}",), ("{v}",)),
}


# ---------------------------------------------------------------------------------------------------------------------
# checksums


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit to append to ``digits``."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = [c for c in number if c.isdigit()]
    return bool(digits) and luhn_check_digit("".join(digits[:-1])) == digits[-1]


def iban_check_digits(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return f"{98 - int(numeric) % 97:02d}"


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    numeric = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(numeric) % 97 == 1


_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]
_VERHOEFF_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def verhoeff_check_digit(digits: str) -> str:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[(i + 1) % 8][int(ch)]]
    return str(_VERHOEFF_INV[c])


def verhoeff_valid(number: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][int(ch)]]
    return c == 0


def nhs_check_digit(nine: str) -> int | None:
    """The NHS number's mod-11 check digit for its first nine digits (None: no valid number starts so)."""
    remainder = sum(int(d) * (10 - i) for i, d in enumerate(nine)) % 11
    check = 11 - remainder
    if check == 11:
        return 0
    return None if check == 10 else check


# ---------------------------------------------------------------------------------------------------------------------
# the generator


class _Generator:
    def __init__(self, seed: int, phrasing: Phrasing) -> None:
        self.seed = seed
        self.phrasing = phrasing
        self.rng = random.Random(seed)
        self.fakers: dict[str, Faker] = {}
        for i, locale in enumerate(LOCALES):
            fake = Faker(locale)
            fake.seed_instance(seed * 1000 + i)
            self.fakers[locale] = fake
        self.planted: list[Planted] = []
        self.phrase_index: dict[str, int] = {}

    # --- helpers ------------------------------------------------------------------------------------------------------

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def digits(self, n: int, first: str = "0123456789") -> str:
        return self.rng.choice(first) + self.s(string.digits, n - 1)

    def faker(self, *locales: str) -> Faker:
        return self.fakers[self.rng.choice(locales or LOCALES)]

    def phrases(self, kind: str) -> tuple[str, ...]:
        spec = KINDS[kind]
        if self.phrasing == "primary":
            return spec.primary
        if self.phrasing == "alternate":
            return spec.alternate
        return spec.primary + spec.alternate

    def plant(
        self,
        kind: str,
        variant: str,
        value: str,
        *,
        distinct: tuple[str, ...] | None = None,
        attr_value: str = "",
        phrases: tuple[str, ...] | None = None,
        **fill: str,
    ) -> None:
        options = phrases or self.phrases(kind)
        # Round robin over the phrasings of the kind, so every phrasing is used as often as the others.
        index = self.phrase_index.get(kind, self.rng.randrange(len(options)))
        self.phrase_index[kind] = index + 1
        template = options[index % len(options)]
        text = template.replace("{{", "\x00").replace("}}", "\x01")
        text = text.replace("{v}", value)
        for name, filler in fill.items():
            text = text.replace("{" + name + "}", filler)
        text = text.replace("\x00", "{").replace("\x01", "}")
        self.planted.append(Planted(kind, variant, value, text, distinct or (value,), attr_value))

    # --- personal data ------------------------------------------------------------------------------------------------

    def emails(self) -> None:
        rng = self.rng
        for locale in ("en_US", "de_DE", "fr_FR", "pt_BR", "en_IN", "ja_JP"):
            self.plant("EMAIL", f"faker-{locale}", self.fakers[locale].email())
        first = self.faker("en_US", "en_GB").first_name().lower()
        last = self.faker("en_US", "en_GB").last_name().lower()
        self.plant("EMAIL", "plus-tag", f"{first}.{last}+{rng.choice(['billing', 'shop', 'amazon', 'news'])}@gmail.com")
        sub = rng.choice(["mail.eu", "corp.us", "staff.uni", "mx1.mail"])
        org = self.faker("en_GB").domain_word()
        self.plant("EMAIL", "subdomain", f"{first[0]}.{last}@{sub}.{org}.co.uk")
        tld = rng.choice(["io", "dev", "app", "shop", "photography", "berlin", "xn--p1ai"])
        self.plant("EMAIL", "new-tld", f"{last}{rng.randint(1, 99)}@{self.faker('en_US').domain_word()}.{tld}")
        self.plant("EMAIL", "uppercase", f"{first}.{last}@{self.faker('en_US').free_email_domain()}".upper())
        self.plant("EMAIL", "underscore-hyphen", f"{first}_{last}-{rng.randint(10, 99)}@outlook.com")
        name = self.faker("en_US").name()
        self.plant("EMAIL", "display-name", f"{first}.{last}@{org}.com", phrases=(f'From: "{name}" <{{v}}>',))

    def phones(self) -> None:
        rng, d = self.rng, self.digits

        def us() -> tuple[str, str, str]:
            return rng.choice(US_AREA_CODES), d(3, "23456789"), d(4)

        area, exch, line = us()
        self.plant("PHONE", "us-national", f"({area}) {exch}-{line}")
        area, exch, line = us()
        self.plant("PHONE", "us-dashed", f"{area}-{exch}-{line}")
        area, exch, line = us()
        self.plant("PHONE", "us-dotted", f"{area}.{exch}.{line}")
        area, exch, line = us()
        self.plant("PHONE", "us-e164", f"+1{area}{exch}{line}")
        area, exch, line = us()
        self.plant("PHONE", "us-ext-x", f"{area}-{exch}-{line} x{rng.randint(10, 9999)}")
        self.plant("PHONE", "us-011", f"011 44 20 {d(4, '378')} {d(4)}")
        self.plant("PHONE", "uk-mobile", f"07{d(3, '1234579')} {d(6)}")
        self.plant("PHONE", "uk-london", f"020 {d(4, '378')} {d(4)}")
        self.plant("PHONE", "uk-intl-0", f"+44 (0)20 {d(4, '378')} {d(4)}")
        self.plant("PHONE", "uk-ext", f"+44 161 {d(3, '23456789')} {d(4)} ext. {rng.randint(1, 99)}")
        self.plant("PHONE", "de-national", f"030 {d(8, '123456789')}")
        self.plant("PHONE", "de-mobile-intl", f"+49 (0)15{rng.choice('1279')} {d(4)} {d(4)}")
        self.plant("PHONE", "de-00", f"0049 89 {d(7, '123456789')}")
        self.plant(
            "PHONE", "fr-national", f"0{rng.choice('12345')} {d(2, '123456789')} " + " ".join(d(2) for _ in range(3))
        )
        self.plant("PHONE", "fr-mobile-intl", f"+33 6 {d(2, '0124578')} " + " ".join(d(2) for _ in range(3)))
        self.plant("PHONE", "fr-dotted", f"06.{d(2, '0124578')}." + ".".join(d(2) for _ in range(3)))
        self.plant("PHONE", "in-mobile", f"+91 {d(5, '6789')} {d(5)}")
        self.plant("PHONE", "in-plain", d(10, "6789"))
        self.plant("PHONE", "jp-tokyo", f"03-{d(4, '123456789')}-{d(4)}")
        self.plant("PHONE", "jp-mobile-intl", f"+81 {rng.choice(['70', '80', '90'])}-{d(4, '123456789')}-{d(4)}")
        self.plant("PHONE", "au-landline", f"(02) {d(4, '89')} {d(4)}")
        self.plant("PHONE", "au-mobile", f"04{d(2, '0123')} {d(3)} {d(3)}")
        self.plant("PHONE", "br-mobile", f"(11) 9{d(4)}-{d(4)}")
        self.plant("PHONE", "br-intl", f"+55 21 9{d(4)}-{d(4)}")
        self.plant("PHONE", "001-prefix", f"001 {rng.choice(US_AREA_CODES)} {d(3, '23456789')} {d(4)}")
        self.plant("PHONE", "es-intl", f"+34 6{d(2)} {d(3)} {d(3)}")
        # "+" numbers libphonenumber calls invalid (wrong length for the country), as people still type them.
        self.plant("PHONE", "plus-invalid-length", f"+1 {rng.choice(US_AREA_CODES)} {d(3, '23456789')} {d(5)}")
        self.plant("PHONE", "plus-invalid-short", f"+44 20 {d(4, '378')} {d(2)}")
        for locale in ("en_US", "en_GB", "de_DE", "fr_FR", "pt_BR", "hi_IN", "ja_JP", "it_IT", "nl_NL", "ko_KR"):
            number = self.fakers[locale].phone_number()
            if sum(c.isdigit() for c in number) >= 8:
                self.plant("PHONE", f"faker-{locale}", number)

    def cards(self) -> None:
        rng = self.rng
        brands = [
            ("visa", ["4"], 16, (4, 4, 4, 4)),
            ("visa-13", ["4"], 13, (4, 3, 3, 3)),
            ("mastercard", ["51", "52", "53", "54", "55"], 16, (4, 4, 4, 4)),
            ("mastercard-2series", [str(rng.randint(2221, 2720))], 16, (4, 4, 4, 4)),
            ("amex", ["34", "37"], 15, (4, 6, 5)),
            ("discover", ["6011", "65", str(rng.randint(644, 649))], 16, (4, 4, 4, 4)),
            ("jcb", [str(rng.randint(3528, 3589))], 16, (4, 4, 4, 4)),
            ("diners", ["36", "38", str(rng.randint(300, 305))], 14, (4, 6, 4)),
            ("unionpay", ["62"], 19, (4, 4, 4, 4, 3)),
            ("maestro", ["5018", "6304", "6759"], 16, (4, 4, 4, 4)),
        ]
        for i, (brand, prefixes, length, groups) in enumerate(brands):
            prefix = rng.choice(prefixes)
            body = prefix + self.s(string.digits, length - len(prefix) - 1)
            number = body + luhn_check_digit(body)
            style = ("plain", "spaced", "dashed")[i % 3]
            if style == "plain":
                shown = number
            else:
                parts, at = [], 0
                for g in groups:
                    parts.append(number[at : at + g])
                    at += g
                shown = (" " if style == "spaced" else "-").join(parts)
            self.plant("CREDIT_CARD", f"{brand}-{style}", shown)
        for card_type in ("visa16", "mastercard", "amex"):
            self.plant("CREDIT_CARD", f"faker-{card_type}", self.faker("en_US").credit_card_number(card_type))

    def ibans(self) -> None:
        rng, d = self.rng, self.digits
        up = string.ascii_uppercase

        def es() -> str:
            bank, branch, account = d(4), d(4), d(10)
            w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]

            def check(digits: str) -> str:
                c = 11 - sum(int(x) * w[i] for i, x in enumerate(digits)) % 11
                return "0" if c == 11 else "1" if c == 10 else str(c)

            return bank + branch + check("00" + bank + branch) + check(account) + account

        def fr() -> str:
            bank, branch, account = d(5), d(5), d(11)
            key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
            return f"{bank}{branch}{account}{key:02d}"

        def be() -> str:
            first = d(10)
            check = int(first) % 97 or 97
            return f"{first}{check:02d}"

        formats: list[tuple[str, Callable[[], str]]] = [
            ("DE", lambda: d(8) + d(10)),
            ("GB", lambda: self.s(up, 4) + d(6) + d(8)),
            ("FR", fr),
            ("ES", es),
            ("NL", lambda: self.s(up, 4) + d(10)),
            ("BE", be),
            ("CH", lambda: d(5) + d(12)),
            ("PL", lambda: d(8) + d(16)),
            ("BR", lambda: d(8) + d(5) + d(10) + rng.choice("CP") + self.s(UPPER_ALNUM, 1)),
            ("AE", lambda: d(3) + d(16)),
        ]
        for i, (country, bban_of) in enumerate(formats):
            bban = bban_of()
            iban = country + iban_check_digits(country, bban) + bban
            spaced = i % 2 == 0
            shown = " ".join(iban[j : j + 4] for j in range(0, len(iban), 4)) if spaced else iban
            self.plant("IBAN", f"{country.lower()}-{'spaced' if spaced else 'plain'}", shown)
        for locale in ("de_DE", "en_GB", "it_IT"):
            self.plant("IBAN", f"faker-{locale}", self.fakers[locale].iban())

    def ssns(self) -> None:
        rng = self.rng

        def ssn() -> tuple[str, str, str]:
            area = rng.choice([a for a in range(1, 900) if a != 666])
            return f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"

        a, g, s = ssn()
        self.plant("US_SSN", "dashed", f"{a}-{g}-{s}")
        a, g, s = ssn()
        self.plant("US_SSN", "spaced", f"{a} {g} {s}")
        a, g, s = ssn()
        self.plant("US_SSN", "plain-key", f"{a}{g}{s}", phrases=("customer.ssn: {v}", "ssn={v}", '"ssn": "{v}"'))
        a, g, s = ssn()
        self.plant("US_SSN", "plain-context", f"{a}{g}{s}")
        a, g, s = ssn()
        self.plant("US_SSN", "dashed-2", f"{a}-{g}-{s}")
        self.plant("US_SSN", "faker", self.fakers["en_US"].ssn())

    def ips(self) -> None:
        rng = self.rng
        fake = self.fakers["en_US"]
        self.plant("IP_ADDRESS", "ipv4-public", fake.ipv4_public())
        self.plant("IP_ADDRESS", "ipv4-port", f"{fake.ipv4_public()}:{rng.choice([443, 8080, 8443, 22])}")
        self.plant("IP_ADDRESS", "ipv4-private", fake.ipv4_private())
        self.plant("IP_ADDRESS", "ipv6-full", fake.ipv6())
        groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(3)]
        self.plant("IP_ADDRESS", "ipv6-compressed", f"2a02:{groups[0]}:{groups[1]}::{groups[2]}")
        self.plant("IP_ADDRESS", "ipv4-mapped-ipv6", f"::ffff:{fake.ipv4_public()}")

    def ninos(self) -> None:
        rng = self.rng
        first_letters = "ABCEGHJKLMNOPRSTWXYZ"
        second_letters = "ABCEGHJKLMNPRSTWXYZ"
        for style in ("spaced", "plain", "spaced", "plain"):
            while True:
                prefix = rng.choice(first_letters) + rng.choice(second_letters)
                if prefix not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
                    break
            digits = self.s(string.digits, 6)
            suffix = rng.choice("ABCD")
            shown = (
                f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
                if style == "spaced"
                else f"{prefix}{digits}{suffix}"
            )
            self.plant("UK_NINO", style, shown)

    def passports(self) -> None:
        rng, d = self.rng, self.digits
        up = string.ascii_uppercase
        self.plant("PASSPORT", "us-9-digits", d(9, "123456789"))
        self.plant("PASSPORT", "us-next-gen", rng.choice(up) + d(8))
        self.plant("PASSPORT", "uk", d(9, "123456789"))
        self.plant("PASSPORT", "de", rng.choice("CFGHJK") + self.s("CFGHJKLMNPRTVWXYZ0123456789", 8))
        self.plant("PASSPORT", "fr", d(2) + self.s(up, 2) + d(5))
        self.plant("PASSPORT", "in", rng.choice(up) + d(7, "123456789"))
        self.plant("PASSPORT", "ca", self.s(up, 2) + d(6))
        self.plant("PASSPORT", "faker-en_US", self.fakers["en_US"].passport_number())

    def aadhaar(self) -> None:
        for style in ("spaced", "plain", "spaced", "dashed"):
            eleven = self.digits(11, "23456789")
            number = eleven + verhoeff_check_digit(eleven)
            sep = {"spaced": " ", "dashed": "-", "plain": ""}[style]
            self.plant("IN_AADHAAR", style, sep.join([number[:4], number[4:8], number[8:]]))

    def pans(self) -> None:
        rng = self.rng
        up = string.ascii_uppercase
        for holder in "PCFA":
            self.plant(
                "IN_PAN", f"holder-{holder}", self.s(up, 3) + holder + rng.choice(up) + self.digits(4) + rng.choice(up)
            )

    def nhs(self) -> None:
        made = 0
        while made < 4:
            nine = self.digits(9, "4569")
            check = nhs_check_digit(nine)
            if check is None:
                continue
            number = nine + str(check)
            style = ("spaced", "plain", "dashed", "spaced")[made]
            sep = {"spaced": " ", "dashed": "-", "plain": ""}[style]
            self.plant("UK_NHS", style, sep.join([number[:3], number[3:6], number[6:]]))
            made += 1

    def licenses(self) -> None:
        rng, d = self.rng, self.digits
        up = string.ascii_uppercase
        self.plant("US_DRIVER_LICENSE", "ca", rng.choice(up) + d(7))
        n = d(9)
        self.plant("US_DRIVER_LICENSE", "ny", f"{n[:3]} {n[3:6]} {n[6:]}")
        n = d(12)
        self.plant("US_DRIVER_LICENSE", "fl", f"{rng.choice(up)}{n[:3]}-{n[3:6]}-{n[6:8]}-{n[8:11]}-{n[11]}")
        n = d(11)
        self.plant("US_DRIVER_LICENSE", "il", f"{rng.choice(up)}{n[:3]}-{n[3:7]}-{n[7:]}")
        self.plant("US_DRIVER_LICENSE", "tx", d(8, "123456789"))
        self.plant("US_DRIVER_LICENSE", "wa", "WDL" + self.s(UPPER_ALNUM, 9))

    def tax_ids(self) -> None:
        rng, d = self.rng, self.digits
        group = rng.choice([*range(50, 66), *range(70, 89), *range(90, 93), *range(94, 100)])
        self.plant("TAX_ID", "us-itin", f"9{d(2)}-{group}-{d(4)}")
        prefixes = [*range(1, 7), *range(10, 17), *range(20, 28), *range(30, 49), *range(50, 69), *range(71, 78)]
        self.plant("TAX_ID", "us-ein", f"{rng.choice(prefixes):02d}-{d(7)}")
        number = d(8)
        self.plant("TAX_ID", "es-dni", number + "TRWAGMYFPDXBNJZSQVHLCKE"[int(number) % 23])
        self.plant("TAX_ID", "it-codice-fiscale", self.fakers["it_IT"].ssn())
        self.plant("TAX_ID", "br-cpf", self.fakers["pt_BR"].cpf())
        self.plant("TAX_ID", "ca-sin", self.fakers["en_CA"].ssn())
        self.plant("TAX_ID", "de-steuer-id", self._steuer_id())
        self.plant("TAX_ID", "uk-utr", d(10, "123456789"))

    def _steuer_id(self) -> str:
        rng = self.rng
        while True:
            digits = rng.sample(range(10), 9)
            digits.append(rng.choice(digits))
            rng.shuffle(digits)
            if digits[0] != 0:
                break
        product = 10
        for digit in digits:
            total = (digit + product) % 10 or 10
            product = (total * 2) % 11
        check = (11 - product) % 10
        return "".join(map(str, digits)) + str(check)

    def dobs(self) -> None:
        rng = self.rng
        formats = [
            ("us-slash", "%m/%d/%Y"),
            ("eu-dotted", "%d.%m.%Y"),
            ("uk-slash", "%d/%m/%Y"),
            ("iso", "%Y-%m-%d"),
            ("us-long", "%B %d, %Y"),
            ("eu-long", "%d %B %Y"),
        ]
        for variant, fmt in formats:
            born = self.faker().date_of_birth(minimum_age=18, maximum_age=90)
            self.plant("DATE_OF_BIRTH", variant, born.strftime(fmt))
        born = dt.date(rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28))
        self.plant("DATE_OF_BIRTH", "key-iso", born.isoformat(), phrases=("date_of_birth: {v}", "dob={v}"))

    def addresses(self) -> None:
        for locale in ("en_US", "en_GB", "de_DE", "fr_FR", "en_AU", "pt_BR"):
            self.plant("STREET_ADDRESS", f"street-{locale}", self.fakers[locale].street_address())
        for locale in ("en_US", "en_GB", "en_CA", "de_DE"):
            self.plant("STREET_ADDRESS", f"full-{locale}", ", ".join(self.fakers[locale].address().splitlines()))

    # --- secrets ------------------------------------------------------------------------------------------------------

    def token(self, kind: str, variant: str, prefix: str, body: str, **kwargs: str) -> None:
        self.plant(kind, variant, prefix + body, distinct=(body,), **kwargs)

    def secrets(self) -> None:
        s = self.s
        # Stripe: legacy 24-character bodies and the current ~99-character ones ("51" + account-derived part).
        self.token("STRIPE_KEY", "sk_live-legacy", "sk_live_", s(B62, 24))
        self.token("STRIPE_KEY", "sk_live", "sk_live_", "51" + s(B62, 97))
        self.token("STRIPE_KEY", "rk_live", "rk_live_", "51" + s(B62, 97))
        self.token("STRIPE_KEY", "sk_test", "sk_test_", "51" + s(B62, 97))
        self.token("STRIPE_KEY", "pk_live", "pk_live_", "51" + s(B62, 97))
        for _ in range(3):
            self.token("GOOGLE_API_KEY", "aiza", "AIza", s(B64URL, 35))
        for prefix in ("AKIA", "ASIA", "AKIA"):
            self.token("AWS_ACCESS_KEY_ID", prefix.lower(), prefix, s(B32, 16))
        for _ in range(4):
            self.plant("AWS_SECRET_KEY", "40-char", s(B64, 40), akid="AKIA" + s(B32, 16))
        for prefix in ("ghp_", "gho_", "ghs_", "ghu_"):
            self.token("GITHUB_TOKEN", prefix.rstrip("_"), prefix, s(B62, 36))
        self.token("GITHUB_TOKEN", "fine-grained", "github_pat_", s(B62, 22) + "_" + s(B62, 59))
        for _ in range(3):
            self.token("GITLAB_TOKEN", "glpat", "glpat-", s(B64URL, 20))
        self.token(
            "SLACK_TOKEN",
            "xoxb",
            "xoxb-",
            f"{self.digits(12, '123456789')}-{self.digits(13, '123456789')}-{s(B62, 24)}",
        )
        self.token(
            "SLACK_TOKEN",
            "xoxp",
            "xoxp-",
            "-".join(self.digits(n, "123456789") for n in (12, 12, 13)) + f"-{s(HEX, 32)}",
        )
        self.token("SLACK_TOKEN", "xapp", "xapp-1-", f"A{s(UPPER_ALNUM, 10)}-{self.digits(13)}-{s(HEX, 64)}")
        for _ in range(2):
            body = f"T{s(UPPER_ALNUM, 8)}/B{s(UPPER_ALNUM, 10)}/{s(B62, 24)}"
            self.token("SLACK_WEBHOOK", "services", "https://hooks.slack.com/services/", body)
        for _ in range(2):
            user_id = self.digits(18, "1")
            first = base64.b64encode(user_id.encode()).decode().rstrip("=")
            self.plant("DISCORD_TOKEN", "bot", f"{first}.{s(B64URL, 6)}.{s(B64URL, 38)}")
        for _ in range(2):
            body = f"{self.digits(19, '1')}/{s(B64URL, 68)}"
            self.token("DISCORD_WEBHOOK", "webhook", "https://discord.com/api/webhooks/", body)
        for _ in range(3):
            self.plant("TELEGRAM_BOT_TOKEN", "bot", f"{self.digits(10, '1234567')}:AA{s(B64URL, 33)}")
        self.token("TWILIO", "account-sid", "AC", s(HEX, 32))
        self.token("TWILIO", "api-key-sid", "SK", s(HEX, 32))
        self.plant("TWILIO", "auth-token", s(HEX, 32), phrases=("TWILIO_AUTH_TOKEN={v}", "twilio auth token {v}"))
        for _ in range(3):
            self.token("SENDGRID_KEY", "sg", "SG.", f"{s(B64URL, 22)}.{s(B64URL, 43)}")
        self.token("OPENAI_KEY", "legacy", "sk-", f"{s(B62, 20)}T3BlbkFJ{s(B62, 20)}")
        self.token("OPENAI_KEY", "project", "sk-proj-", f"{s(B64URL, 74)}T3BlbkFJ{s(B64URL, 74)}")
        self.token("OPENAI_KEY", "service-account", "sk-svcacct-", f"{s(B64URL, 74)}T3BlbkFJ{s(B64URL, 74)}")
        self.token("OPENAI_KEY", "legacy-48", "sk-", s(B62, 48))
        for _ in range(2):
            self.token("ANTHROPIC_KEY", "api03", "sk-ant-api03-", s(B64URL, 93) + "AA")
        self.token("ANTHROPIC_KEY", "admin01", "sk-ant-admin01-", s(B64URL, 93) + "AA")
        for _ in range(3):
            self.token("HUGGINGFACE_TOKEN", "hf", "hf_", s(string.ascii_letters, 34))
        for _ in range(3):
            self.token("GROQ_KEY", "gsk", "gsk_", s(B62, 52))
        for _ in range(3):
            self.token("NPM_TOKEN", "npm", "npm_", s(B62, 36))
        for _ in range(2):
            self.token("PYPI_TOKEN", "macaroon", "pypi-AgEIcHlwaS5vcmc", s(B64URL, 160))
        self.jwts()
        self.private_keys()
        self.url_credentials()
        self.bearers()
        self.generic()
        self.passwords()

    def jwts(self) -> None:
        rng = self.rng

        def b64url(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).decode().rstrip("=")

        for alg, sig_len in (("HS256", 43), ("RS256", 342), ("ES256", 86)):
            header = {"alg": alg, "typ": "JWT"}
            if alg != "HS256":
                header["kid"] = self.s(B64URL, 16)
            issued = rng.randint(1_700_000_000, 1_760_000_000)
            payload = {
                "sub": str(self.fakers["en_US"].uuid4()),
                "iat": issued,
                "exp": issued + 3600,
                "scope": rng.choice(["read:orders", "openid profile", "admin"]),
            }
            head = b64url(json.dumps(header, separators=(",", ":")).encode())
            body = b64url(json.dumps(payload, separators=(",", ":")).encode())
            signature = self.s(B64URL, sig_len)
            token = f"{head}.{body}.{signature}"
            self.plant("JWT", alg.lower(), token, distinct=(body, signature))

    def private_keys(self) -> None:
        rng = self.rng

        def pem(label: str, der_prefix: bytes, size: int) -> tuple[str, str]:
            der = der_prefix + rng.randbytes(size - len(der_prefix))
            b64 = base64.b64encode(der).decode()
            lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
            body = "\n".join(lines)
            return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----", b64[len(der_prefix) * 4 // 3 + 4 :]

        variants = [
            ("rsa-pkcs1", "RSA PRIVATE KEY", bytes.fromhex("308204a40201000282010100"), 1192),
            ("pkcs8", "PRIVATE KEY", bytes.fromhex("308204be020100300d06092a864886f70d0101010500"), 1218),
            ("ec", "EC PRIVATE KEY", bytes.fromhex("30770201010420"), 121),
            ("openssh", "OPENSSH PRIVATE KEY", b"openssh-key-v1\x00", 300),
        ]
        for variant, label, prefix, size in variants:
            value, distinct = pem(label, prefix, size)
            self.plant("PRIVATE_KEY", variant, value, distinct=(distinct,))

    def url_credentials(self) -> None:
        rng, fake = self.rng, self.fakers["en_US"]
        pw_alphabet = B62 + "-_.~!*"
        schemes = [
            ("postgres", "postgresql://{u}:{p}@db-prod-{n}.internal.{d}:5432/orders"),
            ("mysql", "mysql://{u}:{p}@{d}:3306/app"),
            ("redis", "redis://default:{p}@cache-{n}.{d}:6379/0"),
            ("amqp", "amqps://{u}:{p}@mq.{d}/vhost"),
            ("mongodb", "mongodb+srv://{u}:{p}@cluster{n}.mongodb.net/?retryWrites=true"),
            ("https", "https://{u}:{p}@git.{d}/team/repo.git"),
        ]
        for variant, template in schemes:
            password = self.s(pw_alphabet, rng.randint(12, 20))
            user = fake.user_name()
            url = template.format(u=user, p=password, n=rng.randint(1, 9), d=fake.domain_name())
            self.plant("URL_CREDENTIALS", variant, url, distinct=(password,))

    def bearers(self) -> None:
        s = self.s
        tokens = [
            ("opaque", s(B64URL, 40)),
            ("google-oauth", "ya29." + s(B64URL, 120)),
            ("hex-64", s(HEX, 64)),
            ("facebook", "EAAB" + s(B62, 180)),
        ]
        for variant, token in tokens:
            self.plant("BEARER_TOKEN", variant, token, attr_value=f"Bearer {token}")

    def generic(self) -> None:
        s = self.s
        for variant, token in (
            ("hex-32", s(HEX, 32)),
            ("b62-40", s(B62, 40)),
            ("b64url-43", s(B64URL, 43)),
            ("uuid-like", str(self.fakers["en_US"].uuid4())),
            ("b62-32", s(B62, 32)),
        ):
            self.plant("GENERIC_SECRET", variant, token)

    def passwords(self) -> None:
        rng = self.rng
        fake = self.fakers["en_US"]
        for length in (10, 12, 16):
            self.plant("PASSWORD", f"faker-{length}", fake.password(length=length, special_chars=True))
        word = rng.choice(["Summer", "Winter", "Sunshine", "Dragon", "Monkey", "Football", "Charlie"])
        self.plant("PASSWORD", "human", f"{word}{rng.randint(1970, 2025)}{rng.choice('!?#$.')}")
        self.plant(
            "PASSWORD", "leading-symbol", f"{rng.choice('#!$%&*@')}{fake.password(length=11, special_chars=False)}"
        )
        leet = rng.choice(["P@ssw0rd", "Tr0ub4dor", "L3tM3In", "Adm1n"])
        self.plant("PASSWORD", "leet", f"{leet}&{rng.randint(10, 99)}")
        self.plant("PASSWORD", "passphrase", "-".join(fake.words(4)) + str(rng.randint(1, 9)))
        phrases = _PIN_PHRASES[0] if self.phrasing == "primary" else _PIN_PHRASES[1]
        if self.phrasing == "all":
            phrases = _PIN_PHRASES[0] + _PIN_PHRASES[1]
        self.plant("PASSWORD", "pin-4", self.digits(4, "123456789"), phrases=phrases)
        self.plant("PASSWORD", "pin-6", self.digits(6, "123456789"), phrases=phrases)

    # --- names --------------------------------------------------------------------------------------------------------

    def names(self) -> None:
        locales = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL", "sv_SE")
        locales += ("tr_TR", "ru_RU", "ja_JP", "zh_CN", "ko_KR", "hi_IN", "en_IN", "ar_AA")
        for locale in locales:
            self.plant("PERSON", f"faker-{locale}", self.fakers[locale].name())

    # --- clean corpus -------------------------------------------------------------------------------------------------

    def clean(self, per_kind: int) -> list[CleanValue]:
        out: list[CleanValue] = []
        for kind in CLEAN_KINDS:
            primary, alternate = _CLEAN_PHRASES[kind]
            options = {"primary": primary, "alternate": alternate}.get(self.phrasing, primary + alternate)
            for i in range(per_kind):
                value = self.clean_value(kind, i)
                out.append(CleanValue(kind, value, options[i % len(options)].replace("{v}", value)))
        return out

    def clean_value(self, kind: str, i: int) -> str:
        rng, d, s = self.rng, self.digits, self.s
        fake = self.fakers["en_US"]
        moment = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=rng.randint(0, 80_000_000))
        if kind == "ORDER_NUMBER":
            return [f"ORD-{rng.randint(2019, 2025)}-{d(6)}", d(10, "123456789"), f"#{d(7)}", f"SO{d(8)}"][i % 4]
        if kind == "PO_NUMBER":
            return [d(10, "4"), f"PO-{d(6)}", f"{d(2)}-{d(5)}"][i % 3]
        if kind == "INVOICE_NUMBER":
            return [f"INV-{d(6)}", f"{rng.randint(2019, 2025)}-{d(5)}", f"RE{d(8)}"][i % 3]
        if kind == "TICKET":
            return [f"#{d(5)}", f"SUP-{d(4)}", f"{s(string.ascii_uppercase, 4)}-{d(4)}", f"ZD{d(7)}"][i % 4]
        if kind == "REFERENCE":
            return [s(UPPER_ALNUM, 6), f"REF-{d(8)}", f"{s(string.ascii_uppercase, 3)}-{d(4)}-{s(UPPER_ALNUM, 2)}"][
                i % 3
            ]
        if kind == "TRACKING_UPS":
            return f"1Z{s(UPPER_ALNUM, 6)}{d(2)}{d(8)}"
        if kind == "TRACKING_FEDEX":
            return [d(12, "789"), d(15, "789"), f"{d(4, '7')} {d(4)} {d(4)}"][i % 3]
        if kind == "TRACKING_USPS":
            return [f"94{d(20)}", f"92{d(20)}", f"{s(string.ascii_uppercase, 2)}{d(9)}US"][i % 3]
        if kind == "TIMESTAMP_ISO":
            return [
                moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                moment.isoformat(timespec="milliseconds"),
                moment.strftime("%Y-%m-%d %H:%M:%S"),
            ][i % 3]
        if kind == "EPOCH_SECONDS":
            return str(int(moment.timestamp()))
        if kind == "EPOCH_MILLIS":
            return str(int(moment.timestamp() * 1000) + rng.randint(0, 999))
        if kind == "VERSION":
            major, minor, patch = rng.randint(0, 30), rng.randint(0, 40), rng.randint(0, 200)
            return [f"v{major}.{minor}.{patch}", f"{major}.{minor}.{patch}-rc.{rng.randint(1, 5)}", f"{major}.{minor}"][
                i % 3
            ]
        if kind == "UUID":
            return str(fake.uuid4())
        if kind == "PRICE":
            return [
                f"${rng.randint(1, 9)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
                f"€{rng.randint(1, 999)},{rng.randint(0, 99):02d}",
                f"£{rng.randint(1, 999)}.{rng.randint(0, 99):02d}",
                f"{rng.randint(100, 99999)} JPY",
            ][i % 4]
        if kind == "GIT_SHA":
            return [s(HEX, 40), s(HEX, 7), s(HEX, 12)][i % 3]
        if kind == "SHA256":
            return s(HEX, 64)
        if kind == "BUILD_NUMBER":
            return [
                f"{moment:%Y%m%d}.{rng.randint(1, 20)}",
                f"#{d(4)}",
                f"{rng.randint(1, 9)}.{rng.randint(0, 9)}.{d(4)}",
            ][i % 3]
        if kind == "PROSE":
            return self.prose()
        if kind == "CODE":
            return self.code()
        raise ValueError(kind)

    def prose(self) -> str:
        rng = self.rng
        openings = ["Thanks, that fixed it!", "Hi there,", "Quick question:", "Sorry for the delay.", "Hello again,"]
        middles = [
            "the dashboard loads much faster now and the export finished in about two minutes",
            "I tried restarting the app but the sync still gets stuck at ninety percent",
            "could you explain how the annual plan differs from the monthly one",
            "the package arrived yesterday but the box was slightly damaged",
            "our team would like to add three more seats before the end of the quarter",
            "the search results look wrong when I filter by category and date",
        ]
        closings = ["Have a great day.", "Let me know if you need more details.", "Cheers.", "Thank you!", ""]
        return f"{rng.choice(openings)} {rng.choice(middles).capitalize()}. {rng.choice(closings)}".strip()

    def code(self) -> str:
        rng = self.rng
        n = rng.randint(2, 500)
        snippets = [
            f"for i in range({n}):\n    total += prices[i] * 1.{rng.randint(0, 25):02d}",
            f"SELECT status, count(*) FROM orders WHERE created_at > now() - interval '{n} days' GROUP BY status;",
            f"const retries = {rng.randint(1, 9)};\nawait fetch(`/api/v2/items?page=${{page}}&limit={n}`);",
            f"if resp.status_code == {rng.choice([404, 429, 500, 503])}:\n    time.sleep({rng.randint(1, 30)})",
            f"kubectl scale deployment/api --replicas={rng.randint(2, 12)} -n production",
            f"docker run -p {rng.randint(3000, 9000)}:80 nginx:1.{rng.randint(19, 27)}",
        ]
        return rng.choice(snippets)


_TITLE_CASE_PHRASES = (
    "I upgraded to {v} yesterday.",
    "Hi Team, {v} stopped working.",
    "This is about {v}.",
    "Subject: {v} Not Loading",
    "Is {v} included in my plan?",
    "Thanks Again, {v} works now.",
)


def title_case_phrases(seed: int, count: int) -> list[CleanValue]:
    """Capitalised words that are no one's name (Faker's catch phrases, title-cased: "Hybrid Superstructure") in
    support sentences: where a NER model's false positives are, measured apart from the clean corpus."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    out = []
    for i in range(count):
        value = " ".join(word.capitalize() for word in fake.catch_phrase().split()[-2:])
        out.append(
            CleanValue("TITLE_CASE", value, _TITLE_CASE_PHRASES[i % len(_TITLE_CASE_PHRASES)].replace("{v}", value))
        )
    return out


def generate(seed: int = 7, *, phrasing: Phrasing = "primary", clean_per_kind: int = 6) -> Corpus:
    """The labelled values (PII, secrets, names) and the clean corpus, deterministic from ``seed``."""
    if phrasing not in PHRASINGS:
        raise ValueError(f"phrasing must be one of {PHRASINGS}")
    gen = _Generator(seed, phrasing)
    gen.emails()
    gen.phones()
    gen.cards()
    gen.ibans()
    gen.ssns()
    gen.ips()
    gen.ninos()
    gen.passports()
    gen.aadhaar()
    gen.pans()
    gen.nhs()
    gen.licenses()
    gen.tax_ids()
    gen.dobs()
    gen.addresses()
    gen.secrets()
    gen.names()
    clean = gen.clean(clean_per_kind)
    templates = [t for spec in KINDS.values() for t in spec.primary + spec.alternate]
    templates += [t for pair in _PIN_PHRASES for t in pair]
    templates += [t for pair in _CLEAN_PHRASES.values() for part in pair for t in part]
    templates += ["customer.ssn: {v}", "ssn={v}", '"ssn": "{v}"', "date_of_birth: {v}", "dob={v}", 'From: "" <{v}>']
    templates += ["TWILIO_AUTH_TOKEN={v}", "twilio auth token {v}"]
    return Corpus(seed, phrasing, tuple(gen.planted), tuple(clean), tuple(templates))
