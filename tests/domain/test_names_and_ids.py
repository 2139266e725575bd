import pytest

from callnow.domain.callnow_id import InvalidCallNowId, normalise_callnow_id
from callnow.domain.names import InvalidName, clean_visitor_name


def test_names_are_trimmed_and_inner_whitespace_collapsed():
    assert clean_visitor_name("  Mary   Jones ") == "Mary Jones"


def test_an_empty_name_is_no_name():
    assert clean_visitor_name("   ") is None
    assert clean_visitor_name(None) is None


@pytest.mark.parametrize("typed", ["Mary\r\nX-Evil: 1", "Ma\x00ry", "Mary\u200e"])
def test_control_characters_in_names_are_refused(typed):
    with pytest.raises(InvalidName, match="control characters"):
        clean_visitor_name(typed)


def test_names_are_bounded_to_60_characters():
    assert clean_visitor_name("x" * 60) == "x" * 60
    with pytest.raises(InvalidName, match="at most 60"):
        clean_visitor_name("x" * 61)


def test_ids_are_unique_case_insensitively_so_they_are_stored_lower_case():
    assert normalise_callnow_id("John_Doe") == "john_doe"


@pytest.mark.parametrize("typed", ["ab", "x" * 33, "john doe", "jöhn", "john/doe", "-john", "a.."])
def test_malformed_ids_are_refused(typed):
    with pytest.raises(InvalidCallNowId):
        normalise_callnow_id(typed)


@pytest.mark.parametrize("typed", ["admin", "API", "static", "portal"])
def test_reserved_words_are_refused(typed):
    with pytest.raises(InvalidCallNowId, match="reserved"):
        normalise_callnow_id(typed)


def test_ids_at_the_length_limits_are_allowed():
    assert normalise_callnow_id("abc") == "abc"
    assert normalise_callnow_id("a" * 32) == "a" * 32
