"""WSGI entry point (the exchange normally runs under ASGI: see asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings.base")
application = get_wsgi_application()
