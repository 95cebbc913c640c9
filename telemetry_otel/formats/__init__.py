"""Encoders from OTel ``MetricsData`` to wire formats."""
