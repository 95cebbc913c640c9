"""``label_agent``: every sample of ``/metrics`` names its agent, a clashing attribute is kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _data import collect, record_hostile, record_realistic
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel.formats import (
    OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS_TEXT_CONTENT_TYPE,
    encode_exposition,
    encode_openmetrics,
    encode_prometheus_text,
    label_agent,
)

SCOPE = InstrumentationScope("s", "1", None, None)


def _data(resource: Resource) -> MetricsData:
    metrics = [
        Metric(
            "work.done",
            "",
            "{item}",
            Sum([NumberDataPoint({"agent": "other"}, 0, 1, 3)], AggregationTemporality.CUMULATIVE, True),
        ),
        Metric("work.depth", "", "{item}", Gauge([NumberDataPoint({"service.name": "db"}, 0, 1, 2)])),
        Metric(
            "work.time",
            "",
            "s",
            Histogram(
                [HistogramDataPoint(None, 0, 1, 1, 0.5, [0, 1], [1.0], 0.5, 0.5, None)],
                AggregationTemporality.CUMULATIVE,
            ),
        ),
    ]
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(SCOPE, metrics, "")], "")])


def test_every_sample_carries_the_resource_service_name_as_agent() -> None:
    text = encode_prometheus_text(label_agent(_data(Resource.create({"service.name": "fleet-a"}))))
    families = [family for family in text_string_to_metric_families(text) if family.name != "target_info"]
    samples = [sample for family in families for sample in family.samples]
    assert samples
    assert all(sample.labels["agent"] == "fleet-a" for sample in samples)
    done = next(sample for sample in samples if sample.name == "work_done_total")
    assert done.labels["exported_agent"] == "other"  # the point's own attribute is kept, renamed
    depth = next(sample for sample in samples if sample.name == "work_depth")
    assert depth.labels["service_name"] == "db"


def test_a_resource_without_a_service_name_is_left_alone() -> None:
    data = _data(Resource.get_empty())
    assert label_agent(data).resource_metrics[0] is data.resource_metrics[0]


# --- the encoders' own agent label (what /metrics uses): the same text as label_agent's -----------

Encode = Callable[..., str]
ENCODERS: tuple[Encode, ...] = (encode_prometheus_text, encode_openmetrics)


def _hostile_data() -> MetricsData:
    values = ('say "hi"', "line\nbreak", "back\\slash", "", "ünï ✓")
    return collect(record_hostile(values), service_name='a"g\n')


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_data(Resource.create({"service.name": "fleet-a"})), id="clash"),
        pytest.param(_data(Resource.get_empty()), id="no-agent"),
        pytest.param(collect(record_realistic), id="realistic"),
        pytest.param(_hostile_data(), id="hostile"),
    ],
)
def test_the_encoders_agent_label_is_label_agents_text(encode: Encode, data: MetricsData) -> None:
    assert encode(data, agent_label=True) == encode(label_agent(data))


def test_without_agent_label_the_encoders_add_nothing() -> None:
    data = _data(Resource.create({"service.name": "fleet-a"}))
    assert 'agent="fleet-a"' not in encode_prometheus_text(data)
    assert 'agent="fleet-a"' in encode_prometheus_text(data, agent_label=True)


@pytest.mark.parametrize("content_type", [PROMETHEUS_TEXT_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE])
def test_encode_exposition_labels_the_agent_in_its_chunks(content_type: str) -> None:
    data = collect(record_realistic)
    encode = encode_openmetrics if content_type == OPENMETRICS_CONTENT_TYPE else encode_prometheus_text
    chunks = encode_exposition(data, content_type, agent_label=True, chunk_chars=200)
    assert len(chunks) > 2
    assert b"".join(chunks).decode("utf-8") == encode(label_agent(data))


# Keys that matter: the agent's own, the keys that map to exported_agent, one that maps to ``le``,
# and enough others for the general path (more than three attributes).
_KEYS = ("agent", "exported_agent", "exported.agent", "le", "a", "b", "c.d", "c_d")
_VALUES: st.SearchStrategy[AttributeValue] = st.one_of(
    st.sampled_from(["x", "fleet-a", 'q"', "n\n", ""]), st.integers(-3, 3), st.booleans()
)
_ATTRIBUTES = st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=5)


def _metric(kind: int, name: str, points: list[dict[str, AttributeValue]]) -> Metric:
    if kind == 0:
        numbers = [NumberDataPoint(dict(a), 1, 2, index) for index, a in enumerate(points)]
        return Metric(name, "", "", Sum(numbers, AggregationTemporality.CUMULATIVE, True))
    if kind == 1:
        return Metric(name, "d", "1", Gauge([NumberDataPoint(dict(a), 1, 2, 0.5) for a in points]))
    histograms = [HistogramDataPoint(dict(a), 1, 2, 1, 0.5, [0, 1], [1.0], 0.5, 0.5, None) for a in points]
    return Metric(name, "", "s", Histogram(histograms, AggregationTemporality.CUMULATIVE))


@settings(max_examples=150, deadline=None)
@given(
    agent=st.sampled_from([None, "fleet-a", 'q"\\n']),
    metrics=st.lists(
        st.tuples(st.integers(0, 2), st.lists(_ATTRIBUTES, min_size=1, max_size=6)), min_size=1, max_size=3
    ),
)
def test_the_encoders_agent_label_equals_label_agent_for_any_attributes(
    agent: str | None, metrics: list[tuple[int, list[dict[str, AttributeValue]]]]
) -> None:
    resource = Resource.create({"service.name": agent}) if agent is not None else Resource.get_empty()
    built = [_metric(kind, f"m{index}", points) for index, (kind, points) in enumerate(metrics)]
    data = MetricsData([ResourceMetrics(resource, [ScopeMetrics(SCOPE, built, "")], "")])
    for encode in ENCODERS:
        assert encode(data, agent_label=True) == encode(label_agent(data))
