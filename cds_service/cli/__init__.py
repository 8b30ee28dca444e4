"""The `cds-service` command line: thin commands over the packages below it; nothing imports it."""

from .main import main, parser

__all__ = ["main", "parser"]
