"""Versions: validation, read-only mappings, content digests, numbering, names and references."""

from __future__ import annotations

import math

import pytest

from watchkeep.registry.versions import (
    InvalidName,
    ModelVersion,
    PromptVersion,
    Ref,
    content_digest,
    find_identical,
    next_version,
    parse_ref,
    validate_alias,
    validate_name,
)

DIGEST = "ab" * 32


def model(version: int = 1, /, **kw: object) -> ModelVersion:
    fields: dict[str, object] = {
        "backend": "openai",
        "params": {"model": "gpt-x", "temperature": 0.2},
        "artifact_uri": "s3://bucket/m",
        "artifact_digest": DIGEST,
        "training_dataset": "qa@3",
    }
    fields.update(kw)
    return ModelVersion("support-bot", version, **fields)  # type: ignore[arg-type]


def prompt(version: int = 1, /, **kw: object) -> PromptVersion:
    fields: dict[str, object] = {
        "template": "Hello {{ name }}, {{ topic }}",
        "variables": ("name", "topic"),
        "model_settings": {"temperature": 0},
    }
    fields.update(kw)
    return PromptVersion("greet", version, **fields)  # type: ignore[arg-type]


def test_digest_ignores_who_when_and_lineage() -> None:
    a = model(1, created_by="ann", created_at_ns=1, metadata={"note": "a"}, eval_runs=(1,))
    b = model(2, created_by="bob", created_at_ns=2, metadata={"note": "b"}, parent=1, eval_runs=(7, 8))
    assert content_digest(a) == content_digest(b)
    p1 = prompt(1, message="first", created_by="ann")
    p2 = prompt(2, message="again", parent=1, created_by="bob", variables=("topic", "name"))
    assert content_digest(p1) == content_digest(p2)


@pytest.mark.parametrize(
    "change",
    [
        {"backend": "vllm"},
        {"params": {"model": "gpt-x", "temperature": 0.3}},
        {"artifact_uri": "s3://bucket/other"},
        {"artifact_digest": "cd" * 32},
        {"training_dataset": "qa@4"},
    ],
)
def test_digest_changes_with_model_content(change: dict[str, object]) -> None:
    assert content_digest(model(**change)) != content_digest(model())


def test_digest_prefix_and_key_order_do_not_matter() -> None:
    a = model(artifact_digest="sha256:" + DIGEST, params={"temperature": 0.2, "model": "gpt-x"})
    assert content_digest(a) == content_digest(model())


@pytest.mark.parametrize(
    "change",
    [{"template": "Hi {{ name }}"}, {"variables": ("name",)}, {"model_settings": {"temperature": 1}}],
)
def test_digest_changes_with_prompt_content(change: dict[str, object]) -> None:
    assert content_digest(prompt(**change)) != content_digest(prompt())


def test_model_and_prompt_digests_differ_in_kind() -> None:
    assert len(content_digest(model())) == 64
    assert content_digest(model()) != content_digest(prompt())


def test_find_identical_returns_earliest_same_name_only() -> None:
    existing = [model(1, backend="vllm"), model(2), model(3, created_by="x")]
    assert find_identical(existing, model(4)) == existing[1]
    assert find_identical(existing, model(4, backend="tgi")) is None
    other_name = ModelVersion("other", 1, backend="openai")
    assert find_identical([other_name], ModelVersion("support-bot", 2, backend="openai")) is None


def test_versions_are_immutable_and_mappings_copied() -> None:
    params = {"temperature": 0.1}
    v = model(params=params)
    params["temperature"] = 9
    assert v.params["temperature"] == 0.1
    with pytest.raises(TypeError):
        v.params["x"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        v.version = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"params": {"t": math.nan}}, "JSON"),
        ({"metadata": {"t": object()}}, "JSON"),
        ({"params": [1]}, "mapping"),
        ({"artifact_digest": "md5:abc"}, "SHA-256"),
        ({"backend": " "}, "backend"),
        ({"parent": 1}, "earlier"),
        ({"training_dataset": "bad name!"}, "may hold only"),
    ],
)
def test_model_version_refuses_bad_fields(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model(1, **kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"variables": ("a", "a")}, "repeat"),
        ({"variables": ("not ok",)}, "identifier"),
        ({"template": 3}, "string"),
        ({"model_settings": {"x": math.inf}}, "JSON"),
    ],
)
def test_prompt_version_refuses_bad_fields(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prompt(**kw)


@pytest.mark.parametrize("version", [0, -1, True, 2**31, 1.0])
def test_version_numbers_are_positive_ints(version: object) -> None:
    with pytest.raises(ValueError, match="version must be an integer"):
        ModelVersion("m", version, backend="x")  # type: ignore[arg-type]


def test_next_version() -> None:
    assert next_version([]) == 1
    assert next_version([1, 3, 2]) == 4
    with pytest.raises(ValueError, match="no version number is left"):
        next_version([2**31 - 1])
    with pytest.raises(ValueError, match="version must be"):
        next_version([0])


@pytest.mark.parametrize("name", ["a", "Model-1", "qa.v2", "x_y", "9lives", "a" * 128])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", ".a", "a b", "a@b", "a/b", "a..b", "a" * 129, "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidName):
        validate_name(name)


@pytest.mark.parametrize("alias", ["production", "staging", "canary", "blue-green", "a1_b"])
def test_valid_aliases(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize("alias", ["", "3", "1st", "Prod", "a.b", "-a", "a" * 65])
def test_invalid_aliases(alias: str) -> None:
    with pytest.raises(InvalidName, match="alias"):
        validate_alias(alias)


def test_parse_ref_forms_and_round_trip() -> None:
    assert parse_ref("bot@production") == Ref("bot", alias="production")
    assert parse_ref("bot@3") == Ref("bot", version=3)
    latest = parse_ref("bot")
    assert latest == Ref("bot")
    assert latest.is_latest
    assert not parse_ref("bot@3").is_latest
    for text in ("bot@production", "bot@3", "bot"):
        assert str(parse_ref(text)) == text


@pytest.mark.parametrize(
    "text", ["bot@", "bot@0", "bot@03", "bot@3x", "@prod", "bot@Prod", "bot@a@b", "bot@99999999999"]
)
def test_parse_ref_refuses(text: str) -> None:
    with pytest.raises(InvalidName):
        parse_ref(text)


def test_ref_refuses_version_and_alias() -> None:
    with pytest.raises(ValueError, match="not both"):
        Ref("bot", version=1, alias="prod")
