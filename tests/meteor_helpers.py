"""Helpers shared by the METEOR tests."""

import zipfile
from pathlib import Path


def make_jar_dir(root: Path) -> Path:
    """A stand-in meteor-1.5.jar (a zip) with a data/paraphrase-en.gz of plausible size."""
    root.mkdir(parents=True, exist_ok=True)
    jar = root / "meteor-1.5.jar"
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("Meteor.class", b"not really")
    (root / "data").mkdir(exist_ok=True)
    with open(root / "data" / "paraphrase-en.gz", "wb") as fh:
        fh.truncate(2_000_000)
    return jar
