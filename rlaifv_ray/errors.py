"""Errors a user should read as one clear message rather than a stack trace."""


class RlaifvError(Exception):
    """Base: the CLI prints str(error) and exits non-zero, without a traceback."""


class ConfigError(RlaifvError):
    """A config is invalid; the message lists every problem."""


class InputError(RlaifvError):
    """An input (image, file, row) cannot be used; the message names it."""


class ModelLoadError(RlaifvError):
    """A model folder or hub id cannot be loaded; the message names it."""


class StorageError(RlaifvError):
    """The run directory's storage (S3 endpoint, mount) cannot be reached."""


# What pyarrow / the AWS SDK say when no connection can be made (not: access denied, no such key)
_UNREACHABLE = (
    "NETWORK_CONNECTION",
    "Could not connect",
    "Couldn't connect",
    "Connection refused",
    "Failed to connect",
    "Name or service not known",
)


def unreachable_reason(exc: BaseException) -> str | None:
    """The 'cannot connect' OSError message anywhere in EXC's chain, or None when EXC is something
    else. An error raised in a Ray worker reaches the driver as text (the remote traceback), so the
    OSError line is looked for in the text as well."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        lines = str(exc).splitlines() or [""]
        if isinstance(exc, OSError):
            lines[0] = f"OSError: {lines[0]}"
        for line in lines:
            if line.strip().startswith("OSError:") and any(m in line for m in _UNREACHABLE):
                return line.strip()[len("OSError:") :].strip()
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None


def user_error_in(exc: BaseException) -> RlaifvError | None:
    """The RlaifvError that caused EXC, if any: a stage raising one inside a Ray actor reaches the
    driver wrapped in Ray's task/actor errors (as the `cause` object, or only as remote traceback
    text, whose last line is 'rlaifv_ray.errors.Name: message')."""
    import re

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, RlaifvError):
            return exc
        found = re.findall(r"^rlaifv_ray\.errors\.(\w+): (.+)$", str(exc), re.M)
        if found and isinstance(globals().get(found[-1][0]), type):
            return globals()[found[-1][0]](found[-1][1])
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None
