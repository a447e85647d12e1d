"""``mcom``: the connector's command line (the seed's ``bin/magento``), colon-named commands."""

from __future__ import annotations

import re

import click

from mcom import __version__

_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.\s")


def summary(cmd: click.Command) -> str:
    """The first sentence of a command's help, whole (click would cut it at about 45 characters)."""
    text = cmd.short_help or " ".join((cmd.help or "").split("\n\n", 1)[0].split())
    end = _SENTENCE_END.search(text)
    return text[: end.start() + 1] if end else text


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, summary(cmd)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)  # wraps long summaries instead of cutting them


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "-V", "--version", prog_name="mcom")
def main() -> None:
    """mcom — the OMS Connector.

    Instance root: $MCOM_ROOT (default: the current directory) with etc/env.toml,
    var/mcom.sqlite3 and var/log/mcom-connector.log.
    """


def _register() -> None:
    from mcom.cli import sandbox as sandbox_cmds
    from mcom.cli import serve as serve_cmds
    from mcom.cli import setup as setup_cmds
    from mcom.cli import worker as worker_cmds

    for mod in (setup_cmds, serve_cmds, sandbox_cmds, worker_cmds):
        for cmd in mod.COMMANDS:
            main.add_command(cmd)
    from mcom.catalog import commands as catalog_cmds
    from mcom.commerce import commands as commerce_cmds
    from mcom.inventory import commands as inventory_cmds
    from mcom.sales import commands as sales_cmds
    from mcom.service_bus import commands as bus_cmds

    for mod in (bus_cmds, sales_cmds, catalog_cmds, inventory_cmds, commerce_cmds):
        for cmd in getattr(mod, "COMMANDS", []):
            main.add_command(cmd)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
