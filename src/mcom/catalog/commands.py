"""`mcom` commands of the catalog module."""

import click

COMMANDS: list[click.Command] = []
