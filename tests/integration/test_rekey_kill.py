"""``vir keys rekey`` killed with SIGKILL at random moments, and run again until it
finishes, leaves exactly the database one uninterrupted rekey leaves: no pseudonym
multiplied twice, none skipped. On the suite's database (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select
from support import launch, seed
from support.instore import T0, Store, fresh_store, template

from vir.audit.actions import Action
from vir.crypto import oprf
from vir.crypto.rekey_token import read_token
from vir.services import rekey
from vir.store import rekey as shadows
from vir.store.integrity import check_pseudonyms
from vir.store.rekey import PLAN
from vir.store.tables import AuditEntryRow

SIGNALS = 3000
KILLS = 7
BATCH = "10"


def _filled(store: Store) -> tuple[int, int]:
    """(rows whose shadows are written or switched, rows in all), over every table."""
    with store.db.read() as session:
        todo = sum(shadows.count_todo(session, part) for part in PLAN)
        total = sum(shadows.count_rows(session, part) for part in PLAN)
    return total - todo, total


def _rekey(url: str, token: Path, key: Path, log: Path) -> subprocess.Popen[bytes]:
    """``vir keys rekey`` in its own process group, its output appended to ``log``."""
    env = {
        **os.environ,
        "VIR_DATABASE_URL": url,
        "VIR_KEYHOLDER_VERIFIER_KEY": str(key),
        "VIR_EPOCH_GRACE_DAYS": "30",
    }
    command = [sys.executable, "-m", "vir.cli", "keys", "rekey", "--token", str(token)]
    with log.open("ab") as output:
        return launch.popen(
            [*command, "--batch", BATCH, "--workers", "2"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill takes its workers too
        )


def test_a_rekey_killed_at_random_moments_ends_as_one_clean_run(tmp_path: Path) -> None:
    chance = random.Random()
    chosen = chance.randrange(2**32)
    chance.seed(chosen)
    print(f"random seed {chosen}")
    token = tmp_path / "rekey.json"
    token.write_bytes(seed.token())
    key = tmp_path / "keyholder.pub"
    key.write_text(seed.VERIFIER_KEY + "\n")
    log = tmp_path / "rekey.log"
    with (
        fresh_store(template(tmp_path), tmp_path / "killed.sqlite") as killed,
        fresh_store(template(tmp_path), tmp_path / "clean.sqlite") as clean,
    ):
        seed.seed(killed.db, SIGNALS)
        seed.seed(clean.db, SIGNALS)
        before = seed.pseudonym_columns(clean.db)
        assert seed.pseudonym_columns(killed.db) == before

        rekey.start(clean.db, read_token(seed.token(), seed.VERIFIER_KEY), T0)
        assert rekey.run(
            clean.db, clock=lambda: T0, grace=dt.timedelta(days=30), workers=0
        ).switched

        url = killed.db.engine.url.render_as_string(hide_password=False)
        _, total = _filled(killed)
        # Where to kill each run: at a random moment of its start-up (two of them), or
        # once a random share of the rows is converted (progress carries over from
        # run to run, so the shares rise); the last once every row is, which is around
        # the switch. The run after the kills is left to finish.
        shares = [*sorted(chance.uniform(0.02, 0.98) for _ in range(KILLS - 1)), 1.0]
        # Two of the kills before the last are at start-up, chosen at random; the others
        # wait for their share of rows, so that at least four interrupt the conversion
        # itself (a coin per kill could, now and then, leave fewer than two).
        at_start_up = set(chance.sample(range(KILLS - 1), 2))
        progress: list[tuple[str, int, str]] = []
        for kill, share in enumerate(shares):
            process = _rekey(url, token, key, log)
            if kill in at_start_up:
                # A random moment of its start-up, or the first batch it converts, if
                # that comes first: on a quiet machine a resumed run may otherwise
                # finish within the wait, leaving nothing to interrupt.
                when = chance.uniform(0.05, 1.5)
                began, deadline = _filled(killed)[0], time.monotonic() + when
                while (
                    process.poll() is None
                    and time.monotonic() < deadline
                    and _filled(killed)[0] == began
                ):
                    time.sleep(0.01)
                moment = f"{when:.2f} s or the first batch"
            else:
                while process.poll() is None and _filled(killed)[0] < share * total:
                    time.sleep(0.01)
                moment = f"{share:.0%} of rows"
            if process.poll() is not None:
                assert process.returncode == 0, log.read_text()
                break  # it finished first: nothing left to interrupt
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            done, _ = _filled(killed)
            states = "/".join(s for _, s, _ in seed.epoch_states(killed.db))
            progress.append((moment, done, states))
        print(f"killed at (moment, rows done of {total}, epoch states): {progress}")
        assert sum(0 < done < total for _, done, _ in progress) >= 2, progress

        began = time.monotonic()
        final = _rekey(url, token, key, log)
        final.wait(timeout=600)
        assert final.returncode == 0, log.read_text()
        print(f"final run: {time.monotonic() - began:.1f} s")

        assert seed.pseudonym_columns(killed.db) == seed.pseudonym_columns(clean.db)
        assert seed.epoch_states(killed.db) == seed.epoch_states(clean.db)
        assert seed.epoch_states(killed.db) == [(1, "previous", False), (2, "current", True)]
        checks = check_pseudonyms(killed.db, oprf.is_valid_element)
        assert [c.invalid for c in checks] == [0] * len(checks)
        with killed.db.read() as session:
            actions = list(session.scalars(select(AuditEntryRow.action)))
        assert actions.count(Action.KEY_REKEY_STARTED) == 1
        assert actions.count(Action.KEY_REKEY_SWITCHED) == 1
        # And the clean run is right: every person is δ times what was seeded.
        people = {row[0]: row[1] for row in before["signals"]}
        for row in seed.pseudonym_columns(clean.db)["signals"]:
            assert row[1] == seed.times(seed.DELTA, people[row[0]])


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_workers_of_a_rekey_killed_alone_end_with_it(tmp_path: Path) -> None:
    """``kill -9`` of the rekey process only (not its group, as an operator or an OOM
    killer may): its worker processes, which hold δ, must not live on. They did, with
    the interpreter's resource tracker, for good: 2.8 GB after 26 kills."""
    token = tmp_path / "rekey.json"
    token.write_bytes(seed.token())
    key = tmp_path / "keyholder.pub"
    key.write_text(seed.VERIFIER_KEY + "\n")
    log = tmp_path / "rekey.log"
    with fresh_store(template(tmp_path), tmp_path / "alone.sqlite") as store:
        seed.seed(store.db, SIGNALS)
        url = store.db.engine.url.render_as_string(hide_password=False)
        process = _rekey(url, token, key, log)
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline and len(workers) < 2:
            workers = {
                pid
                for pid in _children(process.pid)
                if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
            }
            time.sleep(0.02)
        assert process.poll() is None, "the rekey finished before its workers were seen"
        assert len(workers) >= 2, log.read_text()
        process.send_signal(signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in workers if _alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert left == [], "workers outlived the rekey"


def test_a_run_killed_after_the_switch_commits_has_its_entries_integrated_by_the_next(
    tmp_path: Path,
) -> None:
    """Killed between the switch's commit and the integration after it, a run leaves the
    switch's audit entry staged; the next run, finding the rekey done, integrates it
    (found by the test above at seed 1704873929: the kill after every row came then)."""
    token = tmp_path / "rekey.json"
    token.write_bytes(seed.token())
    key = tmp_path / "keyholder.pub"
    key.write_text(seed.VERIFIER_KEY + "\n")
    with fresh_store(template(tmp_path), tmp_path / "killed.sqlite") as killed:
        seed.seed(killed.db, 20)
        killed.db.integrate_after_commit = False  # as if killed before integrating
        rekey.start(killed.db, read_token(seed.token(), seed.VERIFIER_KEY), T0)
        assert rekey.run(killed.db, clock=lambda: T0, grace=dt.timedelta(days=30), workers=0)
        with killed.db.read() as session:
            actions = list(session.scalars(select(AuditEntryRow.action)))
        assert Action.KEY_REKEY_SWITCHED not in actions  # staged only
        url = killed.db.engine.url.render_as_string(hide_password=False)
        again = _rekey(url, token, key, tmp_path / "rekey.log")
        assert again.wait(timeout=120) == 0, (tmp_path / "rekey.log").read_text()
        assert "this rekey is done" in (tmp_path / "rekey.log").read_text()
        with killed.db.read() as session:
            actions = list(session.scalars(select(AuditEntryRow.action)))
        assert actions.count(Action.KEY_REKEY_STARTED) == 1
        assert actions.count(Action.KEY_REKEY_SWITCHED) == 1
