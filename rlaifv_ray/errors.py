"""Errors a user should read as one clear message rather than a stack trace."""


class RlaifvError(Exception):
    """Base: the CLI prints str(error) and exits non-zero, without a traceback."""


class ConfigError(RlaifvError):
    """A config is invalid; the message lists every problem."""


class InputError(RlaifvError):
    """An input (image, file, row) cannot be used; the message names it."""


class ModelLoadError(RlaifvError):
    """A model folder or hub id cannot be loaded; the message names it."""
