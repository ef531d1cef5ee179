"""Subcommands of the ``soundloc`` CLI: one module each, see :mod:`soundloc.cli`."""
