"""Tests of the SPE simulator (exporter.simulator)."""
