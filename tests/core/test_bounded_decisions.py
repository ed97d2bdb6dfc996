"""A decision reads a bounded view of the prompt, and the fast paths change no decision.

The trained model's tokenisation goes word by word (``WordPieces``) instead of through
``tokenizer.encode``; the ids must be the same, for recorded prompts and for texts made
to break it. Keyword rules read the head and the tail of the text; lengths the whole.
"""

from __future__ import annotations

import csv
import random
import re

import pytest

from langchain_tiered_router.core import RouteRequest
from langchain_tiered_router.core.classifiers import (KEYWORD_HEAD_CHARS, KEYWORD_TAIL_CHARS, Rule,
                                                      RulesClassifier)
from langchain_tiered_router.core.config import load_config
from langchain_tiered_router.core.embedding import _FEW_RUNS, load_embedding
from langchain_tiered_router.core.features import _NUMBER, _digits, _numbers
from langchain_tiered_router.core.tiers import Ladder

from .conftest import LADDER

MARKER = "\u2581"


def _encoded(text: str) -> list[int]:
    return load_embedding().tokenizer.encode(text, add_special_tokens=False).ids


def _tricky_texts() -> list[str]:
    rng = random.Random(11)
    alphabet = f"ab c  d\t\n{MARKER}é漢字🙂 42.5 ,;\\{{}}[]<s></s><unk>\x00 İ ǅ ﬁ\u00a0\u3000"
    texts = ["", " ", "  ", MARKER, f"{MARKER}{MARKER} x", "a  b   c", " leading", "trailing  ", "x" * 3000,
             "tab\tand\nnewline  then spaces", "<s> special </s> tokens <unk>", "a<s>b", "😀" * 40]
    texts += ["".join(rng.choice(alphabet) for _ in range(n)) for n in (3, 30, 300, 3000) for _ in range(25)]
    return texts


def test_word_pieces_give_the_tokenizers_own_ids_on_texts_made_to_break_them():
    embedding = load_embedding()
    assert embedding.pieces is not None, "the bundled tokenizer should take the word-by-word path"
    for text in _tricky_texts():
        assert embedding.token_ids(text).tolist() == _encoded(text), repr(text[:60])
    # and again, now from the word cache
    for text in _tricky_texts():
        assert embedding.token_ids(text).tolist() == _encoded(text), repr(text[:60])


def test_word_pieces_cut_by_the_split_and_by_the_pattern_share_one_cache():
    """Code (many runs of spaces) is cut by the pattern, prose by ``str.split``; a piece
    cached by one is read by the other, so both must key it alike."""
    embedding = load_embedding()
    code = "\n".join(f"    def f{i}(x):\n        return x  +  {i}   # note {i}" for i in range(40))
    prose = re.sub(" +", " ", " ".join(line.strip() for line in code.splitlines()))  # no runs: split
    assert code.count("  ") > _FEW_RUNS and "  " not in prose
    for text in (code, prose, code, "  " + prose + "  ", prose.replace(" ", "  ", 3)):
        assert embedding.token_ids(text).tolist() == _encoded(text), repr(text[:60])


def test_word_pieces_give_the_tokenizers_own_ids_on_recorded_prompts(shared_data):
    embedding = load_embedding()
    with open(shared_data / "routellm" / "gsm8k" / "gsm8k_responses.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:300]
    texts = [r["prompt"] for r in rows] + [" ".join(r["prompt"] for r in rows)]
    for text in texts:
        assert embedding.token_ids(text).tolist() == _encoded(text)


@pytest.mark.parametrize("text", ["", "plain ascii 12 and 3.5", "x²³ ٣٤ ①", "漢字 9", "\x00\t1", "a-b 5-3 1,-2 -0.5.5 ²-³ --7,,8"])
def test_the_digit_count_is_str_isdigit(text):
    assert _digits(text) == sum(c.isdigit() for c in text)


@pytest.mark.parametrize("text", ["", "no numbers", "5-3 1,-2 -0.5.5 --7,,8 x-9", "١٢-٣ 4.", "a" * 50 + "-1 " * 80])
def test_numbers_are_counted_as_the_signed_pattern_finds_them(text):
    assert _numbers(text, 50) == min(len(_NUMBER.findall(text)), 50)


LONG = 100_000


def _ladder() -> Ladder:
    return Ladder.from_config(load_config({"tiers": LADDER, "telemetry": {"sinks": []}}))


def _filler(n: int) -> str:
    return ("lorem ipsum dolor sit amet " * (n // 27 + 1))[:n]


@pytest.mark.parametrize("where, matches", [("head", True), ("tail", True), ("middle", False)])
def test_keyword_rules_read_the_head_and_the_tail_of_a_long_prompt(where, matches):
    classifier = RulesClassifier([Rule("frontier", keywords=["Prove"])])
    filler = _filler(LONG)
    at = {"head": 10, "tail": LONG - 20, "middle": LONG // 2}[where]
    text = filler[:at] + " prove it " + filler[at:]
    choice = classifier.classify(RouteRequest(text=text), _ladder())
    assert (choice.tier, choice.reason) == (("frontier", "rules[0]: keyword 'Prove'") if matches
                                            else ("cheap", "rules: no rule matched"))


def test_a_prompt_within_the_window_is_read_whole():
    classifier = RulesClassifier([Rule("frontier", keywords=["integral"])])
    filler = _filler(KEYWORD_HEAD_CHARS + KEYWORD_TAIL_CHARS - 20)
    text = filler[:KEYWORD_HEAD_CHARS + 5] + " integral " + filler[KEYWORD_HEAD_CHARS + 5:]
    assert classifier.classify(RouteRequest(text=text), _ladder()).tier == "frontier"


def test_rules_name_the_first_listed_keyword_and_lengths_read_the_whole_text():
    classifier = RulesClassifier([Rule("mid", keywords=["derive", "proof"]),
                                  Rule("frontier", min_chars=LONG)])
    assert classifier.classify(RouteRequest(text="a proof, then derive"), _ladder()).reason == (
        "rules[0]: keyword 'derive'")
    assert classifier.classify(RouteRequest(text="disproof"), _ladder()).tier == "cheap"  # whole words only
    long = RouteRequest(text=_filler(LONG))
    assert classifier.classify(long, _ladder()).reason == f"rules[1]: length {LONG}"


@pytest.mark.parametrize("inside", [0, 3, 15, 16, 17, 400])
def test_a_keyword_found_only_inside_other_words_first_is_still_found_as_a_word(inside):
    """Occurrences inside longer words ("improve") are passed over one by one, then by one
    regex scan; a whole-word one after any number of them still matches."""
    classifier = RulesClassifier([Rule("frontier", keywords=["prove"])])
    text = "improve, proven; " * inside
    assert classifier.classify(RouteRequest(text=text), _ladder()).tier == "cheap"
    assert classifier.classify(RouteRequest(text=text + "now prove it"), _ladder()).reason == (
        "rules[0]: keyword 'prove'")


def test_keyword_matches_are_the_whole_token_regexes_on_texts_made_to_break_them():
    """The candidate search (``str.find``, then the pattern at each) finds exactly what one
    regex scan of the whole view finds."""
    from langchain_tiered_router.core.classifiers import token_pattern

    rng = random.Random(5)
    alphabet = "ab .-+_\n\tAB9é證"
    for _ in range(3000):
        keywords = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 3))]
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        expected = next((f"keyword {w!r}" for w in keywords
                         if token_pattern(w.casefold()).search(text.casefold())), None)
        assert Rule("frontier", keywords=keywords).matches(text) == expected, (keywords, text)


@pytest.mark.parametrize("keyword, text", [("C++", "Write some C++ code please"), ("C#", "port it to C# now"),
                                           (".NET", "an ASP.NET app"), ("why?", "but why? tell me"),
                                           ("證明", "請證明這個定理"), ("straße", "DIE STRASSE ENTLANG"),
                                           ("python", "用Python写一个爬虫"), ("พิสูจน์", "ช่วยพิสูจน์ทฤษฎีนี้")])
def test_a_keyword_that_ends_in_a_symbol_or_is_cjk_or_folds_matches(keyword, text):
    """``\\b`` around a keyword never matched ``C++`` before a space, ``.NET`` after a
    letter, or a Chinese keyword in unspaced text, and ``lower()`` left "STRASSE" apart
    from "straße"; the config said nothing and the rule never fired."""
    assert Rule("frontier", keywords=[keyword]).matches(text) == f"keyword {keyword!r}"
    assert Rule("frontier", keywords=["prove"]).matches("improve it") is None  # still a whole token


@pytest.mark.parametrize("reply, tier", [
    ("I'd pick the top of the pyramid: frontier", "frontier"),  # "pyramid" named mid
    ("The cheapest tier will not do; use mid.", "mid"),  # "cheapest" named cheap
    ("Not cheap. This needs frontier.", "frontier"),  # the first name mentioned won
    (" `MID`. ", "mid"), ("cheap", "cheap"),
    ("mid (cheap is too weak; frontier would be overkill)", "mid"),  # the name it opens with
    ("frontier, not cheap", "frontier"),
])
def test_the_llm_classifier_reads_the_tier_its_reply_concludes_with(reply, tier):
    from langchain_tiered_router.core.classifiers import LLMClassifier

    choice = LLMClassifier.parse(reply, _ladder())
    assert (choice.tier, choice.reason) == (tier, f"llm: said {tier!r}")
    assert LLMClassifier.parse("no idea", _ladder(), "mid").tier == "mid"  # unreadable: the default tier
    # the reason is recorded whatever store_text says: no word of a reply restating the request
    secret = LLMClassifier.parse("The user's medical question about PATIENT-42", _ladder()).reason
    assert "PATIENT" not in secret and secret.startswith("llm: unreadable label")


def test_a_tier_name_inside_another_is_part_of_it():
    """Tiers "large" and "x-large": "I'd pick x-large." read "large" (it starts later)."""
    from langchain_tiered_router.core.classifiers import LLMClassifier

    ladder = Ladder.from_config(load_config({"tiers": [{"name": "large", "model_id": "amazon.nova-micro-v1:0"},
                                                       {"name": "x-large", "model_id": "amazon.nova-pro-v1:0"}],
                                             "telemetry": {"sinks": []}}))
    assert LLMClassifier.parse("I'd pick x-large.", ladder).tier == "x-large"
    assert LLMClassifier.parse("large will do", ladder).tier == "large"
