"""Shared helpers of the model tests."""

import sys

import pytest


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Torch tests run on one intra-op thread: on a busy 2-core machine more threads only contend."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
