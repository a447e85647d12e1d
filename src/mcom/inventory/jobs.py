"""Cron jobs, outbound declarations and hook registrations of the inventory module (app-ready)."""

from __future__ import annotations

from mcom.commerce import hooks
from mcom.inventory import services

hooks.register(hooks.stock_edit_guard, services.stock_edit_guard)
