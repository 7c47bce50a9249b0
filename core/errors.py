"""Exceptions raised at StyleScope's public boundaries.

Every error a user can cause (a bad file, a bad recipe, a bad image) is a ``ValueError`` subclass with a
one-line message that names the problem, so the CLI prints it and the UI shows it without a traceback.
"""

from __future__ import annotations


class StyleScopeError(ValueError):
    """Base class for errors caused by user input."""


class CheckpointError(StyleScopeError):
    """A file is not a supported, intact checkpoint (names the file, what was expected, what was found)."""


class InputError(StyleScopeError):
    """An image, archive, label file or number from a user is not usable (says why)."""


class RecipeError(StyleScopeError):
    """A recipe is invalid; the message names the offending field."""
