"""A bearer token no request could present is refused when the app is built, not answered 401 for ever."""

from __future__ import annotations

import pytest

from telemetry_otel import Telemetry
from telemetry_otel.views import create_app


@pytest.mark.parametrize("token", ["s3cret\n", " s3cret", "s3cret\r\n", "\ts3cret", "  "])
def test_a_token_with_whitespace_around_it_is_refused_at_start_up(telemetry: Telemetry, token: str) -> None:
    with pytest.raises(ValueError, match="leading or trailing whitespace") as refused:
        create_app(telemetry, token=token)
    assert "s3cret" not in str(refused.value)  # the message never shows the token


def test_a_token_with_a_control_character_is_refused(telemetry: Telemetry) -> None:
    with pytest.raises(ValueError, match="control character"):
        create_app(telemetry, token="s3c\x00ret")


def test_an_empty_token_is_refused(telemetry: Telemetry) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        create_app(telemetry, token="")
