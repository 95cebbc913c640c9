from __future__ import annotations

import pytest

from telemetry_otel import ConfigurationError, TelemetryConfig


def test_environment_supplies_standard_otel_variables() -> None:
    config = TelemetryConfig.resolve(
        environ={
            "OTEL_SERVICE_NAME": "agent-7",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%2Cb",
            "OTEL_SDK_DISABLED": "TRUE",
        }
    )
    assert config.service_name == "agent-7"
    assert config.resource_attributes == {"deployment.environment": "prod", "team": "a,b"}
    assert config.disabled is True


def test_explicit_arguments_beat_environment() -> None:
    config = TelemetryConfig.resolve(
        service_name="explicit",
        resource_attributes={"team": "mine"},
        disabled=False,
        environ={
            "OTEL_SERVICE_NAME": "env",
            "OTEL_RESOURCE_ATTRIBUTES": "team=env",
            "OTEL_SDK_DISABLED": "true",
        },
    )
    assert (config.service_name, config.resource_attributes["team"], config.disabled) == (
        "explicit",
        "mine",
        False,
    )


def test_service_name_falls_back_to_resource_attribute_then_default() -> None:
    from_attr = TelemetryConfig.resolve(environ={"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attr"})
    assert from_attr.service_name == "from-attr"
    assert TelemetryConfig.resolve(environ={}).service_name == "unknown_service"


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"OTEL_SDK_DISABLED": "maybe"}, "OTEL_SDK_DISABLED='maybe' is not a boolean"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "not of the form key=value"),
        ({"TELEMETRY_OTEL_SERVICE_TIMEOUT_MILLIS": "soon"}, "not a number of milliseconds"),
        ({"TELEMETRY_OTEL_SERVICE_TIMEOUT_MILLIS": "-5"}, "must be a positive number"),
        ({"TELEMETRY_OTEL_HOST_ENDPOINT": "localhost"}, "is not host:port"),
        ({"TELEMETRY_OTEL_HOST_ENDPOINT": "127.0.0.1:99999"}, "is not host:port"),
        ({"TELEMETRY_OTEL_REPORT_INTERVAL_MILLIS": "0"}, "must be a positive number"),
    ],
)
def test_bad_environment_values_name_what_is_allowed(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        TelemetryConfig.resolve(environ=environ)


def test_a_host_endpoint_and_its_report_interval_come_from_the_environment() -> None:
    config = TelemetryConfig.resolve(
        environ={
            "TELEMETRY_OTEL_HOST_ENDPOINT": "http://127.0.0.1:4319",
            "TELEMETRY_OTEL_REPORT_INTERVAL_MILLIS": "250",
        }
    )
    assert (config.host_endpoint, config.report_interval_millis) == ("http://127.0.0.1:4319", 250.0)
    assert TelemetryConfig.resolve(environ={}).host_endpoint is None
