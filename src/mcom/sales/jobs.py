"""Cron jobs and outbound method declarations of the sales module."""
