"""The bundled demo workload: scripted, deterministic per-tier answers.

Nothing here is a real model output. Each request has a kind (JSON extraction,
sentiment classification, short arithmetic answer, multi-step word problem) and a
difficulty; each tier's answer is drawn once, with a fixed seed, from a behaviour
table: right, wrong-but-well-formed (no gate can catch it), malformed (invalid JSON,
a missing ``Answer:`` line: the gate catches it) or unsure (an "I am not sure"
sentinel: the confidence gate catches it). The cheap tier gets most hard requests
wrong or malformed; the frontier is almost always right. Regenerate the bundled
file with ``python -m langchain_tiered_router.demo.synth``; a test checks that the
file and this generator agree.
"""

from __future__ import annotations

import json
import random
from typing import Callable

from .workload import Item, Outcome, bundled_workload_path, write_items

__all__ = ["generate", "BEHAVIOUR", "COUNTS", "SEED"]

SEED = 20261128
COUNTS = {"extraction": 90, "classification": 80, "short_answer": 70, "multi_step": 60}
EASY_SHARE = 0.55
# P(right, wrong, malformed, unsure) per tier and difficulty.
BEHAVIOUR = {
    ("cheap", "easy"): (0.93, 0.03, 0.03, 0.01),
    ("cheap", "hard"): (0.35, 0.10, 0.35, 0.20),
    ("mid", "easy"): (0.97, 0.02, 0.01, 0.00),
    ("mid", "hard"): (0.78, 0.08, 0.09, 0.05),
    ("frontier", "easy"): (0.99, 0.01, 0.00, 0.00),
    ("frontier", "hard"): (0.95, 0.05, 0.00, 0.00),
}
TIERS = ("cheap", "mid", "frontier")
_NAMES = ["Maria Lopez", "Tom Becker", "Ana Ruiz", "Kenji Sato", "Amara Okafor", "Lena Novak", "Omar Haddad",
          "Priya Nair", "Jonas Berg", "Sofia Rossi", "Diego Torres", "Mei Chen", "Ivan Petrov", "Chloe Martin"]
_CITIES = ["Madrid", "Lyon", "Porto", "Osaka", "Lagos", "Prague", "Beirut", "Kochi", "Oslo", "Turin", "Quito",
           "Chengdu", "Kazan", "Nantes"]


def _behaviour(rng: random.Random, tier: str, difficulty: str) -> str:
    r, acc = rng.random(), 0.0
    for name, p in zip(("right", "wrong", "malformed", "unsure"), BEHAVIOUR[(tier, difficulty)]):
        acc += p
        if r < acc:
            return name
    return "right"


def _extraction(rng: random.Random, hard: bool) -> tuple[str, Callable[[str, str], str]]:
    name, other = rng.sample(_NAMES, 2)
    city, old = rng.sample(_CITIES, 2)
    age = rng.randint(19, 78)
    if hard:
        text = (f"Last spring {other} visited {old} with a friend. {name}, who turned {age} in March, "
                f"left {old} for {city} two years ago and still misses the food.")
    else:
        text = f"{name}, {age}, lives in {city}."
    prompt = ("Extract the person's name, city and age from the text as JSON with keys name, city, age "
              f"(age as a number). Text: {text}")
    right = {"name": name, "city": city, "age": age}
    wrong = {"name": name, "city": old, "age": age} if hard else {"name": name, "city": city, "age": age + 1}

    def answer(tier: str, how: str) -> str:
        if how == "unsure":
            return "I am not sure which person the text is about."
        if how == "malformed":
            return f"Here is the data: {{name: {name}, city: {city if not hard else old}, age: {age}}}"
        data = right if how == "right" else wrong
        if tier == "frontier":
            return "```json\n" + json.dumps(data, indent=2) + "\n```"
        return json.dumps(data)

    return prompt, answer


_POSITIVE = ["The battery lasts for days and the screen is gorgeous.",
             "Fast delivery, works perfectly, would buy again.", "Friendly staff and the best coffee in town."]
_NEGATIVE = ["It broke after two days and support never replied.", "Cold food, rude waiter, never again.",
             "The app crashes every time I open it."]
_NEUTRAL = ["The package arrived on Tuesday.", "It is a blue backpack with two pockets.",
            "The hotel is ten minutes from the station."]
_HARD = [("Oh great, another update that deletes my settings. Just what I needed.", "negative"),
         ("Not bad at all, though I expected less from the price.", "positive"),
         ("The plot was thin, but honestly I could not stop watching.", "positive"),
         ("Perfect, the only thing it does reliably is drain the battery.", "negative"),
         ("It does what the box says, nothing more and nothing less.", "neutral"),
         ("I wanted to hate it, and yet here I am ordering a second one.", "positive")]


def _classification(rng: random.Random, hard: bool) -> tuple[str, Callable[[str, str], str]]:
    if hard:
        review, label = rng.choice(_HARD)
    else:
        label = rng.choice(["positive", "negative", "neutral"])
        review = rng.choice({"positive": _POSITIVE, "negative": _NEGATIVE, "neutral": _NEUTRAL}[label])
    prompt = ("Classify the sentiment of this review as exactly one word: positive, negative or neutral. "
              f"Review: {review} (ref {rng.randint(1000, 9999)})")
    wrong = rng.choice([x for x in ("positive", "negative", "neutral") if x != label])

    def answer(tier: str, how: str) -> str:
        if how == "unsure":
            return "I am not sure."
        if how == "malformed":
            return f"The sentiment of this review is mostly {label}, I think, but it is mixed."
        out = label if how == "right" else wrong
        return out.capitalize() if tier == "cheap" else out

    return prompt, answer


def _short_answer(rng: random.Random, hard: bool) -> tuple[str, Callable[[str, str], str]]:
    if hard:
        a, b = rng.randint(101, 999), rng.randint(12, 99)
        prompt, value = f"What is {a} * {b}? Answer with the number only.", a * b
    else:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        prompt, value = f"What is {a} + {b}? Answer with the number only.", a + b
    wrong = value + rng.choice([-10, -1, 1, 10, 100])

    def answer(tier: str, how: str) -> str:
        if how == "unsure":
            return "I don't know."
        if how == "malformed":
            return f"The answer is approximately {value}, let me know if you need the steps."
        return str(value if how == "right" else wrong)

    return prompt, answer


def _multi_step(rng: random.Random, hard: bool) -> tuple[str, Callable[[str, str], str]]:
    name = rng.choice(_NAMES).split()[0]
    pen, book = rng.randint(2, 5), rng.randint(6, 12)
    pens, books = rng.randint(2, 6), rng.randint(1, 4)
    subtotal = pen * pens + book * books
    bill = 50 if subtotal < 50 else 100
    if hard:
        off = rng.choice([10, 20, 25, 50])
        book_cost = book * books * (100 - off) / 100
        total = pen * pens + book_cost
        extra = f" Notebooks are {off}% off today."
    else:
        off, book_cost, total, extra = 0, book * books, subtotal, ""
    change = bill - total
    fmt = lambda x: f"{x:g}"  # noqa: E731
    prompt = (f"A shop sells pens at ${pen} each and notebooks at ${book} each.{extra} {name} buys {pens} pens "
              f"and {books} notebooks and pays with a ${bill} bill. How much change does {name} get? Think step "
              "by step and finish with a line 'Answer: <number>'.")
    steps = [f"Pens: {pens} x ${pen} = ${pen * pens}."]
    if hard:
        steps.append(f"Notebooks: {books} x ${book} = ${book * books}, minus {off}% = ${fmt(book_cost)}.")
    else:
        steps.append(f"Notebooks: {books} x ${book} = ${book * books}.")
    steps.append(f"Total: ${fmt(total)}. Change: ${bill} - ${fmt(total)} = ${fmt(change)}.")
    wrong = bill - subtotal if hard else change + rng.choice([-2, 2, 5])

    def answer(tier: str, how: str) -> str:
        if how == "unsure":
            return "I am not sure how to work out the change here."
        if how == "malformed":
            return " ".join(steps[:2]) + " So the change is a bit under the bill."
        value = change if how == "right" else wrong
        body = steps[:-1] + [f"Total paid: ${fmt(bill - value)}. Change: ${fmt(value)}."]
        return "\n".join(body) + f"\nAnswer: {fmt(value)}"

    return prompt, answer


_KINDS = {"extraction": _extraction, "classification": _classification, "short_answer": _short_answer,
          "multi_step": _multi_step}


def generate(seed: int = SEED) -> list[Item]:
    """The bundled workload: the same items for the same seed, interleaved by kind."""
    rng = random.Random(seed)
    queues = []
    for kind, count in COUNTS.items():
        items = []
        for i in range(count):
            hard = rng.random() >= EASY_SHARE
            prompt, answer = _KINDS[kind](rng, hard)
            difficulty = "hard" if hard else "easy"
            outcomes = {}
            for tier in TIERS:
                how = _behaviour(rng, tier, difficulty)
                outcomes[tier] = Outcome(answer(tier, how), 1.0 if how == "right" else 0.0)
            items.append(Item(f"{kind}-{i + 1:03d}", prompt, outcomes, kind, difficulty))
        queues.append(items)
    mixed: list[Item] = []
    while any(queues):
        for q in queues:
            if q:
                mixed.append(q.pop(0))
    return mixed


if __name__ == "__main__":
    path = write_items(generate(), bundled_workload_path())
    print(f"wrote {path}")
