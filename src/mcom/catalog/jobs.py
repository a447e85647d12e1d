"""Cron jobs and outbound method declarations of the catalog module."""
