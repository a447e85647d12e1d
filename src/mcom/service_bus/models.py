"""The message log ``mcom_logged_messages_queue``: every inbound and outbound message.

Inbound rows are written by the endpoint before they are acknowledged; outbound rows are
written in the caller's transaction (outbox) before anything is sent. The worker processes
them in id order per ``entity_key``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Direction(models.TextChoices):
    IN = "in", "Incoming"
    OUT = "out", "Outgoing"


class Status(models.TextChoices):
    """The states of a logged message; only :mod:`mcom.service_bus.log` moves a row between them."""

    NEW = "new", "New"
    PROCESSING = "processing", "Processing"
    COMPLETE = "complete", "Complete"
    RETRY = "retry", "Retry"
    ERROR = "error", "Error"
    IGNORED = "ignored", "Ignored"


class Kind(models.TextChoices):
    """Outbound communication type (docs/oms-protocol.md): sync query, async command, broadcast event, bus call."""

    REMOTE = "remote", "remote"
    DELEGATE = "delegate", "delegate"
    EVENT = "event", "event"
    BUS = "bus", "bus"


class LoggedMessage(models.Model):
    Direction = Direction
    Status = Status
    Kind = Kind

    IN = Direction.IN
    OUT = Direction.OUT
    DIRECTIONS = Direction.choices

    NEW = Status.NEW
    PROCESSING = Status.PROCESSING
    COMPLETE = Status.COMPLETE
    RETRY = Status.RETRY
    ERROR = Status.ERROR
    IGNORED = Status.IGNORED
    STATUSES = Status.choices
    #: statuses that still wait for the worker
    PENDING = (Status.NEW, Status.RETRY, Status.PROCESSING)
    #: statuses that hold back the later messages of their entity
    OPEN = (*PENDING, Status.ERROR)
    #: statuses that are final
    FINISHED = (Status.COMPLETE, Status.IGNORED)

    KIND_REMOTE: str = Kind.REMOTE
    KIND_DELEGATE: str = Kind.DELEGATE
    KIND_EVENT: str = Kind.EVENT
    KIND_BUS: str = Kind.BUS
    KINDS = Kind.choices

    direction = models.CharField(max_length=3, choices=Direction.choices)
    topic = models.CharField(max_length=128, help_text="JSON-RPC method")
    message_id = models.CharField(max_length=64, help_text="JSON-RPC id (ours for outbound, the bus's for inbound)")
    kind = models.CharField(max_length=8, choices=Kind.choices, blank=True)
    entity_key = models.CharField(max_length=191, help_text="messages of one key are processed in order")
    dedupe_key = models.CharField(  # noqa: DJ001 - NULL = "no dedupe key" (queried with IS NULL semantics)
        max_length=191, null=True, blank=True, help_text="outbound: a newer waiting message with the same key replaces this one"
    )
    payload = models.TextField(help_text="the params object as JSON (inbound: the exact received body)")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    result = models.TextField(blank=True, help_text="outcome (handler report or OMS answer) as JSON")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    park_transient = models.BooleanField(
        default=False, help_text="parked (error) because the retries ran out on a transient cause: re-queued by cron")
    requeues = models.PositiveIntegerField(default=0, help_text="automatic re-queues of a transient park so far")

    class Meta:
        db_table = "mcom_logged_messages_queue"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["direction", "message_id"], name="mcom_lmq_direction_message_id"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="mcom_lmq_status_next"),
            models.Index(fields=["entity_key", "id"], name="mcom_lmq_entity"),
            models.Index(fields=["created_at"], name="mcom_lmq_created"),
            models.Index(fields=["topic"], name="mcom_lmq_topic"),
            models.Index(fields=["dedupe_key"], name="mcom_lmq_dedupe"),
            # worker: open rows in id order, and "does an error row hold this entity back?"
            models.Index(
                fields=["direction", "id"],
                name="mcom_lmq_open",
                condition=models.Q(status__in=[Status.NEW, Status.RETRY, Status.PROCESSING]),
            ),
            models.Index(
                fields=["direction", "entity_key", "id"],
                name="mcom_lmq_error",
                condition=models.Q(status=Status.ERROR),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.topic} #{self.pk} ({self.status})"


class Registration(models.Model):
    """History of registrations with the bus (latest first): what was sent, when, outcome."""

    application_id = models.CharField(max_length=32)
    url = models.CharField(max_length=512)
    topics = models.JSONField(default=list)
    labels = models.JSONField(default=dict)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    source = models.CharField(max_length=32, blank=True, default="", help_text="what triggered it (setup:upgrade, admin, cli…)")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.application_id} at {self.url} ({'ok' if self.ok else 'failed'})"


class CronJobState(models.Model):
    """Last and next run of each cron job; ``locked_until`` keeps overlapping runs apart."""

    name = models.CharField(max_length=64, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "mcom_cron_schedule"

    def __str__(self) -> str:
        return self.name


class AppliedInbound(models.Model):
    """A pruned inbound message, remembered so a replay of its exact body is not applied again.

    Compact (a SHA-256 of the body, the topic, when it was received); written by the prune
    job before it deletes the log row, kept for ``service_bus.replay_window_days``
    (see :mod:`mcom.service_bus.replay`).
    """

    digest = models.CharField(max_length=64, unique=True)
    topic = models.CharField(max_length=128)
    received_at = models.DateTimeField()

    class Meta:
        db_table = "mcom_applied_inbound"
        indexes = [models.Index(fields=["received_at"], name="mcom_applied_received")]

    def __str__(self) -> str:
        return f"{self.topic} {self.digest[:12]}"
