"""Packaging promises: capeval's import stays light, and the version is single-sourced."""

import subprocess
import sys

import capeval


def test_capeval_never_imports_torch_or_models():
    code = "import sys, capeval, capeval.cider, capeval.df; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'capeval_models', 'matplotlib')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_version_matches_metadata():
    from importlib.metadata import version

    assert capeval.__version__ == version("capeval")
