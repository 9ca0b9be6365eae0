"""The role vocabulary every service's routes use: one name, one set of roles, everywhere.

Services re-export these from their own `deps` module beside their context and session aliases.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.web.auth import Principal, require

OperatorDep = Annotated[Principal, Depends(require("operator"))]
AuditorDep = Annotated[Principal, Depends(require("auditor"))]
PartnerDep = Annotated[Principal, Depends(require("partner"))]
# Staff who may read what operators do: operators and auditors.
StaffReaderDep = Annotated[Principal, Depends(require("operator", "auditor"))]
# Partners (their own data only: the route filters) and the staff who read everything.
PartnerOrStaffDep = Annotated[Principal, Depends(require("partner", "operator", "auditor"))]
PartnerOrOperatorDep = Annotated[Principal, Depends(require("partner", "operator"))]
