"""A valid, eligible application body per program, for the bench and the tests (cases override
what they test). Kept out of the runtime package: it is sample data, not policy."""

from __future__ import annotations

import copy
from typing import Any

from shared.kernel.uscc import with_check_character

ENTERPRISE = with_check_character("91310115MA1H7G0L0")
HOSPITAL = with_check_character("12310000425006117")
SPONSOR = with_check_character("91310000MA1FL1234")

# A valid, eligible application per program; cases override what they test.
BASE: dict[str, dict[str, Any]] = {
    # GT-CLIN's subject is the trial's registry number, GT-PCT's the PCT application number (POLICY.md).
    "GT-CLIN": {"kind": "medical_institution", "year": 2024, "subject": "NCT05000001",
                "facts": {"event_date": "2024-03-01", "enrolled_subjects": 8, "study_type": "iit",
                          "research_completed": True}},
    "GT-PCT": {"year": 2024, "subject": "PCT/CN2023/000001", "facts": {"event_date": "2024-03-01", "patents": [
        {"country": "US", "official_fees": "30000.00", "granted_after_substantive_examination": True}]}},
    "GT-PRODUCT": {"year": 2024, "requested_amount": "20000000.00",
                   "facts": {"event_date": "2024-03-01", "domestic_clinical_trial": True,
                             "marketing_authorization": True, "manufactured_in_shanghai": True}},
    "GT-INSURANCE": {"year": 2024, "facts": {"event_date": "2024-03-01", "premium": "100000.00",
                                             "insurance_type": "clinical_trial_liability"}},
    "GT-EQUITY": {"year": 2024, "facts": {"event_date": "2024-03-18", "financing_received": "80000000.00"}},
    "CT-PRODUCT": {"year": 2023, "requested_amount": "20000000.00",
                   "facts": {"event_date": "2023-06-01", "marketing_authorization": True,
                             "converted_in_shanghai": True}},
    "CT-INSURANCE": {"year": 2023, "facts": {"event_date": "2023-06-01", "premium": "100000.00",
                                             "insurance_type": "product_liability"}},
    "BIO-INNOV-DRUG": {"year": 2023, "facts": {"event_date": "2023-05-01", "drug_class": "chemical_class1",
                                               "phase": "I", "rd_investment": "10000000.00",
                                               "licensed_applicant": True, "manufactured_in_shanghai": True}},
    "BIO-IMPROVED-DRUG": {"year": 2023, "facts": {"event_date": "2023-05-01", "phase_completed": "II",
                                                  "rd_investment": "10000000.00", "licensed_applicant": True,
                                                  "manufactured_in_shanghai": True}},
    "BIO-DEVICE": {"year": 2023, "facts": {"event_date": "2023-05-01", "stage": "first_registration",
                                           "entered_special_review": True, "rd_investment": "10000000.00",
                                           "manufactured_in_shanghai": True}},
    "BIO-OVERSEAS": {"year": 2023, "facts": {"event_date": "2023-05-01", "agency": "FDA", "overseas_sales": True,
                                             "rd_investment": "20000000.00"}},
    "BIO-CHAIN": {"year": 2023, "facts": {"event_date": "2023-05-01", "approved_new_investment": "40000000.00",
                                          "major_project": False}},
    "BIO-DIGITAL": {"year": 2023, "facts": {"event_date": "2023-05-01", "approved_investment": "40000000.00"}},
    "BIO-UPGRADE": {"year": 2023, "facts": {"event_date": "2023-05-01", "approved_investment": "400000000.00"}},
    "BIO-CDMO": {"year": 2023, "facts": {"event_date": "2023-05-01", "first_contract_amount": "20000000.00",
                                         "investment_relation": False}},
    "BIO-FIRST-UNIT": {"year": 2023, "facts": {"event_date": "2023-05-01", "item": "device",
                                               "sales_contract_amount": "100000000.00"}},
}


def make_body(program: str, facts: dict[str, Any] | None = None, drop: tuple[str, ...] = (),
              **top: Any) -> dict[str, Any]:
    """A body for `program`: the BASE case with `facts` merged in, `drop` facts removed, `top` keys set."""
    base = copy.deepcopy(BASE[program])
    kind = base.pop("kind", "enterprise")
    subject = base.pop("subject", f"{program}-SUBJECT-1")
    body: dict[str, Any] = {
        "program": program,
        "year": base["year"],
        "applicant": {"id": HOSPITAL if kind == "medical_institution" else ENTERPRISE,
                      "name": "上海某某生物科技有限公司", "kind": kind, "registered_in_shanghai": True},
        "subject": subject,
        "facts": base["facts"],
    }
    if "requested_amount" in base:
        body["requested_amount"] = base["requested_amount"]
    body["facts"].update(facts or {})
    for name in drop:
        body["facts"].pop(name, None)
    for key, value in top.items():
        if key == "applicant":
            body["applicant"].update(value)
        else:
            body[key] = value
    return body
