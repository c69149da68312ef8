"""The pure parts of metrics and logs: request ids, access lines, route labels, the young namespace's
time left, and the import order that multiprocess metrics depend on."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from rerum_server.cache.keys import young_for_ms
from rerum_server.logs import REQUEST_ID_MAX, AccessLine, JsonFormatter, printable, request_id
from rerum_server.metrics import route_label
from rerum_server.settings import Settings, SettingsError
from rerum_server.web.routes import ROUTES, resolve


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("trace-42", "trace-42"),
        ("abc\r\nSet-Cookie: x=1", "abcSet-Cookie:x=1"),
        ('a b\t"c"\\d\x1b[31m', "abcd31m"),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("x" * 10_000, "x" * REQUEST_ID_MAX),
        ("ünïcödé", "ncd"),
    ],
)
def test_a_client_request_id_keeps_only_safe_characters_and_128_of_them(given: str, kept: str) -> None:
    assert request_id(given) == kept


@pytest.mark.parametrize("given", [None, "", "\r\n", "é ü"])
def test_without_a_usable_request_id_one_is_generated(given: str | None) -> None:
    generated = request_id(given)
    assert len(generated) == 32 and int(generated, 16) >= 0 and generated != request_id(given)


def _record(message: object) -> logging.LogRecord:
    return logging.LogRecord("rerum_server.access", logging.INFO, __file__, 1, message, None, None)


def test_an_access_line_has_the_same_keys_in_json_and_one_escaped_line_in_text() -> None:
    line = AccessLine("rid", "GET", "/v1/id/{id}", '/v1/id/a b\n"x"', 200, 1.23456, "h/1", None, None)
    fields = json.loads(JsonFormatter().format(_record(line)))
    assert set(fields) == {"time", "level", "logger", "message", "requestId", "method", "route", "path",
                           "status", "ms", "worker", "cache", "agent"}  # fmt: skip
    assert fields["path"] == '/v1/id/a b\n"x"' and fields["ms"] == 1.235 and fields["cache"] is None
    text = str(line)
    assert "\n" not in text and " " not in text.split("path=", 1)[1]
    assert text.startswith("GET /v1/id/{id} 200 1.235ms cache=- id=rid worker=h/1 agent=- path=")
    other = json.loads(JsonFormatter().format(_record("plain")))
    assert set(other) == {"time", "level", "logger", "message"}


def test_printable_leaves_ordinary_values_alone() -> None:
    assert printable("/v1/id/abc") == "/v1/id/abc"
    assert printable("a\u2028b") == "a\\u2028b"


def test_route_labels_are_templates() -> None:
    route, _ = resolve("/v1/id/0123456789abcdef01234567") or (None, None)
    assert route is not None and route_label(route.pattern) == "/v1/id/{id}"
    labels = {route_label(r.pattern) for r in ROUTES}
    assert {"/", "/v1/api/query", "/gog/id/{id}", "/metrics"} <= labels
    assert all("(" not in label and "\\" not in label for label in labels)


def test_a_namespace_is_young_for_one_fence_lifetime_from_its_birth() -> None:
    assert young_for_ms(None, 5_000, 10_000) == 10_000  # no read yet: the clock starts at the first
    assert young_for_ms(b"1000", 5_000, 10_000) == 6_000
    assert young_for_ms(b"1000", 11_000, 10_000) == 0
    assert young_for_ms(b"0", 1_700_000_000_000, 10_000) == 0  # marked new by `rerum serve`: never young


def test_log_settings_are_validated() -> None:
    settings = Settings.from_env({"LOG_FORMAT": "JSON", "LOG_LEVEL": "warning", "METRICS_ENABLED": "false"})
    assert (settings.log_format, settings.log_level, settings.metrics_enabled) == ("json", "warning", False)
    with pytest.raises(SettingsError, match=r"LOG_FORMAT has value 'xml'; expected one of text, json\."):
        Settings.from_env({"LOG_FORMAT": "xml"})


def test_the_serving_parent_does_not_import_prometheus_client_before_it_sets_the_metrics_directory() -> None:
    """prometheus_client picks its multiprocess mode on first import, and granian forks the workers
    from the parent: an early import there would give every worker private, unsummed metrics."""
    code = "import sys, rerum_server.cli, rerum_server.serve; print('prometheus_client' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
