"""The ``ferflow`` command line: every option of every command explains itself and shows its default."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from ferflow.cli import COMMANDS, parser_for


def with_subcommands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and the parsers of its subcommands (``ferflow plot-data samples``, ...)."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from with_subcommands(sub)


def options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            yield action


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_has_help_that_shows_its_default(name: str) -> None:
    for parser in with_subcommands(parser_for(name)):
        text = " ".join(parser.format_help().split())  # unwrapped
        for action in options(parser):
            label = f"{parser.prog} {action.option_strings[0] if action.option_strings else action.dest}"
            assert action.help, f"{label}: no help text"
            assert "(default " not in action.help, f"{label}: writes its default by hand"
            if action.option_strings and not action.required and action.default not in (None, ""):
                assert f"(default: {action.default})" in text, f"{label}: default {action.default!r} not shown"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_outputs_are_named_out(name: str) -> None:
    for parser in with_subcommands(parser_for(name)):
        for action in options(parser):
            assert not {"--out-dir", "--output"} & set(action.option_strings), f"{parser.prog}: {action.option_strings}"
