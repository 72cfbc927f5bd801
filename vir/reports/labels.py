"""What a person reads in a report instead of a code: Dutch labels (English on request).

Audit actions carry their Dutch label in their own catalogue
(:mod:`vir.audit.actions`). The other codes a report can contain — consultation
purposes (``vir.services.consultations.Purpose``), withdrawal reasons
(``vir.domain.signals.WithdrawalReason`` and the operator's ``PARTICIPATION_ENDED``),
organisation categories (``vir.domain.organisations.Category``), refusal reasons
(``reason_code`` of an error class, ``vir.services.refusals``) and the anomaly flags of
the privacy report — are labelled here, keyed by the code. ``vir.reports`` may not
import the services, so the tables are keyed by string;
``tests/unit/reports/test_labels.py`` fails when a table and its enum disagree.

A code that is not in a table (an entry written by an earlier version) is shown as
itself: a report never hides what the log holds.

Also here: months (``januari 2026``) and periods. A report's period is ``[from, to)``
in the API and the JSON; a person reads the last day: ``1 januari t/m 31 oktober 2026``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from vir.audit.actions import Action

__all__ = [
    "CATEGORIES",
    "CATEGORY_GROUPS",
    "FLAGS",
    "PURPOSES",
    "REFUSALS",
    "WITHDRAWALS",
    "Language",
    "action_label",
    "category_label",
    "date_text",
    "flag_sentence",
    "flag_title",
    "label",
    "month_label",
    "number",
    "period_label",
    "period_text",
]

Language = Literal["nl", "en"]
# Reports are for Dutch readers: local time is Dutch time, whatever zone the host is in.
_AMSTERDAM: Final = ZoneInfo("Europe/Amsterdam")

PURPOSES: Final[Mapping[str, tuple[str, str]]] = {
    "triage": ("Triage (beoordelen wat een melding nodig heeft)", "Triage"),
    "safety_assessment": ("Veiligheidsbeoordeling", "Safety assessment"),
    "investigation": ("Onderzoek", "Investigation"),
    "advice": ("Advies aan een professional", "Advice to a professional"),
}

WITHDRAWALS: Final[Mapping[str, tuple[str, str]]] = {
    "risk_ended": ("risico voorbij", "risk ended"),
    "unjustified": ("ten onrechte gemeld", "unjustified"),
    "objection": ("bezwaar", "objection"),
    "correction": ("correctie", "correction"),
    "deceased": ("overleden", "deceased"),
    # vir.domain.signals.PARTICIPATION_ENDED: the organisation left the index.
    "participation_ended": ("deelname organisatie beëindigd", "organisation left"),
}

CATEGORIES: Final[Mapping[str, tuple[str, str]]] = {
    "youth_care": ("Jeugdhulp", "Youth care"),
    "veilig_thuis": ("Veilig Thuis", "Veilig Thuis"),
    "jgz": ("Jeugdgezondheidszorg", "Youth health care"),
    "ggz": ("GGZ", "Mental health care"),
    "addiction_care": ("Verslavingszorg", "Addiction care"),
    "disability_care": ("Gehandicaptenzorg", "Disability care"),
    "gp": ("Huisartsen", "General practitioners"),
    "hospital_emergency": ("Spoedeisende hulp", "Emergency departments"),
    "education": ("Onderwijs", "Education"),
    "leerplicht_rmc": ("Leerplicht en RMC", "Compulsory education and RMC"),
    "wmo_provider": ("Wmo-aanbieders", "Wmo providers"),
    "credit_bank": ("Kredietbank", "Credit bank"),
    "police": ("Politie", "Police"),
    "halt": ("Halt", "Halt"),
    "raad_kinderbescherming": ("Raad voor de Kinderbescherming", "Child Protection Board"),
    "childcare": ("Kinderopvang", "Childcare"),
    "midwifery": ("Verloskunde en kraamzorg", "Midwifery and maternity care"),
    "probation": ("Reclassering", "Probation"),
    "social_work": ("Maatschappelijk werk", "Social work"),
    "youth_welfare": ("Jongerenwerk", "Youth work"),
    "neighbourhood_team": ("Wijkteam", "Neighbourhood team"),
    "municipality": ("Gemeente", "Municipality"),
    "index_operator": ("Beheerder van de verwijsindex", "Index operator"),
    "totaal": ("Totaal", "Total"),
}

# The monitor's coarser rows: groups of categories (vir.reports.aggregation).
CATEGORY_GROUPS: Final[Mapping[str, tuple[str, str]]] = {
    "schooling": (
        "Onderwijs, leerplicht en kinderopvang",
        "Education, school attendance and childcare",
    ),
    "care": ("Zorg", "Health care"),
    "youth_and_safety": ("Jeugdhulp en veiligheid", "Youth care and safety"),
    "support": ("Sociaal domein", "Social support"),
}

# Refusal reasons are the reason_code of the error that refused the request, "overflow"
# for a minute's refusals past the cap (vir.services.refusals), "invalid_input" for a
# request the API could not read (vir.api.errors; the reports count it as input_error),
# at a key holder the code of a refused access token (TokenRefused.code), and in the
# portal the reason of a refused request or sign-in (vir.portal; the report's endpoint
# "portal" or "portal sign-in").
REFUSALS: Final[Mapping[str, tuple[str, str]]] = {
    "vir_error": ("Fout in de dienst", "Service error"),
    "configuration_error": ("Dienst onjuist ingesteld", "Service misconfigured"),
    "input_error": ("Ongeldige invoer", "Invalid input"),
    "invalid_input": ("Ongeldige invoer", "Invalid input"),
    "invalid_element": ("Ongeldig pseudoniem", "Invalid pseudonym"),
    "authentication_error": ("Afzender niet vast te stellen", "Caller not identified"),
    "no_client_certificate": ("Geen certificaat getoond", "No client certificate"),
    "certificate_not_valid_now": ("Certificaat niet (meer) geldig", "Certificate not valid now"),
    "certificate_not_for_client_auth": (
        "Certificaat niet voor aanmelden bedoeld",
        "Certificate not for client authentication",
    ),
    "forwarded_certificate_not_trusted": (
        "Doorgegeven certificaat niet vertrouwd",
        "Forwarded certificate not trusted",
    ),
    "token_refused": ("Toegangstoken niet geaccepteerd", "Access token refused"),
    "token_format": ("Toegangstoken onleesbaar", "Access token malformed"),
    "token_algorithm": ("Toegangstoken met een niet toegestaan algoritme", "Token algorithm"),
    "token_type": ("Geen toegangstoken (verkeerde soort token)", "Not an access token"),
    "token_issuer": ("Toegangstoken van een niet vertrouwde uitgever", "Token issuer"),
    "token_signature": ("Handtekening van het toegangstoken klopt niet", "Token signature"),
    "token_audience": ("Toegangstoken voor een andere dienst", "Token audience"),
    "token_expired": ("Toegangstoken verlopen", "Access token expired"),
    "token_time": ("Toegangstoken (nog) niet geldig", "Token not valid yet"),
    "token_claims": ("Toegangstoken onvolledig", "Token claims incomplete"),
    "token_client": ("Toegangstoken voor een andere toepassing", "Token of another client"),
    "assurance_level": ("Inlogniveau niet hoog genoeg", "Assurance level too low"),
    "organisation": (
        "Organisatie van het toegangstoken onbekend",
        "Access token's organisation unknown",
    ),
    "provider_unreachable": ("Inlogdienst niet bereikbaar", "Identity provider unreachable"),
    "provider_metadata": (
        "Gegevens van de inlogdienst onbruikbaar",
        "Identity provider metadata unusable",
    ),
    "provider_keys": ("Sleutels van de inlogdienst onbruikbaar", "Identity provider keys unusable"),
    "provider_answer": ("Antwoord van de inlogdienst onbruikbaar", "Identity provider answer"),
    "access_denied": ("Geen toegang", "Access denied"),
    "unknown_organisation": ("Onbekende organisatie", "Unknown organisation"),
    "unknown_certificate": ("Onbekend certificaat", "Unknown certificate"),
    "certificate_revoked": ("Certificaat ingetrokken", "Certificate revoked"),
    "not_permitted": ("Niet toegestaan voor deze organisatie of rol", "Not permitted"),
    "outside_region": ("Buiten de eigen regio", "Outside the region"),
    "not_found": ("Niet gevonden", "Not found"),
    "conflict": ("In strijd met wat al is vastgelegd", "Conflict"),
    "second_signal_on_person": (
        "Tweede melding van dezelfde organisatie op een jongere",
        "Second signal on the same young person",
    ),
    "rekey_blocked": ("Sleutelwissel wacht op ongeldige opgeslagen waarden", "Rekey blocked"),
    "rate_limited": ("Te veel verzoeken (limiet bereikt)", "Rate limited"),
    "log_inconsistent": ("Auditlog klopt niet meer", "Audit log inconsistent"),
    "write_not_committed": ("Niet opgeslagen", "Write not committed"),
    "crypto_error": ("Cryptografische fout", "Cryptographic error"),
    "overflow": ("Overige weigeringen in dezelfde minuut", "Further refusals in the minute"),
    # The portal's own (vir.portal: a signed-in person's request, and sign-in).
    "invalid": ("Ongeldige invoer in een formulier", "Invalid form input"),
    "forbidden": ("Geen toegang tot dit onderdeel", "Forbidden"),
    "csrf": ("Formulier verlopen of niet van het portaal", "Stale or cross-site form"),
    "unexpected_field": ("Formulier met een onbekend veld", "Form with an unexpected field"),
    "form_too_large": ("Formulier groter dan toegestaan", "Form too large"),
    "malformed_form": ("Formulier dat niet te lezen was", "Unreadable form"),
    "bad_cursor": ("Ongeldige verwijzing naar een pagina van een lijst", "Invalid page cursor"),
    "download_handle": ("Download niet (meer) beschikbaar", "Download no longer available"),
    "refused": ("Geweigerd", "Refused"),
    "refusal_cap": (
        "Te veel geweigerde verzoeken in een minuut (de rest niet apart gelogd)",
        "Refusal cap reached in the minute (the rest not itemised)",
    ),
    "not_configured": ("Inloggen niet ingesteld voor de organisatie", "Sign-in not configured"),
    "unsealed": ("Inloggeheim van de organisatie onversleuteld", "Sign-in secret not sealed"),
    "secret": ("Inloggeheim van de organisatie niet te openen", "Sign-in secret unusable"),
    "provider_denied": ("Inloggen afgebroken bij de inlogdienst", "Sign-in denied at provider"),
    "provider_refused": ("Inlogdienst weigerde de code", "Identity provider refused the code"),
    "no_id_token": ("Geen identiteitsbewijs van de inlogdienst", "No ID token"),
    "nonce": ("Aanmelding hoort niet bij deze sessie", "Nonce mismatch"),
    "id_token_signature": (
        "Handtekening van het identiteitsbewijs klopt niet",
        "ID token signature",
    ),
    "id_token_issuer": ("Identiteitsbewijs van een niet vertrouwde uitgever", "ID token issuer"),
    "id_token_audience": ("Identiteitsbewijs voor een andere dienst", "ID token audience"),
    "id_token_expired": ("Identiteitsbewijs verlopen", "ID token expired"),
    "id_token_time": ("Identiteitsbewijs (nog) niet geldig", "ID token not valid yet"),
    "person_claim": ("Identiteitsbewijs noemt geen persoon", "No person in the ID token"),
    "no_role": ("Geen rol in het portaal", "No portal role"),
}

FLAGS: Final[Mapping[str, tuple[str, str]]] = {
    "registration_surge": ("Piek in registraties in de laatste maand", "Registration surge"),
    "consultations_without_registrations": (
        "Raadplegingen zonder eigen registraties",
        "Consultations without registrations",
    ),
    "evaluation_burst": (
        "Piek in pseudonimiseringen binnen één uur",
        "Pseudonymisation burst within an hour",
    ),
    "quick_withdrawals": (
        "Meldingen kort na registratie ingetrokken",
        "Signals withdrawn shortly after registration",
    ),
    "lookup_burst": (
        "Piek in inzage- en verwijderverzoeken binnen één minuut",
        "Burst of access and erasure lookups within a minute",
    ),
    "rate_limited": ("Verzoeken geweigerd wegens de limiet", "Requests refused by a rate limit"),
}

_MONTHS: Final = {
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def label(table: Mapping[str, tuple[str, str]], code: str, lang: Language = "nl") -> str:
    """The label of ``code`` in ``table``; the code itself when the table lacks it."""
    labels = table.get(code)
    if labels is None:
        return code
    return labels[0] if lang == "nl" else labels[1]


def action_label(code: str, lang: Language = "nl") -> str:
    """An audit action's label (vir.audit.actions); the code itself when the catalogue no
    longer has it (an entry written by an earlier version)."""
    try:
        action = Action(code)
    except ValueError:
        return code
    return action.label_nl if lang == "nl" else action.meaning.rstrip(".")


def category_label(code: str, lang: Language = "nl") -> str:
    """An organisation category, or a group of them (the monitor's rows)."""
    return label(CATEGORIES if code in CATEGORIES else CATEGORY_GROUPS, code, lang)


def flag_title(kind: str, lang: Language = "nl") -> str:
    return label(FLAGS, kind, lang)


def date_text(value: dt.date, lang: Language = "nl") -> str:
    """``22 november 2026`` (``22 November 2026``)."""
    return f"{value.day} {_MONTHS[lang][value.month - 1]} {value.year}"


def period_label(period: str, lang: Language = "nl") -> str:
    """A month (``2026-03``: ``maart 2026``), quarter (``2026-Q1``: ``1e kwartaal 2026``)
    or year (``2026``) as a reader writes it; anything else as itself."""
    year, _, part = period.partition("-")
    if year.isdigit() and part[:1] == "Q" and part[1:] in ("1", "2", "3", "4"):
        return f"{part[1]}e kwartaal {year}" if lang == "nl" else f"Q{part[1]} {year}"
    return month_label(period, lang)


def month_label(month: str, lang: Language = "nl") -> str:
    """``2026-03`` as ``maart 2026``; anything else as itself."""
    year, _, number = month.partition("-")
    if not (year.isdigit() and number.isdigit() and 1 <= int(number) <= 12):
        return month
    return f"{_MONTHS[lang][int(number) - 1]} {year}"


def period_text(start: dt.date, end: dt.date, lang: Language = "nl") -> str:
    """The period ``[start, end)`` as a reader says it, with its last day:
    ``1 januari t/m 31 oktober 2026`` (the year once when both days share it)."""
    last = end - dt.timedelta(days=1)
    first = date_text(start, lang)
    if start.year == last.year:
        first = first.rsplit(" ", 1)[0]
    joiner = "t/m" if lang == "nl" else "to"
    return f"{first} {joiner} {date_text(last, lang)}"


def _moment(value: object, lang: Language) -> str:
    """An RFC 3339 moment in Dutch local time, to the minute."""
    text = str(value)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    local = moment.astimezone(_AMSTERDAM)
    return f"{date_text(local.date(), lang)} {local:%H:%M}"


def number(value: object, lang: Language = "nl") -> str:
    """A number as its reader writes it: a decimal comma in Dutch (``1,5``)."""
    if isinstance(value, float):
        text = f"{value:.1f}" if not value.is_integer() else str(int(value))
        return text.replace(".", ",") if lang == "nl" else text
    return str(value)


def _count(value: object, one: str, many: str) -> str:
    return f"{value} {one if value == 1 else many}"


def _evaluation_burst(f: Mapping[str, Any], lang: Language) -> str:
    """How many elements in the busiest hour, and how that was counted
    (``vir.services.reports``: ``at_least``, ``per_threshold``; older reports: neither)."""
    nl = lang == "nl"
    counted = f.get("counted")
    elements = f"{f['elements']} " + (
        "gepseudonimiseerde elementen" if nl else "pseudonymised elements"
    )
    if counted == "at_least":
        elements = f"ten minste {elements}" if nl else f"at least {elements}"
    text = (
        f"{elements} binnen één uur vanaf {_moment(f['from'], lang)} (meer dan {f['limit']})"
        if nl
        else f"{elements} within an hour from {_moment(f['from'], lang)} (more than {f['limit']})"
    )
    if counted == "per_threshold":
        text += (
            f", geschat: de evaluaties van de sleutelhouders samen gedeeld door {f['threshold']}"
            if nl
            else f", estimated: the key holders' evaluations together divided by {f['threshold']}"
        )
    return text


def flag_sentence(flag: Mapping[str, Any], lang: Language = "nl") -> str:
    """A flag as a sentence with its figures, opening with the organisation's name:
    ``Veilig Thuis T: 30 raadplegingen zonder eigen registraties in de periode``."""
    name = flag.get("name") or flag.get("oin") or ("(systeem)" if lang == "nl" else "(system)")
    f = flag["figures"]
    kind = flag["kind"]
    nl = lang == "nl"
    if kind == "registration_surge":
        text = (
            f"{_count(f['registrations'], 'registratie', 'registraties')} in "
            f"{month_label(str(f['month']))}, tegen een mediaan van "
            f"{number(f['median'], lang)} per maand"
            if nl
            else f"{f['registrations']} registrations in {month_label(str(f['month']), 'en')}, "
            f"against a median of {number(f['median'], lang)} a month"
        )
    elif kind == "consultations_without_registrations":
        text = (
            f"{_count(f['consultations'], 'raadpleging', 'raadplegingen')} zonder eigen "
            "registraties in de periode"
            if nl
            else f"{f['consultations']} consultations and no registrations of its own"
        )
    elif kind == "evaluation_burst":
        text = _evaluation_burst(f, lang)
    elif kind == "quick_withdrawals":
        reasons = ", ".join(
            f"{label(WITHDRAWALS, code, lang)}: {count}"
            for code, count in f.items()
            if code not in ("signals", "within_minutes")
        )
        text = (
            f"{_count(f['signals'], 'melding', 'meldingen')} binnen {f['within_minutes']} "
            f"minuten na registratie ingetrokken (reden {reasons})"
            if nl
            else f"{f['signals']} signals withdrawn within {f['within_minutes']} minutes of "
            f"registration (reason {reasons})"
        )
    elif kind == "lookup_burst":
        text = (
            f"{f['lookups']} inzage- en verwijderverzoeken binnen één minuut vanaf "
            f"{_moment(f['from'], lang)} (meer dan {f['limit']})"
            if nl
            else f"{f['lookups']} access and erasure lookups within a minute from "
            f"{_moment(f['from'], lang)} (more than {f['limit']})"
        )
    elif kind == "rate_limited":
        text = (
            f"{_count(f['refusals'], 'verzoek', 'verzoeken')} geweigerd wegens de limiet "
            f"(op {f['endpoints']})"
            if nl
            else f"{f['refusals']} requests refused by a rate limit (on {f['endpoints']})"
        )
    else:  # a flag of a later version: its title and figures as they are
        text = "; ".join(f"{key} {value}" for key, value in f.items())
        return f"{name}: {flag_title(kind, lang)}: {text}"
    return f"{name}: {text}"
