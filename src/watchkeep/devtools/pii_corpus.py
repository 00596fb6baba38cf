"""The labelled PII corpus: deterministic, so it is regenerated rather than hand-edited.

``python -m watchkeep.devtools.pii_corpus OUT.jsonl`` writes it. Each line holds a text
(free text, JSON inside a string, a log line or code, in en, de, fr, es or ja) and the
exact spans of every entity in it; a quarter are hard negatives (order numbers, dates,
versions, UUIDs, hashes, MAC addresses...) with no span at all. Card numbers pass Luhn,
IBANs pass mod 97, wallets carry valid checksums, phone numbers are valid per
``phonenumbers``: the detector's validators are tested, not sidestepped.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import phonenumbers

from watchkeep.sdk.redact import Finding, iban_ok, luhn_ok

SIZE = 360
SEED = 16

_NAMES = ("anna.mueller", "j.dupont", "maria.garcia", "kenji.sato", "bob", "li.wei+news", "o_brien")
_DOMAINS = ("example.com", "beispiel.de", "exemple.fr", "ejemplo.es", "example.co.jp", "mail.example.org")
_IBAN_LEN = {"DE": 22, "FR": 27, "ES": 24, "GB": 22, "NL": 18, "IT": 27, "AT": 20, "CH": 21}
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

_SENTENCES = {
    "en": (
        "Please contact me at {v} about the refund.",
        "The customer gave {v} yesterday.",
        "Use {v} for it.",
    ),
    "de": ("Bitte kontaktieren Sie mich unter {v} wegen der Rechnung.", "Der Kunde nannte {v} gestern."),
    "fr": ("Merci de me joindre au {v} pour la commande.", "Le client a donné {v} hier."),
    "es": ("Por favor escríbame a {v} sobre el pedido.", "El cliente indicó {v} ayer."),
    "ja": ("お問い合わせは {v} までお願いします。", "顧客は {v} を登録しました。"),
}
_NEGATIVES = (
    "Order #{n8} shipped on 2024-03-15 at 12:30:45.",
    "Bestellung {n8} vom 15.03.2024, Version v2.14.1 installiert.",
    "build 10.0.19041.1 commit {sha1}",
    "request_id={uuid} took 123 ms",
    "sha256={sha256}",
    "tx 0x{sha256}",
    "Invoice {bad_card} total $1,234.56",
    "ISBN 978-3-16-148410-0, see page 12",
    "auto v = std::vector<int>{{}}; y = a[::2]",
    "MAC 00:1a:2b:3c:4d:5e on port 8080",
    "Tracking number {n10} (parcel 3 of 4)",
    "価格は 12,800 円です。注文番号 {n8}",
    "color #ff00aa, ratio 16:9, time 09:15",
    "commande n° {n8}, code postal 75008 Paris",
    "token sk-short and key=abc123",
    "blob {b64}",
)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _email(rng: random.Random) -> str:
    return f"{rng.choice(_NAMES)}{rng.randint(1, 99)}@{rng.choice(_DOMAINS)}"


def _phone(rng: random.Random) -> str:
    region = rng.choice(("US", "DE", "FR", "ES", "JP", "GB"))
    base = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert base is not None
    while True:
        national = str(base.national_number)
        candidate = phonenumbers.parse(f"+{base.country_code}{national[:-3]}{_digits(rng, 3)}")
        if phonenumbers.is_valid_number(candidate):
            break
    fmt = phonenumbers.PhoneNumberFormat
    style = fmt.NATIONAL if region == "US" and rng.random() < 0.5 else fmt.INTERNATIONAL
    return phonenumbers.format_number(candidate, style)


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice((("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("37", 15), ("6011", 16)))
    body = prefix + _digits(rng, length - len(prefix) - 1)
    check = next(d for d in string.digits if luhn_ok(body + d))
    number = body + check
    sep = rng.choice(("", " ", "-"))
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


def _iban(rng: random.Random) -> str:
    country = rng.choice(tuple(_IBAN_LEN))
    bban = _digits(rng, _IBAN_LEN[country] - 4)
    check = next(f"{c:02d}" for c in range(2, 99) if iban_ok(f"{country}{c:02d}{bban}"))
    compact = f"{country}{check}{bban}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    return "2001:db8::" + ":".join(groups[:3]) if rng.random() < 0.5 else ":".join(groups)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


_JWT_HEAD = _b64url(b'{"alg":"HS256","typ":"JWT"}')
_JWT_BODY = _b64url(b'{"sub":"42","name":"x"}')


def _secret(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits

    def s(n: int) -> str:
        return "".join(rng.choice(alnum) for _ in range(n))

    kinds: list[Callable[[], str]] = [
        lambda: f"sk-proj-{s(40)}",
        lambda: f"AKIA{''.join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))}",
        lambda: f"ghp_{s(36)}",
        lambda: f"xoxb-{_digits(rng, 11)}-{s(24)}",
        lambda: f"AIza{s(35)}",
        lambda: f"sk_live_{s(24)}",
        lambda: f"{_JWT_HEAD}.{_JWT_BODY}.{s(43)}",
        lambda: "-----BEGIN PRIVATE KEY-----\n" + s(64) + "\n" + s(40) + "==\n-----END PRIVATE KEY-----",
    ]
    return rng.choice(kinds)()


def _b58check(payload: bytes) -> str:
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number, out = int.from_bytes(raw, "big"), ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def _bech32(data: list[int]) -> str:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in [3, 3, 0, 2, 3, *data, 0, 0, 0, 0, 0, 0]:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    polymod = chk ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return "bc1" + "".join(_BECH[d] for d in data + checksum)


def _crypto(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.4:
        return "0x" + "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(40))
    if pick < 0.7:
        return _b58check(bytes([0]) + rng.randbytes(20))
    return _bech32([0] + [rng.randrange(32) for _ in range(32)])


VALUES: dict[str, Callable[[random.Random], str]] = {
    "email": _email,
    "phone": _phone,
    "card": _card,
    "iban": _iban,
    "ssn": _ssn,
    "ip": _ip,
    "secret": _secret,
    "crypto": _crypto,
}


def _wrap(rng: random.Random, fmt: str, lang: str, parts: list[tuple[str, str]]) -> dict[str, Any]:
    """Lay the values into one text of the given format, tracking every span."""
    pieces: list[str | tuple[str, str]] = []
    if fmt == "log":
        pieces.append(
            f"2024-05-0{rng.randint(1, 9)}T10:0{rng.randint(0, 9)}:00Z INFO req={uuid.UUID(int=rng.getrandbits(128))} "
        )
    elif fmt == "code":
        pieces.append("config = {\n")
    elif fmt == "json":
        pieces.append('{"messages": [')
    for i, (entity, value) in enumerate(parts):
        value = value.replace("\n", "\\n") if fmt in ("json", "log") else value
        if fmt == "json":
            sentence = rng.choice(_SENTENCES[lang]).split("{v}")
            pieces += [("," if i else "") + '{"role": "user", "content": "' + sentence[0], (entity, value),
                       sentence[1] + '"}']  # fmt: skip
        elif fmt == "code":
            pieces += [f'    "{entity}_{i}": "', (entity, value), '",\n']
        elif fmt == "log":
            pieces += [f"{entity}=", (entity, value), " "]
        else:
            sentence = rng.choice(_SENTENCES[lang]).split("{v}")
            pieces += [sentence[0], (entity, value), sentence[1] + " "]
    pieces.append({"json": "]}", "code": "}\n", "log": "status=200"}.get(fmt, ""))
    text, spans = "", []
    for p in pieces:
        if isinstance(p, tuple):
            spans.append({"entity": p[0], "start": len(text), "end": len(text) + len(p[1])})
            text += p[1]
        else:
            text += p
    return {"lang": lang, "format": fmt, "text": text, "spans": spans}


def _negative(rng: random.Random) -> dict[str, Any]:
    bad = _card(rng).replace(" ", "").replace("-", "")
    bad = bad[:-1] + str((int(bad[-1]) + 1) % 10)
    text = rng.choice(_NEGATIVES).format(
        n8=_digits(rng, 8),
        n10="JD" + _digits(rng, 10),
        sha1=hashlib.sha1(rng.randbytes(8)).hexdigest(),
        sha256=hashlib.sha256(rng.randbytes(8)).hexdigest(),
        uuid=uuid.UUID(int=rng.getrandbits(128)),
        bad_card=bad,
        b64=base64.b64encode(rng.randbytes(24)).decode(),
    )
    return {"lang": "en", "format": "negative", "text": text, "spans": []}


def build(size: int = SIZE, seed: int = SEED) -> list[dict[str, Any]]:
    """The corpus: ``size`` examples, the same for the same seed."""
    rng = random.Random(seed)
    entities = list(VALUES)
    out: list[dict[str, Any]] = []
    for i in range(size):
        if i % 4 == 3:
            example = _negative(rng)
        else:
            chosen = [entities[(i - i // 4) % len(entities)], *rng.sample(entities, rng.randint(0, 1))]
            parts = [(e, VALUES[e](rng)) for e in chosen]
            example = _wrap(
                rng, rng.choice(("free", "json", "log", "code")), rng.choice(tuple(_SENTENCES)), parts
            )
        out.append({"id": i, **example})
    return out


@dataclass
class Tally:
    """Per-entity counts: a finding matches a label of its entity when their spans overlap."""

    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    labels: int = 0

    @property
    def precision(self) -> float:
        found = self.true_pos + self.false_pos
        return self.true_pos / found if found else 1.0

    @property
    def recall(self) -> float:
        return (self.labels - self.false_neg) / self.labels if self.labels else 1.0


def evaluate(examples: list[dict[str, Any]], detect: Callable[[str], list[Finding]]) -> dict[str, Tally]:
    """Precision and recall counts per entity of ``detect`` over the corpus."""
    tallies = {e: Tally() for e in VALUES}
    for ex in examples:
        found = detect(ex["text"])
        labels = ex["spans"]
        for f in found:
            hit = any(s["entity"] == f.entity and s["start"] < f.end and f.start < s["end"] for s in labels)
            tally = tallies[f.entity]
            if hit:
                tally.true_pos += 1
            else:
                tally.false_pos += 1
        for s in labels:
            tally = tallies[s["entity"]]
            tally.labels += 1
            if not any(f.entity == s["entity"] and f.start < s["end"] and s["start"] < f.end for f in found):
                tally.false_neg += 1
    return tallies


def dump(path: Path) -> None:
    """Write the corpus as JSON lines."""
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in build()))


if __name__ == "__main__":  # pragma: no cover
    dump(Path(sys.argv[1]))
