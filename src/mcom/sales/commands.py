"""`mcom` commands of the sales module."""

import click

COMMANDS: list[click.Command] = []
