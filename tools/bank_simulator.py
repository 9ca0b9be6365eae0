"""TEST TOOL: plays the treasury's bank for a pain.001. Not a bank, not for production data.

Reads a pain.001.001.09 credit transfer initiation (what `GET /v1/payment-batches/{id}/pain.001`
answers) and writes what a bank would answer, built with the same ISO 20022 message classes the
ledger reads them with (pyiso20022), never typed by hand:

- a camt.054.001.08 debit notification: one booked debit entry per transaction (settles it), a
  credit entry with return information (RtrInf, reason AC04 "account closed") for each returned
  one, nothing for a rejected one;
- a pain.002.001.10 status report: RJCT (reason AC01 "incorrect account number") for each
  rejected transaction, ACSC for the others.

Which transactions: the first `returns` in document order are returned, the last `rejects`
rejected, the rest settled. `--others K` adds K booked debits of the account that the pain.001 did
not ask for (the treasury's other payments), which the ledger keeps as unmatched.

    python -m tools.bank_simulator pain001.xml --return 1 --reject 1 -o camt054.xml [--pain002 pain002.xml]

The camt.054 goes to `-o` (stdout when absent), the pain.002 to `--pain002` when given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyiso20022.camt.camt_054_001_08 as camt054
import pyiso20022.pain.pain_001_001_09 as pain001
import pyiso20022.pain.pain_002_001_10 as pain002
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.models.datatype import XmlDate, XmlDateTime

from services.ledger.payments.documents import CONTEXT, render

CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"
PAIN002 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"


@dataclass(frozen=True)
class Transfer:
    end_to_end_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Initiation:
    msg_id: str
    pmt_inf_id: str
    debtor_account: str
    transfers: tuple[Transfer, ...]


def read_pain001(body: bytes) -> Initiation:
    document = XmlParser(context=CONTEXT).from_bytes(body, pain001.Document)
    initiation = document.cstmr_cdt_trf_initn
    transfers = []
    for info in initiation.pmt_inf:
        for tx in info.cdt_trf_tx_inf:
            amount = tx.amt.instd_amt
            transfers.append(Transfer(tx.pmt_id.end_to_end_id, amount.value, amount.ccy))
    first = initiation.pmt_inf[0]
    return Initiation(initiation.grp_hdr.msg_id, first.pmt_inf_id, first.dbtr_acct.id.othr.id, tuple(transfers))


def _render(document: object, namespace: str) -> bytes:
    # The ledger's lean writer over the same message classes: xsdata's bytes exactly (the ledger's
    # tests hold it to that), some ten times faster for a statement of thousands of entries.
    return render(document, namespace)


def _code(domain: str, family: str, sub: str) -> camt054.BankTransactionCodeStructure4:
    return camt054.BankTransactionCodeStructure4(domn=camt054.BankTransactionCodeStructure5(
        cd=domain, fmly=camt054.BankTransactionCodeStructure6(cd=family, sub_fmly_cd=sub)))


def _entry(t: Transfer, n: int, *, returned: bool, booked: str) -> camt054.ReportEntry10:
    amount = camt054.ActiveOrHistoricCurrencyAndAmount(value=t.amount, ccy=t.currency)
    sign = camt054.CreditDebitCode.CRDT if returned else camt054.CreditDebitCode.DBIT
    tx = camt054.EntryTransaction10(
        refs=camt054.TransactionReferences6(end_to_end_id=t.end_to_end_id),
        amt=amount, cdt_dbt_ind=sign,
        rtr_inf=camt054.PaymentReturnReason5(rsn=camt054.ReturnReason5Choice(cd="AC04"),
                                             addtl_inf=["account closed"]) if returned else None,
    )
    return camt054.ReportEntry10(
        ntry_ref=f"E{n}", amt=amount, cdt_dbt_ind=sign, sts=camt054.EntryStatus1Choice(cd="BOOK"),
        bookg_dt=camt054.DateAndDateTime2Choice(dt=XmlDate.from_string(booked)), acct_svcr_ref=f"BANK{n:08d}",
        bk_tx_cd=_code("PMNT", "ICDT", "RRTN" if returned else "ESCT"),
        ntry_dtls=[camt054.EntryDetails9(tx_dtls=[tx])],
    )


def camt054_for(initiation: Initiation, *, returned: Collection[str] = (), rejected: Collection[str] = (),
                at: datetime | None = None, msg_id: str | None = None, others: int = 0) -> bytes:
    """The debit notification settling every transfer of `initiation`, except the `returned`
    (a credit entry with RtrInf) and the `rejected` (left out: the money never left). `others`:
    that many booked debits of the same account that the pain.001 did not ask for (the
    treasury's other payments, EndToEndId `OTHER…`), spread evenly among the transfers."""
    at = (at or datetime.now(UTC)).replace(microsecond=0)
    ours = [t for t in initiation.transfers if t.end_to_end_id not in rejected]
    theirs = [Transfer(f"OTHER{j:08d}", Decimal("100.00"), "CNY") for j in range(others)]
    # Each list keeps its order; the two are merged by their place in it (0..1), so the others
    # fall between the transfers all through the document.
    merged = sorted([((i + 0.5) / len(ours), 0, t) for i, t in enumerate(ours)]
                    + [((j + 0.5) / len(theirs), 1, t) for j, t in enumerate(theirs)], key=lambda k: k[:2])
    entries = [_entry(t, n, returned=t.end_to_end_id in returned, booked=at.date().isoformat())
               for n, (_, _, t) in enumerate(merged, 1)]
    document = camt054.Document(bk_to_cstmr_dbt_cdt_ntfctn=camt054.BankToCustomerDebitCreditNotificationV08(
        grp_hdr=camt054.GroupHeader81(msg_id=msg_id or f"N{initiation.msg_id}"[:35],
                                      cre_dt_tm=XmlDateTime.from_datetime(at)),
        ntfctn=[camt054.AccountNotification17(
            id=f"NTF-{initiation.msg_id}"[:35],
            acct=camt054.CashAccount39(id=camt054.AccountIdentification4Choice(
                othr=camt054.GenericAccountIdentification1(id=initiation.debtor_account))),
            ntry=entries,
        )],
    ))
    return _render(document, CAMT054)


def pain002_for(initiation: Initiation, *, rejected: Collection[str] = (), at: datetime | None = None,
                msg_id: str | None = None) -> bytes:
    """The status report: RJCT (AC01) for each `rejected` transfer, ACSC for the others."""
    at = (at or datetime.now(UTC)).replace(microsecond=0)
    statuses = []
    for n, t in enumerate(initiation.transfers, 1):
        bad = t.end_to_end_id in rejected
        statuses.append(pain002.PaymentTransaction105(
            sts_id=f"S{n}", orgnl_end_to_end_id=t.end_to_end_id, tx_sts="RJCT" if bad else "ACSC",
            sts_rsn_inf=[pain002.StatusReasonInformation12(rsn=pain002.StatusReason6Choice(cd="AC01"),
                                                           addtl_inf=["incorrect account number"])] if bad else [],
        ))
    document = pain002.Document(cstmr_pmt_sts_rpt=pain002.CustomerPaymentStatusReportV10(
        grp_hdr=pain002.GroupHeader86(msg_id=msg_id or f"S{initiation.msg_id}"[:35],
                                      cre_dt_tm=XmlDateTime.from_datetime(at)),
        orgnl_grp_inf_and_sts=pain002.OriginalGroupHeader17(orgnl_msg_id=initiation.msg_id,
                                                            orgnl_msg_nm_id="pain.001.001.09"),
        orgnl_pmt_inf_and_sts=[pain002.OriginalPaymentInstruction32(orgnl_pmt_inf_id=initiation.pmt_inf_id,
                                                                    tx_inf_and_sts=statuses)],
    ))
    return _render(document, PAIN002)


def choose(initiation: Initiation, returns: int, rejects: int) -> tuple[set[str], set[str]]:
    """The first `returns` transfers returned, the last `rejects` rejected (never the same one)."""
    ids = [t.end_to_end_id for t in initiation.transfers]
    if returns + rejects > len(ids):
        raise ValueError(f"{returns} returns and {rejects} rejections, but only {len(ids)} transfers")
    return set(ids[:returns]), set(ids[len(ids) - rejects:]) if rejects else set()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bank_simulator",
                                     description="TEST TOOL: answer a pain.001 as a bank would (camt.054, pain.002).")
    parser.add_argument("pain001", type=Path)
    parser.add_argument("--return", dest="returns", type=int, default=0, metavar="N",
                        help="return the first N transfers (camt.054 RtrInf)")
    parser.add_argument("--reject", dest="rejects", type=int, default=0, metavar="M",
                        help="reject the last M transfers (pain.002 RJCT; left out of the camt.054)")
    parser.add_argument("--others", type=int, default=0, metavar="K",
                        help="add K booked debits the pain.001 did not ask for (they stay unmatched)")
    parser.add_argument("-o", "--output", type=Path, help="where the camt.054 goes (default: stdout)")
    parser.add_argument("--pain002", type=Path, help="where the pain.002 goes (default: not written)")
    args = parser.parse_args(argv)
    initiation = read_pain001(args.pain001.read_bytes())
    try:
        returned, rejected = choose(initiation, args.returns, args.rejects)
    except ValueError as exc:
        parser.error(str(exc))
    camt = camt054_for(initiation, returned=returned, rejected=rejected, others=args.others)
    if args.output is None:
        sys.stdout.buffer.write(camt)
    else:
        args.output.write_bytes(camt)
    if args.pain002 is not None:
        args.pain002.write_bytes(pain002_for(initiation, rejected=rejected))
    print(f"bank simulator: {len(initiation.transfers)} transfers, {len(returned)} returned, "
          f"{len(rejected)} rejected", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
