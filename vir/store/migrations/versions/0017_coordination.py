"""One coordinator per match, chosen by regional rules (issue 17).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02

``matches.coordinator`` is the signal whose reporter coordinates the match (NULL once
the match ended). ``region_coordination`` holds, per region, the ordered organisation
categories eligible to coordinate (``vir region coordination``); a region without a
row uses the default order of vir.domain.coordination.

``coordination_offers`` holds a coordinator's open offer to hand the role over (one
per match; it goes when answered or when either signal leaves the match).
``match_follow_ups`` holds the content-free follow-up of a match: who confirmed
contact with whom, and the coordinator's "plan agreed" and "care started", each with
its time and nothing else; a municipal follow-up officer can list the matches where
contact was not confirmed within N days of ``matches.created_at``.

Matches active at the upgrade get their coordinator here, by the default rules (no
region has rules yet), so that every active match has one from the start.
"""

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

WHEN = sa.DateTime(timezone=True)
# vir.domain.coordination.DEFAULT_RULES as at this revision (a migration never imports
# code that may change after it).
DEFAULT_RULES = (
    "youth_care",
    "neighbourhood_team",
    "veilig_thuis",
    "jgz",
    "ggz",
    "disability_care",
    "addiction_care",
    "wmo_provider",
    "social_work",
    "gp",
    "midwifery",
    "childcare",
)
_MEMBERS = sa.text(
    "SELECT mm.match_id, s.id, s.created_at, o.category FROM matches m "
    "JOIN match_members mm ON mm.match_id = m.id JOIN signals s ON s.id = mm.signal_id "
    "JOIN organisations o ON o.oin = s.oin WHERE m.ended_at IS NULL"
)

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("matches", sa.Column("coordinator", sa.String(36), nullable=True))
    _choose_coordinators()
    op.create_table(
        "region_coordination",
        sa.Column("region", sa.String(100), primary_key=True),
        sa.Column("categories", sa.String(1000), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "coordination_offers",
        sa.Column("match_id", sa.String(36), sa.ForeignKey("matches.id"), primary_key=True),
        sa.Column("from_signal", sa.String(36), nullable=False),
        sa.Column("to_signal", sa.String(36), nullable=False),
        sa.Column("offered_at", WHEN, nullable=False),
    )
    op.create_table(
        "match_follow_ups",
        sa.Column("match_id", sa.String(36), sa.ForeignKey("matches.id"), primary_key=True),
        sa.Column("oin", sa.String(20), primary_key=True),
        sa.Column("event", sa.String(16), primary_key=True),
        sa.Column("with_oin", sa.String(20), primary_key=True),
        sa.Column("recorded_at", WHEN, nullable=False),
    )


def _choose_coordinators() -> None:
    """Each active match's coordinator by the default rules: the best-ranked category,
    then the earliest signal; the earliest signal when none is eligible."""
    connection = op.get_bind()
    members: dict[str, list[tuple[Any, str, str]]] = defaultdict(list)
    for match_id, signal_id, created_at, category in connection.execute(_MEMBERS):
        members[match_id].append((created_at, signal_id, category))
    rank = {category: place for place, category in enumerate(DEFAULT_RULES)}
    chosen = []
    for match_id, rows in members.items():
        eligible = [r for r in rows if r[2] in rank]
        if eligible:
            best = min(eligible, key=lambda r: (rank[r[2]], r[0], r[1]))
        else:
            best = min(rows, key=lambda r: (r[0], r[1]))
        chosen.append({"match": match_id, "signal": best[1]})
    if chosen:
        connection.execute(
            sa.text("UPDATE matches SET coordinator = :signal WHERE id = :match"), chosen
        )


def downgrade() -> None:
    op.drop_table("match_follow_ups")
    op.drop_table("coordination_offers")
    op.drop_table("region_coordination")
    # Not a batch (a copy of the table, which match_members' foreign key forbids on
    # SQLite): both databases drop a plain column in place (SQLite 3.35 and later).
    op.execute("ALTER TABLE matches DROP COLUMN coordinator")
