"""Contact details of professionals and coordinators: shapes that leave no room for a note.

The name, e-mail address and phone number are the only free-form values in a
signal, and they are shown to every match partner. Each is held to what such a
value looks like in the Netherlands, so that a sentence about the case
("Anna de Wit vermoedt mishandeling door stiefvader") does not fit.

Name (``person_name``), after Unicode NFC normalisation, with runs of spaces
(any space separator, such as a no-break space) made one space and the ends trimmed:

- at most 100 characters;
- characters: Latin-script letters with their diacritics (Basic Latin, Latin-1,
  Latin Extended-A and -B and Latin Extended Additional, cased letters only: é,
  ł, ş, the Turkish dotted and dotless i, ß, ð, ễ ...), up to two combining
  accents after a letter, the space, the hyphen, the apostrophe (' and U+2019)
  and the dot. Refused: control and formatting characters (zero-width joiners,
  direction overrides, soft hyphens), line and paragraph separators, digits,
  other punctuation, symbols, emoji, and letters of other scripts (so no
  Cyrillic or Greek look-alikes, and no uncased script that would escape the
  capital rule below). Names of Moroccan, Turkish, Surinamese, Polish ...
  descent are written in Latin letters in Dutch records;
- at most 6 words, besides at most three tussenvoegsels (below), at most two
  leading titles (dr., drs., mr., ir., ing., prof., ...) and a trailing jr./sr.
  ("Johannes Petrus Maria van den Heuvel"); a word is at most 30 characters;
- a word is a name (``Anna``), up to three hyphen-joined names (``Berg-de``,
  ``El-Amrani``, ``Tjon-A-Fong``), an abbreviation with a dot of at most four
  letters (``A.``, ``Th.``, ``Chr.``) or initials (``A.M.``, ``Th.J.``, ``v.d.``).
  A name has at most one apostrophe inside it (``O'Brien``, ``Ma'roef``), or
  starts with an elided ``d'``/``l'`` (``d'Ancona``) or is ``'t``/``'s``;
- every part starts with a capital letter, except the tussenvoegsels and
  particles of the BRP table of voorvoegsels (van, de, der, den, het, 't, ten,
  ter, te, in, op, uit, von, la, le, du, da, di, dos, el, al, ben, bin, ...);
- the last word starts with a capital: not a lowercase tussenvoegsel (a name ends
  with a name; "Minh Le" and "Anna Do" are names, "Anna de" is not).

So a lowercase sentence fails on its first lowercase word, and a long one on the
word count. What still fits is a handful of capitalised words: a name field can
never be made fully proof against someone who means to abuse it, but it no
longer takes an honest note typed into the wrong box.

E-mail (``email_address``): ASCII, at most 254 characters; a local part of at
most 64 characters (RFC 5321) of letters, digits and ``.`` ``_`` ``+`` ``-``, in
at most 6 pieces between those marks, no dot at either end or twice in a row; a
domain of at most five LDH labels ending in an alphabetic top-level domain.

Phone (``phone_number``): at most 20 characters; digits in groups separated by a
single space or hyphen, one optional group in parentheses (``+31 (0)10 ...``,
``(010) 123 45 67``), a leading ``+``; 8 to 16 digits; a number starts with ``+``
or ``0``, as every Dutch or international number is written (so a bare nine-digit
number, such as a BSN, is not a phone number).

Every refusal is an ``InputError`` naming the field, never repeating the value.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from vir.domain.errors import InputError

MAX_NAME_CHARS = 100
MAX_NAME_WORDS = 6
# Tussenvoegsels are not counted as words ("Johannes Petrus Maria van den Heuvel": six
# words and two tussenvoegsels); the BRP's longest run of them is three ("van de la").
MAX_PARTICLES = 3
MAX_WORD_CHARS = 30
MAX_TITLES = 2
MAX_MARKS = 2

# Lowercase is allowed for these (compared in lowercase, with U+2019 as '): the single words of
# the BRP table of voorvoegsels (Tabel 36), and particles of names common in the
# Netherlands that it does not list (ibn, bint, y, e).
PARTICLES = frozenset(
    (
        *("a", "aan", "af", "al", "am", "auf", "aus", "ben", "bij", "bin", "bint", "boven"),
        *("d", "d'", "da", "dal", "dalla", "das", "de", "degli", "dei", "del", "della"),
        *("den", "der", "des", "di", "die", "do", "don", "dos", "du", "e", "el", "het"),
        *("ibn", "in", "l", "l'", "la", "las", "le", "les", "lo", "los", "op", "over"),
        *("s", "'s", "t", "'t", "te", "ten", "ter", "tho", "thoe", "thor", "to", "toe"),
        *("tot", "uijt", "uit", "unter", "van", "vanden", "vander", "vd", "v.", "v.d."),
        *("ver", "vom", "von", "voor", "vor", "y", "zu", "zum", "zur"),
    )
)
# Titles before a name and the generation after it: not counted as words, any case.
TITLES = frozenset(
    ("dr.", "drs.", "mr.", "ir.", "ing.", "prof.", "bc.", "ds.", "dhr.", "mw.", "mevr.")
)
SUFFIXES = frozenset(("jr.", "sr."))

# Latin-script blocks: Basic Latin, Latin-1 Supplement, Latin Extended-A and -B,
# Latin Extended Additional. IPA, phonetic, fullwidth and mathematical Latin are out.
_LATIN_BLOCKS = ((0x0041, 0x024F), (0x1E00, 0x1EFF))
_CASED = frozenset(("Lu", "Ll", "Lt"))
# Combining diacritical marks, less the invisible grapheme joiner (U+034F) and the
# combining Latin small letters (U+0363-U+036F), which would write text above a name.
_MARKS = ((0x0300, 0x034E), (0x0350, 0x0362))
RIGHT_QUOTE = "\u2019"  # the typographic apostrophe, as in O\u2019Brien
_APOSTROPHES = "'" + RIGHT_QUOTE
_PUNCTUATION = frozenset("-." + _APOSTROPHES)
_INVISIBLE = frozenset(("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"))

# A word's skeleton: every letter (with its accents) as A (capital) or a (other), U+2019 as '.
_PART = r"(?:'a|[Aa]{1,4}\.|[Aa]+(?:'[Aa]+)?)"
_WORD = re.compile(rf"(?:[Aa]{{1,3}}\.){{2,5}}|{_PART}(?:-{_PART}){{0,2}}")

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*")
_EMAIL_PIECES = re.compile(r"[._+\-]")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?")
_TLD = re.compile(r"[A-Za-z]{2,24}")
MAX_EMAIL_CHARS = 254
MAX_EMAIL_LOCAL = 64
MAX_EMAIL_PIECES = 6
MAX_DOMAIN_LABELS = 5

_PHONE = re.compile(r"\+?(?:[0-9]+|\([0-9]+\))(?:(?:[ \-]|(?<=\)))(?:[0-9]+|\([0-9]+\)))*")
MAX_PHONE_CHARS = 20
PHONE_DIGITS = (8, 16)

_NAME_CHARACTERS = (
    "a name holds only Latin letters (also with accents), spaces, hyphens, apostrophes and dots"
)


def _in(ranges: tuple[tuple[int, int], ...], char: str) -> bool:
    return any(low <= ord(char) <= high for low, high in ranges)


# What a character is, looked up once per character and then remembered: a name of a
# dozen letters asked Unicode's tables (a character's name, above all) dozens of times.
# Bounded: the characters a name may hold are a few hundred; text that is no name may
# bring thousands, and is refused at its first.
_CHARACTERS_REMEMBERED = 4096


@functools.lru_cache(maxsize=_CHARACTERS_REMEMBERED)
def is_name_letter(char: str) -> bool:
    """A cased letter of the Latin script (with or without a precomposed accent)."""
    return (
        unicodedata.category(char) in _CASED
        and _in(_LATIN_BLOCKS, char)
        and unicodedata.name(char, "").startswith("LATIN ")
    )


@functools.lru_cache(maxsize=_CHARACTERS_REMEMBERED)
def is_name_mark(char: str) -> bool:
    """A combining accent that may follow a letter of a name."""
    return unicodedata.category(char) == "Mn" and _in(_MARKS, char)


def _clean(text: str, field: str) -> str:
    """NFC, spaces made one, ends trimmed; refuses anything but the allowed characters."""
    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    marks = 0
    for char in text:
        category = unicodedata.category(char)
        if category in _INVISIBLE:
            raise InputError(field, "a name holds no control or invisible formatting characters")
        if category == "Zs":
            if out and out[-1] != " ":
                out.append(" ")
            marks = 0
            continue
        if is_name_mark(char):
            marks += 1
            if not out or marks > MAX_MARKS or not is_name_letter(_base(out)):
                raise InputError(field, "an accent in a name belongs on a letter")
            out.append(char)
            continue
        if not (is_name_letter(char) or char in _PUNCTUATION):
            raise InputError(field, _NAME_CHARACTERS)
        marks = 0
        out.append(char)
    return "".join(out).strip(" ")


def _base(chars: list[str]) -> str:
    """The last character that is not a combining mark."""
    for char in reversed(chars):
        if not is_name_mark(char):
            return char
    return ""


def _skeleton(word: str) -> str:
    shape = []
    for char in word:
        if is_name_mark(char):
            continue
        if char in _APOSTROPHES:
            shape.append("'")
        elif is_name_letter(char):
            shape.append("A" if unicodedata.category(char) in ("Lu", "Lt") else "a")
        else:
            shape.append(char)
    return "".join(shape)


def _folded(text: str) -> str:
    return text.lower().replace(RIGHT_QUOTE, "'")


def _capitalised(part: str) -> bool:
    """A hyphen-separated part of a word: a particle, or it starts with a capital (after
    an elided d' or l', as in d'Ancona)."""
    if _folded(part) in PARTICLES:
        return True
    return _starts_capital(part)


def _starts_capital(part: str) -> bool:
    letters = [c for c in part if not is_name_mark(c)]
    if len(letters) > 2 and _folded("".join(letters[:2])) in ("d'", "l'"):
        letters = letters[2:]
    return unicodedata.category(letters[0]) in ("Lu", "Lt")


def _initials_ok(word: str) -> bool:
    """Initials (A.M., Th.J.) each start with a capital; lowercase only as a particle (v.d.)."""
    if _folded(word) in PARTICLES:
        return True
    return all(unicodedata.category(group[0]) in ("Lu", "Lt") for group in word.split(".") if group)


# The names last accepted, and what they normalise to: a back office registers many
# signals for each of its professionals. A refused name is not remembered (the error
# is raised again each time).
_NAMES_REMEMBERED = 1024


@functools.lru_cache(maxsize=_NAMES_REMEMBERED)
def person_name(text: str, field: str = "name") -> str:
    """The name of a professional or coordinator, normalised; see the module docstring."""
    name = _clean(text, field)
    if not name:
        raise InputError(field, "a name is required")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(field, f"a name has at most {MAX_NAME_CHARS} characters")
    words = name.split(" ")
    titles = 0
    while titles < len(words) - 1 and _folded(words[titles]) in TITLES:
        titles += 1
    if titles > MAX_TITLES:
        raise InputError(field, f"a name has at most {MAX_TITLES} titles")
    words = words[titles:]
    if len(words) > 1 and _folded(words[-1]) in SUFFIXES:
        words = words[:-1]
    particles = sum(_folded(word) in PARTICLES for word in words)
    if len(words) - particles > MAX_NAME_WORDS:
        raise InputError(field, f"a name has at most {MAX_NAME_WORDS} words besides tussenvoegsels")
    if particles > MAX_PARTICLES:
        raise InputError(field, f"a name has at most {MAX_PARTICLES} tussenvoegsels")
    for word in words:
        if len(word) > MAX_WORD_CHARS:
            raise InputError(field, f"a word of a name has at most {MAX_WORD_CHARS} characters")
        shape = _skeleton(word)
        if not _WORD.fullmatch(shape):
            raise InputError(
                field,
                "not shaped like a name: hyphens, apostrophes and dots go between or after "
                "letters, a dot only after initials or a short abbreviation",
            )
        initials = "-" not in shape and shape.count(".") >= 2
        ok = _initials_ok(word) if initials else all(_capitalised(p) for p in word.split("-"))
        if not ok:
            raise InputError(
                field,
                "each part of a name starts with a capital letter, except tussenvoegsels "
                "such as van, de, der, 't",
            )
    if not _starts_capital(words[-1].split("-")[-1]):
        # "Anna de" is no name; "Minh Le" and "Anna Do" are: a capitalised last word.
        raise InputError(field, "a name ends with a capitalised name, not a tussenvoegsel")
    return name


def email_address(text: str, field: str = "email") -> str:
    """An e-mail address with no room for a sentence; see the module docstring."""
    if not text.isascii() or len(text) > MAX_EMAIL_CHARS or text.count("@") != 1:
        raise InputError(field, "not an e-mail address")
    local, domain = text.split("@")
    if not local or len(local) > MAX_EMAIL_LOCAL or not _EMAIL_LOCAL.fullmatch(local):
        raise InputError(
            field,
            f"the part before @ has 1 to {MAX_EMAIL_LOCAL} letters, digits, dots, "
            "underscores, plus signs or hyphens",
        )
    if len([p for p in _EMAIL_PIECES.split(local) if p]) > MAX_EMAIL_PIECES:
        raise InputError(
            field, f"the part before @ has at most {MAX_EMAIL_PIECES} pieces between marks"
        )
    labels = domain.split(".")
    if (
        not 2 <= len(labels) <= MAX_DOMAIN_LABELS
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        or not _TLD.fullmatch(labels[-1])
    ):
        raise InputError(field, "the part after @ is not a domain name")
    return text


def phone_number(text: str, field: str = "phone") -> str:
    """A phone number: digits, groups, a leading + or 0; see the module docstring."""
    if len(text) > MAX_PHONE_CHARS or not _PHONE.fullmatch(text) or text.count("(") > 1:
        raise InputError(
            field,
            f"a phone number has at most {MAX_PHONE_CHARS} characters: digits, single spaces "
            "or hyphens between groups, one group in parentheses, a leading +",
        )
    digits = [c for c in text if c.isdigit()]
    low, high = PHONE_DIGITS
    if not low <= len(digits) <= high:
        raise InputError(field, f"a phone number has {low} to {high} digits")
    if not (text.startswith("+") or digits[0] == "0"):
        raise InputError(field, "a phone number starts with + or 0")
    if text.startswith("+") and digits[0] == "0":
        raise InputError(field, "a country code does not start with 0")
    return text
