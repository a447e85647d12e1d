"""Who may see and who may act in the MCOM section of the Commerce Admin.

- Only active staff users reach the section at all.
- Seeing needs ``adminui.mcom_view`` (or ``mcom_act``, or superuser).
- Acting (every POST: register, check connection, retry/ignore, catalog export, configuration)
  needs ``adminui.mcom_act`` or superuser; others get 403 and the buttons are not rendered.
- The "MCOM read-only" group gives ``mcom_view`` plus the view permissions of the connector's
  models: :func:`make_read_only` puts a user in it (creating or refreshing the group).
- Stock is controlled by the OMS: :func:`stock_editable` is False in production mode, and
  :class:`ReadOnlyInProductionMixin` makes a ``ModelAdmin`` view-only there.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission, PermissionsMixin
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest

from mcom import envconfig

READ_ONLY_GROUP = "MCOM read-only"
VIEW_PERMISSION = "adminui.mcom_view"
ACT_PERMISSION = "adminui.mcom_act"
#: apps whose models the read-only role may view in the admin
CONNECTOR_APPS: tuple[str, ...] = ("commerce", "service_bus", "sales", "catalog", "inventory", "postsales")

UserLike = AbstractBaseUser | AnonymousUser


def _staff(user: UserLike) -> PermissionsMixin | None:
    """The user when it is an active staff member with permissions, else None."""
    if isinstance(user, PermissionsMixin) and user.is_active and getattr(user, "is_staff", False):
        return user
    return None


def can_view(user: UserLike) -> bool:
    """Active staff with ``mcom_view``/``mcom_act`` (or a superuser) may see the MCOM pages."""
    staff = _staff(user)
    if staff is None:
        return False
    return staff.is_superuser or staff.has_perm(VIEW_PERMISSION) or staff.has_perm(ACT_PERMISSION)


def can_act(user: UserLike) -> bool:
    """Active staff with ``mcom_act`` (or a superuser) may press the MCOM action buttons."""
    staff = _staff(user)
    if staff is None:
        return False
    return staff.is_superuser or staff.has_perm(ACT_PERMISSION)


def _section_permission(codename: str, name: str) -> Permission:
    from mcom.adminui.models import McomSection

    ct = ContentType.objects.get_for_model(McomSection, for_concrete_model=False)
    perm, _ = Permission.objects.get_or_create(content_type=ct, codename=codename, defaults={"name": name})
    return perm


def read_only_group() -> Group:
    """The "MCOM read-only" group, created if needed, its permissions refreshed (new models included)."""
    group, _ = Group.objects.get_or_create(name=READ_ONLY_GROUP)
    view = _section_permission("mcom_view", "Can view the MCOM section")
    model_views = Permission.objects.filter(
        content_type__app_label__in=CONNECTOR_APPS, codename__startswith="view_"
    )
    group.permissions.set([view, *model_views])
    return group


def make_read_only(user: Any) -> None:
    """Put ``user`` (staff, not superuser) in the "MCOM read-only" group: sees everything, acts on nothing."""
    user.groups.add(read_only_group())


def grant_act(user: Any) -> None:
    """Give a staff user the right to act in the MCOM section (``adminui.mcom_act``)."""
    user.user_permissions.add(_section_permission("mcom_act", "Can act in the MCOM section"))


def stock_editable() -> bool:
    """Stock is editable in the admin only in developer mode (the OMS owns it in production)."""
    return envconfig.is_developer_mode()


class ReadOnlyInProductionMixin:
    """``ModelAdmin`` mixin: view-only in production mode (stock items, stock status)."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return stock_editable() and bool(super().has_add_permission(request, *args))  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return stock_editable() and bool(super().has_change_permission(request, obj))  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return stock_editable() and bool(super().has_delete_permission(request, obj))  # type: ignore[misc]
