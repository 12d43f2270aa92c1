import ctypes
import ctypes.util
import sys

import pytest

from spacy_biobert.memory import use_mmap_for_large_allocations


def _is_glibc() -> bool:
    name = ctypes.util.find_library("c")
    return name is not None and hasattr(ctypes.CDLL(name), "gnu_get_libc_version")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _is_glibc(), reason="glibc only")
def test_mmap_threshold_is_set_on_glibc():
    assert use_mmap_for_large_allocations() is True
    # Setting it again is harmless.
    assert use_mmap_for_large_allocations(128 * 1024) is True


def test_mmap_threshold_without_libc_changes_nothing(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert use_mmap_for_large_allocations() is False
