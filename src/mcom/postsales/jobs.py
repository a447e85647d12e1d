"""Cron jobs and outbound method declarations of the postsales module."""
