"""The eligibility engine: pure functions over the catalog, no I/O, no clock.

`assess` checks every rule of the application's program (each with its citation), computes
the entitlement in integer fen (rates rounded down: the state never overpays), and names
the pools the award would draw on and the overlap key (applicant, subject, milestone) for
the ledger, which has no catalog of its own: the receipt carries all it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.contracts.envelope import Event
from shared.contracts.events import ANY_BENEFICIARY, ApplicationReceived, parse_data
from shared.kernel.money import apply_rate_bp, format_fen
from shared.kernel.uscc import region_code, registered_in_shanghai
from shared.policy.calls import CALL_BUDGET_POOL, CallTerms
from shared.policy.catalog import Catalog, Formula, PoolSpec, Program
from shared.policy.reasons import Reason
from shared.policy.validation import ApplicationInput

ENGINE_VERSION = "1"

RULE_FAILED = "RULE_FAILED"
OUT_OF_WINDOW = "OUT_OF_WINDOW"
BELOW_THRESHOLD = "BELOW_THRESHOLD"
CALL_CLOSED = "CALL_CLOSED"


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    detail: str
    citation: str
    code: str = RULE_FAILED  # the reason code when it fails

    def to_wire(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "detail": self.detail, "citation": self.citation}


@dataclass(frozen=True)
class PoolClaim:
    pool: str
    scope: str  # beneficiary_year | subject | project | call (shared.contracts.events.PoolClaim)
    beneficiary: str
    year: int | None  # beneficiary_year and call pools
    subject: str | None  # subject and project pools (the subject key); call pools (the call id)
    cap_fen: int
    citation: str

    def to_wire(self) -> dict[str, Any]:
        return {"pool": self.pool, "scope": self.scope, "beneficiary": self.beneficiary, "year": self.year,
                "subject": self.subject, "cap": format_fen(self.cap_fen), "citation": self.citation}


@dataclass(frozen=True)
class Assessment:
    app: ApplicationInput
    eligible: bool
    entitlement_fen: int
    reasons: tuple[Reason, ...]
    rules: tuple[RuleResult, ...]
    pools: tuple[PoolClaim, ...]
    milestone: str
    catalog_version: str
    facts_wire: dict[str, Any]
    call_id: str | None = None
    engine_version: str = ENGINE_VERSION
    review: str = "auto"  # the program's review mode: "required" (a reviewer settles the amount) or "auto"

    def to_receipt(self) -> dict[str, Any]:
        app = self.app
        return {
            "program": app.program,
            "year": app.year,
            "applicant": {"id": app.applicant_id, "name": app.applicant_name, "kind": app.applicant_kind,
                          "registered_in_shanghai": app.registered_in_shanghai},
            "subject": app.subject,
            "eligible": self.eligible,
            "entitlement": format_fen(self.entitlement_fen),
            "reasons": [r.to_wire() for r in self.reasons],
            "rules": [r.to_wire() for r in self.rules],
            "pools": [p.to_wire() for p in self.pools],
            "overlap": {"applicant": app.applicant_id, "subject": app.subject_key, "milestone": self.milestone},
            "catalog_version": self.catalog_version,
            **({} if self.call_id is None else {"call_id": self.call_id}),
            "engine_version": self.engine_version,
            "inputs": {
                "requested_amount": None if app.requested_amount_fen is None else format_fen(app.requested_amount_fen),
                "facts": self.facts_wire,
            },
            "review": self.review,
        }


def assess(
    app: ApplicationInput, catalog: Catalog, call: CallTerms | None = None, received_at: datetime | None = None
) -> Assessment:
    """Every rule checked, the entitlement computed exactly; `app` comes from validate_application.

    Under a call (`catalog` must be the version it pinned): the event window is the call's, the
    support year of every beneficiary-year pool is the call's, the receipt names the call, a
    budget is one more pool, and an application received while the call was not open
    (`received_at`, when given) is ineligible (CALL_CLOSED). Without one (an evaluation while no
    call is open, history from before calls) the program's own window and the application's year."""
    program = catalog.programs[app.program]
    if call is not None:
        _check_call(app, catalog, call)
    facts = app.facts
    rules = _eligibility_rules(app, program, catalog, call, received_at)
    eligible = all(r.passed for r in rules)
    amount_fen, formula_rules = _entitlement(app, program)
    rules.extend(formula_rules)
    reasons = tuple(Reason(r.code, f"{r.rule}: {r.detail}", r.citation) for r in rules if not r.passed)
    year = app.year if call is None else call.year
    pools = tuple(_claim(p, app, year) for p in program.pools)
    if call is not None and call.budget_fen is not None:
        pools += (PoolClaim(pool=CALL_BUDGET_POOL, scope="call", beneficiary=ANY_BENEFICIARY, year=call.year,
                            subject=call.id, cap_fen=call.budget_fen, citation=f"call {call.id}"),)
    return Assessment(
        app=app,
        eligible=eligible,
        entitlement_fen=amount_fen if eligible else 0,
        reasons=reasons,
        rules=tuple(rules),
        pools=pools,
        milestone=program.milestone_for(facts),
        catalog_version=catalog.version,
        facts_wire=app.facts_to_wire(catalog),
        call_id=None if call is None else call.id,
        review=program.review,
    )


def _check_call(app: ApplicationInput, catalog: Catalog, call: CallTerms) -> None:
    # The caller pairs an application with its call and the call with its version; a mismatch
    # is a bug upstream, never a decision to make here.
    if call.program != app.program:
        raise ValueError(f"call {call.id} is for {call.program}, the application for {app.program}")
    if call.catalog_version != catalog.version:
        raise ValueError(f"call {call.id} pins catalog {call.catalog_version}, not {catalog.version}")


def _claim(pool: PoolSpec, app: ApplicationInput, year: int) -> PoolClaim:
    """The pool instance an award draws on (shared.contracts.events.PoolClaim lists the scopes)."""
    if pool.scope == "beneficiary_year":
        return PoolClaim(pool.name, pool.scope, app.applicant_id, year, None, pool.cap_fen, pool.citation)
    beneficiary = ANY_BENEFICIARY if pool.scope == "project" else app.applicant_id
    return PoolClaim(pool.name, pool.scope, beneficiary, None, app.subject_key, pool.cap_fen, pool.citation)


@dataclass(frozen=True)
class Assessed:
    """One `application.received` event, assessed: the receipt to keep and to publish."""

    received: Event
    application: ApplicationInput
    assessment: Assessment
    receipt: dict[str, Any]  # the assessment's receipt, with the application's ids and arrival

    @property
    def application_id(self) -> str:
        return str(self.receipt["application_id"])


def assess_received(event: Event, catalog: Catalog, call: CallTerms | None = None) -> Assessed:
    """The application an `application.received` event carries, assessed (under `call`, the
    one its call_id names, with the catalog version that call pinned); ValueError when its data
    is malformed, the application does not validate against the catalog, or the call is not its."""
    received = parse_data(event, ApplicationReceived)
    if call is not None and received.call_id != call.id:
        raise ValueError(f"the application names call {received.call_id}, not {call.id}")
    application = ApplicationInput.from_wire(received.application.to_data(), catalog)
    assessment = assess(application, catalog, call, received_at=event.time)
    receipt = assessment.to_receipt()
    receipt["application_id"] = received.application_id
    receipt["partner_id"] = received.partner_id
    receipt["received_at"] = event.time.isoformat()
    return Assessed(event, application, assessment, receipt)


def _eligibility_rules(
    app: ApplicationInput, program: Program, catalog: Catalog, call: CallTerms | None, received_at: datetime | None
) -> list[RuleResult]:
    facts = app.facts
    out: list[RuleResult] = [_registered_in_shanghai(app, catalog)]
    kinds = program.applicant_kinds
    kind_ok = app.applicant_kind in kinds.allowed
    out.append(RuleResult(
        "applicant_kind", kind_ok,
        f"applicant kind {app.applicant_kind} is admitted" if kind_ok
        else f"{program.code} admits {', '.join(sorted(kinds.allowed))}, not {app.applicant_kind} ({kinds.text})",
        kinds.citation))
    out.extend(_window_rules(app, program, call))
    if call is not None and received_at is not None:
        is_open = call.is_open_at(received_at)
        out.append(RuleResult(
            "call.open", is_open,
            f"received {received_at.isoformat()} {'while' if is_open else 'when not'} open "
            f"({call.opens_at.isoformat()}..{call.closes_at.isoformat()})",
            f"call {call.id}", CALL_CLOSED))
    for rule in program.rules:
        if rule.when is not None and not rule.when.holds(facts):
            continue
        value = facts[rule.fact]
        if rule.kind == "required_true":
            out.append(RuleResult(rule.rule, value is True, f"{rule.fact} is {str(value).lower()}; required: {rule.text}",
                                  rule.citation))
        elif rule.kind == "required_false":
            out.append(RuleResult(rule.rule, value is False,
                                  f"{rule.fact} is {str(value).lower()}; must be false: {rule.text}", rule.citation))
        elif rule.kind == "registered_in_shanghai":
            ok = registered_in_shanghai(value)
            out.append(RuleResult(rule.rule, ok,
                                  f"{rule.fact} {value} was issued in region {region_code(value)}, "
                                  f"{'in' if ok else 'outside'} Shanghai (31…): {rule.text}", rule.citation))
        else:  # threshold (以上: the bound itself qualifies when inclusive)
            assert rule.min_fen is not None
            ok = value >= rule.min_fen if rule.inclusive else value > rule.min_fen
            op = ">=" if rule.inclusive else ">"
            verdict = "meets" if ok else "is below"
            out.append(RuleResult(rule.rule, ok,
                                  f"{rule.fact} {format_fen(value)} {verdict} the threshold "
                                  f"({op} {format_fen(rule.min_fen)}): {rule.text}",
                                  rule.citation, BELOW_THRESHOLD))
    if program.formula_for(facts).kind == "patents":
        out.append(_patents_granted(app, program.formula_for(facts)))
    return out


def _registered_in_shanghai(app: ApplicationInput, catalog: Catalog) -> RuleResult:
    """002 §一(三) 支持对象: units registered in Shanghai (在本市范围内登记注册). The code says where
    it was issued (characters 3-8, Shanghai's begin 31), whatever the applicant declares; one that
    declares itself registered elsewhere is taken at its word."""
    in_shanghai = registered_in_shanghai(app.applicant_id)
    if not in_shanghai:
        detail = (f"applicant's code {app.applicant_id} was issued in region {region_code(app.applicant_id)}, "
                  f"outside Shanghai (31…): not registered in Shanghai (在本市范围内登记注册)")
    elif not app.registered_in_shanghai:
        detail = "applicant declares it is not registered in Shanghai (在本市范围内登记注册)"
    else:
        detail = f"applicant is registered in Shanghai (code issued in region {region_code(app.applicant_id)})"
    return RuleResult("registered_in_shanghai", in_shanghai and app.registered_in_shanghai, detail,
                      catalog.registered_citation)


def _window_rules(app: ApplicationInput, program: Program, call: CallTerms | None) -> list[RuleResult]:
    """The event inside the window (the call's when there is one: it lies inside the program's)
    and the support year inside the program's years (the call's year when there is one)."""
    window = program.window
    event = app.facts["event_date"]
    if call is None:
        start, end, event_citation, year = window.start, window.end, window.citation, app.year
    else:
        start, end, event_citation, year = call.event_from, call.event_to, f"call {call.id}", call.year
    in_window = start <= event <= end
    year_ok = window.first_year <= year <= window.last_year
    return [
        RuleResult(
            "window.event_date", in_window,
            f"event_date {event.isoformat()} {'inside' if in_window else 'outside'} "
            f"{start.isoformat()}..{end.isoformat()}",
            event_citation, OUT_OF_WINDOW),
        RuleResult(
            "window.year", year_ok,
            f"support year {year} {'inside' if year_ok else 'outside'} {window.first_year}..{window.last_year}",
            window.citation, OUT_OF_WINDOW),
    ]


def _patents_granted(app: ApplicationInput, formula: Formula) -> RuleResult:
    assert formula.list_fact is not None
    granted = [p for p in app.facts[formula.list_fact] if p["granted_after_substantive_examination"]]
    return RuleResult(
        "patents.granted_after_substantive_examination", bool(granted),
        f"{len(granted)} of {len(app.facts[formula.list_fact])} patents granted after substantive examination",
        formula.citation)


def _entitlement(app: ApplicationInput, program: Program) -> tuple[int, list[RuleResult]]:
    """The formula, then the per-award maximum, then the requested amount (the smallest wins)."""
    facts = app.facts
    formula = program.formula_for(facts)
    if formula.kind == "rate":
        assert formula.base_fact is not None and formula.rate_bp is not None
        base = facts[formula.base_fact]
        amount = apply_rate_bp(base, formula.rate_bp)
        detail = f"{_pct(formula.rate_bp)} of {formula.base_fact} {format_fen(base)} = {format_fen(amount)}"
    elif formula.kind == "per_unit":
        assert formula.count_fact is not None and formula.unit_fen is not None
        count = facts[formula.count_fact]
        amount = formula.unit_fen * count
        detail = f"{format_fen(formula.unit_fen)} x {formula.count_fact} {count} = {format_fen(amount)}"
    elif formula.kind == "patents":
        amount, detail = _patents_amount(facts, formula)
    else:  # requested: the validator guarantees requested_amount where this formula applies
        amount = app.requested_amount_fen or 0
        detail = f"requested amount {format_fen(amount)}"
    rules = [RuleResult("formula", True, detail, formula.citation)]
    # Only the award's own maximum (requested amounts are clipped to it, 最高): a cap per
    # beneficiary and year, a project's or a call's budget is a pool, which the ledger applies.
    if formula.maximum_fen is None:
        capped = amount
        rules.append(RuleResult("maximum", True, "no per-award maximum (the caps are pools)", formula.citation))
    else:
        capped = min(amount, formula.maximum_fen)
        rules.append(RuleResult(
            "maximum", True,
            f"capped at the per-award maximum {format_fen(formula.maximum_fen)}" if capped < amount
            else f"within the per-award maximum {format_fen(formula.maximum_fen)}",
            formula.citation))
    if app.requested_amount_fen is not None and formula.kind != "requested":
        if app.requested_amount_fen < capped:
            rules.append(RuleResult("requested_amount", True,
                                    f"limited to the requested amount {format_fen(app.requested_amount_fen)}",
                                    formula.citation))
            capped = app.requested_amount_fen
    return capped, rules


def _patents_amount(facts: dict[str, Any], formula: Formula) -> tuple[int, str]:
    """000 §五(三): 50% of official fees, at most 2万 per patent, one per country, best 5 countries."""
    assert formula.list_fact and formula.rate_bp is not None
    assert formula.per_item_max_fen is not None and formula.max_items is not None
    best: dict[str, int] = {}
    for patent in facts[formula.list_fact]:
        if not patent["granted_after_substantive_examination"]:
            continue
        pay = min(apply_rate_bp(patent["official_fees_fen"], formula.rate_bp), formula.per_item_max_fen)
        if pay > best.get(patent["country"], -1):
            best[patent["country"]] = pay
    chosen = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[: formula.max_items]
    amount = sum(pay for _, pay in chosen)
    parts = ", ".join(f"{country} {format_fen(pay)}" for country, pay in chosen)
    return amount, (f"{_pct(formula.rate_bp)} of official fees, at most {format_fen(formula.per_item_max_fen)} "
                    f"per patent, one per country, best {formula.max_items}: {parts or 'none'} = {format_fen(amount)}")


def _pct(rate_bp: int) -> str:
    whole, frac = divmod(rate_bp, 100)
    return f"{whole}%" if not frac else f"{whole}.{frac:02d}%"
