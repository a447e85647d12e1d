"""Test support shipped with mcom (pytest plugin, live servers)."""
