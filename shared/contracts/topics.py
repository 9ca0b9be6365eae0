"""Topic names and which event type goes where (creation: `python -m shared.messaging.topics`)."""

from __future__ import annotations

APPLICATIONS = "grantline.applications"
ASSESSMENTS = "grantline.assessments"
AWARDS = "grantline.awards"
ANNOUNCEMENTS = "grantline.announcements"
PARTNERS = "grantline.partners"
POLICY = "grantline.policy"
PAYMENTS = "grantline.payments"
DLQ = "grantline.dlq"

ALL_TOPICS = (APPLICATIONS, ASSESSMENTS, AWARDS, ANNOUNCEMENTS, PARTNERS, POLICY, PAYMENTS, DLQ)

TOPIC_FOR_TYPE = {
    "application.received": APPLICATIONS,
    "application.assessed": ASSESSMENTS,
    "award.decided": AWARDS,
    "award.revoked": AWARDS,
    "award.reviewed": AWARDS,
    "announcement.published": ANNOUNCEMENTS,
    "award.finalized": ANNOUNCEMENTS,
    "objection.filed": ANNOUNCEMENTS,
    "objection.resolved": ANNOUNCEMENTS,
    "partner.registered": PARTNERS,
    "staff.registered": PARTNERS,
    "staff.deactivated": PARTNERS,
    "catalog.published": POLICY,
    "call.opened": POLICY,
    "call.closed": POLICY,
    "payee.updated": APPLICATIONS,
    "payment.ordered": PAYMENTS,
    "payment.sent": PAYMENTS,
    "payment.settled": PAYMENTS,
    "payment.failed": PAYMENTS,
    "payment.returned": PAYMENTS,
    "payment.batch_created": PAYMENTS,
    "payment.batch_approved": PAYMENTS,
    "payment.batch_sent": PAYMENTS,
    "event.dead_lettered": DLQ,
}
