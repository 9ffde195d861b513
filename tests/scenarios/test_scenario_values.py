"""Variables (`${...}`), paths and matchers: the small languages of scenario files."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from harness.scenarios.matchers import Expected, Matcher, check, describe, render_expected
from harness.scenarios.paths import Missing, PathSyntaxError, format_path, parse_path, resolve
from harness.scenarios.schema import parse_duration
from harness.scenarios.templates import UndefinedVariable, references, render, render_text

VARIABLES: dict[str, Any] = {
    "order_id": "0b7c",
    "count": 3,
    "upload": {"url": "https://s3/bucket", "fields": {"key": "t/1/a.txt", "policy": "p"}},
    "tenants": {"acme": {"id": "t-1", "slug": "acme-1234"}},
    "items": [{"sku": "CAP"}, {"sku": "MUG"}],
}


# --- variables ------------------------------------------------------------------------------------------


def test_a_whole_reference_keeps_its_type() -> None:
    assert render("${count}", VARIABLES) == 3
    assert render("${upload.fields}", VARIABLES) == {"key": "t/1/a.txt", "policy": "p"}
    assert render("${items[1].sku}", VARIABLES) == "MUG"


def test_references_inside_text_are_interpolated() -> None:
    assert render("Order ${order_id} x${count}", VARIABLES) == "Order 0b7c x3"
    assert render("${tenants.acme.slug}.localhost", VARIABLES) == "acme-1234.localhost"
    assert render_text("${count}", VARIABLES) == "3"
    assert render("fields=${upload.fields}", VARIABLES) == 'fields={"key": "t/1/a.txt", "policy": "p"}'


def test_rendering_goes_through_lists_and_mappings() -> None:
    value = {"items": [{"id": "${order_id}", "n": "${count}"}], "${order_id}": True}
    assert render(value, VARIABLES) == {"items": [{"id": "0b7c", "n": 3}], "0b7c": True}


def test_a_doubled_dollar_is_a_literal() -> None:
    assert render("cost $${count}", VARIABLES) == "cost ${count}"
    assert list(references("cost $${count} and ${order_id}")) == ["order_id"]


def test_undefined_variables_and_paths_say_where_they_stop() -> None:
    with pytest.raises(UndefinedVariable, match=r"\$\{nope\}: no such variable"):
        render("${nope}", VARIABLES)
    with pytest.raises(UndefinedVariable, match=r"\$\{upload\.fields\} has no key 'bucket'"):
        render("${upload.fields.bucket}", VARIABLES)
    with pytest.raises(UndefinedVariable, match=r"has 2 item\(s\), no \[5\]"):
        render("${items[5].sku}", VARIABLES)


def test_references_are_found_everywhere() -> None:
    found = list(references({"a": ["${x}", {"b": "${y.z} ${w[0]}"}], "${k}": 1}))
    assert sorted(found) == ["k", "w[0]", "x", "y.z"]


# --- paths ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("id", ("id",)),
        ("items[0].sku", ("items", 0, "sku")),
        ("items[-1]", ("items", -1)),
        ("$", ()),
        ("", ()),
        ("$.error.code", ("error", "code")),
        ("[0].slug", (0, "slug")),
        ('headers["x-request.id"]', ("headers", "x-request.id")),
    ],
)
def test_paths_parse(text: str, parts: tuple[Any, ...]) -> None:
    assert parse_path(text) == parts


@pytest.mark.parametrize("text", ["a..b", "a.", "items[0", ".a", "a b]"])
def test_bad_paths_are_refused(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_path(text)


def test_paths_resolve_or_say_why_not() -> None:
    data = {"items": [{"sku": "CAP"}], "error": None}
    assert resolve(data, parse_path("items[0].sku")) == "CAP"
    assert resolve(data, parse_path("items.length")) == 1
    missing = resolve(data, parse_path("items[0].qty"))
    assert isinstance(missing, Missing) and "has no key 'qty' (keys: sku)" in missing.reason
    missing = resolve(data, parse_path("error.code"))
    assert isinstance(missing, Missing) and "error is null, not an object" in missing.reason
    assert format_path(("items", 0, "x.y")) == 'items[0]["x.y"]'


# --- matchers -------------------------------------------------------------------------------------------

EXPECTED: TypeAdapter[Any] = TypeAdapter(Expected)


def matcher(**given: Any) -> Matcher:
    return Matcher.model_validate(given)


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        ({"eq": {"a": 1}}, {"a": 1}, {"a": 2}),
        ({"ne": 0}, 1, 0),
        ({"gt": 0}, 1, 0),
        ({"ge": 1}, "1", "0"),  # headers are text: numbers compare numerically
        ({"lt": 10}, 9.5, 10),
        ({"le": 10}, 10, 11),
        ({"between": [1, 60]}, "51", 61),
        ({"one_of": ["a", "b"]}, "b", "c"),
        ({"contains": "TSH"}, "TSHIRT", "MUG"),
        ({"contains": "CAP"}, ["MUG", "CAP"], ["MUG"]),
        ({"contains": {"sku": "CAP"}}, [{"sku": "CAP", "qty": 1}], [{"sku": "MUG"}]),
        ({"not_contains": {"id": 1}}, [{"id": 2}], [{"id": 1}]),
        ({"starts_with": "soft"}, "soft_limit_reached; used=3", "ok"),
        ({"ends_with": ".txt"}, "a/b.txt", "a/b.pdf"),
        ({"matches": "^[0-9a-f]{8}$"}, "0badcafe", "nope"),
        ({"type": "integer"}, 3, True),
        ({"type": "null"}, None, 0),
        ({"type": "array"}, [], {}),
        ({"length": 2}, ["a", "b"], ["a"]),
        ({"length": {"ge": 1}}, "x", ""),
        ({"type": "string", "matches": "^a"}, "abc", "bcd"),
    ],
)
def test_matchers(spec: dict[str, Any], good: Any, bad: Any) -> None:
    m = matcher(**spec)
    assert check(m, good) == []
    problems = check(m, bad)
    assert len(problems) == 1 and problems[0].startswith(f"expected {describe(m)}, got ")


def test_literals_compare_for_equality_leniently_between_numbers_and_text() -> None:
    assert check(201, 201) == []
    assert check(1, "1") == []  # a header value
    assert check("1", 1) == []
    assert check(True, 1) == ["expected true, got 1"]
    assert check([1, 2], [1, 2]) == []
    assert check(None, None) == []


def test_exists_false_matches_a_missing_value_only() -> None:
    absent = Missing(("a",), "a has no key 'b' (keys: none)")
    assert check(matcher(exists=False), absent) == []
    assert check(matcher(exists=False), 1) != []
    assert check(matcher(gt=0), absent) == ["expected > 0, but a has no key 'b' (keys: none)"]
    assert check(5, absent) == ["expected 5, but a has no key 'b' (keys: none)"]


def test_a_mapping_is_always_a_matcher() -> None:
    assert isinstance(EXPECTED.validate_python({"gt": 1}), Matcher)
    assert EXPECTED.validate_python([1, {"a": 1}]) == [1, {"a": 1}]  # lists stay literal
    with pytest.raises(ValidationError, match="gtt"):
        EXPECTED.validate_python({"gtt": 1})
    with pytest.raises(ValidationError, match="an empty matcher matches nothing"):
        EXPECTED.validate_python({})


def test_matchers_take_variables() -> None:
    m = render_expected(matcher(contains="${order_id}", ge="${count}"), VARIABLES)
    assert isinstance(m, Matcher) and m.given() == {"ge": 3, "contains": "0b7c"}
    assert render_expected("Order ${order_id}", VARIABLES) == "Order 0b7c"


def test_describe() -> None:
    assert describe(matcher(gt=0, lt=5)) == "> 0 and < 5"
    assert describe(matcher(between=[1, 2])) == "between 1 and 2"
    assert describe(matcher(length={"ge": 1})) == "length >= 1"
    assert describe("x") == '"x"'


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10.0), ("500ms", 0.5), ("2m", 120.0), (3, 3.0), ("1.5s", 1.5), ("7", 7.0)]
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds
