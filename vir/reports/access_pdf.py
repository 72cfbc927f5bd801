"""The data-subject access report (inzage, AVG art. 15) as a Dutch PDF.

A privacy officer hands this document to the person who asked what the verwijsindex
holds about them. :func:`render_access_report` takes the JSON document the access
API returns and prints, in plain Dutch:

- what the verwijsindex is, and what it does not hold (no reason, no risk, no case
  content, never the BSN: only pseudonyms, which the report does not show);
- every signal (melding) about the person: organisation, professional and contact
  details, dates, status, whether the information duty was fulfilled, and its matches;
- signals in which the person is registered as a parent;
- consultations by Veilig Thuis;
- the log entries (logboek) about those signals, in Dutch local time;
- the rights of access, correction, erasure and objection, and whom to ask.

An empty section says "Geen." rather than disappearing, so the reader sees that it
was looked at. Codes (organisation categories, actions, purposes, ...) are translated;
a code this module does not know prints as itself rather than being hidden.

The input carries no pseudonym and this module adds nothing to it: the report shows
exactly the fields listed in :func:`render_access_report`. The PDF's creation date is
the report's ``generated_at``, so the same document always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from vir.audit.actions import Action
from vir.domain.dates import parse_iso_date, parse_timestamp
from vir.domain.feedback import LABELS as FEEDBACK_LABELS
from vir.reports.pdf import AMSTERDAM, Document, dutch_date, dutch_datetime

__all__ = [
    "ACTION_LABELS",
    "CATEGORY_LABELS",
    "PURPOSE_LABELS",
    "TITLE",
    "render_access_report",
]

TITLE: Final = "Overzicht van gegevens in de verwijsindex (inzageverzoek, AVG art. 15)"

CATEGORY_LABELS: Final[Mapping[str, str]] = {
    "education": "onderwijs",
    "gp": "huisarts",
    "youth_care": "jeugdhulp",
    "veilig_thuis": "Veilig Thuis",
    "police": "politie",
    "jgz": "jeugdgezondheidszorg",
    "ggz": "geestelijke gezondheidszorg",
    "addiction_care": "verslavingszorg",
    "disability_care": "gehandicaptenzorg",
    "hospital_emergency": "spoedeisende hulp",
    "leerplicht_rmc": "leerplicht/RMC",
    "wmo_provider": "Wmo-aanbieder",
    "credit_bank": "gemeentelijke kredietbank",
    "halt": "Halt",
    "raad_kinderbescherming": "Raad voor de Kinderbescherming",
    "childcare": "kinderopvang",
    "midwifery": "verloskunde",
    "probation": "reclassering",
    "social_work": "maatschappelijk werk",
    "youth_welfare": "jongerenwerk",
    "neighbourhood_team": "wijkteam",
    "municipality": "gemeente",
}

# Actions no emitter writes today that an older log may hold: kept readable.
_EARLIER_ACTIONS: Final[Mapping[str, str]] = {
    "match.joined": "Organisatie aan match toegevoegd",
    "match.left": "Organisatie uit match vertrokken",
    "match.contact_changed": "Contactgegevens in match gewijzigd",
    "match.historical": "Gearchiveerde melding getoond aan nieuwe melder",
    "notification.read": "Matchbericht gelezen",
}
# The catalogue's Dutch labels (vir.audit.actions), by stored action.
ACTION_LABELS: Final[Mapping[str, str]] = {
    **_EARLIER_ACTIONS,
    **{action.value: action.label_nl for action in Action},
}

PURPOSE_LABELS: Final[Mapping[str, str]] = {
    "triage": "triage",
    "safety_assessment": "veiligheidsbeoordeling",
    "investigation": "onderzoek",
    "advice": "advies",
}

_STATUS: Final = {"active": "actief", "archived": "gearchiveerd"}
_KIND: Final = {"person": "persoon", "household": "huishouden"}
_VIA: Final = {"person": "persoon", "parent": "ouder", "address": "adres"}
_INFORMED: Final = {
    "representative": "wettelijk vertegenwoordiger",
    "young_person": "jongere",
    "both": "beiden (jongere en wettelijk vertegenwoordiger)",
}
_OUTCOME: Final = {"success": "gelukt", "refused": "geweigerd", "failed": "mislukt"}
# Labels for what an audit entry's objects hold (the keys the emitters write), so that the
# reader sees neither a key nor a code: ids as "label id", counts and codes as "label: value".
_OBJECT: Final = {
    "signal": "melding",
    "match": "match",
    "notification": "matchbericht",
    "consultation": "raadpleging",
    "request": "verzoek",
    "signals": "aantal meldingen",
    "results": "aantal gevonden meldingen",
    "active": "actieve meldingen",
    "archived": "gearchiveerde meldingen",
    "remove_on": "uiterlijk verwijderd op",
    "destroy_on": "uiterlijk vernietigd op",
    "type": "soort bericht",
    "informed": "geïnformeerd",
    "event": "vervolgstap",
    "form": "soort raadpleging",
    "code": "stand van zaken",
    "notified": "aantal berichten",
    "channel": "kanaal",
    "attempts": "aantal pogingen",
    "error": "fout",
    "region": "regio",
    "organisations": "aantal organisaties",
    "count": "aantal",
    "days": "termijn in dagen",
    "report": "rapport",
    "from": "vanaf",
    "to": "tot",
    "field": "veld",
}
# Objects that name another signal, after the words that say how.
_SIGNAL_OBJECTS: Final = {
    "signal": "",
    "to": "regierol aangeboden aan ",
    "archived_signal": "uit het archief getoond: ",
}
_DATE_OBJECTS: Final = frozenset({"remove_on", "destroy_on", "from", "to"})
# The values of the objects that hold a code, by key.
_NOTIFICATION_TYPES: Final = {
    "match.created": "nieuwe match",
    "match.joined": "organisatie bij de match gekomen",
    "match.left": "organisatie uit de match vertrokken",
    "match.contact_changed": "contactgegevens gewijzigd",
    "match.historical": "gearchiveerde melding getoond",
    "match.safety_feedback": "terugkoppeling van Veilig Thuis",
    "match.coordinator": "regisseur gekozen of gewijzigd",
    "match.handover_offered": "regierol aangeboden",
    "match.handover_declined": "regierol afgewezen",
    "match.reminder": "herinnering om contact op te nemen",
}
_VALUES: Final[Mapping[str, Mapping[str, str]]] = {
    "type": _NOTIFICATION_TYPES,
    "via": _VIA,
    "informed": _INFORMED,
    "event": {
        "contact_made": "contact gelegd",
        "plan_agreed": "plan afgesproken",
        "care_started": "hulp gestart",
    },
    "form": {"person": "over een jongere", "household": "over een huishouden"},
    "code": {code.value: label for code, label in FEEDBACK_LABELS.items()},
    "channel": {"webhook": "koppeling met het eigen systeem", "email": "e-mail"},
    "report": {
        "privacy": "privacyrapport",
        "monitor": "monitor",
        "participation": "deelnamemonitor",
        "access": "inzage",
    },
}

_OBJECT_ORDER: Final = {"signal": 0, "match": 1}

_NONE: Final = "Geen."
_NOT_GIVEN: Final = "niet opgegeven"
_SYSTEM: Final = "verwijsindex (automatisch)"


def render_access_report(report: Mapping[str, Any]) -> bytes:
    """The access report ``report`` (the access API's JSON document) as PDF bytes.

    Reads ``request_id``, ``generated_at``, ``region``, ``signals``, ``as_parent``,
    ``consultations`` and ``audit``; a missing or mistyped field is a ``ValueError``
    naming it, since the API that builds the document is then at fault.
    """
    request_id = _text(report, "request_id")
    generated_at = _timestamp(report, "generated_at")
    if "region" not in report:  # null (every region) and absent must not read alike
        raise ValueError("access report: 'region' is missing")
    region = _optional(report, "region")
    signals = _records(report, "signals")
    as_parent = _records(report, "as_parent")
    consultations = _records(report, "consultations")
    audit = _records(report, "audit")
    names = _organisation_names(signals, as_parent, consultations)
    numbers = _Numbers(signals, as_parent)

    doc = Document(
        TITLE,
        created_at=generated_at,
        subtitle=f"Opgesteld op {dutch_datetime(generated_at)}",
        author="Verwijsindex risicojongeren",
    )
    doc.key_values(
        [
            ("Kenmerk van het verzoek", request_id),
            ("Omvang", _scope(region)),
            ("Meldingen over u", str(len(signals))),
            ("Meldingen waarin u als ouder staat", str(len(as_parent))),
            ("Raadplegingen door Veilig Thuis", str(len(consultations))),
            ("Regels in het logboek", str(len(audit))),
        ]
    )
    _introduction(doc)
    _signals(doc, signals, numbers)
    _as_parent(doc, as_parent, numbers)
    _consultations(doc, consultations)
    _logbook(doc, audit, names, numbers)
    _rights(doc, request_id, region)
    return doc.render()


def _scope(region: str | None) -> str:
    if region is None:
        return "de hele verwijsindex: alle regio's"
    return f"regio {region}: meldingen van organisaties in deze regio"


def _introduction(doc: Document) -> None:
    doc.heading("Wat is de verwijsindex?")
    doc.paragraph(
        "De verwijsindex risicojongeren brengt professionals met elkaar in contact die zich "
        "zorgen maken over dezelfde jongere (tot 23 jaar) of over kinderen uit hetzelfde "
        "gezin. Een professional, bijvoorbeeld van school, de huisarts of de jeugdhulp, legt "
        "in de verwijsindex alleen vast dát hij of zij zich zorgen maakt: dat heet een "
        "melding. Doet een andere professional ook een melding, dan krijgen zij elkaars "
        "contactgegevens (een match). Zo kunnen zij samen afspreken wie de hulp coördineert: "
        "één gezin, één plan, één regisseur."
    )
    doc.paragraph(
        "Per melding staat in de verwijsindex alleen: om wie het gaat, als versleuteld "
        "kenmerk (zie hieronder); welke organisatie en welke professional de melding "
        "deed, met hun contactgegevens; wanneer dat was; en wanneer de melding uiterlijk "
        "wordt verwijderd. Een melding wordt verwijderd zodra de zorg voorbij is, en in "
        "ieder geval na twee jaar, wanneer de jongere 23 wordt of overlijdt. Een melding "
        "die is verwijderd omdat de zorg voorbij was of de termijn verliep, blijft vijf "
        "jaar in een archief (status “gearchiveerd”); daarna wordt zij vernietigd. Een "
        "gearchiveerde melding wordt hooguit één keer getoond, aan een professional die "
        "later een nieuwe melding over dezelfde jongere doet."
    )
    doc.heading("Wat staat er niet in de verwijsindex?", level=2)
    doc.paragraph(
        "De verwijsindex bevat geen reden voor de melding, geen inschatting van risico's "
        "en geen dossier, notities of andere inhoud van de hulpverlening. Wilt u weten "
        "waarom een melding is gedaan, vraag dat dan aan de organisatie die haar deed."
    )
    doc.paragraph(
        "Uw burgerservicenummer (BSN), naam en adres staan er nooit leesbaar in. De "
        "organisatie die een melding doet, zet deze gegevens eerst om in versleutelde "
        "kenmerken (pseudoniemen). Daarmee herkent de verwijsindex meldingen over dezelfde "
        "persoon of hetzelfde gezin, zonder te weten om wie het gaat. Die kenmerken staan "
        "niet in dit overzicht: ze zeggen u niets, en uw gegevens zijn er niet uit af te "
        "leiden."
    )


def _signals(doc: Document, signals: Sequence[Mapping[str, Any]], numbers: _Numbers) -> None:
    doc.heading("Meldingen over u")
    doc.paragraph(
        "Bij elke melding staan de matches: andere organisaties die een melding deden en "
        "met wie de melder contact kan opnemen. Een match van de soort “persoon” gaat over "
        "meldingen over u. Een match van de soort “huishouden” komt van meldingen over "
        "verschillende jongeren uit hetzelfde gezin, verbonden via een gezamenlijke ouder "
        "of hetzelfde woonadres."
    )
    if not signals:
        doc.paragraph(_NONE)
        return
    for signal in signals:
        signal_id = _text(signal, "signal_id")
        organisation = _record(signal, "organisation")
        professional = _record(signal, "professional")
        doc.heading(f"Melding {numbers.own(signal_id)}: {_text(organisation, 'name')}", level=2)
        rows = [
            ("Organisatie", _organisation_line(organisation)),
            ("OIN (organisatienummer)", _text(organisation, "oin")),
            ("Professional", _text(professional, "name")),
            # The Dutch label of the function code ("Intern begeleider"), not the code.
            (
                "Functie",
                _optional(professional, "function_label")
                or _optional(professional, "function")
                or _NOT_GIVEN,
            ),
            ("E-mail", _optional(professional, "email") or _NOT_GIVEN),
            ("Telefoon", _optional(professional, "phone") or _NOT_GIVEN),
            ("Gemeld op", dutch_datetime(_timestamp(signal, "registered_at"))),
            ("Status", _code(_STATUS, _text(signal, "status"))),
            ("Uiterlijk verwijderd op", dutch_date(_date(signal, "remove_on"))),
        ]
        archived_on = _optional_date(signal, "archived_on")
        if archived_on is not None:
            rows.append(("Gearchiveerd op", dutch_date(archived_on)))
        destroy_on = _optional_date(signal, "destroy_on")
        if destroy_on is not None:
            rows.append(("Uiterlijk vernietigd op", dutch_date(destroy_on)))
        rows.append(("Geïnformeerd", _informed(signal)))
        rows.append(("Kenmerk van de melding", signal_id))
        doc.key_values(rows)

        doc.heading("Matches bij deze melding", level=3)
        matches = _records(signal, "matches")
        if not matches:
            doc.paragraph(_NONE)
            continue
        own_oin = _text(organisation, "oin")
        doc.table(
            ["Match", "Soort", "Via", "Status", "Ontstaan op", "Andere organisaties"],
            [_match_row(match, own_oin, numbers) for match in matches],
            widths=(1.1, 1.6, 1.1, 1.4, 2.3, 4.5),
        )


def _match_row(match: Mapping[str, Any], own_oin: str, numbers: _Numbers) -> list[str]:
    kind = _text(match, "kind")
    others = []
    for participant in _records(match, "participants"):
        organisation = _record(participant, "organisation")
        if _text(organisation, "oin") == own_oin:
            continue
        since = dutch_date(_local_date(_timestamp(participant, "since")))
        others.append(f"{_text(organisation, 'name')} (sinds {since})")
    if others:
        other_text = "\n".join(others)
    elif kind == "household":
        # The API may leave these out: they reported about another young person.
        other_text = "niet vermeld (melding over een andere jongere)"
    else:
        other_text = "geen"
    return [
        str(numbers.match(_text(match, "id"))),
        _code(_KIND, kind),
        _code(_VIA, _text(match, "via")),
        "actief" if _flag(match, "active") else "beëindigd",
        dutch_datetime(_timestamp(match, "created_at")),
        other_text,
    ]


def _as_parent(doc: Document, entries: Sequence[Mapping[str, Any]], numbers: _Numbers) -> None:
    doc.heading("Meldingen waarin u als ouder staat")
    doc.paragraph(
        "Bij een melding over een kind kan de organisatie ook de ouders vastleggen, zodat "
        "meldingen over kinderen uit hetzelfde gezin bij elkaar komen. Hieronder staan de "
        "meldingen waarin u als ouder bent vastgelegd. Gegevens over het kind en over de "
        "professional staan hier niet: die gaan over een ander dan u."
    )
    if not entries:
        doc.paragraph(_NONE)
        return
    rows = []
    for entry in entries:
        organisation = _record(entry, "organisation")
        signal_id = _text(entry, "signal_id")
        rows.append(
            [
                f"O{numbers.as_parent(signal_id)}",
                _organisation_line(organisation),
                dutch_datetime(_timestamp(entry, "registered_at")),
                _code(_STATUS, _text(entry, "status")),
            ]
        )
    doc.table(
        ["Nr.", "Organisatie", "Gemeld op", "Status"],
        rows,
        widths=(0.8, 4.5, 2.4, 1.5),
    )


def _consultations(doc: Document, entries: Sequence[Mapping[str, Any]]) -> None:
    doc.heading("Raadplegingen door Veilig Thuis")
    doc.paragraph(
        "Veilig Thuis mag in de verwijsindex nagaan of er meldingen zijn, zonder zelf een "
        "melding te doen, bijvoorbeeld om de veiligheid van een kind te beoordelen. Elke "
        "raadpleging wordt vastgelegd, met het doel ervan."
    )
    if not entries:
        doc.paragraph(_NONE)
        return
    doc.table(
        ["Datum en tijd", "Organisatie", "Doel"],
        [
            [
                dutch_datetime(_timestamp(entry, "occurred_at")),
                _text(_record(entry, "organisation"), "name"),
                _code(PURPOSE_LABELS, _optional(entry, "purpose") or _NOT_GIVEN),
            ]
            for entry in entries
        ],
        widths=(1, 2, 1),
    )


def _logbook(
    doc: Document,
    entries: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    numbers: _Numbers,
) -> None:
    doc.heading("Logboek")
    doc.paragraph(
        "Elke handeling met een melding wordt vastgelegd in een logboek dat niet "
        "ongemerkt kan worden veranderd. Hieronder staan de regels die over uw meldingen "
        "gaan, in Nederlandse tijd. “Melding 1” verwijst naar melding 1 hierboven, "
        "“melding O1” naar een melding waarin u als ouder staat, “match 1” naar match 1 "
        "in de tabellen met matches."
    )
    if not entries:
        doc.paragraph(_NONE)
        return
    rows = []
    for entry in sorted(entries, key=lambda e: _integer(e, "seq")):
        oin = _optional(entry, "organisation")
        occurred_at = _timestamp(entry, "occurred_at")
        rows.append(
            [
                str(_integer(entry, "seq")),
                # Date and time on two lines: the column stays narrow, the time legible.
                "\n".join(dutch_datetime(occurred_at, seconds=True).rsplit(" ", 1)),
                _code(ACTION_LABELS, _text(entry, "action")),
                _SYSTEM if oin is None else names.get(oin, oin),
                _code(_OUTCOME, _text(entry, "outcome")),
                _objects(_record(entry, "objects"), names, numbers),
            ]
        )
    doc.table(
        ["Nr.", "Datum en tijd", "Handeling", "Organisatie", "Resultaat", "Betreft"],
        rows,
        # In mm of the 170 mm text width: the longest date ("30 september 2026") fits.
        widths=(9, 35, 38, 38, 20, 30),
    )


def _objects(objects: Mapping[str, Any], names: Mapping[str, str], numbers: _Numbers) -> str:
    parts = []
    # The signal first, then its match: the order a reader follows the story in.
    for key, value in sorted(
        objects.items(), key=lambda item: (_OBJECT_ORDER.get(item[0], 9), item[0])
    ):
        text = str(value)
        day = _date_of(text) if key in _DATE_OBJECTS else None
        if day is not None:
            parts.append(f"{_OBJECT[key]} {dutch_date(day)}")
        elif key in _SIGNAL_OBJECTS:
            parts.append(_SIGNAL_OBJECTS[key] + numbers.describe_signal(text))
        elif key == "match":
            parts.append(numbers.describe_match(text))
        elif key == "via":
            parts.append(f"via {_code(_VIA, text)}")
        elif key == "with":
            if text != "-":  # a follow-up with no other organisation
                parts.append(f"met {names.get(text, text)}")
        elif key in _VALUES or isinstance(value, int):
            parts.append(f"{_code(_OBJECT, key)}: {_code(_VALUES.get(key, {}), text)}")
        else:
            parts.append(f"{_code(_OBJECT, key)} {text}")
    return "\n".join(parts) or "-"


def _date_of(text: str) -> date | None:
    """The date ``text`` holds (YYYY-MM-DD), or None: a key of a date may hold an id too."""
    try:
        return parse_iso_date(text)
    except ValueError:
        return None


def _rights(doc: Document, request_id: str, region: str | None) -> None:
    doc.heading("Uw rechten")
    doc.heading("Inzage (AVG artikel 15)", level=3)
    if region is None:
        doc.paragraph(
            "Dit overzicht is de inzage in uw gegevens in de verwijsindex, in alle regio's. "
            "U mag later opnieuw om inzage vragen."
        )
    else:
        doc.paragraph(
            f"Dit overzicht is de inzage in uw gegevens bij de organisaties in regio {region}: "
            "hun meldingen, en bij een match alleen de deelnemers uit deze regio. "
            "Organisaties in andere regio's kunnen ook meldingen hebben gedaan; die staan "
            "niet in dit overzicht, ook niet als er geen zijn. Een inzage in alle regio's "
            "vraagt u aan de privacyfunctionaris van de verwijsindex (de landelijke "
            "beheerder), of per regio aan de gemeente van die regio. U mag later opnieuw om "
            "inzage vragen."
        )
    doc.heading("Correctie (AVG artikel 16)", level=3)
    doc.paragraph("Kloppen gegevens niet, dan kunt u vragen ze te verbeteren of aan te vullen.")
    doc.heading("Verwijdering (AVG artikel 17)", level=3)
    doc.paragraph(
        "U kunt vragen een melding te verwijderen, bijvoorbeeld omdat zij ten onrechte is gedaan."
    )
    doc.heading("Bezwaar (AVG artikel 21)", level=3)
    doc.paragraph(
        "U kunt bezwaar maken tegen een melding. Een melding die na bezwaar of na een "
        "verzoek om correctie wordt verwijderd, komt niet in het archief."
    )
    doc.heading("Vragen en contact", level=3)
    doc.paragraph(
        "Wilt u een van deze rechten gebruiken of heeft u vragen over dit overzicht, neem "
        "dan contact op met de privacyfunctionaris (functionaris gegevensbescherming) van "
        "de gemeente die u dit overzicht gaf, en noem het kenmerk van het verzoek: "
        f"{request_id}. Voor een jongere onder de 16 jaar kan de wettelijk vertegenwoordiger "
        "deze rechten uitoefenen. Wilt u weten waarom een melding is gedaan, neem dan "
        "contact op met de organisatie die haar deed."
    )
    doc.paragraph(
        "Bent u het niet eens met de afhandeling van uw verzoek, dan kunt u een klacht "
        "indienen bij de Autoriteit Persoonsgegevens (autoriteitpersoonsgegevens.nl)."
    )


class _Numbers:
    """Short, stable names for the signals and matches in this report.

    The logbook refers to them as "melding 1", "melding O1" (as a parent) and "match 1" rather
    than by 36-character ids, which nobody can compare by eye. Ids of objects the report
    does not list (a signal since removed, say) print in full.
    """

    def __init__(
        self, signals: Sequence[Mapping[str, Any]], as_parent: Sequence[Mapping[str, Any]]
    ) -> None:
        self._signals = {_text(s, "signal_id"): n for n, s in enumerate(signals, 1)}
        self._as_parent = {_text(s, "signal_id"): n for n, s in enumerate(as_parent, 1)}
        self._matches: dict[str, int] = {}
        for signal in signals:
            for match in _records(signal, "matches"):
                self._matches.setdefault(_text(match, "id"), len(self._matches) + 1)

    def own(self, signal_id: str) -> int:
        return self._signals[signal_id]

    def as_parent(self, signal_id: str) -> int:
        return self._as_parent[signal_id]

    def match(self, match_id: str) -> int:
        return self._matches[match_id]

    def describe_signal(self, signal_id: str) -> str:
        if signal_id in self._signals:
            return f"melding {self._signals[signal_id]}"
        if signal_id in self._as_parent:
            return f"melding O{self._as_parent[signal_id]} (als ouder)"
        return f"melding {signal_id}"

    def describe_match(self, match_id: str) -> str:
        if match_id in self._matches:
            return f"match {self._matches[match_id]}"
        return f"match {match_id}"


def _organisation_names(*sections: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """OIN to name, from every organisation the report mentions: the logbook names by OIN."""
    names: dict[str, str] = {}

    def add(organisation: Mapping[str, Any]) -> None:
        names.setdefault(_text(organisation, "oin"), _text(organisation, "name"))

    for section in sections:
        for entry in section:
            add(_record(entry, "organisation"))
            for match in entry.get("matches") or ():
                for participant in _records(match, "participants"):
                    add(_record(participant, "organisation"))
    return names


def _organisation_line(organisation: Mapping[str, Any]) -> str:
    category = _optional(organisation, "category")
    name = _text(organisation, "name")
    return name if category is None else f"{name} ({_code(CATEGORY_LABELS, category)})"


def _informed(signal: Mapping[str, Any]) -> str:
    informed = signal.get("informed")
    if informed is None:
        return "nog niet bevestigd"
    if not isinstance(informed, Mapping):
        raise ValueError("access report: 'informed' must be an object or null")
    who = _code(_INFORMED, _text(informed, "who"))
    return f"{who}, op {dutch_date(_date(informed, 'on'))}"


def _code(labels: Mapping[str, str], code: str) -> str:
    """The Dutch label for ``code``, or the code itself when there is none."""
    return labels.get(code, code)


def _local_date(moment: datetime) -> date:
    """The calendar day of ``moment`` in the Netherlands."""
    return moment.astimezone(AMSTERDAM).date()


# Readers of the input. The access API builds it; a wrong shape is that code's bug,
# reported with the field's name rather than as a KeyError deep inside the layout.


def _record(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, Mapping):
        raise ValueError(f"access report: {key!r} must be an object")
    return value


def _records(obj: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = obj.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ValueError(f"access report: {key!r} must be a list")
    if not all(isinstance(item, Mapping) for item in value):
        raise ValueError(f"access report: every item of {key!r} must be an object")
    return list(value)


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValueError(f"access report: {key!r} must be a string")
    return value


def _optional(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"access report: {key!r} must be a string or null")
    return value


def _integer(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"access report: {key!r} must be an integer")
    return value


def _flag(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise ValueError(f"access report: {key!r} must be true or false")
    return value


def _timestamp(obj: Mapping[str, Any], key: str) -> datetime:
    text = _text(obj, key)
    try:
        moment = parse_timestamp(text)
    except ValueError:
        raise ValueError(f"access report: {key!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"access report: {key!r} has no time zone")
    return moment


def _date(obj: Mapping[str, Any], key: str) -> date:
    text = _text(obj, key)
    try:
        return parse_iso_date(text)
    except ValueError:
        raise ValueError(f"access report: {key!r} is not a date (YYYY-MM-DD)") from None


def _optional_date(obj: Mapping[str, Any], key: str) -> date | None:
    return None if obj.get(key) is None else _date(obj, key)
