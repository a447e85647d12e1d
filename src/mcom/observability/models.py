"""Tables of the operator's view that outlive the message log's pruning."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class HourlyActivity(models.Model):
    """Messages created per hour and direction, and how many of them were seen in error.

    Filled from the message log by :func:`mcom.observability.activity.roll_up` (cron, before every
    prune and on the dashboard); a count never goes down, so pruning the log keeps the history.
    """

    hour = models.DateTimeField(help_text="start of the hour (UTC)")
    direction = models.CharField(max_length=3)
    messages = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "mcom_hourly_activity"
        verbose_name = "hourly activity"
        verbose_name_plural = "hourly activity"
        constraints = [models.UniqueConstraint(fields=["hour", "direction"], name="mcom_hourly_hour_direction")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.direction}: {self.messages} ({self.errors} errors)"


class MessageAttempt(models.Model):
    """One failed attempt of a logged message, with the full error trace (the message's history).

    ``message_id`` is the log row id without a foreign key: pruning the log does not cascade here,
    and the history is pruned with the same age rule (:func:`mcom.observability.attempts.prune`).
    """

    message_id = models.BigIntegerField(db_index=True, help_text="id in mcom_logged_messages_queue")
    attempt = models.PositiveIntegerField()
    status = models.CharField(max_length=16, help_text="status the attempt left: retry or error")
    error = models.TextField(blank=True)
    trace = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "mcom_message_attempts"
        ordering = ["message_id", "id"]
        verbose_name = "message attempt"
        verbose_name_plural = "message attempts"

    def __str__(self) -> str:
        return f"message #{self.message_id} attempt {self.attempt} ({self.status})"
