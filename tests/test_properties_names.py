"""Properties of digests (`wharf.oci.digest`) and of repository names and tags
(`wharf.oci.names`), against the grammars of the OCI image and distribution specs.

Digests: the image spec's grammar is `algorithm ":" encoded` with algorithm components
`[a-z0-9]+` joined by `[+._-]` and encoded `[a-zA-Z0-9=_-]+`; the registered algorithms fix
their encodings (sha256: 64, sha512: 128 lowercase hex). Wharf verifies what it stores, so it
takes only the registered ones. WHARF_PROPERTY_EXAMPLES sets the examples per test.
"""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wharf.oci.digest import Digest, InvalidDigest, is_digest
from wharf.oci.names import MAX_NAME_LENGTH, is_valid_name, is_valid_tag

EXAMPLES = int(os.environ.get("WHARF_PROPERTY_EXAMPLES", "200"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True)

# The specs' grammars, written down here from their text (the oracle for membership).
SPEC_NAME = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
# The same grammar with its repetitions bounded: a sub-language of short names, quicker to
# generate than the unbounded one (whose members average hundreds of characters).
SHORT_NAME = (
    r"[a-z0-9]{1,8}((\.|_|__|-{1,3})[a-z0-9]{1,8}){0,3}"
    r"(/[a-z0-9]{1,8}((\.|_|__|-{1,3})[a-z0-9]{1,8}){0,3}){0,4}"
)
SPEC_TAG = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
SPEC_DIGEST = r"[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
LENGTHS = {"sha256": 64, "sha512": 128}
HEX = "0123456789abcdef"


def encoded(length: int) -> st.SearchStrategy[str]:
    return st.text(HEX, min_size=length, max_size=length)


registered = st.sampled_from(sorted(LENGTHS)).flatmap(
    lambda algorithm: encoded(LENGTHS[algorithm]).map(lambda hex_: f"{algorithm}:{hex_}")
)


def refused(text: str) -> bool:
    with pytest.raises(InvalidDigest):
        Digest.parse(text)
    return not is_digest(text)


# Digests


@PROPERTY
@given(digest=registered)
def test_registered_digests_parse_and_print_as_given(digest: str) -> None:
    parsed = Digest.parse(digest)
    assert str(parsed) == digest
    assert parsed.algorithm == digest.split(":")[0]
    assert is_digest(digest)


@PROPERTY
@given(data=st.binary(max_size=256), algorithm=st.sampled_from(sorted(LENGTHS)))
def test_digest_of_bytes_is_a_valid_digest_of_them(data: bytes, algorithm: str) -> None:
    digest = Digest.of(data, algorithm)
    assert Digest.parse(str(digest)) == digest
    assert digest.encoded == hashlib.new(algorithm, data).hexdigest()
    hasher = digest.hasher()
    hasher.update(data)
    assert hasher.hexdigest() == digest.encoded


@PROPERTY
@given(digest=registered, data=st.data())
def test_a_digest_of_another_length_is_refused(digest: str, data: st.DataObject) -> None:
    algorithm, hex_ = digest.split(":")
    length = data.draw(st.integers(0, 200).filter(lambda n: n != LENGTHS[algorithm]))
    assert refused(f"{algorithm}:{(hex_ * 4)[:length]}")


@PROPERTY
@given(digest=registered, data=st.data())
def test_a_digest_with_a_character_outside_lowercase_hex_is_refused(
    digest: str, data: st.DataObject
) -> None:
    """Uppercase hex, other letters, the spec's `=_-` (valid in its general grammar, not in
    sha256's or sha512's), and anything else: refused, wherever it stands."""
    algorithm, hex_ = digest.split(":")
    index = data.draw(st.integers(0, len(hex_) - 1))
    char = data.draw(st.characters(codec="utf-8").filter(lambda c: c not in HEX))
    assert refused(f"{algorithm}:{hex_[:index]}{char}{hex_[index + 1 :]}")


@PROPERTY
@given(digest=registered, algorithm=st.from_regex(r"[a-z0-9]+([+._-][a-z0-9]+)*", fullmatch=True))
def test_an_unregistered_algorithm_is_refused(digest: str, algorithm: str) -> None:
    """Of the spec's general grammar only the algorithms a registry can verify are taken."""
    hex_ = digest.split(":")[1]
    if algorithm not in LENGTHS:
        assert refused(f"{algorithm}:{hex_}")


@PROPERTY
@given(digest=registered, case=st.sampled_from(["upper", "title", "swapcase"]))
def test_a_digest_in_another_case_is_refused(digest: str, case: str) -> None:
    changed = getattr(digest, case)()
    if changed != digest:
        assert refused(changed)


@PROPERTY
@given(text=st.one_of(st.text(max_size=150), st.from_regex(SPEC_DIGEST, fullmatch=True)))
def test_any_text_parses_exactly_when_it_is_a_registered_digest(text: str) -> None:
    algorithm, _, hex_ = text.partition(":")
    expected = (
        re.fullmatch(SPEC_DIGEST, text) is not None
        and len(hex_) == LENGTHS.get(algorithm, -1)
        and all(c in HEX for c in hex_)
    )
    assert is_digest(text) is expected
    if not expected:
        assert refused(text)


# Repository names


@PROPERTY
@given(name=st.from_regex(SHORT_NAME, fullmatch=True))
def test_short_spec_names_are_valid(name: str) -> None:
    assert is_valid_name(name)


# Members of the unbounded grammar are slow to make: a third of the examples is enough for
# the lengths around the limit.
@settings(PROPERTY, max_examples=max(EXAMPLES // 3, 1))
@given(name=st.from_regex(SPEC_NAME, fullmatch=True))
def test_spec_names_are_valid_up_to_the_length_limit(name: str) -> None:
    assert is_valid_name(name) is (len(name) <= MAX_NAME_LENGTH)


@PROPERTY
@given(
    components=st.lists(st.from_regex(r"[a-z0-9]{1,40}", fullmatch=True), min_size=1),
)
def test_long_names_of_valid_components_stop_at_the_limit(components: list[str]) -> None:
    name = "/".join(components)
    assert is_valid_name(name) is (len(name) <= MAX_NAME_LENGTH)


@PROPERTY
@given(text=st.text(max_size=80))
def test_any_text_is_a_name_exactly_when_the_spec_says(text: str) -> None:
    member = re.fullmatch(SPEC_NAME, text) is not None and len(text) <= MAX_NAME_LENGTH
    assert is_valid_name(text) is member


def broken_names() -> st.SearchStrategy[str]:
    """Valid names changed into certain non-members of the grammar."""
    valid = st.from_regex(SHORT_NAME, fullmatch=True)
    outsider = st.characters(codec="utf-8").filter(lambda c: not re.fullmatch(r"[a-z0-9._/-]", c))
    separator = st.sampled_from([".", "_", "__", "-", "/"])
    return st.one_of(
        # a character the grammar never has (uppercase, space, colon, '@', non-ASCII...)
        st.tuples(valid, st.integers(0, 200), outsider).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
        ),
        # a separator at either end, or two separators in a row (empty component, '..', '___')
        st.tuples(valid, separator).map(lambda t: t[1] + t[0]),
        st.tuples(valid, separator).map(lambda t: t[0] + t[1]),
        st.tuples(valid, separator, separator, valid)
        .filter(lambda t: not re.fullmatch(r"-+|_|__", t[1] + t[2]))
        .map(lambda t: t[0] + t[1] + t[2] + t[3]),
        st.just(""),
    )


@PROPERTY
@given(name=broken_names())
def test_names_outside_the_grammar_are_refused(name: str) -> None:
    assert not is_valid_name(name)


# Tags


@PROPERTY
@given(tag=st.from_regex(SPEC_TAG, fullmatch=True))
def test_spec_tags_are_valid(tag: str) -> None:
    assert is_valid_tag(tag)


@PROPERTY
@given(text=st.text(max_size=140))
def test_any_text_is_a_tag_exactly_when_the_spec_says(text: str) -> None:
    assert is_valid_tag(text) is (re.fullmatch(SPEC_TAG, text) is not None)


@PROPERTY
@given(
    tag=st.from_regex(SPEC_TAG, fullmatch=True),
    extra=st.text("abcXYZ019._-", min_size=1, max_size=200),
    first=st.sampled_from([".", "-", ""]),
)
def test_tags_longer_than_128_or_starting_with_dot_or_dash_are_refused(
    tag: str, extra: str, first: str
) -> None:
    longer = tag + extra
    assert is_valid_tag(longer) is (len(longer) <= 128)
    if first:
        assert not is_valid_tag(first + tag[1:])


def test_trailing_newline_is_neither_a_name_nor_a_tag_nor_a_digest() -> None:
    """`$` in a pattern matches before a final newline; the checks must match whole strings."""
    assert not is_valid_name("library/alpine\n")
    assert not is_valid_tag("latest\n")
    assert not is_digest("sha256:" + "a" * 64 + "\n")
