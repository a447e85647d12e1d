"""`serve` and `cron:run`: web + cron worker."""

import click

COMMANDS: list[click.Command] = []
