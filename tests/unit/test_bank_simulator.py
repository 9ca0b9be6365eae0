"""The bank simulator (a TEST TOOL): its answers are written by the ledger's lean writer, which
must give xsdata's serialiser's bytes exactly for them too; the treasury's other debits it adds
(`others`) fall among the transfers all through the statement, each once, and the statement
stays valid against the official camt.054 XSD."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from unittest.mock import patch

import tools.bank_simulator as simulator
from services.ledger.payments.documents import pain001_document, render_with_xsdata
from services.ledger.payments.domain import Payer
from tests.support.payments import assert_valid, batch_items

PAYER = Payer("上海市财政局（测试）", "31001500000050000001", "105290061012")
AT = datetime(2026, 11, 30, 9, 15, 7, tzinfo=UTC)


def _initiation(n: int) -> simulator.Initiation:
    names = ["上海某某生物科技有限公司", 'A & B <"x">']
    return simulator.read_pain001(pain001_document("bat_sim", batch_items(n, names=names), PAYER, AT))


def test_the_simulators_answers_are_xsdatas_bytes() -> None:
    initiation = _initiation(40)
    returned, rejected = simulator.choose(initiation, 3, 2)
    fast = (simulator.camt054_for(initiation, returned=returned, rejected=rejected, at=AT, others=5),
            simulator.pain002_for(initiation, rejected=rejected, at=AT))
    with patch.object(simulator, "_render", render_with_xsdata):
        slow = (simulator.camt054_for(initiation, returned=returned, rejected=rejected, at=AT, others=5),
                simulator.pain002_for(initiation, rejected=rejected, at=AT))
    assert fast == slow


def test_other_debits_fall_among_the_transfers_each_once() -> None:
    initiation = _initiation(10)
    camt = simulator.camt054_for(initiation, at=AT, others=30)
    assert_valid("camt.054.001.08", camt)
    ids = [part.split(b"<", 1)[0].decode() for part in camt.split(b"<EndToEndId>")[1:]]
    ours = [t.end_to_end_id for t in initiation.transfers]
    assert [i for i in ids if i.startswith("pay_")] == ours, "every transfer once, in the pain.001's order"
    assert sorted(i for i in ids if i.startswith("OTHER")) == [f"OTHER{j:08d}" for j in range(30)]
    places = [n for n, i in enumerate(ids) if i.startswith("pay_")]
    assert places[0] < 5 and places[-1] > 34, f"spread through the statement, not bunched: {places}"
    assert max(b - a for a, b in pairwise(places)) <= 4, places
