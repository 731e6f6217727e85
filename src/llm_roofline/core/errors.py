"""The one exception type for bad input, and the helper that names close matches."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence


class InputError(ValueError):
    """Bad input from a user: an unknown name, a malformed file, an out-of-range number.

    The message is one line that says what is wrong and what would be accepted. The CLI prints it
    and exits with status 2; no traceback.
    """


# Catalogues longer than this are not spelled out in an error: the listing command is named instead.
_LISTED_IN_FULL = 12
_LISTINGS = {"model": "models", "hardware": "hardware", "precision": "formats"}
SHOWN_NAME_CHARS = 80  # a name echoed in an error is cut to this many characters
SHOWN_VALUE_CHARS = 40  # a value's repr, likewise


def shown_name(name: str) -> str:
    """``name`` as an error echoes it: at most ``SHOWN_NAME_CHARS`` characters, saying how long it was."""
    if len(name) <= SHOWN_NAME_CHARS:
        return name
    return f"{name[:SHOWN_NAME_CHARS]}... ({len(name)} characters)"


def shown(value: object) -> str:
    """``value`` as an error shows it: its repr, short, and safe for any integer (repr refuses past 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        digits = int((value.bit_length() - 1) * math.log10(2)) + 1  # the fewest 2^(bits - 1) can have
        digits += abs(value) >= 10**digits
        return f"an integer of {digits} digits"
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[:SHOWN_VALUE_CHARS - 3] + "..."


def unknown_name(what: str, name: str, known: Iterable[str], close: Sequence[str] | None = None,
                 why: str = "") -> InputError:
    """An error for an unknown catalogue name, suggesting the closest known names.

    ``close``: the suggestions, when the caller ranks them itself (``names.resolve``); ``why``: what
    ruled out the entry the name otherwise matches.
    """
    known = sorted(known)
    if close is None:
        close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
        if not close:
            close = [k for k in known if name.lower() in k][:3]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    unknown = f"unknown {what} '{shown_name(name)}'" + (f" ({why})" if why else "")
    if len(known) > _LISTED_IN_FULL and what in _LISTINGS:
        return InputError(f"{unknown}: {hint}'llm-roofline {_LISTINGS[what]}' lists all {len(known)}")
    return InputError(f"{unknown}: {hint}known: {', '.join(known)}")


def ambiguous_name(what: str, name: str, candidates: Sequence[str]) -> InputError:
    """An error for a name that fits several catalogue entries equally well."""
    return InputError(f"ambiguous {what} '{shown_name(name)}': did you mean {', '.join(candidates)}? "
                      "give one of these names")


def one_of(name: str, value: object, choices: Sequence[str], where: str = "") -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming them (``where``: a prefix such as 'sweep: ')."""
    if value not in choices:
        raise InputError(f"{where}{name} must be one of {', '.join(choices)}, got {value!r}")
