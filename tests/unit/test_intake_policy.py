"""Intake's view of the policy, pure: which call admits an application at a moment, against which
catalog, and what GET /v1/programs lists."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.intake.policy.domain import KnownCall, PolicyView, admit
from shared.policy.calls import CallTerms
from shared.policy.catalog import load_catalog
from tools.samples import make_body

CATALOG = load_catalog()
OPENS = datetime(2026, 12, 1, tzinfo=UTC)
CLOSES = datetime(2027, 1, 31, 9, tzinfo=UTC)


def call(call_id: str = "call_a", program: str = "GT-EQUITY", year: int = 2024, *, opens_at: datetime = OPENS,
         closes_at: datetime = CLOSES, catalog_version: str = CATALOG.version) -> KnownCall:
    terms = CallTerms(id=call_id, program=program, year=year, opens_at=opens_at, closes_at=closes_at,
                      event_from=date(2023, 8, 31), event_to=date(2025, 12, 31), catalog_version=catalog_version,
                      budget_fen=None)
    return KnownCall(terms, f"title of {call_id}")


def view(*calls: KnownCall) -> PolicyView:
    return PolicyView.build(CATALOG, {CATALOG.version: CATALOG}, calls)


def test_a_call_is_open_from_its_opening_included_to_its_closing_excluded() -> None:
    v = view(call())
    assert v.open_call("GT-EQUITY", 2024, OPENS - timedelta(microseconds=1)) is None
    assert v.open_call("GT-EQUITY", 2024, OPENS) is not None
    assert v.open_call("GT-EQUITY", 2024, CLOSES - timedelta(microseconds=1)) is not None
    assert v.open_call("GT-EQUITY", 2024, CLOSES) is None
    assert v.open_call("GT-EQUITY", 2025, OPENS) is None


def test_of_two_calls_for_one_program_and_year_the_one_open_at_the_moment_admits() -> None:
    later = call("call_b", opens_at=CLOSES, closes_at=CLOSES + timedelta(days=30))
    v = view(later, call())
    first, second = v.open_call("GT-EQUITY", 2024, OPENS), v.open_call("GT-EQUITY", 2024, CLOSES)
    assert (first and first.terms.id, second and second.terms.id) == ("call_a", "call_b")


def test_an_application_under_an_open_call_is_validated_with_its_catalog() -> None:
    admitted = admit(view(call()), make_body("GT-EQUITY"), OPENS)
    assert admitted.errors == [] and admitted.application is not None
    assert admitted.call is not None and admitted.call.terms.id == "call_a" and admitted.catalog is CATALOG


def test_with_no_open_call_the_year_is_named_with_the_other_errors() -> None:
    admitted = admit(view(call()), make_body("GT-EQUITY", facts={"financing_received": "x"}), CLOSES)
    assert admitted.application is None
    assert [(e.field, e.message) for e in admitted.errors][-1] == ("year", "no open call for GT-EQUITY 2024")
    assert {e.field for e in admitted.errors} == {"facts.financing_received", "year"}


def test_a_bad_program_or_year_is_named_as_such_not_as_a_missing_call() -> None:
    for body, field in (({**make_body("GT-EQUITY"), "program": "NOPE"}, "program"),
                        (make_body("GT-EQUITY", year=True), "year"),
                        (make_body("GT-EQUITY", year=1999), "year")):
        admitted = admit(view(call()), body, OPENS)
        assert [e.field for e in admitted.errors] == [field], admitted.errors
    assert [e.field for e in admit(view(), ["not", "an", "object"], OPENS).errors] == ["body"]


def test_a_call_whose_catalog_has_not_arrived_admits_nothing_yet_and_is_not_listed() -> None:
    v = view(call(catalog_version="sha256:" + "0" * 64))
    admitted = admit(v, make_body("GT-EQUITY"), OPENS)
    assert (admitted.application, admitted.errors, admitted.catalog) == (None, [], None)
    assert admitted.call is not None
    assert all(p["calls"] == [] for p in v.programs_listing(OPENS)["items"])


def test_programs_lists_the_latest_version_with_the_calls_open_now() -> None:
    v = view(call(), call("call_c", program="GT-PCT", opens_at=CLOSES, closes_at=CLOSES + timedelta(days=1)))
    listing = v.programs_listing(OPENS)
    assert listing["catalog_version"] == CATALOG.version
    assert [p["code"] for p in listing["items"]] == list(CATALOG.programs)
    calls = {p["code"]: [c["id"] for c in p["calls"]] for p in listing["items"]}
    assert calls["GT-EQUITY"] == ["call_a"] and calls["GT-PCT"] == []
    [listed] = next(p for p in listing["items"] if p["code"] == "GT-EQUITY")["calls"]
    assert listed == {"id": "call_a", "program": "GT-EQUITY", "year": 2024, "title": "title of call_a",
                      "opens_at": OPENS.isoformat(), "closes_at": CLOSES.isoformat(),
                      "event_window": {"from": "2023-08-31", "to": "2025-12-31"},
                      "catalog_version": CATALOG.version, "budget": None}
