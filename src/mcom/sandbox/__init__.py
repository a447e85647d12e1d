"""The OMS sandbox: a local stand-in for the OMS and its integration bus.

An independent Starlette app with its own SQLite database that speaks the OMS wire
protocol (``docs/oms-protocol.md``). It never imports Django or other mcom packages.
Entry points: :func:`mcom.sandbox.server.create_app`, :func:`mcom.sandbox.server.run`
and, for tests, :class:`mcom.sandbox.testing.SandboxServer`.
"""
