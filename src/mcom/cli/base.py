"""Shared plumbing of the ``mcom`` commands: Django bootstrap and one-line errors."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from mcom import envconfig

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A domain error turned into one line on stderr and exit code 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def setup_django() -> None:
    """Load env.toml (one clear line if it is bad) and configure Django once."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
    try:
        envconfig.current()
        import django
        from django.apps import apps

        if not apps.ready:
            django.setup()
    except envconfig.ConfigError as e:
        raise CommandError(str(e)) from None


def needs_django(fn: F) -> F:
    """Decorator: bootstrap Django before the command body; map known errors to one line."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_django()
        from django.db import DatabaseError

        try:
            return fn(*args, **kwargs)
        except envconfig.ConfigError as e:
            raise CommandError(str(e)) from None
        except DatabaseError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CommandError(f"database: {first} (did you run `mcom setup:install` / `mcom setup:upgrade`?)") from None

    return wrapper  # type: ignore[return-value]


def echo_err(msg: str) -> None:
    click.echo(msg, err=True)


def fail(msg: str) -> None:
    raise CommandError(msg)


def is_tty() -> bool:
    return sys.stdout.isatty()
