"""The RecordingError family: what can be wrong with a recording file or a sealed value.

Callers catch RecordingError for any of them; the subclasses say which check failed.
"""

from __future__ import annotations


class RecordingError(Exception):
    """Base class for every problem with a recording file."""


class FormatError(RecordingError):
    """Not a CEREC file, or a version this code does not read."""


class WrongKeyError(RecordingError):
    """No private key given matches the file's key id, or the data key does not unwrap."""


class TamperedError(RecordingError):
    """The header or a segment fails authentication (modified, reordered or spliced)."""


class TruncatedError(RecordingError):
    """The stream ends without a last-segment flag, or ends in a partial segment."""


class KeyUnwrapError(WrongKeyError, TamperedError):
    """The key id matches but the wrapped data key does not authenticate.

    Since the key id is a hash of the recipient public key and we check the
    private key against it, this in practice means the header's ephemeral key
    or wrapped key was modified. It is both a WrongKeyError (the data key could
    not be unwrapped) and a TamperedError, so callers catching either see it.
    """
