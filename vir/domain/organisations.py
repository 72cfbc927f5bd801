"""Organisations that may report: their identity number (OIN) and designated category."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from vir.domain.errors import InputError

_OIN = re.compile(r"[0-9]{20}")


class Category(enum.StrEnum):
    """Designated categories of reporting organisations (Jeugdwet art. 7.1.1.1; DESIGN.md §3)."""

    YOUTH_CARE = "youth_care"
    VEILIG_THUIS = "veilig_thuis"
    JGZ = "jgz"
    GGZ = "ggz"
    ADDICTION_CARE = "addiction_care"
    DISABILITY_CARE = "disability_care"
    GP = "gp"
    HOSPITAL_EMERGENCY = "hospital_emergency"
    EDUCATION = "education"
    LEERPLICHT_RMC = "leerplicht_rmc"
    WMO_PROVIDER = "wmo_provider"
    CREDIT_BANK = "credit_bank"
    POLICE = "police"
    HALT = "halt"
    RAAD_KINDERBESCHERMING = "raad_kinderbescherming"
    CHILDCARE = "childcare"  # kinderopvang, peuteropvang, gastouderbureau
    MIDWIFERY = "midwifery"  # verloskunde and kraamzorg
    PROBATION = "probation"  # reclassering (adult probation: the parents of a household)
    SOCIAL_WORK = "social_work"  # algemeen maatschappelijk werk
    YOUTH_WELFARE = "youth_welfare"  # jongerenwerk
    # The municipal neighbourhood team (wijkteam, sociaal team): reports and coordinates.
    NEIGHBOURHOOD_TEAM = "neighbourhood_team"
    # Not a reporting category: a municipality or region, whose certificates carry
    # roles such as privacy officer. It never registers or receives signals.
    MUNICIPALITY = "municipality"
    # Not a reporting category either: the organisation that runs the index itself. Its
    # data protection officer is the one officer whose scope is every region.
    INDEX_OPERATOR = "index_operator"

    @property
    def reports(self) -> bool:
        """Whether organisations of this category may register signals."""
        return self not in (Category.MUNICIPALITY, Category.INDEX_OPERATOR)


class Role(enum.StrEnum):
    """What a certificate's holder may do on behalf of its organisation."""

    SYSTEM = "system"  # the organisation's back-office system: its own signals
    COORDINATOR = "coordinator"  # the organisation's coordinator: also its contact details
    # Of a municipality, for its region: access, erasure, death notices, reports.
    PRIVACY_OFFICER = "privacy_officer"
    # Of the index operator: the same, for every region (the index's own DPO).
    NATIONAL_PRIVACY_OFFICER = "national_privacy_officer"
    # Of a municipality: keeps the list of institutional addresses (shelters, care homes)
    # that never make household matches, pseudonymised with their own client.
    ADDRESS_OFFICER = "address_officer"
    # Of the index operator: the index itself, reading the key holder's evaluation counts
    # for the privacy report (GET /v1/oprf/usage at the key holder).
    INDEX_SERVICE = "index_service"
    # Of a municipality, for its region: checks that matched reporters made contact
    # (the overdue matches, reminders), seeing nothing about persons or signals.
    FOLLOW_UP_OFFICER = "follow_up_officer"


@dataclass(frozen=True, slots=True)
class Oin:
    """Organisatie-identificatienummer: 20 digits, carried in the certificate's serialNumber."""

    value: str

    def __post_init__(self) -> None:
        if not _OIN.fullmatch(self.value):
            raise InputError("oin", "an OIN is exactly 20 digits")

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Organisation:
    oin: Oin
    name: str
    category: Category
    region: str
    # Reference of the written agreement (convenant) with the municipality; required
    # at onboarding for a reporting organisation.
    convenant: str | None = None
