"""Roles and their permissions (callengine.access)."""

from __future__ import annotations

from callengine.access import Permission, Role, allowed


def test_permission_matrix():
    assert all(allowed(Role.ADMIN, p) for p in Permission)
    assert allowed(Role.SUPERVISOR, Permission.UNMASK)
    assert not allowed(Role.VIEWER, Permission.UNMASK)
    assert not allowed(Role.AGENT, Permission.UNMASK)
    assert allowed(Role.AGENT, Permission.PLAY_RECORDINGS)
    assert not allowed(Role.SUPERVISOR, Permission.ERASE_SUBJECT)
    assert not allowed(Role.VIEWER, Permission.CONFIGURE)
