"""Prometheus exporter for the MailStore Service Provider Edition Management API."""

__version__ = "0.1.0"
