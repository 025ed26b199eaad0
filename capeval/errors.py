"""Typed errors. Every error capeval raises on bad input derives from `CapevalError`."""

from __future__ import annotations


class CapevalError(Exception):
    """Base class of all capeval errors."""


class InputError(CapevalError, ValueError):
    """References or predictions that cannot be scored as given."""


class MissingIdError(InputError):
    """Ids present on one side (references or predictions) and not on the other."""


class DuplicateIdError(InputError):
    """The same id appears more than once where ids must be unique."""


class OptionError(CapevalError, ValueError):
    """An option value that cannot be used (sigma not finite and positive, n < 1, unknown tokenizer or metric)."""


class InvalidCaptionError(InputError):
    """A caption that is not a string (None, NaN, a number, a list...)."""


class EmptyReferencesError(InputError):
    """An id whose reference list is empty, or whose references are all empty."""


class FormatError(InputError):
    """A file that cannot be read in the expected format (names the file and line)."""


class TokenizerError(CapevalError):
    """Tokenization failed (for example the CoreNLP jar misbehaved)."""


class DocumentFrequencyError(CapevalError):
    """A document-frequency file that is malformed, of an unknown version or tampered with."""


class MetricUnavailableError(CapevalError):
    """A metric cannot run here (a missing runtime or data file); default metric sets skip it with a warning."""


class MeteorError(CapevalError):
    """The Meteor JVM failed in a way capeval could not recover from."""


class MeteorUnavailableError(MeteorError, MetricUnavailableError):
    """Java or the Meteor 1.5 jar cannot be found."""


def format_ids(ids, limit: int = 10) -> str:
    """Render a list of ids for an error message, truncated after `limit`."""
    ids = list(ids)
    shown = ", ".join(repr(i) for i in ids[:limit])
    more = f" ... and {len(ids) - limit} more" if len(ids) > limit else ""
    return f"[{shown}{more}]"


class SpiceUnavailableError(CapevalError, NotImplementedError):
    """SPICE was asked for: capeval does not compute it (it needs Stanford CoreNLP models fetched at run time)."""


class DocumentFrequencyMismatchError(DocumentFrequencyError):
    """Document frequencies built with another tokenizer or a smaller n than the scoring run's."""
