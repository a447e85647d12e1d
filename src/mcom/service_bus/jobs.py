"""Cron jobs of the service_bus module: process inbound, send outbound, re-queue transient parks, prune daily."""

from __future__ import annotations

from mcom.service_bus import integration, prune, recovery, registry, worker

#: a cron pass stops starting new messages after this long (``serve`` runs the next pass soon)
PASS_SECONDS = 50.0


@registry.cron_job("service_bus.process_inbound", every_seconds=0, module="service_bus")
def process_inbound() -> int:
    """Process every due inbound message (bounded by :data:`PASS_SECONDS`)."""
    return worker.process_inbound(max_seconds=PASS_SECONDS)


@registry.cron_job("service_bus.send_outbound", every_seconds=0, module="service_bus")
def send_outbound() -> int:
    """Send every due outbound message (bounded by :data:`PASS_SECONDS`); none while disabled."""
    if not integration.enabled():
        return 0
    return worker.send_outbound(max_seconds=PASS_SECONDS)


@registry.cron_job("service_bus.requeue_parked", every_seconds=60, module="service_bus")
def requeue_parked() -> int:
    """Every minute: re-queue messages parked on a transient cause once it is gone (bounded, logged;
    :mod:`mcom.service_bus.recovery`). Returns how many were re-queued."""
    return sum(sum(by_topic.values()) for by_topic in recovery.requeue_pass().values())


@registry.cron_job("service_bus.prune", every_seconds=24 * 3600, module="service_bus")
def prune_message_log() -> int:
    """Daily: delete finished messages older than ``mcom/message_log/prune_days`` (if enabled)."""
    return prune.prune_if_enabled()
