"""exporter.allocator: glibc malloc settings, overridable by the environment."""

from __future__ import annotations

import pytest

from exporter import allocator


def test_defaults_are_applied_without_environment_overrides():
    if allocator._LIBC is None:
        pytest.fail("this machine's Python runs on glibc; the allocator module must find it")
    assert allocator.tune_allocator({}) == {
        "arena_max": allocator.ARENA_MAX,
        "mmap_threshold": allocator.MMAP_THRESHOLD,
    }


def test_an_operators_environment_setting_wins():
    applied = allocator.tune_allocator({"MALLOC_ARENA_MAX": "4"})
    assert "arena_max" not in applied and applied["mmap_threshold"] == allocator.MMAP_THRESHOLD
    assert allocator.tune_allocator({"MALLOC_ARENA_MAX": "4", "MALLOC_MMAP_THRESHOLD_": "1"}) == {}


def test_without_glibc_nothing_is_done(monkeypatch):
    monkeypatch.setattr(allocator, "_LIBC", None)
    assert allocator.tune_allocator({}) == {}
    allocator.release_free_memory()  # a no-op, not an error


def test_on_a_platform_without_a_c_library_to_find_the_probe_gives_none(monkeypatch):
    # As on Windows: find_library("c") finds nothing and "libc.so.6" cannot be loaded.
    import ctypes
    import ctypes.util

    def no_cdll(name, *args, **kwargs):
        raise OSError(f"{name}: not found")

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(ctypes, "CDLL", no_cdll)
    assert allocator._libc() is None


def test_a_c_library_without_glibc_functions_gives_none(monkeypatch):
    # As on macOS or musl: a libc loads, but malloc_trim/mallopt are not there.
    import ctypes

    class NotGlibc:
        def __init__(self, name, *args, **kwargs):
            pass

        def __getattr__(self, name):
            raise AttributeError(name)

    monkeypatch.setattr(ctypes, "CDLL", NotGlibc)
    assert allocator._libc() is None
