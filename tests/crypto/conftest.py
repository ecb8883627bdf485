"""Fixtures of the crypto tests: a recipient key pair, and a recording of five segments."""

from __future__ import annotations

import os

import pytest

from callengine.crypto import generate_recipient_keypair
from tests.support.cerec import FIRST_PT, PT, write_file


@pytest.fixture(scope="module")
def keys():
    return generate_recipient_keypair()


@pytest.fixture
def five_segments(tmp_path, keys):
    priv, pub = keys
    data = os.urandom(FIRST_PT + 3 * PT + 20)  # segments: 8, 48, 48, 48, 20
    path = tmp_path / "f.cerec"
    write_file(path, pub, data)
    return path, priv, data
