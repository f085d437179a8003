"""The request as the graph reads it: errors that say what to send, over-long requests cut with a
notice, emoji read as their names, and the subject guard of the negative prompt in any script.

The graph cases run `graph.invoke` on the in-process fakes (the `fake_backends` fixture).
"""

from __future__ import annotations

import pytest

from contextgen.graphs.image_agent import build_graph
from contextgen.graphs.state import MAX_REQUEST_CHARS
from contextgen.nodes.request_text import (
    RequestError,
    cut_at_word,
    names_subject,
    read_request,
    split_terms,
    symbol_names,
    word_count,
)
from contextgen.nodes.synthesize_prompt import clean_negative_prompt
from contextgen.tools.backends import use_backends


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "the input has no 'request'"),
        (42, "'request' must be text, not int"),
        (["a fox"], "'request' must be text, not list"),
        ("  \n\t ", "the request is empty"),
        ("\x00\x07", "the request is empty"),
        ("?!... ---", "has no words and no nameable symbols"),
    ],
)
def test_unreadable_requests_say_what_to_send(value, says) -> None:
    with pytest.raises(RequestError, match=says) as error:
        read_request(value)
    assert "\n" not in str(error.value) and ("request" in str(error.value))


def test_a_plain_request_is_kept_as_given() -> None:
    assert read_request("  a red fox in snow ") == read_request("a red fox in snow")
    assert read_request("一只在竹林里吃竹子的大熊猫").text == "一只在竹林里吃竹子的大熊猫"
    assert read_request("a 🐶 on a beach").notices == []  # words beside emoji: as given


def test_an_overlong_request_is_cut_at_a_word_with_a_notice() -> None:
    request = read_request("a red fox " * 1000)
    assert len(request.text) <= MAX_REQUEST_CHARS and request.text.endswith("fox")
    assert request.notices == [
        "The request was 9,999 characters; only the first 2,000 were read. Shorten it, and put "
        "background documents in the corpus (contextgen corpus add)."
    ]
    assert len(cut_at_word("熊" * 3000, 2000)) == 2000  # no spaces: cut at the limit


def test_emoji_only_requests_are_read_as_their_names() -> None:
    request = read_request("🐶🐶🐶🌸")
    assert request.text == "dog face, cherry blossom"
    assert "read as their names (dog face, cherry blossom)" in request.notices[0]
    assert symbol_names("👍🏽") == "thumbs up sign"  # the skin tone belongs to the emoji
    assert symbol_names("👨\u200d👩\u200d👧") == "man, woman, girl"  # joined family
    assert symbol_names("🇯🇵🗻") == "flag JP, mount fuji"
    assert len(read_request("🐶" * 400).text) == len("dog face")  # a run of one emoji: once


def test_terms_and_words_in_any_script() -> None:
    assert split_terms("模糊，低质量、熊猫; blurry,, text") == [
        "模糊", "低质量", "熊猫", "blurry", "text",
    ]
    assert word_count("low quality") == 2 and word_count("低质量") == 2
    assert word_count("不要出现任何模糊的背景和低质量的细节") == 9  # a sentence, not a term


@pytest.mark.parametrize(
    ("term", "subject", "names_it"),
    [
        ("cartoon platypus", "Platypus", True),
        ("duck", "platypus", False),
        ("熊猫玩具", "大熊猫", True),  # shares the bigram 熊猫
        ("大熊猫", "熊猫", True),
        ("模糊", "大熊猫", False),
        ("パンダのぬいぐるみ", "パンダ", True),
        ("ＰＡＮＤＡ", "panda", True),  # full-width letters
        ("собака", "Собака в снегу", True),
        ("blurry", "", False),
    ],
)
def test_names_subject_in_any_script(term, subject, names_it) -> None:
    assert names_subject(term, subject) is names_it


def test_negative_prompt_of_a_chinese_request_keeps_its_subject() -> None:
    """The case seen on main: a Chinese negative prompt that banned the subject."""
    negative = "熊猫玩具，模糊，低质量、不要出现任何模糊的背景和低质量的细节, blurry"
    assert clean_negative_prompt(negative, "", "大熊猫") == "模糊, 低质量, blurry"
    assert clean_negative_prompt("platypus toy, blurry, blurry", "Platypus") == "blurry"


# The graph: the request enters through the first node.


def run(context, backends, graph_input: dict) -> dict:
    with use_backends(backends):
        return build_graph().invoke(graph_input, context=context)


def intent_request(backends) -> str:
    """The request text the chat model was asked to analyse."""
    [messages] = [messages for name, messages in backends.chat_model.calls if name == "IntentReply"]
    return messages[-1].content.removeprefix("Request: ")


def test_graph_cuts_an_overlong_request_with_a_notice(context, fake_backends) -> None:
    backends = fake_backends()
    request = "the egg-laying mammal of Australia " * 3000
    result = run(context, backends, {"request": request})
    asked = intent_request(backends)
    assert len(asked) <= MAX_REQUEST_CHARS and request[len(asked)] == " "  # cut at a word
    assert any("only the first 2,000 were read" in notice for notice in result["notices"])
    assert result["prompt_package"].prompt  # the run goes on with the cut request
    assert len(backends.memory.runs[0]["request"]) <= MAX_REQUEST_CHARS  # remembered cut


def test_graph_reads_an_emoji_request_as_names(context, fake_backends) -> None:
    backends = fake_backends()
    result = run(context, backends, {"request": "🦆🦫"})
    assert intent_request(backends) == "duck, beaver"
    assert any("read as their names (duck, beaver)" in notice for notice in result["notices"])


@pytest.mark.parametrize(
    ("graph_input", "says"),
    [
        ({"user_id": "ann"}, "the input has no 'request'"),
        ({"request": 7}, "'request' must be text, not int"),
        ({"request": "   "}, "the request is empty"),
        ({"request": "!!!"}, "has no words and no nameable symbols"),
    ],
)
def test_graph_refuses_an_unreadable_request(context, fake_backends, graph_input, says) -> None:
    backends = fake_backends()
    with pytest.raises(RequestError, match=says):
        run(context, backends, graph_input)
    assert backends.chat_model.calls == []  # refused before any model call


def test_cli_refuses_a_request_of_punctuation_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    from contextgen.cli import main

    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONTEXTGEN_OUTPUT_DIR", str(tmp_path / "outputs"))
    assert main(["generate", "?!?"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("contextgen: ") and "no words and no nameable symbols" in err
    assert "Traceback" not in err and not (tmp_path / "outputs").exists()
