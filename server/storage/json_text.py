"""JSON text by json's C encoder made once, for text made on every call (log lines, row tables).

json's `encode()` makes a C encoder (and a closure) on every call. For a small value that is
most of the cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any


def reusable_encode(encoder: json.JSONEncoder) -> Callable[[Any], str] | None:
    """encoder.encode, the same text, with json's C encoder made once (with the arguments
    iterencode passes it), here with no circular-reference markers: the values passed are built
    fresh for one line or one statement and hold no cycle. None where json has no C encoder, or
    for an indenting encoder (the C encoder does not indent)."""
    if c_make_encoder is None or encoder.indent is not None:
        return None
    escape = encode_basestring_ascii if encoder.ensure_ascii else encode_basestring
    c_encode = c_make_encoder(
        None, encoder.default, escape, None, encoder.key_separator, encoder.item_separator,
        encoder.sort_keys, encoder.skipkeys, encoder.allow_nan,
    )  # fmt: skip

    def encode(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return encode
