from __future__ import annotations

from typing import Any

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


def test_delivery_settings_come_from_arguments_then_the_environment_then_defaults(tmp_path: Any) -> None:
    defaults = TelemetryConfig.resolve(environ={})
    assert (
        defaults.shutdown_timeout_millis,
        defaults.export_buffer_seconds,
        defaults.export_buffer_bytes,
        defaults.export_spool_dir,
        defaults.export_spool_bytes,
        defaults.export_retry_initial_millis,
        defaults.export_retry_max_millis,
    ) == (10_000.0, 900.0, 64 * 1024 * 1024, None, 256 * 1024 * 1024, 1_000.0, 60_000.0)
    environ = {
        "TELEMETRY_OTEL_SHUTDOWN_TIMEOUT_MILLIS": "5000",
        "TELEMETRY_OTEL_EXPORT_BUFFER_SECONDS": "60",
        "TELEMETRY_OTEL_EXPORT_BUFFER_BYTES": "1024",
        "TELEMETRY_OTEL_EXPORT_SPOOL_DIR": str(tmp_path),
        "TELEMETRY_OTEL_EXPORT_SPOOL_BYTES": "2048",
        "TELEMETRY_OTEL_EXPORT_RETRY_INITIAL_MILLIS": "100",
        "TELEMETRY_OTEL_EXPORT_RETRY_MAX_MILLIS": "500",
    }
    from_env = TelemetryConfig.resolve(environ=environ)
    assert (
        from_env.shutdown_timeout_millis,
        from_env.export_buffer_seconds,
        from_env.export_buffer_bytes,
        from_env.export_spool_dir,
        from_env.export_spool_bytes,
        from_env.export_retry_initial_millis,
        from_env.export_retry_max_millis,
    ) == (5_000.0, 60.0, 1024, str(tmp_path), 2048, 100.0, 500.0)
    explicit = TelemetryConfig.resolve(
        environ=environ, shutdown_timeout_millis=2_000, export_buffer_bytes=10, export_spool_dir=""
    )
    assert (explicit.shutdown_timeout_millis, explicit.export_buffer_bytes, explicit.export_spool_dir) == (
        2_000.0,
        10,
        None,
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TELEMETRY_OTEL_EXPORT_BUFFER_BYTES": "lots"}, "TELEMETRY_OTEL_EXPORT_BUFFER_BYTES"),
        ({"TELEMETRY_OTEL_SHUTDOWN_TIMEOUT_MILLIS": "0"}, "TELEMETRY_OTEL_SHUTDOWN_TIMEOUT_MILLIS"),
        (
            {
                "TELEMETRY_OTEL_EXPORT_RETRY_INITIAL_MILLIS": "5000",
                "TELEMETRY_OTEL_EXPORT_RETRY_MAX_MILLIS": "100",
            },
            "is more than",
        ),
    ],
)
def test_bad_delivery_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TelemetryConfig.resolve(environ=environ)


def test_the_runtime_builds_its_exporters_policy_from_the_settings(tmp_path: Any) -> None:
    from telemetry_otel import Telemetry

    class _Nothing:
        name = "nothing"

        def export(self, data: object, timeout_millis: float) -> None:
            pass

        def shutdown(self) -> None:
            pass

    config = TelemetryConfig.resolve(
        environ={},
        export_interval_millis=2_000,
        export_buffer_seconds=30,
        export_buffer_bytes=4096,
        export_retry_initial_millis=100,
        export_retry_max_millis=10_000,
    )
    telemetry = Telemetry(config, [_Nothing()])
    try:
        [exporter] = telemetry.exports.exporters
        policy = exporter.policy
        assert (policy.max_buffer_seconds, policy.max_buffer_bytes) == (30.0, 4096)
        assert (policy.initial_backoff_seconds, policy.max_backoff_seconds) == (0.1, 10.0)
        assert exporter._max_backoff == 2.0  # capped at the export interval
    finally:
        telemetry.shutdown(1_000)
