"""Kubernetes resource quantities ("512Mi", "1G", "100"), as whole numbers: what LimitRanges
and ResourceQuotas of images count in."""

from __future__ import annotations

import re
from decimal import Decimal, DecimalException

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
MAX_DIGITS = 40
_QUANTITY = re.compile(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?")


def parse_quantity(text: str) -> int:
    """The quantity's value, rounded up to a whole number; ValueError when it is none."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"quantities must match the regular expression {_QUANTITY.pattern!r}")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
        scaled = value / 1000 if suffix == "m" else value * _SUFFIXES[suffix]
    except DecimalException:  # not a number, or out of the decimal context's range
        raise ValueError(f"invalid quantity {text!r}") from None
    # Bounded before int(): `1e999999999` would be a number of a billion digits. Nothing an
    # image quota counts comes near 10^40.
    if not scaled.is_finite() or scaled.adjusted() > MAX_DIGITS:
        raise ValueError(f"quantity {text!r} is too large")
    whole = int(scaled.to_integral_value(rounding="ROUND_CEILING"))
    return whole


_DECIMAL_SUFFIXES = ("", "k", "M", "G", "T", "P", "E")
_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def _scaled(value: int, base: int, suffixes: tuple[str, ...]) -> str:
    exponent = 0
    while value and value % base == 0 and exponent < len(suffixes) - 1:
        value //= base
        exponent += 1
    return f"{value}{suffixes[exponent]}"


def format_binary(value: int) -> str:
    """A byte count as Kubernetes shows a binary quantity: `16Ki`, `3Mi`, but `16000` (no
    power of 1024 divides it) and `512` (below 1024, shown in decimal)."""
    if -1024 < value < 1024:
        return str(value)
    return _scaled(value, 1024, _BINARY_SUFFIXES)


def format_decimal(value: int) -> str:
    """A whole number as Kubernetes shows a decimal quantity: `2`, `1k`, `1500`, `3M`."""
    return _scaled(value, 1000, _DECIMAL_SUFFIXES)


def canonical_quantity(text: str) -> str:
    """The quantity as Kubernetes stores and shows it (`1024Ki` -> `1Mi`, `1000` -> `1k`), for
    whole values with an SI suffix or none; any other valid form is kept as written."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"quantities must match the regular expression {_QUANTITY.pattern!r}")
    number, suffix = match.group(1), match.group(2) or ""
    if suffix == "m" or not number.lstrip("+-").isdigit():
        return text.strip()
    value = parse_quantity(text)
    return format_binary(value) if suffix.endswith("i") else format_decimal(value)
