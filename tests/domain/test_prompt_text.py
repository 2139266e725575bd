"""What the owner hears. Numbers are read group by group so text-to-speech cannot mangle them."""

from callnow.domain.prompt_text import (
    MAX_SPOKEN_NAME_CHARS,
    confirm_prompt,
    spoken_name,
    spoken_number,
    unreachable_notice,
    whisper_prompt,
)


def test_the_confirm_prompt_names_the_caller_and_reads_the_number_the_local_way() -> None:
    text = confirm_prompt(caller_number="+61290375678", region="AU", caller_name="Mary")

    assert text == (
        "Call request from Mary, 0 2, 9 0 3 7, 5 6 7 8. Press 1 to call back now, 2 to decline."
    )


def test_the_confirm_prompt_leaves_the_name_out_when_there_is_none() -> None:
    text = confirm_prompt(caller_number="+61290375678", region="AU", caller_name=None)

    assert text == (
        "Call request from 0 2, 9 0 3 7, 5 6 7 8. Press 1 to call back now, 2 to decline."
    )


def test_billing_can_add_what_accepting_will_cost() -> None:
    text = confirm_prompt(
        caller_number="+61290375678",
        region="AU",
        caller_name="Mary",
        cost_phrase="a local call, 12 cents",
    )

    assert text.startswith("Call request from Mary, 0 2, 9 0 3 7, 5 6 7 8, a local call, 12 cents.")


def test_a_blank_cost_phrase_is_left_out() -> None:
    with_blank = confirm_prompt(caller_number="+61290375678", region="AU", cost_phrase="  ")

    assert with_blank == confirm_prompt(caller_number="+61290375678", region="AU")


def test_numbers_of_the_region_read_in_national_format() -> None:
    assert spoken_number("+61412345678", "AU") == "0 4 1 2, 3 4 5, 6 7 8"
    assert spoken_number("+12015550123", "us") == "2 0 1, 5 5 5, 0 1 2 3"


def test_numbers_from_elsewhere_read_in_international_format() -> None:
    assert spoken_number("+442079460000", "AU") == "plus 4 4, 2 0, 7 9 4 6, 0 0 0 0"


def test_a_number_that_cannot_be_parsed_is_still_read_digit_by_digit() -> None:
    assert spoken_number("ext. 12", "AU") == "1 2"


def test_names_are_read_as_given_minus_control_characters_and_extra_spaces() -> None:
    assert spoken_name("  Mary \t\n Jones\x00 ") == "Mary Jones"
    assert spoken_name("José O'Brien-Smith") == "José O'Brien-Smith"


def test_a_name_with_nothing_speakable_counts_as_no_name() -> None:
    assert spoken_name(" \n ") is None
    assert spoken_name(None) is None


def test_long_names_are_cut_so_the_number_is_still_heard() -> None:
    assert len(spoken_name("A" * 500) or "") == MAX_SPOKEN_NAME_CHARS


def test_the_whisper_says_who_is_being_called_back() -> None:
    assert whisper_prompt(caller_number="+61290375678", region="AU", caller_name="Mary") == (
        "CallNow call to Mary."
    )
    assert whisper_prompt(caller_number="+61290375678", region="AU") == (
        "CallNow call to 0 2, 9 0 3 7, 5 6 7 8."
    )


def test_the_notice_tells_the_owner_who_could_not_be_reached() -> None:
    assert unreachable_notice(caller_number="+61290375678", region="AU", caller_name="Mary") == (
        "Sorry, we could not reach Mary. Goodbye."
    )
    assert unreachable_notice(caller_number="+61290375678", region="AU") == (
        "Sorry, we could not reach 0 2, 9 0 3 7, 5 6 7 8. Goodbye."
    )
