"""Command-line commands, one module an area; each module has ``register(subparsers)``.

Areas: ``core`` (the register: add, find, show, edit, ...), ``sync`` (sync, serve,
user), ``reports`` (export, report, lessons) and ``bundles`` (sync by hand: bundle, server). A module that is not there yet
is skipped, so the areas can land one at a time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

AREAS = ("core", "sync", "reports", "bundles", "attachments", "privacy")


def all_command_modules() -> list[ModuleType]:
    modules = []
    for area in AREAS:
        try:
            modules.append(importlib.import_module(f"fieldkit.commands.{area}"))
        except ModuleNotFoundError as err:
            if err.name != f"fieldkit.commands.{area}":
                raise
    return modules
