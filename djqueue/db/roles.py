"""The console's two roles as Django groups, made by ``manage.py djqueue roles``.

A command rather than a data migration: a project that manages its groups its own way
(fixtures, single sign-on, another naming scheme) is not handed groups it did not ask
for, and running the command again after an upgrade brings the groups up to date with
permissions a new release adds.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from djqueue.core import permissions


class PermissionsMissing(Exception):
    """djqueue's permissions are not in the database yet (``migrate`` has not run)."""


@dataclass(frozen=True)
class Role:
    """A group as the command left it."""

    name: str
    permissions: tuple[str, ...]
    created: bool


def install() -> list[Role]:
    """Make (or bring up to date) the groups of :data:`permissions.ROLES`.

    Each group ends holding exactly its role's permissions. Raises PermissionsMissing
    when ``migrate`` has not made them yet.
    """
    with transaction.atomic():
        return [_group(name, codenames) for name, codenames in permissions.ROLES.items()]


def _group(name: str, codenames: tuple[str, ...]) -> Role:
    found = Permission.objects.filter(
        content_type__app_label=permissions.APP, codename__in=codenames
    )
    missing = sorted(set(codenames) - set(found.values_list("codename", flat=True)))
    if missing:
        raise PermissionsMissing(
            f"djqueue's permissions {', '.join(missing)} are not in the database: "
            "run `manage.py migrate` first, then this command again."
        )
    group, created = Group.objects.get_or_create(name=name)
    group.permissions.set(found)
    return Role(name, codenames, created)
