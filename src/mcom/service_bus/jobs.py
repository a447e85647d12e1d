"""Cron jobs and outbound method declarations of the service_bus module."""
