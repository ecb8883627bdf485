"""Every change to a recording, at the production segment size, is detected with its own error
(issue 11, finding 3): the matrix of tests/crypto/tamper_matrix.py, 100 % right."""

from __future__ import annotations

from tests.crypto.tamper_matrix import FILES, run_matrix, table


def test_every_change_reads_as_the_docs_say():
    rows = run_matrix()
    families = {r.family for r in rows}
    assert {"header bit flip", "body bit flip", "cut at a segment boundary", "cut mid-segment",
            "cut mid-segment on a page boundary", "swap segments", "duplicate a segment",
            "drop a segment", "append garbage", "wrong key (another key)"} <= families
    assert {r.file for r in rows} == set(FILES)
    header = [r for r in rows if r.family == "header bit flip"]
    assert all(r.total == 1104 for r in header) and len(header) == 2 * len(FILES)
    wrong = [r for r in rows if r.right != r.total]
    assert not wrong, "\n" + table(rows)
