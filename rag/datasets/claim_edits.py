"""The rules that make the claim benchmark's paraphrases and corruptions from a sentence.

Paraphrases (still supported): a leading "However," and asides in parentheses dropped,
a leading phrase moved to the end ("For the quarter, sales were $5 million." -> "Sales
were $5 million for the quarter."), two clauses in the other order, "approximately"
before a figure, and an amount of a million or more rescaled to millions or billions
with correct rounding ("$82,959 million" -> "$83.0 billion").

Corruptions (no longer supported by the same sources): a figure's digit changed, its
scale changed (the scale word, or the decimal point moved one place), its sign flipped
(the direction word beside it, "increased" -> "decreased", or a sign or accounting
parentheses written on it), a name swapped for another of the same form from the
corpus. Each returns None when the sentence offers nothing to change, and never returns
a figure that the sources it is checked against write (their text is `avoid`).

Other supported sentences: a "What is X?" question and its short answer stated ("X is
<answer>."), the clause of a sentence that holds the answer, and a table row's change
("Total net sales decreased by 1.4 % from 82,959 to 81,797.", computed). `proper_names`
gives the corpus's names to swap.

Left out: paraphrases by synonyms (a model's; a rule would change meaning).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

from rag.answering.figures import Figure, figures_in
from rag.core.doc_terms import named_words

_LEAD = re.compile(
    r"^(?P<lead>(?:For|In|During|As of|At|On|By|After|Before|Over|Between|Since|Compared to|"
    r"Compared with|Among|Of)\b(?:[^,]|,(?=\s*\d)){3,120}?),"  # a date's comma does not end it
    r"\s+(?P<rest>[a-z][^\n]+?)(?P<end>[.!]?)$"
)
_SCALE_WORDS = {"thousand": "million", "million": "billion", "billion": "million"}
_DIRECTIONS = {
    "increased": "decreased", "increase": "decrease", "increases": "decreases",
    "increasing": "decreasing", "rose": "fell", "higher": "lower", "grew": "declined",
    "gain": "loss", "gains": "losses", "growth": "decline", "up": "down", "more": "fewer",
    "above": "below", "greater": "less",
}  # fmt: skip
_DIRECTIONS |= {v: k for k, v in list(_DIRECTIONS.items())}
_WAYS = "|".join(sorted(_DIRECTIONS, key=len, reverse=True))
# A direction word that gives a figure its sign: just before it, or just after.
_BEFORE = re.compile(
    rf"\b(?P<way>{_WAYS})\s+(?:(?:by|to|than|of|from|about|approximately|nearly|almost|some)"
    r"\s+){0,2}$"
)
_AFTER = re.compile(rf"\s+(?:(?:million|billion|thousand|percent|points?)\s+)?(?P<way>{_WAYS})\b")


def _held(text: str, avoid: str) -> bool:
    """Whether a figure written `text` (its digits) stands in `avoid` as a figure."""
    digits = re.sub(r"[^\d.,]", "", text).strip(".,")
    return (
        bool(digits)
        and re.search(rf"(?<![\d.,]){re.escape(digits)}(?![\d]|[.,]\d)", avoid) is not None
    )


def _amounts(sentence: str) -> list[Figure]:
    return [f for f in figures_in(sentence) if f.kind in ("number", "currency", "percent")]


# -- paraphrases -------------------------------------------------------------------------


def reorder(sentence: str) -> str | None:
    """ "For X, Y." -> "Y for X.": a leading phrase moved to the end."""
    m = _LEAD.match(sentence)
    if not m:
        return None
    lead = m["lead"][0].lower() + m["lead"][1:]
    return f"{m['rest'][0].upper()}{m['rest'][1:]} {lead}{m['end'] or '.'}"


def approximately(sentence: str) -> str | None:
    """ "approximately" before the first amount or percentage."""
    for f in _amounts(sentence):
        before = sentence[: f.start]
        if before[-1:] == " " and not before.rstrip().lower().endswith(("approximately", "about")):
            return f"{sentence[: f.start]}approximately {sentence[f.start :]}"
    return None


def rescale(sentence: str) -> str | None:
    """The first amount of a million or more written in millions or billions, rounded
    to one decimal ("$82,959 million" -> "$83.0 billion")."""
    for f in _amounts(sentence):
        v = abs(f.value)
        if f.kind == "percent" or v < 1e6:
            continue
        word, unit = ("billion", 1e9) if v >= 1e9 else ("million", 1e6)
        if f.scale == unit and "." in f.text:
            continue  # already written so
        cur = "$" if "$" in f.text else ""
        sign = "-" if f.value < 0 else ""
        return f"{sentence[: f.start]}{sign}{cur}{v / unit:,.1f} {word}{sentence[f.end :]}"
    return None


_MARKER = re.compile(
    r"^(?:However|In addition|Additionally|Moreover|Furthermore|Thus|Therefore|Hence|Here|"
    r"Also|Overall|Similarly|Indeed|Notably|Importantly|In contrast|In summary|Finally),\s+"
)
_ASIDE = re.compile(r"\s+\((?![^()]*\d)[^()]{1,80}\)")
_CLAUSES = re.compile(
    r"^(?P<a>[^;]{20,}?)(?:;|, while|, whereas)\s+(?P<b>[^;]{20,}?)(?P<end>[.!]?)$"
)


def plainer(sentence: str) -> str | None:
    """A leading "However," or "In addition," and asides in parentheses (without a
    figure) dropped."""
    out = _ASIDE.sub("", _MARKER.sub("", sentence))
    if out == sentence:
        return None
    return out[0].upper() + out[1:]


def swap_clauses(sentence: str) -> str | None:
    """Two clauses joined by "; " (or ", while", ", whereas") in the other order ("and"
    and "but" join lists and contrasts, which the other order can garble)."""
    m = _CLAUSES.match(sentence)
    if not m or _LEAD.match(sentence):
        return None
    a, b = m["a"], m["b"]
    first = a[0] if a[1:2].isupper() else a[0].lower()  # "DNA ..." keeps its capital
    return f"{b[0].upper()}{b[1:]}, and {first}{a[1:]}{m['end'] or '.'}"


def paraphrase(sentence: str) -> str | None:
    """Every paraphrase rule that applies, in turn; None when none does."""
    out = sentence
    for rule in (plainer, reorder, swap_clauses, rescale, approximately):
        changed = rule(out)
        out = changed if changed is not None else out
    return out if out != sentence else None


# -- corruptions -------------------------------------------------------------------------


def change_digit(sentence: str, avoid: str, rng: random.Random) -> str | None:
    """One digit of one figure changed (amounts first, then years and dates)."""
    figures = _amounts(sentence) or figures_in(sentence)
    for f in rng.sample(figures, len(figures)):
        places = [i for i in range(f.start, f.end) if sentence[i].isdigit()]
        for i in rng.sample(places, len(places)):
            first = i == places[0]
            choices = [d for d in "0123456789" if d != sentence[i] and not (first and d == "0")]
            new = sentence[:i] + rng.choice(choices) + sentence[i + 1 :]
            if not _held(new[f.start : f.end], avoid):
                return new
    return None


def change_scale(sentence: str, avoid: str, rng: random.Random) -> str | None:
    """One figure's scale changed: its scale word, or its decimal point moved a place."""
    for f in rng.sample(_amounts(sentence), len(_amounts(sentence))):
        text = f.text
        word = re.search(r"(?i)\b(thousand|million|billion)\b", sentence[f.start : f.end + 12])
        if word:
            at = f.start + word.start()
            new_word = _SCALE_WORDS[word.group(1).lower()]
            return sentence[:at] + new_word + sentence[at + len(word.group(1)) :]
        digits = re.search(r"\d[\d,]*(?:\.\d+)?", text)
        if not digits:
            continue
        raw = digits.group().replace(",", "")
        if "." in raw:
            whole, frac = raw.split(".")
            moved = (whole + frac[0]).lstrip("0") + ("." + frac[1:] if frac[1:] else "")
        else:
            moved = f"{int(raw) * 10:,}"
        if moved and not _held(moved, avoid):
            a = f.start + digits.start()
            return sentence[:a] + moved + sentence[a + len(digits.group()) :]
    return None


def flip_sign(sentence: str, avoid: str) -> str | None:
    """A figure's sign flipped: the direction word that gives it ("increased by 5 %",
    "more than 1,000", "$2.4 billion lower") replaced by its opposite, or a minus or
    accounting parentheses written on it removed; None when no figure has a sign."""
    for f in _amounts(sentence):
        before = _BEFORE.search(sentence, max(0, f.start - 40), f.start)
        after = _AFTER.match(sentence, f.end)
        m = before or after
        if m:
            word = m.group("way")
            at = m.start("way")
            return sentence[:at] + _DIRECTIONS[word] + sentence[at + len(word) :]
    for f in _amounts(sentence):
        # A minus after a space, or accounting parentheses ("$(362)", "(6)%"); not a
        # range's dash ("3.2%-25%"), nor "(63%)" or "(10)", asides and references in prose.
        accounting = re.fullmatch(r"\$\s?\([\d,.]+\).*|\([\d,.]+\)\s?%", f.text)
        minus = f.text[:1] in "-\u2212" and sentence[f.start - 1 : f.start] in ("", " ")
        if f.signed and f.value < 0 and (accounting or minus):
            bare = re.sub(r"[()\-\u2212]", "", f.text)
            return sentence[: f.start] + bare + sentence[f.end :]
    return None


def swap_name(
    sentence: str, names: Sequence[str], pool: Sequence[str], avoid: str, rng: random.Random
) -> str | None:
    """One of `names` (found in the sentence) swapped, everywhere in it, for a name of
    `pool` of the same form (an acronym for an acronym) that `avoid` does not have."""
    lower = avoid.lower()
    for name in rng.sample(list(names), len(names)):
        if not re.search(rf"(?<!\w){re.escape(name)}(?!\w)", sentence):
            continue
        acronym = sum(c.isupper() for c in name) > 1
        options = [
            p
            for p in pool
            if p != name and (sum(c.isupper() for c in p) > 1) == acronym and p.lower() not in lower
        ]
        if options:
            other = rng.choice(sorted(options))
            return re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", other, sentence)
    return None


# -- other supported sentences -----------------------------------------------------------

_WHAT = re.compile(r"^What (is|are|was|were) (?P<subject>[^?]{8,}?)\s*\?*$")
_SUBJECTS = frozenset(
    "the a an this these those it its they their we our there he she his her such".split()  # noqa: SIM905
)
_ROW = re.compile(
    r"^(?P<label>[A-Za-z][A-Za-z ,&'()-]{2,60}?)\s+\$?\s*(?P<a>\d{1,3}(?:,\d{3})+)"
    r"\s+\$?\s*(?P<b>\d{1,3}(?:,\d{3})+)"
)


def stated(question: str, answer: str) -> str | None:
    """A "What is X?" question and its short answer as the sentence an answer would
    write, in the question's words rather than the source's: "X is <answer>."."""
    m = _WHAT.match(question.strip())
    answer = answer.strip().rstrip(".")
    if not m or not answer or len(answer.split()) > 12:
        return None
    subject = m["subject"]
    return f"{subject[0].upper()}{subject[1:]} {m[1]} {answer}."


def clause_of(sentence: str, answer: str) -> str | None:
    """The clause of a sentence that holds `answer`, as a sentence of its own ("..., and
    X was found in 12 patients" -> "X was found in 12 patients."); None when it would
    not stand alone ("because it ...", "excluding ...")."""
    parts = re.split(r"[;,]\s+(?:and\s+|but\s+|while\s+|which\s+)?", sentence)
    hit = [p for p in parts if answer and answer in p and len(p.split()) >= 6]
    if len(parts) < 2 or not hit or hit[0] == sentence:
        return None
    if hit[0].split()[0].lower() not in _SUBJECTS and not hit[0][:1].isupper():
        return None
    part = hit[0].rstrip(" .")
    return f"{part[0].upper()}{part[1:]}."


def row_change(text: str, figure: str) -> str | None:
    """From the first table row of `text` holding `figure`, its first two amounts and
    the percentage change from the second to the first, to one decimal: "Total net sales
    decreased by 1.4 % from 82,959 to 81,797." (a 10-Q's columns: this period, then the
    one before)."""
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if not m or figure not in line:
            continue
        a, b = (float(m[k].replace(",", "")) for k in ("a", "b"))
        if not b or a == b:
            continue
        change = 100 * (a - b) / b
        way = "increased" if change > 0 else "decreased"
        label = m["label"].strip().rstrip(",")
        return f"{label} {way} by {abs(change):.1f} % from {m['b']} to {m['a']}."
    return None


_NOT_NAMES = frozenset(
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Sept",
        "Oct",
        "Nov",
        "Dec",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ]
)


def proper_names(texts: Sequence[str]) -> list[str]:
    """Words the corpus writes capitalized inside sentences at least three times and in
    lower case at most a tenth as often: names, not words that start a sentence (nor
    months: dates are figures)."""
    capital: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for text in texts:
        capital.update(w for w in named_words(text) if w.isalnum() or "-" in w)
        lower.update(re.findall(r"\b[a-z][a-z-]{2,}\b", text))
    return sorted(
        w
        for w, k in capital.items()
        if k >= 3 and len(w) > 2 and lower[w.lower()] * 10 <= k and w not in _NOT_NAMES
    )
