"""The server caps glibc's malloc arenas (app/malloc_arenas.py): taken on glibc, refused with a named error,
left to the user when MALLOC_ARENA_MAX is set."""

import platform

import pytest

from app.malloc_arenas import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_ARENA_MAX) is glibc's")
def test_glibc_takes_the_arena_cap(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(2) is True


def test_the_users_environment_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False


def test_a_cap_below_one_is_refused_by_name():
    with pytest.raises(ValueError, match="arenas must be >= 1, got 0"):
        limit_malloc_arenas(0)
