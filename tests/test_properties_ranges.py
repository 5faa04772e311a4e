"""Properties of the Range header parser (`wharf.registry.ranges.byte_range`).

For any blob size and any header the answer is one of three: ignore the header (serve the
whole blob), a slice inside the blob, or 416. For one well-formed byte range it agrees with a
model written here from RFC 9110 §14.1.2. WHARF_PROPERTY_EXAMPLES sets the examples per test.
"""

from __future__ import annotations

import os

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from wharf.oci.manifest import MAX_SIZE
from wharf.registry.errors import RegistryError
from wharf.registry.ranges import byte_range, select

EXAMPLES = int(os.environ.get("WHARF_PROPERTY_EXAMPLES", "200"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True)

IGNORE = "ignore"
UNSATISFIABLE = "unsatisfiable"
Outcome = str | tuple[int, int]

# Sizes: empty, tiny, everyday, and the huge ones up to the int64 a descriptor may declare
# (where a parser's own cap on the digits it reads would show).
sizes = st.one_of(st.integers(0, 4), st.integers(0, 2**40), st.integers(10**17, MAX_SIZE))
# Positions: small ones near the blob's edges, huge ones, and zero-padded digit strings.
positions = st.one_of(
    st.integers(0, 10).map(str),
    st.integers(0, 2**70).map(str),
    st.integers(10**17, 10**21).map(str),
    st.tuples(st.integers(0, 30), st.integers(0, 2**64)).map(lambda p: "0" * p[0] + str(p[1])),
    st.text("0123456789", min_size=1, max_size=400),
)
# Pieces of headers that are almost byte ranges: several ranges, spaces, missing parts.
TOKENS = ["bytes", "Bytes", "=", "-", ",", " ", "\t", "0", "1", "9", "99999999999999999999", "x"]
units = st.sampled_from(["bytes", "Bytes", "BYTES", "bYtEs"])


def outcome(header: str, size: int) -> Outcome:
    """What byte_range answers, as one of the three outcomes; an offset and a count become
    the first and last position of the slice."""
    try:
        wanted = byte_range(header, size)
    except RegistryError as exc:
        assert exc.status == 416
        return UNSATISFIABLE
    if wanted is None:
        return IGNORE
    offset, count = wanted
    return offset, offset + count - 1


def model(first: str, last: str, size: int) -> Outcome:
    """RFC 9110 §14.1.2 for one `first-last` byte range of a `size`-byte representation.

    An int-range is satisfiable when its first position is below the size, and a last
    position past the end means the end. A suffix-range is satisfiable when its length is
    not zero, and a suffix longer than the representation means all of it. A last position
    before the first makes the range invalid, which a server may ignore or refuse: Wharf
    refuses it (416). An empty blob has no slice to name, so a suffix of it serves it whole.
    """
    if not first:
        suffix = int(last)
        if suffix == 0:
            return UNSATISFIABLE
        return IGNORE if size == 0 else (max(size - suffix, 0), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if end < start or start >= size:
        return UNSATISFIABLE
    return start, min(end, size - 1)


def assert_sound(result: Outcome, size: int) -> None:
    if isinstance(result, tuple):
        start, end = result
        assert 0 <= start <= end < size


@PROPERTY
@given(header=st.text(max_size=60), size=sizes)
def test_any_header_ignored_refused_or_sliced_inside_the_blob(header: str, size: int) -> None:
    assert_sound(outcome(header, size), size)


@PROPERTY
@given(
    header=st.lists(st.sampled_from(TOKENS), max_size=8).map("".join),
    size=sizes,
)
def test_near_miss_headers_ignored_refused_or_sliced(header: str, size: int) -> None:
    assert_sound(outcome(header, size), size)


@PROPERTY
@given(unit=units, first=positions, last=positions, size=sizes)
def test_int_range_agrees_with_the_rfc(unit: str, first: str, last: str, size: int) -> None:
    assert outcome(f"{unit}={first}-{last}", size) == model(first, last, size)


@PROPERTY
@given(unit=units, first=positions, size=sizes)
def test_open_range_agrees_with_the_rfc(unit: str, first: str, size: int) -> None:
    assert outcome(f"{unit}={first}-", size) == model(first, "", size)


@PROPERTY
@given(unit=units, suffix=positions, size=sizes)
def test_suffix_range_agrees_with_the_rfc(unit: str, suffix: str, size: int) -> None:
    assert outcome(f"{unit}=-{suffix}", size) == model("", suffix, size)


# "bytes" spelt with letters outside ASCII that a Unicode case-insensitive match takes for
# its own ("\u017f", the long s, folds to "s"): the unit is an ASCII token, so they are
# other units.
lookalike_units = (
    st.tuples(
        *(
            st.sampled_from([c, c.upper(), "\u017f"] if c == "s" else [c, c.upper()])
            for c in "bytes"
        )
    )
    .map("".join)
    .filter(lambda u: not u.isascii())
)


@PROPERTY
@given(
    unit=st.one_of(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=8).filter(
            lambda u: u.lower() != "bytes"
        ),
        lookalike_units,
    ),
    size=sizes,
)
def test_other_units_are_ignored(unit: str, size: int) -> None:
    """RFC 9110 §14.2: a range unit the server does not understand is ignored."""
    assert outcome(f"{unit}=0-0", size) == IGNORE


DIGEST = "sha256:" + "a" * 64
# Header values: anything a header can carry, and the ETag forms that name this blob.
header_values = st.one_of(
    st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=30),
    st.sampled_from([f'"{DIGEST}"', f'W/"{DIGEST}"', "*", "W/*", '"x", *', '"', "bytes=0-0"]),
)
conditions = st.dictionaries(
    st.sampled_from(["Range", "If-Range", "If-Match", "If-None-Match"]), header_values
)


@PROPERTY
@given(headers=conditions, method=st.sampled_from(["GET", "HEAD"]), size=st.integers(0, 100))
def test_any_conditions_answer_200_206_304_412_or_416(
    headers: dict[str, str], method: str, size: int
) -> None:
    """The whole selection, with If-Match, If-None-Match and If-Range around the Range."""
    request = make_mocked_request(method, f"/v2/a/blobs/{DIGEST}", headers=CIMultiDict(headers))
    try:
        selection = select(request, DIGEST, size)
    except RegistryError as exc:
        assert exc.status in (412, 416)
        return
    assert selection.status in (200, 206, 304)
    if selection.status == 206:
        assert method == "GET"
        assert 0 <= selection.offset < selection.offset + selection.count <= size
    elif selection.status == 200:
        assert (selection.offset, selection.count) == (0, size)


# Examples of what the properties found, kept as plain regressions.


def test_position_past_a_blob_larger_than_10_pow_18_is_not_capped_below_it() -> None:
    """A fixed cap of 10**18 on positions served byte 10**18 onwards of an int64-sized blob
    for `bytes=<25 nines>-` instead of refusing it, and a short suffix for a huge one."""
    size = 5 * 10**18
    with pytest.raises(RegistryError):
        byte_range("bytes=" + "9" * 25 + "-", size)
    assert byte_range("bytes=-" + "9" * 25, size) == (0, size)
    assert byte_range(f"bytes=0-{10**18 + 1}", size) == (0, 10**18 + 2)


def test_unit_with_a_long_s_is_not_bytes() -> None:
    assert byte_range("byte\u017f=0-0", 10) is None
    assert byte_range("BYTES=0-0", 10) == (0, 1)
