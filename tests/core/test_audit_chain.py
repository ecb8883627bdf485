"""The keyed audit chain as a pure function (callengine.access.verify_chain): tables of
changed chains, each with the seq and kind it must be named by."""

from __future__ import annotations

import dataclasses

import pytest

from callengine.access import GENESIS, AuditEntry, AuditHead, chain_hash, chain_mac, verify_chain

KEY = b"a" * 32


def chain(n: int, *, key: bytes = KEY, keyed_from: int = 1) -> list[AuditEntry]:
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = (seq, 1000.0 + seq, "ops", "admin", "tokens.create", f"token:t{seq}", "viewer")
        mac = chain_mac(key, prev, *fields) if seq >= keyed_from else chain_hash(prev, *fields)
        entries.append(AuditEntry(*fields, prev, mac))
        prev = mac
    return entries


def head_of(entries: list[AuditEntry], keyed_from: int = 1) -> tuple[AuditHead, str]:
    head = AuditHead("s1", keyed_from, entries[-1].seq, entries[-1].hash)
    return head, head.seal(KEY)


def check(entries, head, *, keyed_from: int = 1, key: bytes = KEY):
    return [(f.seq, f.kind) for f in verify_chain(entries, key, keyed_from=keyed_from,
                                                  head=head[0], head_seal=head[1],
                                                  store_id="s1") if f.problem]


def test_intact():
    entries = chain(8)
    assert check(entries, head_of(entries)) == []


def swapped(entries, a, b):
    out = list(entries)
    out[a - 1] = dataclasses.replace(entries[b - 1], seq=a)
    out[b - 1] = dataclasses.replace(entries[a - 1], seq=b)
    return out


def renumbered_from(entries, seq, by):
    return [dataclasses.replace(e, seq=e.seq + by) if e.seq >= seq else e for e in entries]


CASES = {
    "edited": (lambda e: [dataclasses.replace(x, detail="admin") if x.seq == 4 else x
                          for x in e], [(4, "edited")]),
    "deleted": (lambda e: [x for x in e if x.seq != 4], [(4, "deleted")]),
    "deleted and renumbered": (lambda e: renumbered_from([x for x in e if x.seq != 4], 5, -1),
                               [(4, "deleted"), (4, "reordered")]),
    "inserted": (lambda e: sorted(renumbered_from(e, 4, 1) + [dataclasses.replace(
        e[3], seq=4, actor="mallory", hash="f" * 64, prev_hash=e[2].hash)], key=lambda x: x.seq),
        [(4, "inserted"), (5, "reordered")]),
    "reordered": (lambda e: swapped(e, 3, 4), [(3, "reordered"), (4, "reordered")]),
    "cut tail": (lambda e: e[:-2], [(7, "cut-tail")]),
    "appended forgery": (lambda e: e + [dataclasses.replace(e[-1], seq=9, hash="0" * 64)],
                         [(9, "inserted")]),
    "rewritten with another key": (lambda e: chain(8, key=b"b" * 32), [(1, "rewritten")]),
    "rewritten unkeyed": (lambda e: chain(8, keyed_from=99), [(1, "rewritten")]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_change_is_named(case):
    entries = chain(8)
    head = head_of(entries)
    change, expected = CASES[case]
    found = check(change(entries), head)
    assert all(item in found for item in expected), found


def test_wrong_key_or_forged_anchor():
    entries = chain(8)
    head = head_of(entries)
    assert check(entries, head, key=b"c" * 32) == [(8, "anchor")]
    assert check(entries, (head[0], "0" * 64)) == [(8, "anchor")]


def test_no_anchor_for_a_keyed_chain_is_a_problem():
    entries = chain(3)
    assert [(f.seq, f.kind) for f in verify_chain(entries, KEY)] == [(3, "anchor")]


def test_old_unkeyed_entries_verify_up_to_the_mark_and_are_bound_by_it():
    entries = chain(8, keyed_from=5)
    head = head_of(entries, keyed_from=5)
    assert check(entries, head, keyed_from=5) == []
    # the unkeyed part rewritten consistently: the first keyed entry no longer links to it
    rewritten = [dataclasses.replace(x, detail="x") for x in entries[:4]]
    prev = GENESIS
    for i, x in enumerate(rewritten):
        rewritten[i] = dataclasses.replace(x, prev_hash=prev, hash=chain_hash(
            prev, x.seq, x.at, x.actor, x.role, x.action, x.target, x.detail))
        prev = rewritten[i].hash
    assert (5, "deleted") in check(rewritten + entries[4:], head, keyed_from=5)
    # and the mark moved in the store (to call everything unkeyed) shows against the anchor
    assert (5, "edited") in check(entries, head, keyed_from=99)


def test_anchor_one_behind_is_a_note_two_behind_a_problem():
    entries = chain(8)
    behind = head_of(entries[:-1])
    notes = verify_chain(entries, KEY, head=behind[0], head_seal=behind[1])
    assert [(f.seq, f.kind, f.problem) for f in notes] == [(8, "anchor-behind", False)]
    assert check(entries, head_of(entries[:-2])) == [(7, "anchor")]
