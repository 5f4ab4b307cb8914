"""What kind of answer a question expects, and whether a sentence can be one.

Classic question answering types the expected answer before looking for it (Moldovan et al.,
2000; Li & Roth, 2002). We type only what can be checked without a model and rarely misfires: a
question asking for an amount ("how many", "what share", "by how many dollars") needs a number the
question does not already hold, and in the unit it asks for. A passage about the right topic but
without the figure does not answer it, however close its wording: this is what lets citeqa decline
"How many Tomahawks could the Pentagon spare?" when the articles discuss Tomahawks but give no count.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_AMOUNT = re.compile(
    r"\bhow (many|much|far|big|large|high)\b"
    r"|\b(what|which)\b[^?]*\b(number|numeric|percentage|proportion|share|amount|population|range|distance|"
    r"size|price|cost|total|figure)\b",
    re.IGNORECASE)
# "How much does he care?" asks for a degree, not an amount: a verb right after "how much" says so.
_DEGREE = re.compile(r"\bhow much (do|does|did|is|are|was|were|has|have|had|can|could|will|would|should)\b",
                     re.IGNORECASE)
_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds "
    "thousand thousands million millions billion billions trillion dozen dozens half third thirds "
    "quarter quarters twice double triple single"
).split()
_NUMBER = re.compile(r"\d[\d,.]*|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
# Units and measures a question may ask the amount in, with the words that express them in an answer.
_MONEY = ("$", "€", "£", "dollar", "euro", "pound", "rouble", "ruble", "hryvnia", "usd", "eur", "gbp")
_LENGTH = ("km", "kilomet", "mile", "metre", "meter")
_FRACTION = ("%", "percent", "per cent", "half", "third", "quarter", "fifth", "tenth")
UNITS: dict[str, tuple[str, ...]] = {
    "dollar": ("$", "dollar", "usd"),
    "euro": ("€", "euro", "eur"),
    "pound": ("£", "pound", "gbp"),
    "rouble": ("rouble", "ruble", "rub"),
    "hryvnia": ("hryvnia", "uah", "₴"),
    "kilomet": ("km", "kilomet"),
    "mile": ("mile",),
    "metre": ("metre", "meter"),
    "percent": ("%", "percent", "per cent"),
    "tonne": ("tonne", "ton"),
    "population": ("population", "resident", "inhabitant", "people", "live"),
    "percentage": _FRACTION,
    "proportion": _FRACTION,
    "share": _FRACTION,
    "range": _LENGTH,
    "distance": _LENGTH,
    "price": _MONEY,
    "cost": _MONEY,
}


_YEAR = re.compile(r"(1[89]|20)\d\d")


def asks_amount(question: str) -> bool:
    return bool(_AMOUNT.search(question)) and not _DEGREE.search(question)


def units_asked(question: str) -> list[str]:
    """The units and measures the question names ("in kilometres", "what share")."""
    words = re.findall(r"[a-z]+", question.lower())
    return [unit for unit in UNITS if any(w.startswith(unit) for w in words)]


def numbers(text: str) -> set[str]:
    """The amounts a text states; a bare year is a date, not an amount."""
    found = {m.group(0).lower().rstrip(",.") for m in _NUMBER.finditer(text)}
    return {n for n in found if not _YEAR.fullmatch(n)}


# "Which environment variable ...": the answer names one, in the capitals environment variables are
# written in (PAGER, _CLICK_COMPLETE, {PROG_NAME}_COMPLETE).
_ASKS_VARIABLE = re.compile(r"\b(what|which)\b[^?]*\benvironment variables?\b", re.IGNORECASE)
_VARIABLE = re.compile(r"(?<![\w])[_{]?[A-Z][A-Z0-9]*(?:[_{}][A-Z0-9_{}]*)?(?![\w])")


def names_variable(sentence: str) -> bool:
    """Whether a sentence names an environment variable: capitals, four or more, or joined by "_"
    (PAGER, NO_COLOR), so that acronyms such as "API" do not count."""
    return any(len(m.group(0)) >= 4 or "_" in m.group(0) for m in _VARIABLE.finditer(sentence))


# "When did ...": the answer gives a time (a year, a month, a day, or a span counted from now).
_ASKS_DATE = re.compile(r"^\s*(when|in (what|which) (year|month))\b(?! I\b| you\b| we\b)", re.IGNORECASE)
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_DAYS = "monday tuesday wednesday thursday friday saturday sunday yesterday today tomorrow tonight".split()
_SEASONS = "week|month|year|decade|spring|summer|autumn|fall|winter"
_DATE = re.compile(r"\b(1[89]|20)\d\d\b|\b(" + "|".join(_MONTHS + _DAYS) + r")\b|\bago\b"
                   r"|\b(last|next|this|past|coming) (" + _SEASONS + r")\b"
                   r"|\b\d{1,2}(st|nd|rd|th)?\b[^.]{0,3}\b(century|centuries)\b", re.IGNORECASE)


def gives_date(sentence: str) -> bool:
    return bool(_DATE.search(sentence))


def answer_check(question: str) -> Callable[[str], bool]:
    """A test of sentences for `question`, its type worked out once: False when the question asks for
    an amount and the sentence gives none (in the unit asked), or for an environment variable and the
    sentence names none, or for a date and the sentence gives no time."""
    if _ASKS_VARIABLE.search(question):
        return names_variable
    if _ASKS_DATE.search(question):
        return gives_date
    if not asks_amount(question):
        return lambda sentence: True
    known, units = numbers(question), [UNITS[u] for u in units_asked(question)]

    def gives_amount(sentence: str) -> bool:
        if not numbers(sentence) - known:
            return False
        lowered = sentence.lower()
        return all(any(form in lowered for form in forms) for forms in units)

    return gives_amount


def can_answer(question: str, sentence: str) -> bool:
    return answer_check(question)(sentence)
