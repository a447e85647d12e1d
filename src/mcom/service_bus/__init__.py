"""The service bus: the message log and everything that moves messages between mcom and the OMS.

Public API — what the connector modules (``sales``, ``catalog``, ``inventory``, ``postsales``)
may use; everything else in this package is internal to the transport:

=================  =========================================================================
``methods``        the OMS method names
``registry``       ``inbound(…)`` handlers, ``outbound(…)`` declarations with their hooks,
                   ``cron_job(…)``; ``InboundMessage``/``OutboundMessage`` (what they receive)
``outbox``         ``enqueue``/``enqueue_many``/``OutboxItem``: queue outbound messages inside the
                   business transaction
``inbox``          ``store_inbound``: log an inbound message produced locally
``worker``         ``run_until_idle``, ``send_now``, ``send_messages``, ``retry``, ``ignore``
``log``            ``supersede``: a newer message replaces parked ones of its entities (the log
                   itself is written only by the transport)
``errors``         ``RetryLater``, ``PermanentError``, ``InvalidPayload``, ``MessageError``, ``OmsError``
``retry``          ``RetryPolicy``: the one backoff/give-up rule
``client``         ``get_client().call(…)``: a synchronous query to the OMS
``models``         ``LoggedMessage`` (read-only queries), ``Status``, ``Kind``
``registration``   ``register``, ``inbound_url``
``integration``    ``enabled()``: the Enable/Disable switch (nothing is sent while disabled)
``events``         operator events: the "message parked" line, counters, attempt listeners
``selection``      ``MessageFilter``: which messages an operator means (admin list, bulk retry/ignore)
=================  =========================================================================

The application shell (``cli``, ``asgi``, ``adminui``, ``testing``) also runs the transport:
``cron``, ``ingest``, ``commands``, ``prune``, ``oauth``, ``endpoint``.

Dependencies point one way: this package imports no connector module, and the connector modules
never write the message log themselves (``tests/service_bus/test_log_owner.py``).
"""

#: modules of this package the connector modules may import (checked by tests/service_bus/test_public_api.py)
PUBLIC_MODULES = frozenset(
    {"methods", "registry", "outbox", "inbox", "worker", "log", "errors", "retry", "client", "models", "registration",
     "integration", "events", "selection"}
)
