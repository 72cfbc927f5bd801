"""The professional's function becomes a code: stored free text is cleared.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Until now ``professional_function`` took free text, and a free-text function may hold
case content ("mentor, vermoedt mishandeling"). From this release it is a code of the
catalogue (``vir.domain.functions``). A stored value that reads as a code once
lowercased, with accents dropped and spaces or hyphens made underscores ("Intern
begeleider" → ``intern_begeleider``, "Zorgcoördinator" → ``zorgcoordinator``) becomes
that code; any other value becomes NULL: matching never needs it, and nothing of the
text is kept. The same is done to the copies of contact details inside stored
notifications (``notifications.payload``, the match as its recipient saw it). No
schema change. Not undone by a downgrade: the cleared text is gone on purpose.

The codes are listed here as they are at this revision, so the migration does the
same on every database whatever the catalogue later becomes.
"""

import json
import unicodedata
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CODES = frozenset(
    (
        *("aandachtsfunctionaris", "ambulant_begeleider", "arts_assistent"),
        *("arts_maatschappij_gezondheid", "arts_verstandelijk_gehandicapten", "assistent_jgz"),
        *("budgetbeheerder", "budgetcoach", "casemanager", "decaan", "directeur"),
        *("doktersassistent", "gedragsdeskundige", "gedragswetenschapper", "gezinscoach"),
        *("gezinsvoogd", "groepsbegeleider", "gz_psycholoog", "halt_medewerker", "huisarts"),
        *("huisarts_in_opleiding", "intakemedewerker", "intern_begeleider", "jeugdagent"),
        *("jeugdarts", "jeugdbeschermer", "jeugdhulpverlener", "jeugdreclasseerder"),
        *("jeugdverpleegkundige", "kinder_jeugdpsychiater", "kinderarts", "klinisch_psycholoog"),
        *("leerkracht", "leerplichtambtenaar", "maatschappelijk_werker"),
        *("medewerker_advies_meldingen", "medewerker_opvang", "medisch_maatschappelijk_werker"),
        *("mentor", "onderzoeker", "orthopedagoog", "orthopedagoog_generalist", "overig"),
        *("pedagogisch_medewerker", "pedagoog", "persoonlijk_begeleider", "poh_ggz"),
        *("poh_jeugd", "poh_somatiek", "politiefunctionaris", "preventiewerker", "psychiater"),
        *("raadsonderzoeker", "rechercheur", "regiebehandelaar", "rmc_consulent"),
        *("schoolmaatschappelijk_werker", "schuldhulpverlener", "seh_arts"),
        *("seh_verpleegkundige", "sociaal_psychiatrisch_verpleegkundige"),
        *("studieloopbaanbegeleider", "teamleider", "trajectbegeleider", "triagist"),
        *("verpleegkundig_specialist", "verpleegkundige", "verslavingsarts"),
        *("verslavingsconsulent", "vertrouwensarts", "vertrouwenspersoon"),
        *("waarnemend_huisarts", "wijkagent", "wijkverpleegkundige", "wmo_consulent"),
        *("woonbegeleider", "zittingsvertegenwoordiger", "zorgcoordinator"),
    )
)
BATCH = 1000


def as_code(text: str | None) -> str | None:
    """The code a stored function reads as, or None."""
    if text is None:
        return None
    folded = unicodedata.normalize("NFKD", text.strip().lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = "_".join(folded.replace("-", " ").split())
    return folded if folded in CODES else None


def scrub_payload(payload: str) -> str:
    """A stored notification with every professional's function made a code or null."""
    try:
        view: Any = json.loads(payload)
    except ValueError:
        return payload
    participants = view.get("participants") if isinstance(view, dict) else None
    changed = False
    for participant in participants if isinstance(participants, list) else []:
        professional = participant.get("professional") if isinstance(participant, dict) else None
        if not isinstance(professional, dict) or "function" not in professional:
            continue
        old = professional["function"]
        new = as_code(old) if isinstance(old, str) else None
        if new != old:
            professional["function"] = new
            changed = True
    if not changed:
        return payload
    return json.dumps(view, separators=(",", ":"), ensure_ascii=False)


def upgrade() -> None:
    bind = op.get_bind()
    for name in ("signals", "archived_signals"):
        table = sa.table(name, sa.column("professional_function", sa.String(100)))
        column = table.c.professional_function
        stored = bind.execute(sa.select(column).where(column.is_not(None)).distinct()).scalars()
        for old in list(stored):
            new = as_code(old)
            if new != old:
                bind.execute(table.update().where(column == old).values(professional_function=new))

    notifications = sa.table(
        "notifications", sa.column("seq", sa.Integer), sa.column("payload", sa.Text)
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(notifications.c.seq, notifications.c.payload)
            .where(notifications.c.seq > last)
            .order_by(notifications.c.seq)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for seq, payload in rows:
            scrubbed = scrub_payload(payload)
            if scrubbed != payload:
                bind.execute(
                    notifications.update()
                    .where(notifications.c.seq == seq)
                    .values(payload=scrubbed)
                )
        last = rows[-1][0]


def downgrade() -> None:
    """Nothing to undo: no schema changed, and the cleared text is not to come back."""
