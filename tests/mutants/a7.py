"""Mutants and alternatives for A7 (concepts): wrong letters must lose the point, any spelling of
the right letter must keep it. Format in tests/mutants/README.md.

The keys are not written here: they are read from the master's reference solutions
(tests/mutants/derive.py), so that the answer letters exist in one place only (the master's
solution regions and hidden tests); every variant is an anchored edit of the reference answer.
"""

from __future__ import annotations

import re

from mutants.derive import Reference

NOTEBOOK = "a7_concepts/a7_concepts.ipynb"

_PAPERS = ["recht", "greff", "wightman", "ulyanov", "brendel", "wu", "picard", "vaswani", "zhu"]

_REFERENCE = Reference(NOTEBOOK)
_KEYS = {paper: re.search(rf'answer_{paper} = "([ABCD])"', _REFERENCE[f"reading_{paper}"]).group(1)
         for paper in _PAPERS}


def _answer(paper: str, new: str) -> str:
    """The reference answer cell of ``paper`` with its assignment line replaced by ``new``."""
    return _REFERENCE.edit(f"reading_{paper}", (f'answer_{paper} = "{_KEYS[paper]}"', new))


MUTANTS = [("reading_recht", "not a letter (the option's text)",
            _answer("recht", 'answer_recht = "the ranking is kept"'))]
ALTERNATIVES = []
for _index, _paper in enumerate(_PAPERS):
    for _letter in "ABCD":
        if _letter != _KEYS[_paper]:
            MUTANTS.append((f"reading_{_paper}", f"wrong letter {_letter}",
                            _answer(_paper, f'answer_{_paper} = "{_letter}"')))
    if _index % 2 == 0:
        ALTERNATIVES.append((f"reading_{_paper}", "lower case with spaces",
                             _answer(_paper, f'answer_{_paper} = " {_KEYS[_paper].lower()} "')))
    else:
        ALTERNATIVES.append((f"reading_{_paper}", "picked from a string",
                             _answer(_paper, f'choice = "ABCD".index("{_KEYS[_paper]}")\n'
                                             f'answer_{_paper} = "ABCD"[choice]')))
