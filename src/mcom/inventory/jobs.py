"""Cron jobs and outbound method declarations of the inventory module."""
