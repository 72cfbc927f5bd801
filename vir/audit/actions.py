"""The catalogue of audit actions: every ``action`` an audit entry may have.

One ``Action`` member per action, and per member what it means, who performs it
(``Performer``), why it is logged (``Purpose``, after NEN 7513's reasons for
logging) and its Dutch label for reports. Emitters pass the member
(``audit_log.new_event(Action.SIGNAL_REGISTERED, ...)``), which refuses anything
else; readers (metrics, reports, the access report) compare with members. A rename
is then one edit here, and ``tests/unit/audit/test_actions.py`` fails when the
catalogue, the emitters and ``docs/audit.md`` disagree.

Entries already in a log keep the action they were written with: a stored action
that is no longer in the catalogue is read as text (``AuditEvent.action``), so
never rename a member's *value* without keeping the old value readable.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


class Performer(enum.StrEnum):
    """Who performs an action (the entry's ``organisation``/``role`` or ``actor`` says
    which one exactly)."""

    REPORTER = "reporter"  # an organisation's back office (certificate role system)
    COORDINATOR = "coordinator"  # an organisation's coordinator
    VEILIG_THUIS = "veilig_thuis"  # a Veilig Thuis organisation consulting the index
    PRIVACY_OFFICER = "privacy_officer"  # a (national) privacy officer, or the operator
    ADMIN = "admin"  # the operator, at the ``vir`` command line
    MATCHER = "matcher"  # the service's matching (actor ``matching``)
    SYSTEM = "system"  # the service itself: lifecycle runs, removals, refusals
    PERSON = "person"  # a person signed in to the portal (actor ``person:<id>``)
    # A municipality's follow-up officer: checks that matched reporters made contact.
    FOLLOW_UP_OFFICER = "follow_up_officer"


class Purpose(enum.StrEnum):
    """Why the action is logged (NEN 7513: whose processing it accounts for)."""

    CARE_COORDINATION = "care_coordination"  # the index's task: signals, matches, notices
    DATA_SUBJECT_RIGHTS = "data_subject_rights"  # access, erasure (AVG art. 15, 17)
    RETENTION = "retention"  # removal dates, archive terms (storage limitation)
    ACCOUNTABILITY = "accountability"  # supervision of the index's use: reports
    SECURITY = "security"  # refused requests, pseudonymisation volumes
    ADMINISTRATION = "administration"  # who may connect: organisations, certificates


@dataclass(frozen=True, slots=True)
class Description:
    meaning: str
    performer: Performer
    purpose: Purpose
    label_nl: str


class Action(enum.StrEnum):
    """Every audit action. The value is what the entry stores."""

    SIGNAL_REGISTERED = "signal.registered"
    SIGNAL_WITHDRAWN = "signal.withdrawn"
    SIGNAL_INFORMED = "signal.informed"
    SIGNAL_CONTACT_CHANGED = "signal.contact_changed"
    SIGNAL_REMOVAL_CHANGED = "signal.removal_changed"
    SIGNAL_EXPIRED = "signal.expired"
    SIGNAL_ARCHIVED = "signal.archived"
    SIGNAL_ERASED = "signal.erased"
    SIGNAL_DESTROYED = "signal.destroyed"
    MATCH_CREATED = "match.created"
    MATCH_MEMBER_ADDED = "match.member_added"
    MATCH_MEMBER_REMOVED = "match.member_removed"
    MATCH_ENDED = "match.ended"
    MATCH_COORDINATOR_SET = "match.coordinator_set"
    MATCH_HANDOVER_OFFERED = "match.handover_offered"
    MATCH_HANDOVER_ACCEPTED = "match.handover_accepted"
    MATCH_HANDOVER_DECLINED = "match.handover_declined"
    MATCH_FOLLOW_UP_RECORDED = "match.follow_up_recorded"
    MATCH_REMINDED = "match.reminded"
    FOLLOW_UP_OVERDUE_LISTED = "follow_up.overdue_listed"
    NOTIFICATION_CREATED = "notification.created"
    NOTIFICATIONS_READ = "notifications.read"
    DELIVERY_DELIVERED = "delivery.delivered"
    DELIVERY_DEAD = "delivery.dead"
    ARCHIVE_OFFERED = "archive.offered"
    CONSULTATION_MADE = "consultation.made"
    CONSULTATION_DISCLOSED = "consultation.disclosed"
    CONSULTATION_FEEDBACK = "consultation.feedback"
    ORGANISATIONS_LISTED = "organisations.listed"
    ACCESS_REQUESTED = "access.requested"
    ERASURE_EXECUTED = "erasure.executed"
    PERSON_DECEASED = "person.deceased"
    LIFECYCLE_RUN = "lifecycle.run"
    REPORT_GENERATED = "report.generated"
    OPRF_EVALUATE = "oprf.evaluate"
    REQUEST_REFUSED = "request.refused"
    ORGANISATION_COORDINATOR_CHANGED = "organisation.coordinator_changed"
    ADMIN_ORGANISATION_ADDED = "admin.organisation_added"
    ADMIN_ORGANISATION_REMOVED = "admin.organisation_removed"
    ORGANISATION_DELETED = "organisation.deleted"
    ADMIN_CERTIFICATE_REGISTERED = "admin.certificate_registered"
    ADMIN_CERTIFICATE_REVOKED = "admin.certificate_revoked"
    ADMIN_ADDRESS_EXCLUDED = "admin.address_excluded"
    ADMIN_ADDRESS_INCLUDED = "admin.address_included"
    ADMIN_WEBHOOK_CHANGED = "admin.webhook_changed"
    ADMIN_EMAIL_CHANGED = "admin.email_changed"
    ADMIN_DELIVERY_RETRIED = "admin.delivery_retried"
    ADMIN_COORDINATION_CHANGED = "admin.coordination_changed"
    ADMIN_OIDC_CHANGED = "admin.oidc_changed"
    ADMIN_FOLLOW_UP_CHANGED = "admin.follow_up_changed"
    PORTAL_SIGNED_IN = "portal.signed_in"
    PORTAL_SIGNED_OUT = "portal.signed_out"
    PORTAL_SIGN_IN_REFUSED = "portal.sign_in_refused"
    PORTAL_REQUEST_REFUSED = "portal.request_refused"
    KEY_REKEY_STARTED = "key.rekey_started"
    KEY_REKEY_SWITCHED = "key.rekey_switched"
    KEY_EPOCH_RETIRED = "key.epoch_retired"
    KEY_EPOCH_CREATED = "key.epoch_created"
    KEY_EPOCH_ACTIVATED = "key.epoch_activated"
    KEY_SHARE_REPAIR_JOINED = "key.share_repair_joined"
    KEY_SHARE_REPAIR_DEALT = "key.share_repair_dealt"
    KEY_SHARE_REPAIR_SUMMED = "key.share_repair_summed"
    KEY_SHARE_REPAIR_RESTORED = "key.share_repair_restored"
    KEY_GENERATION_STARTED = "key.generation_started"
    KEY_GENERATION_DEALT = "key.generation_dealt"
    KEY_GENERATION_FINISHED = "key.generation_finished"

    @property
    def description(self) -> Description:
        return CATALOGUE[self]

    @property
    def meaning(self) -> str:
        return CATALOGUE[self].meaning

    @property
    def performer(self) -> Performer:
        return CATALOGUE[self].performer

    @property
    def purpose(self) -> Purpose:
        return CATALOGUE[self].purpose

    @property
    def label_nl(self) -> str:
        return CATALOGUE[self].label_nl


class UnknownAction(ValueError):
    """An action that is not in the catalogue: a programming error, never input."""


def action_of(value: str) -> Action:
    """The catalogue member for ``value``; UnknownAction when there is none."""
    try:
        return Action(value)
    except ValueError:
        raise UnknownAction(f"{value!r} is not in the audit action catalogue") from None


_D = Description
_P = Performer
_U = Purpose
_DESCRIPTIONS: Final[dict[Action, Description]] = {
    Action.SIGNAL_REGISTERED: _D(
        "An organisation registered a signal on a young person.",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Melding gedaan",
    ),
    Action.SIGNAL_WITHDRAWN: _D(
        "The reporter withdrew its signal (with a reason code); it is archived or erased.",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Melding ingetrokken",
    ),
    Action.SIGNAL_INFORMED: _D(
        "The reporter confirmed that the young person or a parent was informed.",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Informeren van betrokkene vastgelegd",
    ),
    Action.SIGNAL_CONTACT_CHANGED: _D(
        "The reporter changed the professional's contact details on its signal.",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Contactgegevens gewijzigd",
    ),
    Action.SIGNAL_REMOVAL_CHANGED: _D(
        "The reporter set a new removal date on its signal (objects: signal, remove_on).",
        _P.REPORTER,
        _U.RETENTION,
        "Verwijderdatum gewijzigd",
    ),
    Action.SIGNAL_EXPIRED: _D(
        "A signal reached its removal date; it is archived or erased.",
        _P.SYSTEM,
        _U.RETENTION,
        "Melding verlopen (termijn bereikt)",
    ),
    Action.SIGNAL_ARCHIVED: _D(
        "A signal left the index into the archive (withdrawal or removal date).",
        _P.SYSTEM,
        _U.RETENTION,
        "Melding gearchiveerd",
    ),
    Action.SIGNAL_ERASED: _D(
        "A signal left the index without being archived.",
        _P.SYSTEM,
        _U.RETENTION,
        "Melding gewist",
    ),
    Action.SIGNAL_DESTROYED: _D(
        "An archived signal was deleted for good (end of term, erasure, death).",
        _P.SYSTEM,
        _U.RETENTION,
        "Melding vernietigd",
    ),
    Action.MATCH_CREATED: _D(
        "Signals of two or more organisations on one person or household became a match.",
        _P.MATCHER,
        _U.CARE_COORDINATION,
        "Match ontstaan",
    ),
    Action.MATCH_MEMBER_ADDED: _D(
        "A signal joined an existing match.",
        _P.MATCHER,
        _U.CARE_COORDINATION,
        "Organisatie aan match toegevoegd",
    ),
    Action.MATCH_MEMBER_REMOVED: _D(
        "A signal left a match.",
        _P.MATCHER,
        _U.CARE_COORDINATION,
        "Organisatie uit match verwijderd",
    ),
    Action.MATCH_ENDED: _D(
        "A match ended: fewer than two organisations remain.",
        _P.MATCHER,
        _U.CARE_COORDINATION,
        "Match beëindigd",
    ),
    Action.MATCH_COORDINATOR_SET: _D(
        "A match's coordinator was chosen by the regional rules (objects: match, signal).",
        _P.MATCHER,
        _U.CARE_COORDINATION,
        "Regisseur van match bepaald",
    ),
    Action.MATCH_HANDOVER_OFFERED: _D(
        "A match's coordinator offered the role to another participant (objects: match, "
        "signal, to).",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Regie ter overdracht aangeboden",
    ),
    Action.MATCH_HANDOVER_ACCEPTED: _D(
        "A participant accepted the coordinator's role offered to it (objects: match, signal).",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Regieoverdracht aanvaard",
    ),
    Action.MATCH_HANDOVER_DECLINED: _D(
        "A participant declined the coordinator's role offered to it (objects: match, signal).",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Regieoverdracht afgewezen",
    ),
    Action.MATCH_FOLLOW_UP_RECORDED: _D(
        "A participant recorded a content-free follow-up of a match (objects: match, event, with).",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Opvolging van match vastgelegd",
    ),
    Action.MATCH_REMINDED: _D(
        "A municipality's follow-up officer reminded the participants of its region without "
        "confirmed contact in an overdue match (objects: match, region, organisations).",
        _P.FOLLOW_UP_OFFICER,
        _U.CARE_COORDINATION,
        "Herinnering opvolging match verstuurd",
    ),
    Action.FOLLOW_UP_OVERDUE_LISTED: _D(
        "A municipality's follow-up officer listed its region's matches without confirmed "
        "contact (objects: region, days, count).",
        _P.FOLLOW_UP_OFFICER,
        _U.ACCOUNTABILITY,
        "Overzicht opvolging matches opgevraagd",
    ),
    Action.NOTIFICATION_CREATED: _D(
        "A notification was made for an organisation about its signal (objects: type).",
        _P.MATCHER,
        _U.CARE_COORDINATION,
        "Matchbericht verstuurd",
    ),
    Action.NOTIFICATIONS_READ: _D(
        "An organisation fetched its notifications (objects: count).",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Matchberichten opgehaald",
    ),
    Action.DELIVERY_DELIVERED: _D(
        "A notification was delivered on a channel (objects: notification, channel, attempts).",
        _P.SYSTEM,
        _U.CARE_COORDINATION,
        "Matchbericht afgeleverd",
    ),
    Action.DELIVERY_DEAD: _D(
        "Delivering a notification on a channel was given up (objects: notification, "
        "channel, attempts, error code).",
        _P.SYSTEM,
        _U.CARE_COORDINATION,
        "Matchbericht niet afgeleverd",
    ),
    Action.ARCHIVE_OFFERED: _D(
        "A new reporter was shown an archived signal of another organisation.",
        _P.MATCHER,
        _U.CARE_COORDINATION,
        "Gearchiveerde melding getoond aan nieuwe melder",
    ),
    Action.CONSULTATION_MADE: _D(
        "Veilig Thuis consulted the index on a person (with a purpose).",
        _P.VEILIG_THUIS,
        _U.CARE_COORDINATION,
        "Raadpleging door Veilig Thuis",
    ),
    Action.CONSULTATION_DISCLOSED: _D(
        "A signal was shown to Veilig Thuis in a consultation.",
        _P.VEILIG_THUIS,
        _U.CARE_COORDINATION,
        "Melding getoond bij raadpleging door Veilig Thuis",
    ),
    Action.CONSULTATION_FEEDBACK: _D(
        "Veilig Thuis told the reporters a consultation found where its involvement "
        "stands (objects: consultation, code, notified).",
        _P.VEILIG_THUIS,
        _U.CARE_COORDINATION,
        "Terugkoppeling door Veilig Thuis",
    ),
    Action.ORGANISATIONS_LISTED: _D(
        "A professional listed the organisations connected in their region (objects: count).",
        _P.REPORTER,
        _U.CARE_COORDINATION,
        "Aangesloten organisaties opgevraagd",
    ),
    Action.ACCESS_REQUESTED: _D(
        "A privacy officer looked up what is held on a person (access request).",
        _P.PRIVACY_OFFICER,
        _U.DATA_SUBJECT_RIGHTS,
        "Inzageverzoek ontvangen",
    ),
    Action.ERASURE_EXECUTED: _D(
        "A privacy officer erased a person's signals (erasure or objection).",
        _P.PRIVACY_OFFICER,
        _U.DATA_SUBJECT_RIGHTS,
        "Verwijderverzoek uitgevoerd",
    ),
    Action.PERSON_DECEASED: _D(
        "A death notice removed every signal on a person.",
        _P.PRIVACY_OFFICER,
        _U.DATA_SUBJECT_RIGHTS,
        "Overlijden verwerkt",
    ),
    Action.LIFECYCLE_RUN: _D(
        "A lifecycle run finished (objects: counts archived, erased, destroyed).",
        _P.SYSTEM,
        _U.RETENTION,
        "Bewaartermijnen verwerkt",
    ),
    Action.REPORT_GENERATED: _D(
        "A privacy, monitor or participation report was made (objects: report, period).",
        _P.PRIVACY_OFFICER,
        _U.ACCOUNTABILITY,
        "Rapportage gemaakt",
    ),
    Action.OPRF_EVALUATE: _D(
        "An organisation had blinded elements evaluated (count only, never the elements).",
        _P.REPORTER,
        _U.SECURITY,
        "Pseudonimisering uitgevoerd",
    ),
    Action.REQUEST_REFUSED: _D(
        "Requests were refused, summed per key and minute (objects: count, endpoint).",
        _P.SYSTEM,
        _U.SECURITY,
        "Verzoek geweigerd",
    ),
    Action.ORGANISATION_COORDINATOR_CHANGED: _D(
        "An organisation's coordinator was appointed, changed or removed.",
        _P.COORDINATOR,
        _U.CARE_COORDINATION,
        "Coördinator gewijzigd",
    ),
    Action.ADMIN_ORGANISATION_ADDED: _D(
        "The operator registered an organisation.",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Organisatie aangemeld",
    ),
    Action.ADMIN_ORGANISATION_REMOVED: _D(
        "The operator offboarded an organisation: certificates revoked, signals withdrawn "
        "(objects: signals, certificates), delivery stopped; a tombstone stays while "
        "archived signals or unexpired certificates of it are kept.",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Organisatie afgemeld",
    ),
    Action.ORGANISATION_DELETED: _D(
        "An organisation that left was deleted with its certificates, once no archived "
        "signal or unexpired certificate of it was kept (objects: certificates).",
        _P.SYSTEM,
        _U.RETENTION,
        "Organisatie verwijderd",
    ),
    Action.ADMIN_CERTIFICATE_REGISTERED: _D(
        "The operator registered a client certificate (with its role).",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Certificaat geregistreerd",
    ),
    Action.ADMIN_CERTIFICATE_REVOKED: _D(
        "The operator revoked a client certificate.",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Certificaat ingetrokken",
    ),
    Action.ADMIN_ADDRESS_EXCLUDED: _D(
        "The operator excluded an address from household matching (a shelter, an institution).",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Adres uitgesloten van matchen",
    ),
    Action.ADMIN_ADDRESS_INCLUDED: _D(
        "An address was taken off the exclusion list; household matching through it resumes.",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Adresuitsluiting opgeheven",
    ),
    Action.ADMIN_WEBHOOK_CHANGED: _D(
        "The operator set or disabled an organisation's webhook (objects: state; never "
        "the URL or the secret).",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Webhook gewijzigd",
    ),
    Action.ADMIN_EMAIL_CHANGED: _D(
        "The operator turned e-mail to an organisation's professionals on or off, or set "
        "its language (objects: enabled, language).",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "E-mailinstelling gewijzigd",
    ),
    Action.ADMIN_DELIVERY_RETRIED: _D(
        "The operator put deliveries back in the outbox (objects: count).",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Aflevering opnieuw aangeboden",
    ),
    Action.ADMIN_COORDINATION_CHANGED: _D(
        "The operator set a region's rules for choosing a match's coordinator (objects: "
        "region, categories).",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Regieregels van regio gewijzigd",
    ),
    Action.ADMIN_FOLLOW_UP_CHANGED: _D(
        "The operator set after how many days a region's matches without confirmed contact "
        "are overdue (objects: region, days).",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Opvolgtermijn van regio gewijzigd",
    ),
    Action.ADMIN_OIDC_CHANGED: _D(
        "The operator set or removed how an organisation's people sign in to the portal "
        "(objects: state, issuer host; never the client secret).",
        _P.ADMIN,
        _U.ADMINISTRATION,
        "Inlogkoppeling gewijzigd",
    ),
    Action.PORTAL_SIGNED_IN: _D(
        "A person signed in to the portal with their organisation's identity provider "
        "(actor: the person's pseudonymous id; role: their portal roles).",
        _P.PERSON,
        _U.SECURITY,
        "Ingelogd op het portaal",
    ),
    Action.PORTAL_SIGNED_OUT: _D(
        "A person signed out of the portal.",
        _P.PERSON,
        _U.SECURITY,
        "Uitgelogd van het portaal",
    ),
    Action.PORTAL_SIGN_IN_REFUSED: _D(
        "A sign-in to the portal was refused (reason: a fixed code, such as "
        "assurance_level, organisation or id_token_signature).",
        _P.SYSTEM,
        _U.SECURITY,
        "Inloggen op het portaal geweigerd",
    ),
    Action.PORTAL_REQUEST_REFUSED: _D(
        "A signed-in person's request was refused (reason: csrf, forbidden, not_found, "
        "invalid, conflict, unexpected_field, form_too_large, malformed_form, bad_cursor, "
        "rate_limited; "
        "refusal_cap once a minute past the person's cap, with objects.refusals; objects: "
        "the signal or match id asked for, the field refused).",
        _P.PERSON,
        _U.SECURITY,
        "Verzoek in het portaal geweigerd",
    ),
    Action.KEY_REKEY_STARTED: _D(
        "The operator started converting the stored pseudonyms to a new key epoch "
        "(objects: from_epoch, to_epoch, signer of the rekey token; never the factor).",
        _P.ADMIN,
        _U.SECURITY,
        "Sleutelwissel gestart",
    ),
    Action.KEY_REKEY_SWITCHED: _D(
        "Every stored pseudonym was converted and the new key epoch became current; the "
        "old one is accepted until retire_after (objects: epochs, rows).",
        _P.ADMIN,
        _U.SECURITY,
        "Sleutelwissel voltooid",
    ),
    Action.KEY_EPOCH_RETIRED: _D(
        "A replaced key epoch's grace period ended: the index refuses its pseudonyms and "
        "erases the conversion factor, the key holder its key (objects: epoch).",
        _P.SYSTEM,
        _U.SECURITY,
        "Oude sleutelperiode beëindigd",
    ),
    Action.KEY_EPOCH_CREATED: _D(
        "The key holder made the next key epoch, k' = δ·k, not yet served, and wrote the "
        "rekey token for the index (objects: epoch; never a key or δ).",
        _P.ADMIN,
        _U.SECURITY,
        "Nieuwe sleutelperiode aangemaakt",
    ),
    Action.KEY_EPOCH_ACTIVATED: _D(
        "The key holder now evaluates under this key epoch; the one before is kept for its "
        "grace period (objects: epoch).",
        _P.ADMIN,
        _U.SECURITY,
        "Nieuwe sleutelperiode in gebruik",
    ),
    Action.KEY_SHARE_REPAIR_JOINED: _D(
        "A key holder joined the repair of a lost holder's share as a helper: it published "
        "its box key and public shares (objects: request, index, holder, helpers, epochs; "
        "never a share).",
        _P.ADMIN,
        _U.SECURITY,
        "Deelname aan sleutelherstel",
    ),
    Action.KEY_SHARE_REPAIR_DEALT: _D(
        "A helper split its term of the lost holder's share into sealed random parts, one "
        "per helper (objects: request, index, holder, helpers, epochs; never a part).",
        _P.ADMIN,
        _U.SECURITY,
        "Sleutelherstel: delen verdeeld",
    ),
    Action.KEY_SHARE_REPAIR_SUMMED: _D(
        "A helper added the parts sealed to it and sealed the sum to the new holder; its "
        "box key is destroyed (objects: request, index, holder, helpers, epochs).",
        _P.ADMIN,
        _U.SECURITY,
        "Sleutelherstel: delen opgeteld",
    ),
    Action.KEY_SHARE_REPAIR_RESTORED: _D(
        "A new key holder stored the share of the lost holder it replaces, checked against "
        "the helpers' public shares, with their epochs (objects: request, index, holder, "
        "helpers, epochs; never a share).",
        _P.ADMIN,
        _U.SECURITY,
        "Sleutelherstel voltooid",
    ),
    Action.KEY_GENERATION_STARTED: _D(
        "A key holder started a distributed key generation: it published its box key for "
        "the run and the digest of its polynomial's commitments (objects: run, holder, "
        "threshold; never a key).",
        _P.ADMIN,
        _U.SECURITY,
        "Sleutelgeneratie gestart",
    ),
    Action.KEY_GENERATION_DEALT: _D(
        "A key holder dealt the random polynomial it drew at start: commitments, and one "
        "sealed value per holder (objects: run, holder, threshold; never a value).",
        _P.ADMIN,
        _U.SECURITY,
        "Sleutelgeneratie: bijdrage verdeeld",
    ),
    Action.KEY_GENERATION_FINISHED: _D(
        "A key holder stored its share of the jointly generated key as epoch 1, every "
        "qualified dealer's value checked against its commitments; its box key and "
        "polynomial are destroyed (objects: run, holder, threshold, public record digest, "
        "the excluded dealers; never a share).",
        _P.ADMIN,
        _U.SECURITY,
        "Sleutelgeneratie voltooid",
    ),
}
# Checked when the module loads: a member without a description cannot be released.
if set(_DESCRIPTIONS) != set(Action):  # pragma: no cover - guarded by the test too
    raise RuntimeError(f"undescribed audit actions: {sorted(set(Action) - set(_DESCRIPTIONS))}")
CATALOGUE: Final[Mapping[Action, Description]] = MappingProxyType(_DESCRIPTIONS)


def markdown_table() -> str:
    """The catalogue as the Markdown table in ``docs/audit.md``."""
    lines = [
        "| action | performed by | purpose | meaning | label (nl) |",
        "|---|---|---|---|---|",
    ]
    for action in Action:
        d = action.description
        lines.append(
            f"| `{action.value}` | {d.performer.value} | {d.purpose.value} "
            f"| {d.meaning} | {d.label_nl} |"
        )
    return "\n".join(lines) + "\n"
