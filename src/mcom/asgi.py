"""ASGI entry point (served by uvicorn in ``mcom serve``).

``/mcom/service-bus`` is served by the service bus's lean ingest handler (signature check +
group-committed insert, see :mod:`mcom.service_bus.ingest`); every other path goes to Django.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from mcom.service_bus.ingest import mount  # noqa: E402

django_application = get_asgi_application()
application = mount(django_application)
