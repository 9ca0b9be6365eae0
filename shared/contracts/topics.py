"""Topic names and which event type goes where (creation: `python -m shared.messaging.topics`)."""

from __future__ import annotations

APPLICATIONS = "grantline.applications"
ASSESSMENTS = "grantline.assessments"
AWARDS = "grantline.awards"
ANNOUNCEMENTS = "grantline.announcements"
PARTNERS = "grantline.partners"
DLQ = "grantline.dlq"

ALL_TOPICS = (APPLICATIONS, ASSESSMENTS, AWARDS, ANNOUNCEMENTS, PARTNERS, DLQ)

TOPIC_FOR_TYPE = {
    "application.received": APPLICATIONS,
    "application.assessed": ASSESSMENTS,
    "award.decided": AWARDS,
    "award.revoked": AWARDS,
    "announcement.published": ANNOUNCEMENTS,
    "award.finalized": ANNOUNCEMENTS,
    "partner.registered": PARTNERS,
    "event.dead_lettered": DLQ,
}
