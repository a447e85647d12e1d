"""`mcom` commands of the inventory module."""

import click

COMMANDS: list[click.Command] = []
