"""docs/meteor.md's Python snippets run, in order, in one namespace (as a reader would run them), against
the real jar; what they claim in comments is checked where it is a number."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

M = importlib.import_module("capeval.meteor")
REASON = M.meteor_unavailable_reason()
pytestmark = [pytest.mark.java, pytest.mark.skipif(REASON is not None, reason=f"no Meteor: {REASON}")]
DOC = Path(__file__).resolve().parents[1] / "docs" / "meteor.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_meteor_md_snippets_run():
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    r = namespace["r"]
    assert r.ids == [1, 2] and r.signature == "1.5 -l en -norm"
    assert namespace["meteor_score_from_stats"](r.stats) == r.score  # "== r.score", as the comment says
    assert namespace["a"].score == namespace["b"].score  # the same caption pair, scored two ways
