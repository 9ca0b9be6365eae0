"""Payees (CONTRACT.md, "Intake": `payee`, `PUT /v1/applications/{id}/payee`): where an award is
paid — the account's name, its number and the bank's 12-digit CNAPS code.

A partner gives the payee with the application, or later with PUT, which replaces it while no
payment for the application is sent or settled (intake knows that from its projection of
grantline.payments, services.intake.domain). The full account number is stored here and travels
only in `application.received` and `payee.updated`; every answer shows it masked (`****0123`)
except to payment officers, and no log line carries it.
"""
