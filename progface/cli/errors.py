"""Errors of the command line: one line naming the file or option and the problem."""

from __future__ import annotations

import functools
import os

import click


def friendly_errors(fn):
    """Turn every error of a command into one line naming the file or option and the problem.

    ``PROGFACE_DEBUG=1`` keeps the full traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as err:
            if os.environ.get("PROGFACE_DEBUG") == "1":
                raise
            raise click.ClickException(one_line(err)) from err

    return wrapper


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; OS errors as ``FILE: problem``; errors that are not
    the user's (bugs) name their type and how to see the traceback."""
    from progface.data.errors import ImageError
    from progface.registry import UnknownNameError
    from progface.weights import WeightsError

    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename is not None else ""
        text = f"{where}{err.strerror[0].lower()}{err.strerror[1:]}"
    else:
        text = " ".join(str(err).split()) or type(err).__name__
    # ImportError: a missing optional extra; its message says what to install
    known = (UnknownNameError, ImageError, WeightsError, ValueError, RuntimeError, OSError,
             ImportError)  # fmt: skip
    if not isinstance(err, known):
        text = f"{type(err).__name__}: {text} (set PROGFACE_DEBUG=1 for the traceback)"
    return text
