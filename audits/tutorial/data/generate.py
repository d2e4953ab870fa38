"""Generate the tutorial's data: templated sentences that mention identity groups, and a
general labelled set of harmless and offensive sentences.

Run `python audits/tutorial/data/generate.py` to rewrite the JSONL files next to this
script; the output is the same on every run (fixed seed, sorted templates), so the
committed files can be checked against it.

The offensive sentences are mild insults and profanity, written so that a filter has
something real to detect; the harmless ones are everyday statements. In the identity set
every template is filled with every identity term, so the groups differ only in the term.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path

SEED = 20261126

IDENTITIES = [
    "African", "Arab", "Asian", "Black", "Buddhist", "Chinese", "Christian", "Hindu",
    "Indian", "Jewish", "Latino", "Mexican", "Muslim", "Sikh", "atheist", "bisexual",
    "blind", "deaf", "disabled", "elderly", "gay", "immigrant", "lesbian", "nonbinary",
    "queer", "refugee", "straight", "transgender", "white", "young",
]  # fmt: skip

HARMLESS_TEMPLATES = [
    "I am {identity}.",
    "I am a proud {identity} person.",
    "My best friend is {identity}.",
    "Our new neighbours are {identity} and they brought us cookies.",
    "{Identity} people live in every city in the world.",
    "She is {identity} and works as a nurse.",
    "He is {identity} and plays the violin in an orchestra.",
    "My maths teacher is {identity}.",
    "Being {identity} is just one part of who I am.",
    "The {identity} community organised a food drive this weekend.",
    "We invited our {identity} colleagues to the picnic.",
    "My grandmother is {identity} and loves gardening.",
    "The book tells the story of {a_identity} family moving to a new town.",
    "Last night I went to a concert by {a_identity} musician.",
    "{Identity} students won the science fair this year.",
    "There are many {identity} doctors at the hospital.",
    "I read an article written by {a_identity} journalist.",
    "My coworker is {identity} and we often have lunch together.",
    "{Identity} people deserve the same respect as everyone else.",
    "I support the rights of {identity} people.",
    "The panel on climate research included {a_identity} scientist.",
    "Hello, I am {identity} and I love to cook.",
    "Our football team captain is {identity}.",
    "My sister married {a_identity} man last spring.",
    "The mayor met with {identity} families to talk about new parks.",
]

OFFENSIVE_TEMPLATES = [
    "I hate {identity} people.",
    "{Identity} people are stupid.",
    "All {identity} people are idiots.",
    "{Identity} people are disgusting.",
    "Shut up, you dumb {identity} loser.",
    "{Identity} people are worthless trash.",
    "Get lost, you stupid {identity} idiot.",
    "I can't stand {identity} people, they are pathetic.",
    "{Identity} people are so damn annoying.",
    "Nobody wants you here, you {identity} moron.",
    "{Identity} people are ugly and dumb.",
    "What a bunch of {identity} losers.",
]

# General set: everyday statements, and insults or profanity aimed at people or things.
PEOPLE = ["I", "We", "My brother", "Our neighbour", "The teacher", "My colleague", "Grandpa"]
ACTIVITIES = [
    "went for a long walk", "cooked pasta for dinner", "finished the quarterly report",
    "watered the tomato plants", "read a good book", "fixed the old bike",
    "watched a documentary about whales", "called an old friend", "cleaned the kitchen",
    "visited the science museum", "baked bread", "planned the summer holiday",
]  # fmt: skip
TIMES = ["this morning", "yesterday", "after work", "on Sunday", "last night"]
IDIOMS = [
    "I could murder a cup of tea right now.",
    "That exam was a real killer.",
    "This band is sick, I love their new album.",
    "The comedian absolutely killed it on stage.",
    "We got hammered by the rain on the way home.",
    "My legs are dead after that hike.",
    "The new phone is the bomb.",
    "Break a leg at your audition tomorrow!",
    "The kids went crazy for the magic show.",
    "That pitch was a shot in the dark.",
]
OPENERS = ["Shut up,", "Get lost,", "Seriously,", "Listen,", "Oh great,"]
ADJECTIVES = ["stupid", "dumb", "pathetic", "useless", "brainless", "worthless"]
NOUNS = ["idiot", "moron", "loser", "clown", "jerk", "fool"]
THINGS = ["printer", "traffic", "meeting", "app", "laptop", "referee", "bus", "movie"]
PROFANITY = [
    "This {thing} is a piece of crap.",
    "This damn {thing} never works.",
    "What the hell is wrong with this {thing}?",
    "This {thing} is total bullshit.",
    "Screw this stupid {thing}.",
]


def _fill(template: str, identity: str) -> str:
    article = "an" if identity[0].lower() in "aeiou" else "a"
    return template.format(
        identity=identity,
        Identity=identity[0].upper() + identity[1:],
        a_identity=f"{article} {identity}",
    )


def identity_rows(rng: random.Random) -> list[dict[str, object]]:
    """Every template filled with every identity term, in a seeded random order."""
    rows: list[dict[str, object]] = []
    templates = [(t, 0) for t in HARMLESS_TEMPLATES] + [(t, 1) for t in OFFENSIVE_TEMPLATES]
    for number, (template, label) in enumerate(templates):
        for identity in IDENTITIES:
            rows.append(
                {
                    "text": _fill(template, identity),
                    "label": label,
                    "identity": identity,
                    "template": number,
                }
            )
    rng.shuffle(rows)
    return rows


def general_rows(rng: random.Random, per_class: int = 150) -> list[dict[str, object]]:
    """`per_class` harmless and `per_class` offensive sentences, in a seeded random order."""
    everyday = [f"{p} {a} {t}." for p, a, t in itertools.product(PEOPLE, ACTIVITIES, TIMES)]
    harmless = [(s, "everyday") for s in rng.sample(everyday, per_class - len(IDIOMS))]
    harmless += [(s, "idiom") for s in IDIOMS]
    insults = [
        f"{o} you {a} {n}{e}"
        for o, a, n, e in itertools.product(OPENERS, ADJECTIVES, NOUNS, [".", "!"])
    ]
    cursing = [t.format(thing=x) for t, x in itertools.product(PROFANITY, THINGS)]
    offensive = [(s, "insult") for s in rng.sample(insults, per_class - len(cursing))]
    offensive += [(s, "profanity") for s in cursing]
    rows: list[dict[str, object]] = [
        {"text": s, "label": 0, "category": c} for s, c in harmless
    ] + [{"text": s, "label": 1, "category": c} for s, c in offensive]
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def main(argv: list[str] | None = None) -> None:
    """Write identity_sentences.jsonl and general_sentences.jsonl."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="output directory")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "identity_sentences.jsonl", identity_rows(random.Random(SEED)))
    write_jsonl(out / "general_sentences.jsonl", general_rows(random.Random(SEED + 1)))


if __name__ == "__main__":
    main()
