"""The bots' view of the access rules: re-exported from `engine.access`, where the executor can reach them too."""

from __future__ import annotations

from engine.access import ROLE_ADMIN, ROLE_TRADER, ROLES, AccessPolicy, Permission, refusal

__all__ = ["ROLES", "ROLE_ADMIN", "ROLE_TRADER", "AccessPolicy", "Permission", "refusal"]
