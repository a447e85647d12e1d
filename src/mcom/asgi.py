"""ASGI entry point (served by uvicorn in ``mcom serve``).

``/mcom/service-bus`` is served by the service bus's lean ingest handler (signature check +
group-committed insert, see :mod:`mcom.service_bus.ingest`); every other path goes to Django
(static files of the admin included).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from mcom.service_bus.ingest import mount  # noqa: E402

# The admin's CSS/JS come from the installed apps' static folders (no collectstatic step needed).
django_application = ASGIStaticFilesHandler(get_asgi_application())
application = mount(django_application)
