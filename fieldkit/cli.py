"""The command line: quick lookups, scripting and bulk work on the same store as the app.

Imports no Textual: ``fieldkit find`` is the quick path, so each command
imports what it needs when it runs. Every failure a person can cause ends in
one line on stderr that says what is wrong and what to do, and exit status 1
(2 for a command line that does not parse).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from fieldkit import __version__

EXIT_ERROR = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure to report in one line; the command has changed nothing."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage dump
        self.exit(EXIT_USAGE, f"fieldkit: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from fieldkit.commands import all_command_modules

    parser = _Parser(
        prog="fieldkit",
        description="Capture municipal infrastructure issues offline, sync them, look them up in seconds. "
        "Without a command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"fieldkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in all_command_modules():
        module.register(commands)
    return parser


def join_dash_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--title -2+3` as `--title=-2+3`: argparse takes a value starting with a dash for an option
    and refuses the line ("expected one argument"). A value after an option that takes one is
    that option's value unless it is itself one of the command's options."""
    commands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    options = parser._option_string_actions  # argparse offers no public way to ask which options take a value
    joined: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            return joined + argv[index:]
        if commands is not None and token in commands.choices and options is parser._option_string_actions:
            options = commands.choices[token]._option_string_actions
        action = options.get(token)
        following = argv[index + 1] if index + 1 < len(argv) else None
        if (action is not None and action.nargs is None and action.option_strings and token.startswith("--")
                and following is not None and following.startswith("-") and following != "-"
                and following.split("=", 1)[0] not in options and action.const is None and action.type is not bool
                and not isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction,
                                            argparse._CountAction, argparse._HelpAction, argparse._VersionAction))):
            joined.append(f"{token}={following}")
            index += 2
            continue
        joined.append(token)
        index += 1
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(join_dash_values(parser, args_list))
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        from fieldkit.commands.core import open_app

        handler = open_app
    try:
        return handler(args) or 0
    except KeyboardInterrupt:
        print("fieldkit: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # noqa: BLE001 - the one place every failure becomes one line
        message = describe(err)
        if message is None:
            raise
        from fieldkit.safe_text import safe_for_terminal

        print(f"fieldkit: {safe_for_terminal(message)}", file=sys.stderr)
        return EXIT_ERROR


def describe(err: Exception) -> str | None:
    """The one line a person should see for a failure, or None for a bug (shown in full)."""
    from fieldkit.exports import ExportError
    from fieldkit.model import ValidationError
    from fieldkit.register import Ambiguous, NotFound
    from fieldkit.spreadsheets import SpreadsheetError
    from fieldkit.store import StoreError

    if isinstance(err, (CommandError, StoreError, NotFound, Ambiguous, ValidationError, SpreadsheetError, ExportError)):
        return str(err)
    if isinstance(err, PermissionError):
        return f"permission denied: {err.filename}; check the folder's owner or set FIELDKIT_HOME"
    if isinstance(err, FileNotFoundError):
        return f"no such file: {err.filename}"
    if isinstance(err, IsADirectoryError):
        return f"{err.filename} is a folder; give a file name"
    if isinstance(err, OSError) and err.strerror:
        where = f" ({err.filename})" if err.filename else ""
        return f"{err.strerror}{where}"
    return None


if __name__ == "__main__":
    sys.exit(main())
