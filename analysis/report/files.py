"""Names from inputs made safe as file names and HTML element ids.

A POI, channel, process or axis name comes from a fit input or a pyhf workspace and may hold
anything: ``.`` (``Path.with_suffix`` would cut the name there), ``/`` or ``..`` (a directory,
or a way out of the site), quotes and ``<`` (an attribute or a script broken open), spaces and
non-ASCII text. :func:`safe_filename` is the one way the report turns such a name into a part
of a file name or an element id:

- a name that is already safe (ASCII letters, digits, ``_`` and ``-``; not starting with
  ``-``; no ``--``; at most 60 characters) is kept as it is (``mW``, ``wmunu``, ``r_POI``);
- any other name becomes a readable slug (accents dropped, every other run of characters
  outside ``[A-Za-z0-9_-]`` one ``_``) followed by ``--`` and the first 8 hex digits of the
  SHA-256 of the name, so two names that slug alike still get different file names.

The result never contains ``/``, ``.``, a quote or a space, so it stays inside the directory it
is joined to, keeps its suffix, and is a valid id and URL part as it is.

>>> safe_filename("mW")
'mW'
>>> safe_filename("window.__hit")
'window___hit--46d52a7f'
>>> safe_filename("../etc/passwd").startswith("etc_passwd--")
True
>>> safe_filename("a b") != safe_filename("a/b")
True
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["safe_filename"]

#: the longest name kept as it is, and the longest slug before its hash
MAX_LEN = 60

_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_-]+")


def safe_filename(name: object) -> str:
    """``name`` as a safe, readable and unique file-name part or element id (module doc)."""
    text = str(name)
    if len(text) <= MAX_LEN and _SAFE.fullmatch(text) and "--" not in text:
        return text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE_RUN.sub("_", ascii_text)
    slug = re.sub(r"-{2,}", "-", slug).strip("-_")[:MAX_LEN].rstrip("-") or "x"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}--{digest}"
