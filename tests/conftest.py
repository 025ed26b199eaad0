import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so tests can import benchmarks.datasets
    sys.path.insert(0, str(ROOT))
