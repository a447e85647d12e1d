"""Django settings, built from the instance's ``etc/env.toml`` (see :mod:`mcom.envconfig`)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import django_stubs_ext

from mcom import envconfig, instance
from mcom.dburl import database_settings
from mcom.logconfig import logging_dict, private_file

# generic admin/form classes (ModelAdmin[Order]) at run time, as the type stubs declare them
django_stubs_ext.monkeypatch()

_cfg = envconfig.current()
ROOT = instance.root()
BASE_DIR = Path(__file__).resolve().parent

DEBUG = False
SECRET_KEY = instance.django_secret_key()  # var/django-secret-key, made on first use (0600)
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # its own static Swagger UI for /api/docs (no CDN)
    "mcom.commerce",
    "mcom.service_bus",
    "mcom.sales",
    "mcom.catalog",
    "mcom.inventory",
    "mcom.postsales",
    "mcom.adminui",
    "mcom.observability",
    "axes",
]
if os.environ.get("MCOM_TEST_HANDLERS"):  # a subprocess under test: mcom.testing installs its handlers
    INSTALLED_APPS.append("mcom.testing.apps.TestingConfig")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into 429
]

# Brute-force limits (django-axes) on the admin login and REST Basic auth, from [security] in env.toml:
# after login_failure_limit failures for one username from one address, 429 for login_cooloff_seconds.
AUTHENTICATION_BACKENDS = [
    "mcom.commerce.api_auth.LoginLimitBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _cfg.security.login_failure_limit
AXES_COOLOFF_TIME = timedelta(seconds=_cfg.security.login_cooloff_seconds)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "mcom.commerce.api_auth.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password"]

ROOT_URLCONF = "mcom.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ASGI_APPLICATION = "mcom.asgi.application"
WSGI_APPLICATION = "mcom.wsgi.application"

DATABASES = {"default": database_settings(_cfg.db.url)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    private_file(Path(DATABASES["default"]["NAME"]))  # 0600; SQLite gives -wal/-shm the same mode
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"
STATIC_ROOT = ROOT / "var" / "static"
LOGIN_URL = "/admin/login/"

DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False

LOGGING = logging_dict()
