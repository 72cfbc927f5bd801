"""The professional's function: a code from a fixed list per organisation category.

A free-text function is a place where a sentence about the case could be typed
("mentor, vermoedt mishandeling"). The index therefore accepts only a code from
this catalogue, for the category of the organisation that registers the signal,
and shows match partners the code with its Dutch label. ``overig`` ("Overige
functie") is every category's fallback: a fixed code, never free text.

The labels name a role, never a concern: a hospital's "aandachtsfunctionaris
kindermishandeling" is listed as ``aandachtsfunctionaris``, because the label is
shown to every match partner and must not say what the signal is about.

One code has one label in every category that lists it (``casemanager`` is a
Casemanager in youth care and at Veilig Thuis alike); a test checks this.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from vir.domain.errors import InputError
from vir.domain.organisations import Category

# Codes are what a back office sends: lowercase ASCII with underscores.
CODE_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
_CODE = re.compile(CODE_PATTERN)
OTHER = "overig"


@dataclass(frozen=True, slots=True)
class Function:
    code: str
    label: str  # Dutch, as shown to match partners

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "label": self.label}


def _functions(*pairs: tuple[str, str]) -> tuple[Function, ...]:
    return (*(Function(code, label) for code, label in pairs), Function(OTHER, "Overige functie"))


_CATALOGUE: dict[Category, tuple[Function, ...]] = {
    Category.YOUTH_CARE: _functions(
        ("jeugdhulpverlener", "Jeugdhulpverlener"),
        ("gezinsvoogd", "Gezinsvoogd"),
        ("jeugdbeschermer", "Jeugdbeschermer"),
        ("jeugdreclasseerder", "Jeugdreclasseerder"),
        ("casemanager", "Casemanager"),
        ("gezinscoach", "Gezinscoach"),
        ("gedragswetenschapper", "Gedragswetenschapper"),
        ("pedagogisch_medewerker", "Pedagogisch medewerker"),
    ),
    Category.VEILIG_THUIS: _functions(
        ("medewerker_advies_meldingen", "Medewerker advies en meldingen"),
        ("triagist", "Triagist"),
        ("onderzoeker", "Onderzoeker"),
        ("casemanager", "Casemanager"),
        ("vertrouwensarts", "Vertrouwensarts"),
        ("gedragswetenschapper", "Gedragswetenschapper"),
    ),
    Category.JGZ: _functions(
        ("jeugdarts", "Jeugdarts"),
        ("jeugdverpleegkundige", "Jeugdverpleegkundige"),
        ("verpleegkundig_specialist", "Verpleegkundig specialist"),
        ("arts_maatschappij_gezondheid", "Arts Maatschappij en Gezondheid"),
        ("assistent_jgz", "Assistent jeugdgezondheidszorg"),
        ("pedagoog", "Pedagoog"),
    ),
    Category.GGZ: _functions(
        ("psychiater", "Psychiater"),
        ("kinder_jeugdpsychiater", "Kinder- en jeugdpsychiater"),
        ("gz_psycholoog", "GZ-psycholoog"),
        ("klinisch_psycholoog", "Klinisch psycholoog"),
        ("orthopedagoog_generalist", "Orthopedagoog-generalist"),
        ("sociaal_psychiatrisch_verpleegkundige", "Sociaal-psychiatrisch verpleegkundige"),
        ("regiebehandelaar", "Regiebehandelaar"),
    ),
    Category.ADDICTION_CARE: _functions(
        ("verslavingsarts", "Verslavingsarts"),
        ("verslavingsconsulent", "Verslavingsconsulent"),
        ("verpleegkundige", "Verpleegkundige"),
        ("maatschappelijk_werker", "Maatschappelijk werker"),
        ("casemanager", "Casemanager"),
        ("preventiewerker", "Preventiewerker"),
    ),
    Category.DISABILITY_CARE: _functions(
        ("persoonlijk_begeleider", "Persoonlijk begeleider"),
        ("ambulant_begeleider", "Ambulant begeleider"),
        ("groepsbegeleider", "Groepsbegeleider"),
        ("orthopedagoog", "Orthopedagoog"),
        ("gedragsdeskundige", "Gedragsdeskundige"),
        ("arts_verstandelijk_gehandicapten", "Arts verstandelijk gehandicapten"),
    ),
    Category.GP: _functions(
        ("huisarts", "Huisarts"),
        ("waarnemend_huisarts", "Waarnemend huisarts"),
        ("huisarts_in_opleiding", "Huisarts in opleiding"),
        ("poh_ggz", "Praktijkondersteuner GGZ"),
        ("poh_jeugd", "Praktijkondersteuner jeugd"),
        ("poh_somatiek", "Praktijkondersteuner somatiek"),
        ("doktersassistent", "Doktersassistent"),
    ),
    Category.HOSPITAL_EMERGENCY: _functions(
        ("seh_arts", "SEH-arts"),
        ("kinderarts", "Kinderarts"),
        ("arts_assistent", "Arts-assistent"),
        ("seh_verpleegkundige", "SEH-verpleegkundige"),
        ("aandachtsfunctionaris", "Aandachtsfunctionaris"),
        ("medisch_maatschappelijk_werker", "Medisch maatschappelijk werker"),
    ),
    Category.EDUCATION: _functions(
        ("leerkracht", "Leerkracht"),
        ("mentor", "Mentor"),
        ("intern_begeleider", "Intern begeleider"),
        ("zorgcoordinator", "Zorgcoördinator"),
        ("schoolmaatschappelijk_werker", "Schoolmaatschappelijk werker"),
        ("vertrouwenspersoon", "Vertrouwenspersoon"),
        ("studieloopbaanbegeleider", "Studieloopbaanbegeleider"),
        ("decaan", "Decaan"),
        ("teamleider", "Teamleider"),
        ("directeur", "Directeur"),
    ),
    Category.LEERPLICHT_RMC: _functions(
        ("leerplichtambtenaar", "Leerplichtambtenaar"),
        ("rmc_consulent", "RMC-consulent"),
        ("trajectbegeleider", "Trajectbegeleider"),
    ),
    Category.WMO_PROVIDER: _functions(
        ("wmo_consulent", "Wmo-consulent"),
        ("maatschappelijk_werker", "Maatschappelijk werker"),
        ("ambulant_begeleider", "Ambulant begeleider"),
        ("woonbegeleider", "Woonbegeleider"),
        ("wijkverpleegkundige", "Wijkverpleegkundige"),
        ("medewerker_opvang", "Medewerker maatschappelijke opvang"),
    ),
    Category.CREDIT_BANK: _functions(
        ("schuldhulpverlener", "Schuldhulpverlener"),
        ("budgetcoach", "Budgetcoach"),
        ("budgetbeheerder", "Budgetbeheerder"),
        ("intakemedewerker", "Intakemedewerker"),
    ),
    Category.POLICE: _functions(
        ("wijkagent", "Wijkagent"),
        ("jeugdagent", "Jeugdagent"),
        ("rechercheur", "Rechercheur"),
        ("politiefunctionaris", "Politiefunctionaris"),
    ),
    Category.HALT: _functions(
        ("halt_medewerker", "Halt-medewerker"),
        ("teamleider", "Teamleider"),
    ),
    Category.RAAD_KINDERBESCHERMING: _functions(
        ("raadsonderzoeker", "Raadsonderzoeker"),
        ("gedragsdeskundige", "Gedragsdeskundige"),
        ("zittingsvertegenwoordiger", "Zittingsvertegenwoordiger"),
        ("teamleider", "Teamleider"),
    ),
    Category.CHILDCARE: _functions(
        ("pedagogisch_medewerker", "Pedagogisch medewerker"),
        ("gastouder", "Gastouder"),
        ("locatiemanager", "Locatiemanager"),
        ("aandachtsfunctionaris", "Aandachtsfunctionaris"),
    ),
    Category.MIDWIFERY: _functions(
        ("verloskundige", "Verloskundige"),
        ("kraamverzorgende", "Kraamverzorgende"),
        ("praktijkassistent_verloskunde", "Praktijkassistent verloskunde"),
    ),
    Category.PROBATION: _functions(
        ("reclasseringswerker", "Reclasseringswerker"),
        ("toezichthouder", "Toezichthouder"),
        ("adviseur_reclassering", "Adviseur reclassering"),
    ),
    Category.SOCIAL_WORK: _functions(
        ("maatschappelijk_werker", "Maatschappelijk werker"),
        ("sociaal_werker", "Sociaal werker"),
        ("schuldhulpverlener", "Schuldhulpverlener"),
    ),
    Category.YOUTH_WELFARE: _functions(
        ("jongerenwerker", "Jongerenwerker"),
        ("straathoekwerker", "Straathoekwerker"),
        ("sociaal_werker", "Sociaal werker"),
    ),
    Category.NEIGHBOURHOOD_TEAM: _functions(
        ("wijkteammedewerker", "Wijkteammedewerker"),
        ("generalist", "Generalist"),
        ("gezinscoach", "Gezinscoach"),
        ("casemanager", "Casemanager"),
        ("maatschappelijk_werker", "Maatschappelijk werker"),
    ),
    # A municipality registers no signals: its people have no function here.
    Category.MUNICIPALITY: (),
    Category.INDEX_OPERATOR: (),
}
CATALOGUE: Mapping[Category, tuple[Function, ...]] = MappingProxyType(_CATALOGUE)
LABELS: Mapping[str, str] = MappingProxyType(
    {f.code: f.label for functions in _CATALOGUE.values() for f in functions}
)
CODES: tuple[str, ...] = tuple(sorted(LABELS))


def of_category(category: Category) -> tuple[Function, ...]:
    """The functions an organisation of ``category`` may give, in dropdown order."""
    return CATALOGUE[category]


def label(code: str | None) -> str | None:
    """The Dutch label of a code, or None (no function given, or not a code: a value
    stored before functions were codes is never shown)."""
    return LABELS.get(code) if code is not None else None


def check_code(code: str, field: str = "function") -> str:
    """A known code of any category; raises InputError naming ``field`` (not the value)."""
    if code not in LABELS:
        raise InputError(field, "not a function code (see GET /v1/functions)")
    return code


def check_for(category: Category, code: str | None, field: str = "function") -> None:
    """``code`` (when given) is one of ``category``'s functions."""
    if code is None:
        return
    check_code(code, field)
    if all(f.code != code for f in CATALOGUE[category]):
        raise InputError(
            field, "not a function code of your organisation's category (see GET /v1/functions)"
        )
