"""`mcom` commands of the service_bus module."""

import click

COMMANDS: list[click.Command] = []
