"""Kubernetes resource quantities ("512Mi", "1G", "100"), as whole numbers: what LimitRanges
and ResourceQuotas of images count in."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?")


def parse_quantity(text: str) -> int:
    """The quantity's value, rounded up to a whole number; ValueError when it is none."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"quantities must match the regular expression {_QUANTITY.pattern!r}")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"invalid quantity {text!r}") from None
    scaled = value / 1000 if suffix == "m" else value * _SUFFIXES[suffix]
    whole = int(scaled.to_integral_value(rounding="ROUND_CEILING"))
    return whole
