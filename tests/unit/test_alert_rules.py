"""Alert rules without a database: how values compare with thresholds, where a rule finds its value,
which rule bodies are valid, and how webhook URLs are parsed and shown."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loupe.models.alerts import AlertRuleIn
from loupe.security.connection_policy import ConnectionPolicyError, PolicySettings
from loupe.security.webhooks import parse_webhook_url
from loupe.services.alerts import Observation, compare, kept_state, observed_value

STRICT = PolicySettings(allow_private_hosts=False)
LENIENT = PolicySettings(allow_private_hosts=True)


@pytest.mark.parametrize(
    ("operator", "value", "threshold", "expected"),
    [
        (">", 5, 3, True),
        (">", "812.40", 1000, False),  # PostgreSQL numerics arrive as text
        ("<", "812.40", 1000, True),
        (">=", 3.0, 3, True),
        ("<=", "1e3", 1000, True),
        ("==", "3.00", 3, True),
        ("!=", "3.00", 3, False),
        ("==", "abc", "abc", True),
        (">", "2026-11-26", "2026-11-01", True),  # ISO dates compare as text
        ("<", "2026-11-26T06:00:00", "2026-11-26T07:00:00", True),
        ("==", True, True, True),
        ("==", 1, True, False),  # a boolean is not the number 1
        ("==", None, None, True),
        ("!=", None, 3, True),
        (">", None, 3, False),
        (">", "not a number", 3, False),
        (">", "NaN", 3, False),
        (">", "Infinity", 3, False),
        (">", 5, "3", False),  # a number is not compared with text
        (">", True, 0, False),
    ],
)
def test_compare(operator: str, value: Any, threshold: Any, expected: bool) -> None:
    assert compare(operator, value, threshold) is expected


@given(st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12))
def test_numeric_text_compares_like_the_number(value: int, threshold: int) -> None:
    for name, expected in ((">", value > threshold), ("<=", value <= threshold), ("==", value == threshold)):
        assert compare(name, str(value), threshold) is expected
        assert compare(name, value, threshold) is expected


def test_observed_value() -> None:
    seen = Observation(columns=["id", "label"], first_row=[7, "x"], row_count=12)
    empty = Observation(columns=["id", "label"], first_row=None, row_count=0)
    assert observed_value({"source": "row_count"}, seen) == (12, None)
    assert observed_value({"source": "row_count"}, empty) == (0, None)
    assert observed_value({"source": "column", "column": "label"}, seen) == ("x", None)
    assert observed_value({"source": "column", "column": "label"}, empty) == (None, "the result has no rows")
    assert observed_value({"source": "column", "column": "nope"}, seen)[1] == (
        "the result has no column named 'nope'"
    )


def test_kept_state_only_for_rules_sent_again_unchanged() -> None:
    rule = {"id": "a", "operator": ">", "threshold": 1}
    state = {"a": {"triggered": True}, "b": {"triggered": True}}
    assert kept_state([rule], [rule], state) == {"a": {"triggered": True}}
    assert kept_state([rule], [rule | {"threshold": 2}], state) == {}
    assert kept_state([rule], [], state) == {}


@pytest.mark.parametrize(
    "body",
    [
        {"source": "row_count", "operator": ">", "threshold": 10},
        {"column": "n", "operator": "changed"},
        {"column": "n", "operator": "==", "threshold": None},
        {"column": "n", "operator": "!=", "threshold": False},
        {"column": "n", "operator": "<", "threshold": "2026-01-01"},
        {"column": "n", "operator": ">=", "threshold": 2.5},
    ],
)
def test_valid_rules(body: dict[str, Any]) -> None:
    assert AlertRuleIn.model_validate(body).operator == body["operator"]


def test_a_rule_on_the_run_failing_takes_nothing_to_compare() -> None:
    rule = AlertRuleIn.model_validate({"source": "run_failed", "muted_until": "2026-12-24T00:00:00Z"})
    assert (rule.operator, rule.column, rule.threshold, rule.destination_ids) == (None, None, None, None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"operator": ">", "threshold": 1}, "names the column"),
        ({"source": "row_count", "column": "n", "operator": ">", "threshold": 1}, "names no column"),
        ({"column": "n", "operator": "changed", "threshold": 1}, "takes no threshold"),
        ({"column": "n", "operator": ">"}, "needs a threshold"),
        ({"column": "n", "operator": ">", "threshold": None}, "not None"),
        ({"column": "n", "operator": "<", "threshold": True}, "not True"),
        ({"source": "row_count", "operator": ">", "threshold": "5"}, "compared with a number"),
        ({"column": "n"}, "needs an operator"),
        ({"source": "run_failed", "muted_until": "2030-01-01T00:00:00"}, "timezone"),
        ({"source": "run_failed", "operator": ">", "threshold": 1}, "takes no operator or threshold"),
        ({"source": "run_failed", "threshold": None}, "takes no operator or threshold"),
        ({"source": "run_failed", "column": "n"}, "names no column"),
        (
            {"source": "run_failed", "destination_ids": ["7c9e1a3b-5d7f-4b9d-8f1b-3d5f7b9d1f3b"] * 2},
            "named once",
        ),
    ],
)
def test_invalid_rules(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertRuleIn.model_validate(body)


class TestWebhookUrls:
    def test_parts_and_display_keep_the_secret_out(self) -> None:
        webhook = parse_webhook_url("https://Hooks.Example.com/services/T0/B0/s3cret?x=1", STRICT)
        assert (webhook.host, webhook.port, webhook.target) == (
            "hooks.example.com",
            443,
            "/services/T0/B0/s3cret?x=1",
        )
        assert webhook.display() == "https://hooks.example.com"
        assert (
            parse_webhook_url("https://[2001:db8::1]:8443", STRICT).display() == "https://[2001:db8::1]:8443"
        )
        assert parse_webhook_url("http://127.0.0.1:9/h", LENIENT).target == "/h"

    @pytest.mark.parametrize(
        "url",
        [
            "http://hooks.example.com/",
            "file:///etc/passwd",
            "gopher://hooks.example.com/",
            "https://user@hooks.example.com/",
            "https://hooks.example.com/#x",
            "https://hooks.example.com:99999/",
            "https://hooks.example.com:0/",
            "https:///x",
            "https://bad_host!.com/",
            "https://hooks.example.com/\r\nX-Injected: 1",
            "https://[fe80::1%25eth0]/",
            "//hooks.example.com/",
        ],
    )
    def test_refused(self, url: str) -> None:
        with pytest.raises(ConnectionPolicyError):
            parse_webhook_url(url, STRICT)
