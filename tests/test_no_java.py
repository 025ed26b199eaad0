"""METEOR with no Java on the machine at all (issue 15): Java hidden in a mount namespace, as the guide
suggests (`unshare -m` + an empty directory bound over /usr/lib/jvm), `capeval.evaluate` with the
default metrics still returns METEOR, equal to the jar's number computed here with Java."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import capeval

ROOT = Path(__file__).resolve().parents[1]
REFS = {
    1: ["A dog runs on the grass.", "The dog is running."],
    2: ["A cat sleeps on a bed.", "a cat is sleeping on the bed"],
    3: ["Two men ride horses on the beach.", "People riding horses along the shore"],
}
PREDS = {1: "a dog running on grass", 2: "a cat sleeping", 3: "two people riding horses on a beach"}
SCRIPT = """
import json, shutil, sys
import capeval
refs = {int(k): v for k, v in json.loads(sys.argv[1]).items()}
preds = {int(k): v for k, v in json.loads(sys.argv[2]).items()}
result = capeval.evaluate(refs, preds)
print(json.dumps({"java": shutil.which("java"), "scores": result.scores, "per_item": list(result.per_item["METEOR"]),
                  "signature": result.signature, "skipped": result.skipped}))
"""


def _can_hide_java() -> str | None:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "needs Linux and unshare"
    if os.geteuid() != 0:
        return "needs root to mount in a new namespace"
    if not Path("/usr/lib/jvm").is_dir():
        return "no /usr/lib/jvm to hide"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind $(mktemp -d) /usr/lib/jvm && ! java -version"],
                           capture_output=True, timeout=60)
    return None if probe.returncode == 0 else "cannot hide Java in a mount namespace here"


def test_default_metrics_without_any_java_include_meteor_equal_to_the_jar():
    from capeval.meteor import meteor_unavailable_reason

    why = _can_hide_java() or meteor_unavailable_reason(backend="python") or meteor_unavailable_reason(backend="jar")
    if why:
        pytest.skip(why)
    with_jar = capeval.evaluate(REFS, PREDS, meteor_options={"backend": "jar"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("JAVA_HOME", None)
    command = 'mount --bind "$(mktemp -d)" /usr/lib/jvm && exec "$0" -c "$1" "$2" "$3"'
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", command, sys.executable, SCRIPT, json.dumps(REFS), json.dumps(PREDS)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["java"] is None  # no java on PATH in there
    assert not out["skipped"]
    assert out["scores"]["METEOR"] == with_jar.scores["METEOR"]  # the jar's number, exactly
    assert out["per_item"] == list(with_jar.per_item["METEOR"])
    assert "meteor_engine:python" in out["signature"]
    assert {k: v for k, v in out["scores"].items() if k != "METEOR"} == {k: v for k, v in with_jar.scores.items() if k != "METEOR"}
