"""Reference-based checks of an output: exact match, contains, classification.

They compare the output with the dataset item's ``expected`` answer (or with a value
given in the parameters, so they also work online where no item exists). Texts are
normalised the same way on both sides before comparing. A missing expected answer is a
failed check with a comment that says so, never an exception.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchkeep.evaluators.base import EvalInput, EvalResult, Evaluator
from watchkeep.evaluators.patterns import compile_pattern

MAX_TEXT = 10_000
MAX_VALUES = 200
MAX_SCAN = 100_000  # characters of an output searched for a label
_WHITESPACE = re.compile(r"\s+")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
NO_EXPECTED = "no expected answer: the dataset item has none and no value is configured"


def as_text(value: Any) -> str:
    """A value as comparable text: strings as they are, scalars by ``str``, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def expected_texts(expected: Any, override: Any = None) -> list[str] | None:
    """The acceptable answers: ``override`` if given, else the item's; a list means any of them."""
    value = expected if override is None else override
    if value is None:
        return None
    if isinstance(value, list | tuple):
        texts = [as_text(v) for v in value if v is not None]
        return texts or None
    return [as_text(value)]


class NormaliseParams(BaseModel):
    """How both sides are normalised before comparing."""

    model_config = ConfigDict(extra="forbid")
    strip: bool = Field(default=True, description="Ignore leading and trailing whitespace.")
    case_insensitive: bool = Field(default=False, description="Compare case-folded text.")
    collapse_whitespace: bool = Field(default=False, description="Any run of whitespace counts as one space.")
    strip_punctuation: bool = Field(default=False, description="Drop ASCII punctuation before comparing.")

    def normalise(self, text: str) -> str:
        """``text`` as these options compare it."""
        if self.strip_punctuation:
            text = text.translate(_PUNCTUATION)
        if self.collapse_whitespace:
            text = _WHITESPACE.sub(" ", text)
        if self.strip:
            text = text.strip()
        return text.casefold() if self.case_insensitive else text


def bounded_values(value: Any) -> Any:
    """Refuse configured answers that are too many or too long (they run on every call)."""
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_VALUES:
        raise ValueError(f"at most {MAX_VALUES} values")
    if any(len(as_text(v)) > MAX_TEXT for v in items if v is not None):
        raise ValueError(f"values are at most {MAX_TEXT} characters")
    return value


class ExactMatchParams(NormaliseParams):
    value: str | list[str] | None = Field(
        default=None,
        description="The expected answer (or acceptable answers); default: the dataset item's expected.",
    )

    _bounded = field_validator("value")(bounded_values)


class ExactMatch(Evaluator[ExactMatchParams]):
    """The output equals the expected answer (one of them, for a list) after normalisation."""

    name = "exact_match"
    description = "Output equals the expected answer (or one of a list) after optional normalisation."
    Params = ExactMatchParams

    def evaluate(self, item: EvalInput) -> EvalResult:
        wanted = expected_texts(item.expected, self.params.value)
        if wanted is None:
            return EvalResult.check(False, NO_EXPECTED)
        if item.output is None:
            return EvalResult.check(False, "no output")
        norm = self.params.normalise
        got = norm(item.output)
        ok = any(got == norm(w) for w in wanted)
        return EvalResult.check(ok, None if ok else f"output {got[:80]!r} is not {wanted[0][:80]!r}")


class ContainsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: list[str] | None = Field(
        default=None,
        max_length=MAX_VALUES,
        description="Substrings to look for; default: the dataset item's expected answer(s).",
    )
    mode: Literal["any", "all"] = Field(default="any", description="Pass when any / all of them occur.")
    case_insensitive: bool = False
    negate: bool = Field(
        default=False,
        description="Invert (not-contains): with mode any, none may occur; with mode all, not all may.",
    )

    _bounded = field_validator("values")(bounded_values)


class Contains(Evaluator[ContainsParams]):
    """The output contains the expected text(s), or with ``negate`` does not."""

    name = "contains"
    description = "Output contains any/all of the given values (or the expected answer); negate inverts."
    Params = ContainsParams

    def evaluate(self, item: EvalInput) -> EvalResult:
        wanted = expected_texts(item.expected, self.params.values)
        if wanted is None:
            return EvalResult.check(False, NO_EXPECTED)
        fold = str.casefold if self.params.case_insensitive else str
        text = fold(item.output or "")
        found = [w for w in wanted if fold(w) in text]
        missing = [w for w in wanted if w not in found]
        hit = bool(found) if self.params.mode == "any" else not missing
        ok = hit != self.params.negate
        if ok:
            comment = None
        elif self.params.negate:
            comment = f"output contains {found[0][:80]!r}"
        else:
            comment = f"output lacks {missing[0][:80]!r}"
        return EvalResult(ok, 1.0 if ok else 0.0, comment, {"found": found, "missing": missing})


class ClassificationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[str] = Field(
        min_length=1,
        max_length=MAX_VALUES,
        description="The allowed labels (a predicted label is one of them).",
    )
    pattern: str | None = Field(
        default=None,
        max_length=2000,
        description="An RE2 pattern that extracts the label (its first group, else the whole match); "
        "default: the label (or synonym) that occurs first in the output, as a whole word.",
    )
    synonyms: dict[str, str] = Field(
        default_factory=dict, max_length=MAX_VALUES, description="Other words for a label: {word: label}."
    )
    case_insensitive: bool = True
    multiple: Literal["first", "ambiguous"] = Field(
        default="first",
        description="When several different labels occur: take the first by position, or predict none.",
    )

    @field_validator("labels")
    @classmethod
    def _short_labels(cls, value: list[str]) -> list[str]:
        if any(not label.strip() or len(label) > 200 for label in value):
            raise ValueError("labels are 1 to 200 characters")
        return value

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)
        return value

    @model_validator(mode="after")
    def _synonyms_name_labels(self) -> ClassificationParams:
        unknown = sorted(set(self.synonyms.values()) - set(self.labels))
        if unknown:
            raise ValueError(f"synonyms map to unknown labels: {', '.join(unknown[:5])}")
        return self


class Classification(Evaluator[ClassificationParams]):
    """Extracts a label from the output; passes when it is the expected label."""

    name = "classification"
    description = (
        "Extracts a label (one of labels, by pattern or first occurrence, with synonyms) and compares it "
        "with the expected label; details carry predicted and expected for per-class metrics."
    )
    Params = ClassificationParams

    def __init__(self, params: ClassificationParams) -> None:
        super().__init__(params)
        words = {label: label for label in params.labels} | dict(params.synonyms)
        self._lookup = {self._key(word): label for word, label in words.items()}
        alternatives = sorted(self._lookup, key=len, reverse=True)  # the longest word at a position wins
        flags = re.IGNORECASE if params.case_insensitive else 0
        # Escaped literals only: linear, so Python's re is safe here (the tenant's own pattern runs on RE2).
        self._words = re.compile(
            r"(?<!\w)(" + "|".join(re.escape(w) for w in alternatives) + r")(?!\w)", flags
        )
        self._pattern = (
            None if params.pattern is None else compile_pattern(params.pattern, params.case_insensitive)
        )

    def _key(self, word: str) -> str:
        word = word.strip()
        return word.casefold() if self.params.case_insensitive else word

    def predict(self, output: str | None) -> str | None:
        """The label the output names, or None when it names none (or several, if ambiguous)."""
        if not output:
            return None
        output = output[:MAX_SCAN]
        if self._pattern is not None:
            match = self._pattern.search(output)
            if match is None:
                return None
            return self._lookup.get(self._key(match.group(1 if self._pattern.groups else 0) or ""))
        found = [self._lookup[self._key(m.group(1))] for m in self._words.finditer(output)]
        if not found:
            return None
        if self.params.multiple == "ambiguous" and len(set(found)) > 1:
            return None
        return found[0]

    def evaluate(self, item: EvalInput) -> EvalResult:
        predicted = self.predict(item.output)
        wanted = expected_texts(item.expected)
        if wanted is None:
            return EvalResult(False, 0.0, NO_EXPECTED, {"predicted": predicted, "expected": None})
        expected = self._lookup.get(self._key(wanted[0]), wanted[0])
        ok = predicted is not None and predicted == expected
        comment = None if ok else f"predicted {predicted!r}, expected {expected!r}"
        return EvalResult(ok, 1.0 if ok else 0.0, comment, {"predicted": predicted, "expected": expected})
