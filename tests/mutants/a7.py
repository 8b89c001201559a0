"""Mutants and alternatives for A7 (concepts): wrong letters must lose the point, any spelling of
the right letter must keep it. Format in tests/mutants/README.md."""

NOTEBOOK = "a7_concepts/a7_concepts.ipynb"

# The keys are not written here: this module works them out from the master notebook, so that the
# answer letters exist in one place only (the master's solution regions and hidden tests).
_PAPERS = ["recht", "greff", "wightman", "ulyanov", "brendel", "wu", "picard", "vaswani", "zhu"]


def _keys() -> dict[str, str]:
    import json
    import re
    from pathlib import Path

    master = Path(__file__).resolve().parents[2] / "source" / NOTEBOOK
    keys = {}
    for cell in json.loads(master.read_text())["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        if grade_id.startswith("reading_"):
            found = re.search(r'answer_\w+ = "([ABCD])"', "".join(cell["source"]))
            keys[grade_id[len("reading_"):]] = found.group(1)
    return keys


_KEYS = _keys()

MUTANTS = [("reading_recht", "not a letter (the option's text)", 'answer_recht = "the ranking is kept"\n')]
ALTERNATIVES = []
for _index, _paper in enumerate(_PAPERS):
    for _letter in "ABCD":
        if _letter != _KEYS[_paper]:
            MUTANTS.append((f"reading_{_paper}", f"wrong letter {_letter}", f'answer_{_paper} = "{_letter}"\n'))
    if _index % 2 == 0:
        ALTERNATIVES.append((f"reading_{_paper}", "lower case with spaces",
                             f'answer_{_paper} = " {_KEYS[_paper].lower()} "\n'))
    else:
        ALTERNATIVES.append((f"reading_{_paper}", "picked from a string",
                             f'choice = "ABCD".index("{_KEYS[_paper]}")\nanswer_{_paper} = "ABCD"[choice]\n'))
