"""Changes of state as a choice: when to ask, what changes, and what the pick becomes."""

from __future__ import annotations

import pytest

from contextgen.nodes.change_of_state import (
    OUTCOMES,
    change_of_state_conclusion,
    changes_a_named_thing,
    lets_time_pass,
    physics_outcome,
    the_thing,
)
from tests.fakes import ScriptedChatModel


@pytest.mark.parametrize(
    ("request_text", "passes"),
    [
        ("an ice cube dropped into a hot frying pan, ten minutes later", True),
        ("a candle left on a sunny windowsill for the whole afternoon", True),
        ("a sandcastle after a week of rain", True),
        ("the same street photographed again three hours later", True),
        ("a red apple on a table", False),
        ("the Sydney Opera House when it is noon in London", False),
        ("the bird on the flag of Uganda, as a sticker", False),
    ],
)
def test_only_requests_that_let_time_pass_or_bring_heat_are_asked(request_text, passes):
    assert lets_time_pass(request_text) is passes


@pytest.mark.parametrize(
    ("description", "thing"),
    [
        ("An ice cube dropped into a hot frying pan, ten minutes later", "ice cube"),
        ("bar of chocolate left on a car dashboard", "bar of chocolate"),
        ("a snowman in a sunny garden", "snowman"),
        ("Eiffel Tower at dawn", "Eiffel Tower"),
        ("", "subject"),
    ],
)
def test_the_thing_that_changes_is_the_description_before_its_scene(description, thing):
    assert the_thing(description) == thing


@pytest.mark.parametrize(
    ("request_text", "outcome"),
    [
        ("a candle left on a hot radiator for the whole day", "melted into a soft"),
        ("an ice lolly dropped on a sunny beach, five minutes later", "melted into a soft"),
        ("a snow angel in the garden after a week of 18 °C weather", "slush and puddles"),
        ("a wet towel left on a rock in the desert sun for hours", "evaporated"),
        ("a bucket of water left outside on a freezing winter night", "frozen solid"),
        ("a chunk of dry ice dropped into a bowl of punch", "thick white fog"),
        ("molten lava flowing into the ocean, an hour later", "hard black rock"),
        ("a wooden bench left in the sun for the whole summer", None),  # the model decides
        ("a glass of water left on a table for a day", None),  # neither hot nor cold
    ],
)
def test_common_physics_is_settled_by_rules(request_text, outcome):
    found = physics_outcome(request_text)
    assert (OUTCOMES[found - 1] if found else None) == outcome or outcome in OUTCOMES[found - 1]


def test_the_rules_answer_before_the_model_is_asked():
    chat = ScriptedChatModel(replies={}, calls=[])
    said = change_of_state_conclusion(chat, "a snowman after a week of sunny 20 °C days", "snowman")
    assert said == f"The snowman is {OUTCOMES[2]}." and chat.calls == []


def test_the_pick_becomes_a_sentence_about_the_thing_and_unchanged_or_no_pick_gives_none():
    def ask(reply):
        chat = ScriptedChatModel(replies={"OutcomeReply": [reply]}, calls=[])
        return change_of_state_conclusion(chat, "a wooden bench after a summer", "bench")

    assert ask({"choice": 3}) == f"The bench is {OUTCOMES[2]}."
    assert ask({"choice": 1}) is None
    assert ask({"choice": 99}) is None  # out of range twice: no conclusion, no crash
    assert ask("not json") is None


@pytest.mark.parametrize(
    ("request_text", "description", "named"),
    [
        ("a snowman in a sunny garden after a week of 20 °C weather", "snowman", True),
        ("An ice cube dropped into a hot frying pan, ten minutes later",
         "An ice cube dropped into a hot frying pan", True),
        ("the round pastry of the Mid-Autumn Festival, on a plate", "festival pastry", False),
        ("the bird on the flag of Uganda left in the rain for a day", "national bird", False),
    ],
)
def test_a_request_that_changes_a_thing_it_names_needs_no_hidden_subject(
    request_text, description, named
):
    assert changes_a_named_thing(request_text, description) is named
