"""Checks that keep a grounded prompt honest on small chat models: a fact survives only when its
cited text holds its key words (`supported`), what the subject's source says it is and phrases
about its looks are copied from that source when the model found too few (`definition`,
`visual_phrases`), and a prompt that drops the name or the facts, or says what no source
supports, is replaced by one composed from verified parts (`PromptParts`). The subject itself is
resolved in `subject`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contextgen.graphs.state import Evidence, Fact

SUBJECT_FACT_PREFIX = "The subject is:"
MIN_SUPPORT = 0.7  # share of a fact's key words its cited text must hold
PROMPT_FACTS = 2  # verified facts a prompt must carry (when there are that many)
SCENE_SHARE = 2 / 3  # of the request's words that do not describe the subject

STOP_WORDS = frozenset(
    "a about above after all also an and any are as at be been being below between both but by "
    "can could did do does each for from had has have having he her here his how i if in into is "
    "it its itself just like look looks many more most much my no not now of off on once one only "
    "or other our out over own same she should so some such than that the their them then there "
    "these they this those through to too under until up very was we were what when where which "
    "while who whom why will with would you your appearance feature features seen shown show "
    "shows known called named typically usually often distinctive iconic famous beautiful "
    "striking unique characteristic notable various".split()
)
# Words that make a phrase about looks: colours, materials, shapes, body parts, structures.
VISUAL_WORDS = frozenset(
    "white black brown red orange yellow green blue purple pink grey gray golden gold silver "
    "ivory marble stone stones granite sandstone limestone brick wooden timber iron steel copper "
    "bronze glass concrete clay round flat tall large giant huge tiny curved pointed rotund stout "
    "fur furred feathers feathered scales scaly bill billed beak tail tailless wings horns coat "
    "mane shell fins claws stripes striped spots spotted patches quills quill dome domes tower "
    "towers spire arch arches columns pillars minarets sails lattice roof wall walls gardens "
    "statue robed crowned torch sarsen megalithic lintel carved rock-cut terraces terraced "
    "facade spires thatched painted canvas fresco mural woodblock swirling thorny spiky "
    "spiny husk rind flesh pulp seeds leaves leaf petals blossoms bark trunk needles "
    "long-necked long-tailed slender thick massive swollen hairy woolly glossy translucent "
    "shiny smooth wrinkled hooked webbed tusks antlers snout whiskers plumage crest lanterns "
    "lamps candles costumes masks powder bowl bellows reeds pipes drones "
    "bow blades mallet racket wheels chimney boiler carriages sphere cube squares "
    # settings, sizes and kinds of thing: where it stands, how big, what shape
    "mountain mountains ridge canyon valley cliffs island islands coast coastal lake bay "
    "harbour harbor sea ocean jungle rainforest forests savannas grasslands wetlands swamps "
    "desert plateau hills shores reef reefs caves tidal brackish freshwater "
    "metres meters ft cm centimetres km "
    "bridge temple citadel fortress palace mausoleum tomb pyramid monument monolith sculpture "
    "sculptures statues painting print engraving bas-reliefs terracotta porcelain silk "
    "flightless eight-legged segmented bulbous fan-shaped evergreen deciduous hollow "
    # the parts and gear a thing is drawn with
    "sword swords blade blades strings frets keys pedals ink paper cloth stumps bails wicket "
    "brooms fireworks firecrackers flowers fruit fruits stalks stems roots".split()
)
# Words a looks phrase stops before, and words it neither starts nor ends with.
PHRASE_BREAKS = frozenset(
    "is are was were be been has have had become becomes on in of at from by to for that which "
    "who whom around near between into over under through during since bounded consisting "
    "located built named known belonging ranges range depicts depicting represents became "
    "used using making fed feeding lives living resting moving native endemic".split()
)
PHRASE_EDGES = frozenset(
    "a an the its their his her it they this these and or with usually generally typically "
    "often".split()
)
MAX_PHRASE_WORDS = 6
# What a source's first sentence says its subject is: the words after 'is a', 'are', 'was the'.
DEFINITION = re.compile(r"\b(?:is|are|was|were)\s+(?:(?:a|an|the)\s+)?(?P<what>[^,;:()]+)")
DEFINITION_BREAKS = frozenset(
    "that which who whose where located native belonging consisting known used using".split()
)
MAX_DEFINITION_WORDS = 8
# Words that only classify ("a genus of ...", "a form of ..."): the definition starts after them.
CLASSIFIERS = frozenset(
    "genus species phylum family subfamily order class form type kind group collection network "
    "variety member".split()
)
PREPOSITIONS = frozenset("of by in on with from for at to".split())
# 'of' after these goes on with the phrase: "island east of Madagascar".
DIRECTIONS = frozenset("north south east west north-east north-west south-east south-west".split())


def key_words(text: str) -> list[str]:
    """Lowercase content words (letters or numbers, stop words left out)."""
    words = re.findall(r"\w+", text.casefold())
    return [word for word in dict.fromkeys(words) if word not in STOP_WORDS and len(word) > 1]


def same_word(first: str, second: str) -> bool:
    """True for one word in two forms ('feathers'/'feathered', 'bill'/'billed'): equal, or
    sharing a prefix of at least four letters that leaves at most two letters of the shorter."""
    if first == second:
        return True
    shared = len(_common_prefix(first, second))
    return shared >= max(4, min(len(first), len(second)) - 2)


def _common_prefix(first: str, second: str) -> str:
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return first[:length]


def new_words(text: str, known: str) -> list[str]:
    """The key words of `text` that `known` does not hold in any form."""
    held = key_words(known)
    return [word for word in key_words(text) if not any(same_word(word, k) for k in held)]


def word_share(text: str, source: str) -> float:
    """The share of `text`'s key words that `source` holds, in some form (0 without words)."""
    wanted = key_words(text)
    if not wanted:
        return 0.0
    held = key_words(source)
    found = sum(any(same_word(word, other) for other in held) for word in wanted)
    return found / len(wanted)


def supported(statement: str, source_text: str) -> bool:
    """True when the cited text holds nearly all of the statement's key words."""
    return word_share(statement, source_text) >= MIN_SUPPORT


def carried(prompt: str, statement: str) -> bool:
    """True when the prompt carries at least half of the statement's key words."""
    return word_share(statement, prompt) >= 0.5


def sourced_facts(facts: list[Fact]) -> list[Fact]:
    """Facts drawn from documents (not the naming fact, memory or reasoning)."""
    return [
        fact
        for fact in facts
        if not fact.statement.startswith(SUBJECT_FACT_PREFIX)
        and fact.source != "reasoning"
        and not fact.source.startswith("memory:")
    ]


def visual_phrases(text: str, name: str = "") -> list[str]:
    """Short phrases about looks, copied from `text`: from a visual word (with the word before
    it) to the end of its clause, at most `MAX_PHRASE_WORDS` words ("ivory-white marble
    mausoleum", "white coat with black patches"); a clause can give several, each starting past
    the last. Phrases that only repeat the name are left out."""
    name_words = set(key_words(name))
    phrases = []
    for clause in re.split(r"[;:()]|[,.](?=\s|$)|\s[–-]\s", text):  # not "2,430", "1.5"
        words = clause.split()
        bare = [word.lower().strip("'\"") for word in words]
        hits = [  # a capital past the clause's start is a name ("San Francisco Bay")
            i for i, word in enumerate(bare)
            if set(word.split("-")) & VISUAL_WORDS and not (i and words[i][:1].isupper())
        ]
        taken = 0  # words before this index belong to an earlier phrase
        for hit in hits:
            if hit < taken:
                continue
            start, end = _phrase_bounds(bare, hit, taken)
            phrase = " ".join(words[start:end])
            new_words = [word for word in key_words(phrase) if word not in name_words]
            if end - start >= 2 and any(len(word) > 3 and not word.isdigit() for word in new_words):
                phrases.append(phrase)
                taken = end
    return phrases


def _phrase_bounds(bare: list[str], hit: int, taken: int) -> tuple[int, int]:
    """Where a looks phrase around the visual word at `hit` starts and ends, in a clause's
    lowercased words: the word before it joins unless that is a break, an edge or taken; it
    runs to a break, the start of the next thing ("... fur and a broad tail") or the length
    bound; a list cut short there or by an 'of' keeps its first part ("blade and set of
    rules"). An 'of' after a direction goes on ("island east of Madagascar")."""
    before = bare[hit - 1] if hit > taken else ""
    start = hit - 1 if before and before not in PHRASE_BREAKS | PHRASE_EDGES | STOP_WORDS else hit
    end = hit + 1
    limit = min(len(bare), start + MAX_PHRASE_WORDS)
    while end < limit and (bare[end] not in PHRASE_BREAKS or _direction_of(bare, end)) and not (
        bare[end] in ("and", "or") and bare[end + 1 : end + 2] in (["a"], ["an"], ["the"])
    ):
        end += 1
    cut_short = end == limit < len(bare) or bare[end : end + 1] == ["of"]  # "set of rules"
    if cut_short and "and" in bare[hit + 1 : end]:
        end = hit + 1 + bare[hit + 1 : end].index("and")  # keep the first part
    while end > hit + 1 and bare[end - 1] in PHRASE_EDGES:
        end -= 1
    return start, end


def _direction_of(bare: list[str], index: int) -> bool:
    return bare[index] == "of" and bare[index - 1] in DIRECTIONS


def definition(text: str, name: str = "") -> str:
    """What the text's first sentence says its subject is: the words after its first 'is a' or
    'are' (and a classifier: "a genus of"), to the end of the clause or a word that starts
    something else ('located', 'that'): "suspension bridge spanning the Golden Gate". At most
    `MAX_DEFINITION_WORDS`; one cut off there ends before its last preposition and a participle
    that led to it ("alcoholic beverage of Japanese origin", not "... origin made by fermenting
    rice"). Empty when there is none, or it is a single word ("a semiaquatic, egg-laying
    mammal": a list cut at its first comma) or only repeats the name."""
    first_sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    found = DEFINITION.search(first_sentence)
    if found is None:
        return ""
    words = found["what"].split()
    if len(words) > 2 and words[0].casefold() in CLASSIFIERS and words[1] == "of":
        words = words[2:]
    kept: list[str] = []
    for word in words[:MAX_DEFINITION_WORDS]:
        if word.casefold() in DEFINITION_BREAKS:
            break
        kept.append(word)
    else:
        cut_off = len(words) > MAX_DEFINITION_WORDS
        last_preposition = max(
            (i for i, word in enumerate(kept) if word.casefold() in PREPOSITIONS), default=0
        )
        if cut_off and last_preposition > 1:  # "... by the Dutch painter Vincent": end before it
            kept = kept[:last_preposition]
            if len(kept) > 2 and (kept[-1].endswith("ed") or kept[-1] in ("made", "built")):
                kept.pop()  # "... of Japanese origin made": the participle led the cut part
    while kept and kept[-1].casefold() in STOP_WORDS | PHRASE_EDGES:
        kept.pop()
    phrase = " ".join(kept).rstrip(".")
    return phrase if len(kept) >= 2 and new_words(phrase, name) else ""


def looks_from_evidence(
    evidence: Evidence, name: str, facts: list[Fact], request: str, chars: int
) -> list[Fact]:
    """What the subject's evidence says it is (its `definition`) and phrases about its looks
    from its first `chars`, as facts citing it: as many as the sourced facts lack to reach
    `PROMPT_FACTS`, none that the request or a fact already says."""
    wanted = PROMPT_FACTS - len(sourced_facts(facts))
    found: list[Fact] = []
    text = evidence.content[:chars]
    for phrase in filter(None, [definition(text, name), *visual_phrases(text, name)]):
        fact = Fact(statement=phrase, source=evidence.source)
        known = [*facts, *found]
        if len(found) < wanted and adds_to(f"{request} {name}", fact) and not any(
            carried(other.statement, phrase) for other in known
        ):
            found.append(fact)
    return found


def adds_to(known: str, fact: Fact) -> bool:
    """True when a fact is a whole phrase that says something `known` (the request and the
    subject's name) does not already say. A phrase ending on a word like 'a' or 'the' was cut
    off by the length bound. Reasoning and memory facts always count."""
    if fact.source == "reasoning" or fact.source.startswith("memory:"):
        return True
    words = re.findall(r"\w+", fact.statement.casefold())
    cut_off = not words or words[-1] in STOP_WORDS | PHRASE_EDGES
    return not cut_off and word_share(fact.statement, known) < 1.0


@dataclass(frozen=True)
class PromptParts:
    """What a grounded prompt is made of: the subject's name, the verified facts, the request,
    the text that describes the subject (the analysis's description and the subject's source),
    the statements no source supported, and the user's remembered preferences."""

    name: str
    facts: list[Fact]
    request: str
    described: str = ""
    unsupported: tuple[str, ...] = ()
    preferences: tuple[str, ...] = ()

    def held_by(self, prompt: str) -> bool:
        """True when the prompt names the subject, keeps the request's scene (its words that do
        not describe the subject), carries every reasoning conclusion and `PROMPT_FACTS` sourced
        facts (or all, when there are fewer), and says nothing only an unsupported statement
        said."""
        if self.name and not names(prompt, self.name):
            return False
        scene = new_words(self.request, f"{self.name} {self.described}")
        if scene and word_share(" ".join(scene), prompt) < SCENE_SHARE:
            return False
        known = f"{self.name} {self.request}"
        claims = (new_words(statement, known) for statement in self.unsupported)
        if any(claim and carried(prompt, " ".join(claim)) for claim in claims):
            return False
        conclusions = [fact for fact in self.facts if fact.source == "reasoning"]
        if not all(carried(prompt, fact.statement) for fact in conclusions):
            return False
        visual = sourced_facts(self.facts)
        needed = min(PROMPT_FACTS, len(visual))
        return sum(carried(prompt, fact.statement) for fact in visual) >= needed

    def composed(self) -> str:
        """'<Name>: <up to three sourced facts>. <Reasoning conclusions>. <The request>.
        Preferences: <...>.': the subject and its looks first, then the request itself (its
        scene and style), then what the user always wants."""
        phrases = [
            without_name(fact.statement, self.name) for fact in sourced_facts(self.facts)[:3]
        ]
        looks = ", ".join(phrase for phrase in phrases if phrase)
        subject = f"{self.name}: {looks}" if self.name and looks else self.name or looks
        conclusions = [fact.statement for fact in self.facts if fact.source == "reasoning"]
        wishes = f"Preferences: {'; '.join(self.preferences)}" if self.preferences else ""
        parts = [subject, *conclusions, self.request, wishes]
        return " ".join(sentence(part) for part in parts if part)


def names(prompt: str, name: str) -> bool:
    """True when the prompt holds every key word of the name, as it is or as a plural ('The
    Starry Night' is not named by 'stars' and 'night')."""
    wanted = key_words(name)
    if not wanted:
        return carried(prompt, name)
    held = set(re.findall(r"\w+", prompt.casefold()))
    return all(held & {word, f"{word}s", f"{word}es", word.removesuffix("s")} for word in wanted)


def without_name(phrase: str, name: str) -> str:
    """A phrase without the name it starts with ('Petra, originally known as Raqmu' ->
    'originally known as Raqmu'); empty when it is only the name."""
    phrase = phrase.strip().rstrip(".")
    bare = re.sub(r"^(?:the|a|an)\s+", "", name.strip(), flags=re.IGNORECASE)
    if bare:
        phrase = re.sub(
            rf"^(?:(?:the|a|an)\s+)?{re.escape(bare)}\b[\s,:;-]*", "", phrase, flags=re.IGNORECASE
        )
    return phrase.strip()


def sentence(text: str) -> str:
    """The text as a sentence: a capital first letter and a full stop."""
    text = text.strip().rstrip(".,;: ")
    return f"{text[:1].upper()}{text[1:]}." if text else ""
