"""A pure-Python re-implementation of the Stanford CoreNLP 3.4.1 PTB lexer (as used by pycocoevalcap).

The jar's lexer is a JFlex scanner: at every position the longest match over all rules wins, the rule
listed first wins ties, rules may carry a *trailing context* (``r1/r2``: ``r2`` must follow but is not
consumed) and actions may push characters back.  This module reproduces that machinery with Python
regular expressions written from the documented behaviour of ``PTBLexer`` (checked against the jar as an
oracle, see ``tests/test_tokenize_*.py``), with the options pycocoevalcap runs it with
(``-preserveLines -lowerCase``, i.e. the 3.4.1 defaults plus ``tokenizeNLs``).

Text is first mapped to a *class string*: ASCII stays itself and every other character is replaced by a
representative of its lexer character class (``_ptb_tables.py``), so the rules below only ever see a small
alphabet.  Token text is always cut from the original string.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from ._ptb_tables import RANGES, SINGLES

# --------------------------------------------------------------------------------------------------
# Character classes
# --------------------------------------------------------------------------------------------------

_starts: list[int] = []
_ends: list[int] = []
_reps: list[str] = []
for _rep, _items in RANGES.items():
    for _it in _items:
        _a, _b = _it if isinstance(_it, tuple) else (_it, _it)
        _starts.append(_a)
        _ends.append(_b)
        _reps.append(_rep)
_order = sorted(range(len(_starts)), key=_starts.__getitem__)
_starts = [_starts[i] for i in _order]
_ends = [_ends[i] for i in _order]
_reps = [_reps[i] for i in _order]
_SINGLES = frozenset(SINGLES)
del _order


def _class_of(ch: str) -> str:
    cp = ord(ch)
    if cp < 0x80:
        return ch
    if cp in _SINGLES:
        return ch
    i = bisect_right(_starts, cp) - 1
    if i >= 0 and cp <= _ends[i]:
        return _reps[i]
    return "\x01"


class _ClassMap(dict):
    """``str.translate`` table that fills itself in on first use of each character."""

    def __missing__(self, cp: int) -> str:
        rep = _class_of(chr(cp))
        self[cp] = rep
        return rep


_CLASS_MAP = _ClassMap()


def class_string(text: str) -> str:
    """Map ``text`` (UTF-16 code units; see ``to_utf16_units``) onto the lexer's class alphabet."""
    if text.isascii():
        return text
    return text.translate(_CLASS_MAP)


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def to_utf16_units(text: str) -> str:
    """Split characters outside the BMP into surrogate pairs, as Java (and the JFlex lexer) sees them.

    A lone surrogate in the input (possible in a Python string, impossible in the UTF-8 file the jar
    reads) becomes U+FFFD, which is what the jar's UTF-8 decoder makes of its bytes."""
    if text.isascii():
        return text
    if _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub("\ufffd", text)
    if not _ASTRAL.search(text):
        return text
    return _ASTRAL.sub(lambda m: _pair(m.group()), text)


def _pair(ch: str) -> str:
    cp = ord(ch) - 0x10000
    return chr(0xD800 + (cp >> 10)) + chr(0xDC00 + (cp & 0x3FF))


def from_utf16_units(token: str) -> str:
    """Re-join surrogate pairs (inverse of ``to_utf16_units``); a surrogate left unpaired becomes "?", as
    Java's UTF-8 encoder writes it."""
    if token.isascii():
        return token
    token = token.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _LONE_SURROGATE.sub("?", token) if _LONE_SURROGATE.search(token) else token


# Representatives used in the rules (see _ptb_tables.py).
LO = "\u00e0"  # lower-case and other non-upper letters
UP = "\u00c0"  # upper-case letters
MK = "\u0300"  # marks PTBLexer treats as letters
XD = "\u0660"  # non-ASCII digits
ARS = "\u066b"  # Arabic decimal/thousands separator
SUPS = "\u207a"  # super/subscript plus/minus
SUP = "\u00b2"  # superscript digits
SUB = "\u2080"  # subscript digits
FR2 = "\u00bd"  # vulgar fractions
CUR = "\u00a3"  # currency signs
CIRC = "\u24b6"  # circled capitals
ROM = "\u2160"  # capital Roman numerals
DASH = "\u2014"  # en/em dash
USP = "\u2000"  # Unicode spaces
RSQ = "\u2019"  # right single quote / apostrophe
LSQ = "\u2018"  # left single quote
QT = "\u201c"  # other quotes
HYU = "\u2010"  # Unicode hyphens
NBSP = "\u00a0"
SHY = "\u00ad"
FSL = "\u2044"
ELL = "\u2026"
ICM = "\u3001"
NEL = "\u0085"
LONG_S = "\u017f"
DOTLESS_I = "\u0131"
DOTTED_I = "\u0130"
KELVIN = "\u212a"

# JFlex %caseless: a literal letter also matches its other case and the characters whose upper- or
# lower-case form it is (s: \u017f, k: \u212a, i: \u0131 \u0130).  Python's IGNORECASE does exactly
# that for ASCII letters; it is only ever applied to literals here, never to character classes (which
# JFlex leaves case-sensitive).


def ci(lit: str) -> str:
    """Regex for a caseless JFlex literal."""
    return "(?i:" + re.escape(lit) + ")"


def alt(*items: str) -> str:
    return "(?:" + "|".join(items) + ")"


def ci_alt(words: str) -> str:
    """Caseless alternation of ``|``-separated words; ``[X]`` marks a case-sensitive first letter."""
    plain = sorted((w for w in words.split("|") if not w.startswith("[")), key=len, reverse=True)
    parts = ["(?i:" + "|".join(re.escape(w) for w in plain) + ")"] if plain else []
    parts += [w[:3] + ci(w[3:]) for w in words.split("|") if w.startswith("[")]
    return alt(*parts)


# Sets (contents of [...]).
L_JF = "A-Za-z" + LO + UP + LONG_S + DOTLESS_I + DOTTED_I + KELVIN  # [:letter:]
U_JF = "A-Z" + UP + DOTTED_I + KELVIN + ROM + CIRC  # [:uppercase:]
D_JF = "0-9" + XD  # [:digit:] (+ NKo digits)
SPACE_C = " \t" + NBSP + USP
NL_C = "\r\n\x0b\x0c" + NEL

SPACE = f"[{SPACE_C}]"
SPACES = f"[{SPACE_C}]+"
NEWLINE = f"(?:\\r\\n|[{NL_C}])"
SPACENL = f"(?:[{SPACE_C}]|{NEWLINE})"
SPACENLS = f"{SPACENL}+"
DIGIT = f"[{D_JF}]"

SPLET = "&[aeiouAEIOU]" + alt(ci("acute"), ci("grave"), ci("uml")) + ";"
LETTER = alt(f"[{L_JF}{SHY}{MK}]", SPLET)
WORD = f"{LETTER}(?:{LETTER}|{DIGIT})*(?:[.!?]{LETTER}(?:{LETTER}|{DIGIT})*)*"

_NAME = r"[A-Za-z][A-Za-z0-9_:.\-]*"
SGML = (
    r"<(?:[!?][A-Za-z\-][^>\r\n]*"
    rf"|{_NAME}(?:[ ]+{_NAME}(?:[ ]*=[ ]*(?:'[^'\r\n]*'|\"[^\"\r\n]*\"))?)*[ ]*\/?"
    rf"|\/{_NAME})[ ]*>"
)
SPMDASH = alt("&" + ci_alt("MD|mdash|ndash") + ";", DASH)
SPAMP = ci("&amp;")
SPPUNC = "&" + alt(ci_alt("HT|TL|UR|LR|QC|QL|QR|odq|cdq"), "#[0-9]+") + ";"
SENTEND = f"{SPACENL}(?:{SPACENL}|[{U_JF}]|{SGML})"
DATE = f"{DIGIT}{{1,2}}[\\-\\/]{DIGIT}{{1,2}}[\\-\\/]{DIGIT}{{2,4}}"
NUM = f"(?:{DIGIT}*(?:[.:,{SHY}{ARS}]{DIGIT}+)+|{DIGIT}+)"
NUMBER = f"[\\-+]?{NUM}"
SUBSUPNUM = f"[{SUPS}]?(?:[{SUP}]+|[{SUB}]+)"
FRAC = f"(?:{DIGIT}{{1,4}}[- {NBSP}])?{DIGIT}{{1,4}}(?:\\\\?\\/|{FSL}){DIGIT}{{1,4}}"
DOLSIGN = r"(?:[A-Z]*\$|#)"
APOS = alt(f"['{RSQ}]", ci("&apos;"))
APOSETCETERA = alt(APOS, f"[`{LSQ}]")
HYPHEN = f"[-_{HYU}]"
ALNUM = f"[{L_JF}{D_JF}]"
THING = (
    f"(?:[dDoOlL]{APOSETCETERA}{ALNUM})?{ALNUM}+"
    f"(?:{HYPHEN}(?:[dDoOlL]{APOSETCETERA}{ALNUM})?{ALNUM}+)*"
)
THINGA = f"[A-Z]+(?:(?:{SPAMP}|[+&])[A-Z]+)+"
THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
ACRO_CORE_ALTS = [
    ci("U.S.-") + alt(ci("U.S.S.R"), ci("U.K")),
    alt(*[ci(w) for w in ("Canada", "Sino", "Korean", "EU", "Japan", "non")]) + "-" + ci("U.S"),
    "[A-Za-z](?:\\.[A-Za-z])+",
]
ACRO_CORE = alt(*ACRO_CORE_ALTS)
ACRO_ALTS = ACRO_CORE_ALTS + ["[A-Za-z]"]  # one letter allowed (ACRONYM)
HTHING = f"[A-Za-z0-9][A-Za-z0-9.,{SHY}]*(?:-(?:{ACRO_CORE}\\.|[A-Za-z0-9{SHY}]+))+"
REDAUX = APOS + alt("[msdMSD]", ci("re"), ci("ve"), ci("ll"))
SWORD = f"[A-Za-z{SHY}]*[A-MO-Za-mo-z]{SHY}*"
SREDAUX = ci("n") + APOSETCETERA + ci("t")
APOWORD = [
    f"{APOS}{ci('n')}{APOS}?",
    f"[lLdDjJ]{APOS}",
    ci("Dunkin") + APOS,
    ci("somethin") + APOS,
    ci("ol") + APOS,
    APOS + ci("em"),
    f"[A-HJ-XZn]{APOSETCETERA}[{L_JF}]{{2}}[{L_JF}]*",
    f"{APOS}[2-9]0{ci('s')}",
    APOS + ci("til") + ci("l") + "?",
    f"[{L_JF}]+[aeiouyAEIOUY]{APOSETCETERA}[aeiouA-Z][{L_JF}]*",
    APOS + ci("cause"),
    ci("cont'd") + "\\.?",
    ci("nor'easter"),
    ci("c'mon"),
    ci("e'er"),
    ci("s'mores"),
    ci("ev'ry"),
    ci("li'l"),
    ci("nat'l"),
    ci("o") + APOSETCETERA + ci("o"),
]
APOWORD2 = ci("y") + APOS
_URLX = ' \\t\\n\\f\\r"<>|()'
FULLURL = ci("http") + ci("s") + "?" + f":\\/\\/[^{_URLX}{{}}]+[^{_URLX}.!?{{}},-]"
LIKELYURL = (
    alt(
        ci("www") + f"\\.(?:[^{_URLX}.!?{{}},]+\\.)+[a-zA-Z]{{2,4}}",
        "(?:[^ \\t\\n\\f\\r\"`'<>|.!?(){},-_$]+\\.)+" + alt(ci("com"), ci("net"), ci("org"), ci("edu")),
    )
    + f"(?:\\/[^{_URLX}]+[^{_URLX}.!?{{}},-])?"
)
EMAIL = (
    alt("<", ci("&lt;")) + "?"
    + f"[a-zA-Z0-9][^{_URLX}{NBSP}{{}}]*@(?:[^{_URLX}{{}}.{NBSP}]+\\.)*[^{_URLX}{{}}.{NBSP}]+"
    + alt(">", ci("&gt;")) + "?"
)
FILENAME_EXT = ci_alt(
    "bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png|"
    "ppt|ps|py|sql|tar|txt|wav|x|xml|zip"
)
FILENAME = f"(?:{LETTER}|{DIGIT})+(?:\\.(?:{LETTER}|{DIGIT})+)*\\.{FILENAME_EXT}"
TWITTER = alt("@[a-zA-Z_][a-zA-Z_0-9]*", "#" + LETTER + "+")

# Abbreviation lists of 3.4.1 (caseless; "[X]" = case-sensitive first letter).
ABBREV1_WORDS = (
    "al|co|ct|ga|jr|ky|md|mo|rd|rt|sq|sr|va|vt|ala|apr|aug|bhd|cos|dak|dec|esq|est|etc|ext|feb|fla|fri|inc|"
    "ind|jan|jul|jun|kan|ltd|mar|mon|neb|nev|nov|oct|plc|sep|seq|sys|tel|thu|tue|wed|wis|wyo|ariz|assn|bldg|"
    "blvd|bros|colo|conn|corp|intl|kans|mich|minn|mont|okla|penn|sept|tenn|tues|univ|wisc|thurs|calif|"
    "bancorp|[A]z|[L]a|[P]a|[A]rk|[D]el|[I]ll|[O]re|[T]ex|[M]ass|[M]iss|[W]ash"
)
ABBREV1 = [
    ci_alt(ABBREV1_WORDS) + "\\.",
    ci("p") + ci("p") + "?" + ci("t") + "[ye]" + ci("s") + "?\\.",
    alt(ci("Ed"), ci("Ph")) + "\\." + ci("D") + "\\.",
]
ABBREV4_WORDS = (
    "cf|dr|ft|lt|mr|ms|mt|ph|st|vs|wm|adj|adm|adv|ave|cie|col|cpl|det|drs|ens|gen|gov|hon|jos|maj|mme|mrs|"
    "pfc|pvt|rep|rev|sen|sfc|sgt|spc|ste|alex|asst|atty|brig|capt|cmdr|dept|elec|govs|insp|invt|mlle|msgr|"
    "natl|pres|prof|reps|sens|supt|messrs|lieut|comdr|supts|attys|profs|treas|assoc|[M]iss"
)
ABBREV4_ALTS = ACRO_CORE_ALTS + [ci("a.k.a"), ci_alt(ABBREV4_WORDS), ci("m") + "[ft]" + ci("g"), "[A-Za-z]"]
ABBREV2 = [a + "\\." for a in ABBREV4_ALTS]
ACRONYM = [a + "\\." for a in ACRO_ALTS]
ABBREV3 = ci_alt("ca|fig|figs|prop|no|nos|art|pp|op") + "\\."
_FOLLOW = (
    "[A]bout|[A]ccording|[A]dditionally|[A]fter|[A]n|[A]|[A]s|[A]t|[B]ut|[E]arlier|[H]e|[H]er|[H]ere|"
    "[H]owever|[I]f|[I]n|[I]t|[L]ast|[M]any|[M]ore|[N]ow|[O]nce|[O]ne|[O]ther|[O]ur|[S]he|[S]ince|[S]o|"
    "[S]ome|[S]uch|[T]hat|[T]he|[T]heir|[T]hen|[T]here|[T]hese|[T]hey|[T]his|[W]e|[W]hen|[W]hile|[W]hat|"
    "[Y]et|[Y]ou"
)
ACRONYM_FOLLOW = alt(ci_alt(_FOLLOW), "M" + ci("r") + "\\.", "M" + ci("s") + "\\.", SGML)

PHONE = alt(
    f"(?:\\([0-9]{{2,3}}\\)[ {NBSP}]?|(?:\\+\\+?)?(?:[0-9]{{2,4}}[\\- {NBSP}])?[0-9]{{2,4}}[\\- {NBSP}])"
    f"[0-9]{{3,4}}[\\- {NBSP}]?[0-9]{{3,5}}",
    "(?:(?:\\+\\+?)?[0-9]{2,4}\\.)?[0-9]{2,4}\\.[0-9]{3,4}\\.[0-9]{3,5}",
)
LDOTS = ["\\.{3,5}", f"(?:\\.[ {NBSP}]){{2,4}}\\.", f"[{NEL}{ELL}]"]
FNMARKS = alt("@+", "#+", "_+")
ASTS = alt("\\*+", "(?:\\\\\\*){1,3}")
INSENTP = f"[,;:{ICM}]"
QUOTES = [APOS, "''", f"[`{LSQ}{RSQ}{QT}]{{1,2}}"]
DBLQUOT = alt('"', ci("&quot;"))
TBSPEC = alt(
    "-" + ci_alt("RRB|LRB|RCB|LCB|RSB|LSB") + "-",
    ci("C.D.s"),
    ci("pro-"),
    ci("anti-"),
    ci("S") + alt("&", SPAMP) + ci("P-500"),
    ci("S") + alt("&", SPAMP) + ci("Ls"),
    ci("Cap") + APOS + ci("n"),
    ci("c") + APOS + ci("est"),
)
TBSPEC2 = APOS + "[0-9][0-9]"
SMILEY = r"[<>]?[:;=][\-o\*']?[\(\)DPdpO\\{@\|\[\]]"
ASIANSMILEY = alt(
    r"[\^x=~<>]\.\[\^x=~<>]",
    r"[\-\^x=~<>']_[\-\^x=~<>']",
    r"\([\-\^x=~<>'][_.]?[\-\^x=~<>']\)",
    r"\([\^x=~<>']-[\^x=~<>'`]\)",
)
MISCSYMBOL = f"[+%&~^|\\\\{CIRC}{SUPS}{FSL}]"
PROG_LANGS = alt(ci("c++"), alt(ci("c"), ci("f")) + "#")

# --------------------------------------------------------------------------------------------------
# Rules, in the order of the specification (earlier wins ties).  Each: (name, r1, r2 or None, action).
# --------------------------------------------------------------------------------------------------
RULES: list[tuple[str, str | list[str], str | None, str]] = [
    ("PROG_LANGS", PROG_LANGS, None, "plain"),
    ("ASSIM3", alt(ci("cannot"), ci("'twas")), None, "assim3"),
    ("ASSIM2", alt(ci("'tis"), ci("gonna"), ci("gotta"), ci("lemme"), ci("gimme"), ci("wanna")), None, "assim2"),
    ("SGML", SGML, None, "sgml"),
    ("SPMDASH", SPMDASH, None, "dash"),
    ("SPAMP", SPAMP, None, "amp"),
    ("SPPUNC", SPPUNC, None, "plain"),
    ("WORD_REDAUX", WORD, REDAUX, "word"),
    ("SWORD_SREDAUX", SWORD, SREDAUX, "word"),
    ("WORD", WORD, None, "word"),
    ("APOWORD", APOWORD, None, "plain"),
    ("APOWORD2", APOWORD2, f"[{L_JF}]", "plain"),
    ("FULLURL", FULLURL, None, "plain"),
    ("LIKELYURL", LIKELYURL, None, "plain"),
    ("EMAIL", EMAIL, None, "plain"),
    ("TWITTER", TWITTER, None, "plain"),
    ("REDAUX_CTX", REDAUX, "[^A-Za-z]", "quote_r"),
    ("SREDAUX", SREDAUX, None, "quote_r"),
    ("DATE", DATE, None, "plain"),
    ("NUMBER", NUMBER, None, "word"),
    ("SUBSUPNUM", SUBSUPNUM, None, "plain"),
    ("FRAC", FRAC, None, "frac"),
    ("FRAC2", f"[{FR2}]", None, "frac2"),
    ("TBSPEC", TBSPEC, None, "amp"),
    ("THING3", THING3, None, "plain"),
    ("DOLSIGN", DOLSIGN, None, "plain"),
    ("DOLSIGN2", f"[{CUR}]", None, "currency"),
    ("ACRONYM_CTX", ACRONYM, f"{SPACENLS}{ACRONYM_FOLLOW}{SPACENL}", "acronym"),
    ("ABBREV3_CTX", ABBREV3, f"{SPACENL}?[{D_JF}]", "abbrev3"),
    ("PTY_LTD", alt(ci("pt") + "[eyEY]", ci("co")) + "\\.", SPACE + alt(ci("ltd"), ci("lim")), "plain"),
    ("ABBREV1_SENTEND", ABBREV1, SENTEND, "abbrev1"),
    ("ABBREV1_2", ABBREV1, "[\\s\\S][\\s\\S]", "plain"),
    ("ABBREV1", ABBREV1, None, "abbrev1"),
    ("ABBREV2", ABBREV2, None, "plain"),
    ("ABBREV4_SPACE", ABBREV4_ALTS, SPACE, "plain"),
    ("ACRO_SPACENL", ACRO_CORE, SPACENL, "plain"),
    ("TBSPEC2_SPACENL", TBSPEC2, SPACENL, "plain"),
    ("FILENAME", FILENAME, f"(?:{SPACENL}|[.?!,])", "plain"),
    ("WORD_DOT", WORD + "\\.", INSENTP, "word"),
    ("PHONE", PHONE, None, "phone"),
    ("DBLQUOT_L", DBLQUOT, "[A-Za-z0-9$]", "quote_l"),
    ("DBLQUOT", DBLQUOT, None, "quote_r"),
    ("DEL", "\x7f", None, "ignore"),
    ("LESSTHAN", alt("<", ci("&lt;")), None, "lt"),
    ("GREATERTHAN", alt(">", ci("&gt;")), None, "gt"),
    ("SMILEY_CTX", SMILEY, "[^A-Za-z0-9]", "smiley"),
    ("ASIANSMILEY", ASIANSMILEY, None, "smiley"),
    ("LCB", "\\{", None, "-LCB-"),
    ("RCB", "\\}", None, "-RCB-"),
    ("LSB", "\\[", None, "-LSB-"),
    ("RSB", "\\]", None, "-RSB-"),
    ("LRB", "\\(", None, "-LRB-"),
    ("RRB", "\\)", None, "-RRB-"),
    ("HYPHENS", "-+", None, "hyphens"),
    ("LDOTS", LDOTS, None, "ellipsis"),
    ("FNMARKS", FNMARKS, None, "plain"),
    ("ASTS", ASTS, None, "plain"),
    ("INSENTP", INSENTP, None, "plain"),
    ("QMARKS", "[?!]+", None, "plain"),
    ("PERIOD", "[.%]", None, "plain"),
    ("EQUALS", "=", None, "plain"),
    ("SLASH", "\\/", None, "plain"),
    ("HTHING_DOT", HTHING + "\\.", INSENTP, "word"),
    ("HTHING", HTHING, None, "word"),
    ("THING_DOT", THING + "\\.", INSENTP, "plain"),
    ("THING", THING, None, "plain"),
    ("THINGA_DOT", THINGA + "\\.", INSENTP, "amp"),
    ("THINGA", THINGA, None, "amp"),
    ("QUOTE_L", "'", f"[A-Za-z][^ \\t\\n\\r{NBSP}]", "quote_l"),
    ("REDAUX", REDAUX, None, "quote_r"),
    ("QUOTES", QUOTES, None, "quote_r"),
    ("FAKEDUCKFEET", alt("<<", ">>"), None, "plain"),
    ("MISCSYMBOL", MISCSYMBOL, None, "plain"),
    ("SPACES", alt("\x00", SPACES), None, "ignore"),
    ("NEWLINE", NEWLINE, None, "newline"),
    ("NBSP_ENTITY", ci("&nbsp;"), None, "ignore"),
    ("ANY", "[^\\n]", None, "ignore"),
]

# --------------------------------------------------------------------------------------------------
# First-character analysis (which rules can start with a given class character)
# --------------------------------------------------------------------------------------------------

try:  # Python >= 3.11
    from re import _compiler as _sre_compile  # type: ignore[attr-defined]
    from re import _constants as _sre_c  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_compile as _sre_compile  # type: ignore[no-redef]
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

ALPHABET = "".join(chr(c) for c in range(0x80)) + "".join(RANGES) + "".join(chr(c) for c in SINGLES)


def _in_set(items, ch: str) -> bool:
    cp = ord(ch)
    negate = False
    hit = False
    for op, av in items:
        if op is _sre_c.NEGATE:
            negate = True
        elif op is _sre_c.LITERAL:
            hit = hit or cp == av
        elif op is _sre_c.RANGE:
            hit = hit or av[0] <= cp <= av[1]
        elif op is _sre_c.CATEGORY:
            hit = hit or bool(re.match(f"[{_CAT[av]}]", ch))
        else:  # pragma: no cover
            raise ValueError(op)
    return hit != negate


_CAT = {
    _sre_c.CATEGORY_DIGIT: "\\d",
    _sre_c.CATEGORY_NOT_DIGIT: "\\D",
    _sre_c.CATEGORY_SPACE: "\\s",
    _sre_c.CATEGORY_NOT_SPACE: "\\S",
    _sre_c.CATEGORY_WORD: "\\w",
    _sre_c.CATEGORY_NOT_WORD: "\\W",
}


_ONE_CHAR = (_sre_c.LITERAL, _sre_c.NOT_LITERAL, _sre_c.ANY, _sre_c.IN)
_CHAR_SETS: dict[tuple, frozenset[str]] = {}  # what one single-character item matches, per item


def _char_set(op, av, icase: bool) -> frozenset[str]:
    """The alphabet characters a single-character item matches (items recur across rules: each is
    worked out once)."""
    key = (op, tuple(av) if op is _sre_c.IN else av, icase)
    chars = _CHAR_SETS.get(key)
    if chars is None:
        if op is _sre_c.LITERAL:
            if icase:
                lit = re.compile("(?i:" + re.escape(chr(av)) + ")")
                chars = frozenset(c for c in ALPHABET if lit.fullmatch(c))
            else:
                chars = frozenset(chr(av))
        elif op is _sre_c.NOT_LITERAL:
            chars = frozenset(c for c in ALPHABET if ord(c) != av)
        elif op is _sre_c.ANY:
            chars = frozenset(c for c in ALPHABET if c != "\n")
        else:
            if icase:  # pragma: no cover - caseless scopes only ever hold literals
                raise ValueError("character class inside a caseless group")
            chars = frozenset(c for c in ALPHABET if _in_set(av, c))
        _CHAR_SETS[key] = chars
    return chars


def _first(seq, icase: bool = False) -> tuple[set[str], bool]:
    """(possible first characters, can match empty) of a parsed sub-pattern."""
    chars: set[str] = set()
    for op, av in seq:
        f, nullable = _first_item(op, av, icase)
        chars |= f
        if not nullable:
            return chars, False
    return chars, True


def _first_item(op, av, icase: bool) -> tuple[set[str] | frozenset[str], bool]:
    if op in _ONE_CHAR:
        return _char_set(op, av, icase), False
    if op is _sre_c.BRANCH:
        chars: set[str] = set()
        nullable = False
        for branch in av[1]:
            f, n = _first(branch, icase)
            chars |= f
            nullable = nullable or n
        return chars, nullable
    if op is _sre_c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags & re.IGNORECASE:
            icase = True
        if del_flags & re.IGNORECASE:
            icase = False
        return _first(sub, icase)
    if op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT, getattr(_sre_c, "POSSESSIVE_REPEAT", None)):
        lo, _hi, sub = av
        f, n = _first(sub, icase)
        return f, n or lo == 0
    if op in (_sre_c.AT, _sre_c.ASSERT, _sre_c.ASSERT_NOT):
        return set(), True
    raise ValueError(f"unsupported regex op {op}")  # pragma: no cover


def _first_chars(parsed) -> set[str]:
    """The characters a rule's match can start with, from its parsed regex."""
    chars, nullable = _first(parsed)
    if nullable:  # pragma: no cover - every rule consumes at least one character
        raise ValueError("rule can match the empty string")
    return chars


# --------------------------------------------------------------------------------------------------
# Compiled rule table
# --------------------------------------------------------------------------------------------------


_CROSSING = {"ACRONYM_CTX": f"[{SPACE_C}{NL_C}]*", "ABBREV3_CTX": ""}
_NEEDS = {
    "EMAIL": "@",
    "HTHING": "-",
    "HTHING_DOT": "-",
    "THING3": "/",
    "FULLURL": ":",
    "LIKELYURL": ".",
    "FILENAME": ".",
    "WORD_DOT": ".",
    "SGML": ">",
}


class _LazyPattern:
    """A regex compiled on first use: importing the lexer compiles none of its ~400 patterns, and a
    caption compiles only the rules it reaches (most captions need a handful). After the first call,
    ``match``/``fullmatch`` are the compiled pattern's own methods (instance attributes)."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.parsed = None  # the parse of ``pattern`` the first-character analysis made, until compiled

    def _compile(self):
        if self.parsed is not None:  # the program re.compile(self.pattern) makes, without parsing again
            compiled = _sre_compile.compile(self.parsed)
            self.parsed = None
        else:
            compiled = re.compile(self.pattern)
        self.match, self.fullmatch = compiled.match, compiled.fullmatch
        return compiled

    def match(self, *args):
        return self._compile().match(*args)

    def fullmatch(self, *args):
        return self._compile().fullmatch(*args)


class _Rule:
    """One alternative of a rule (a rule whose regex is a list gets one _Rule per item)."""

    __slots__ = ("name", "prio", "whole", "r1", "r2", "action", "_r1_all", "_fixed", "tail", "needs")

    def __init__(self, prio, name, r1, r1_all, r2, action):
        self.name = name
        self.prio = prio
        self.action = action
        self._fixed = None
        if r2 is None:
            self.whole = _LazyPattern(r1)
            self.r1 = self.r2 = None
            self._r1_all = None
        else:
            # The alternative decides the match length; JFlex resolves the trailing context with the
            # whole rule (all alternatives) as r1.
            self.whole = _LazyPattern(f"(?:{r1})(?:{r2})")
            self.r1 = _LazyPattern(r1_all)
            self.r2 = _LazyPattern(r2)
            self._r1_all = r1_all
        # Rules whose trailing context can reach past the end of a caption into the next one: ``tail``
        # recognizes r1 at the end of the caption (with what the context may skip before the line break).
        self.tail = _LazyPattern(f"(?:{r1}){_CROSSING[name]}\\Z") if name in _CROSSING else None
        # A character the rule cannot match without: skipping the rule when the text lacks it saves time
        # and keeps long unspaced strings from making the backtracking regexes quadratic.
        self.needs = _NEEDS.get(name)

    def fixed_lengths(self) -> tuple[int | None, int | None]:
        """(fixed length of the trailing context r2, fixed length of r1), None where not fixed; parsed
        on first use."""
        if self._fixed is None:
            self._fixed = (_fixed_length(self.r2.pattern), _fixed_length(self._r1_all))
        return self._fixed


def _fixed_length(pattern: str) -> int | None:
    lo, hi = _sre_parse.parse(pattern).getwidth()
    return lo if lo == hi else None


_RULES = [
    _Rule(i, name, r1, alt(*r1s) if isinstance(r1s, list) else r1s, r2, action)
    for i, (name, r1s, r2, action) in enumerate(RULES)
    for r1 in (r1s if isinstance(r1s, list) else [r1s])
]
_CANDIDATES: dict[str, tuple[_Rule, ...]] = {}


def _build_candidates() -> None:
    table: dict[str, list[_Rule]] = {c: [] for c in ALPHABET}
    for rule in _RULES:
        rule.whole.parsed = _sre_parse.parse(rule.whole.pattern)
        for c in _first_chars(rule.whole.parsed):
            if c in table:
                table[c].append(rule)
    for c, rules in table.items():
        _CANDIDATES[c] = tuple(rules)


_build_candidates()

# --------------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------------

_AMP = re.compile("&amp;", re.IGNORECASE)
_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_CURRENCY = {"\u00a2": "cents", "\u00a3": "#", "\u0080": "$", "\u00a4": "$", "\u20a0": "$", "\u20ac": "$"}
_SINGLE_Q = re.compile("&apos;|'")
_DOUBLE_Q = re.compile('"|&quot;')
_LEFT_SQ = re.compile("[\u0091\u2018\u201b\u2039]")
_RIGHT_SQ = re.compile("[\u0092\u2019\u203a]")
_LEFT_DQ = re.compile("[\u0093\u201c\u00ab]")
_RIGHT_DQ = re.compile("[\u0094\u201d\u00bb]")


def latex_quotes(tok: str, probably_left: bool) -> str:
    if probably_left:
        tok = _SINGLE_Q.sub("`", tok)
        tok = _DOUBLE_Q.sub("``", tok)
    else:
        tok = _SINGLE_Q.sub("'", tok)
        tok = _DOUBLE_Q.sub("''", tok)
    tok = _LEFT_SQ.sub("`", tok)
    tok = _RIGHT_SQ.sub("'", tok)
    tok = _LEFT_DQ.sub("``", tok)
    return _RIGHT_DQ.sub("''", tok)


def remove_soft_hyphens(tok: str) -> str:
    if SHY not in tok:
        return tok
    tok = tok.replace(SHY, "")
    return tok or "-"


def _strip_space_fix(orig: str, pos: int, n: int) -> int:
    """JFlex trailing-space work-around: drop trailing whitespace from the matched text."""
    while n > 0:
        ch = orig[pos + n - 1]
        if ch in " \t\n\x0b\x0c\r\x85":
            n -= 1
        else:
            break
    return n


# --------------------------------------------------------------------------------------------------
# The scanner
# --------------------------------------------------------------------------------------------------

NL_TOKEN = "*NL*"
_FAST_WORD = re.compile(r"[A-Za-z]+(?=[ \t\n]|[,;:](?:[ \t\n]|\Z)|\Z)")
_ASSIMILATION_WORDS = frozenset(["cannot", "gonna", "gotta", "lemme", "gimme", "wanna"])


def lex(orig: str, cs: str, stop: int, context: list | None = None) -> list[str]:
    """Tokenize ``orig`` (its class string is ``cs``) from 0 until ``stop``; text after ``stop`` is context.

    Returns the lexer's tokens (not lower-cased), with ``*NL*`` for newlines.  If ``context`` (a list) is
    given, ``context[0]`` is set to True when a rule whose trailing context can look past ``stop`` (into
    the next caption) had its main part end the text, i.e. when the tokens may depend on what follows.
    """
    out: list[str] = []
    pos = 0
    cands = _CANDIDATES
    fast = _FAST_WORD.match
    check_tail = context is not None and cs[:stop].rstrip(SPACE_C + NL_C).endswith(".")
    present = set(cs)
    while pos < stop:
        # Fast path: a run of ASCII letters followed by a space, a line break, the end, or a comma, colon
        # or semicolon that is itself followed by one of those, is one token (no rule can do better
        # there) unless it is an assimilation ("cannot" -> "can" "not").
        m = fast(cs, pos)
        if m is not None:
            end = m.end()
            word = orig[pos:end]
            if word.lower() not in _ASSIMILATION_WORDS:
                out.append(word)
                pos = end
                continue
        best = None
        best_len = 0
        for rule in cands[cs[pos]]:
            if rule.needs is not None and rule.needs not in present:
                continue
            if check_tail and rule.tail is not None and rule.tail.match(cs, pos, stop):
                context[0] = True
            m = rule.whole.match(cs, pos)
            if m is not None:
                ln = m.end() - pos
                if ln > best_len or (ln == best_len and rule.prio < best.prio):
                    best_len = ln
                    best = rule
        if best is None:  # pragma: no cover - the ANY rule always matches
            raise AssertionError(f"no rule matches at {pos}: {cs[pos]!r}")
        n = best_len
        if best.r2 is not None:
            fixed_look, fixed_base = best.fixed_lengths()
            if fixed_look is not None:
                n = best_len - fixed_look
            elif fixed_base is not None:
                n = fixed_base
            else:
                end = pos + best_len
                p = end
                while p > pos:
                    if best.r1.fullmatch(cs, pos, p) and best.r2.fullmatch(cs, p, end):
                        break
                    p -= 1
                n = p - pos
        action = best.action
        if action == "plain" or action == "word":
            tok = orig[pos:pos + n]
            if action == "word":
                tok = remove_soft_hyphens(tok)
            out.append(tok)
        elif action == "ignore":
            pass
        elif action == "quote_r" or action == "quote_l":
            out.append(latex_quotes(orig[pos:pos + n], action == "quote_l"))
        elif action == "newline":
            out.append(NL_TOKEN)
        elif action[0] == "-":
            out.append(action)
        elif action == "assim2" or action == "assim3":
            n -= 2 if action == "assim2" else 3
            out.append(orig[pos:pos + n])
        elif action == "hyphens":
            out.append("--" if 3 <= n <= 4 else orig[pos:pos + n])
        elif action == "dash":
            out.append("--")
        elif action == "ellipsis":
            out.append("...")
        elif action == "amp":
            out.append(_AMP.sub("&", orig[pos:pos + n]))
        elif action == "sgml" or action == "frac":
            out.append(orig[pos:pos + n].replace(" ", NBSP))
        elif action == "phone":
            out.append(orig[pos:pos + n].replace(" ", NBSP).replace("(", "-LRB-").replace(")", "-RRB-"))
        elif action == "smiley":
            out.append(orig[pos:pos + n].replace("(", "-LRB-").replace(")", "-RRB-"))
        elif action == "frac2":
            tok = orig[pos:pos + n]
            out.append(_FRACTIONS.get(tok, tok))
        elif action == "currency":
            tok = orig[pos:pos + n]
            out.append(_CURRENCY.get(tok, tok))
        elif action == "lt":
            out.append("<")
        elif action == "gt":
            out.append(">")
        elif action == "abbrev1":
            out.append(orig[pos:pos + n])
            n -= 1
        elif action == "abbrev3":
            n = _strip_space_fix(orig, pos, n)
            out.append(orig[pos:pos + n])
        elif action == "acronym":
            n = _strip_space_fix(orig, pos, n)
            if n == 2:
                n = 1
                out.append(orig[pos:pos + n])
            else:
                out.append(orig[pos:pos + n])
                n -= 1
        else:  # pragma: no cover
            raise AssertionError(action)
        pos += n
    return out
