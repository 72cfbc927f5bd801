"""The database: engine, read sessions and write transactions.

Writers do not wait for each other unless they touch the same thing
(docs/concurrency.md). A write transaction that reads something to decide what to
write locks it first (``vir.store.locks``: a young person, a parent, an address, an
organisation's ``local_ref``); the audit log and notification positions are
sequenced afterwards by the integrator (``vir.store.sequencer``), so no writer
reads a shared head. Readers never wait.

SQLite runs in WAL mode with durable commits (``synchronous=FULL``) and admits one
writer at a time: every write transaction starts with ``BEGIN IMMEDIATE``, so it
holds SQLite's write lock from its first statement. Writers of one process queue on
an in-process lock (waiting in line instead of in SQLite's sleep-and-retry busy
handler) and share commits ("Group commit" below).

PostgreSQL (``postgresql+psycopg://``, several app instances on one database): every
writer has its own connection and transaction, READ COMMITTED, so every statement
after a lock sees what earlier holders committed (REPEATABLE READ or SERIALIZABLE
would read a snapshot taken before the lock was granted, and must not be used).
The transaction begins with ``WRITE_LOCK`` taken shared, in the message that sends
BEGIN (with the reads a writer asks for first, ``FirstRead``): writers do not exclude
each other, but a migration or a rekey's switch takes it exclusively
(``write(exclusive=True)``) and so runs alone. A writer that waits for a lock for 30
seconds gives up with an error. What a writer writes out before its commit goes in
one round trip (``_write_out_together``); docs/concurrency.md, "Round trips".

Group commit (SQLite). Every write transaction pays a fixed cost (a connection,
BEGIN, the durable commit) that for most transactions is nearly all they cost.
Writers that queue in one process while another writes share its transaction and
its commit: the first opens a database transaction; each writer in turn runs inside
its own SAVEPOINT on it; the last in line, or the one that finds the group full
(``MAX_GROUP`` writers or ``MAX_GROUP_SECONDS`` open), commits for all. A writer's
``with db.write()`` returns only once that commit is durable. A writer that fails
rolls back its own savepoint only; the others commit. If the shared commit fails,
or a failure leaves the transaction unusable, every writer in the group gets
``WriteNotCommitted`` and nothing of theirs was stored. An exclusive writer
(``write(exclusive=True)``: a rekey's switch, a key-epoch change) joins no group: the
group before it commits first, and it runs in a transaction of its own without a
savepoint (a savepoint makes SQLite copy every page it changes to a sub-journal
first, and a switch changes nearly every page of the file). On PostgreSQL each
writer is a group of one: the server shares WAL flushes between concurrent commits
itself.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy import URL, Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from vir.domain.errors import ConfigurationError, RateLimited, WriteNotCommitted
from vir.store import audit_log, ratelimits
from vir.store.sequencer import Integrated
from vir.store.write_group import (
    BEFORE_COMMIT_HOOKS,
    GROUP,
    FirstRead,
    WriteGroup,
    WriterHooks,
)
from vir.store.writer_gate import WriterGate

T = TypeVar("T")
R = TypeVar("R")

_IMMEDIATE = "vir_immediate"
LOCK_WAIT_SECONDS = 30
# A group commits once it holds this many writers or has been open this long, even
# with more writers waiting: a bound on the wait a grouped writer adds for the others.
MAX_GROUP = 64
MAX_GROUP_SECONDS = 0.02

# The id of vir's write lock in PostgreSQL's advisory-lock space ("vir-writ" in ASCII),
# taken shared by every writer and exclusively by migrations and a rekey's switch.
# Fixed: every instance of every version must take the same lock (versions before
# the integrator took it exclusively for every write, which still excludes correctly).
WRITE_LOCK = 0x7669_722D_7772_6974
_TAKE_WRITE_LOCK = text(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://...``.

    ``durable=False`` (tests only) skips fsync on SQLite; a crash may then lose
    recent commits. On PostgreSQL durability is the server's configuration.
    """
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return _postgresql_engine(parsed)
    if backend != "sqlite":
        raise ConfigurationError(
            f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://..."
        )
    if parsed.database and parsed.database != ":memory:":
        _create_private(Path(parsed.database))
    # pysqlite's own transaction handling is off; transactions begin in _on_begin.
    engine = create_engine(
        parsed,
        connect_args={"isolation_level": None, "timeout": LOCK_WAIT_SECONDS},
        pool_size=20,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA foreign_keys=ON")
        # What is deleted is overwritten with zeros, so that a removed signal's
        # pseudonyms and contact details do not linger in free space of the file. Some
        # builds (Debian's) do this by default, others do not.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        _to_driver(connection, "BEGIN IMMEDIATE" if immediate else "BEGIN")

    # Every writer runs in a savepoint of its group's transaction; SQLAlchemy compiles
    # a new clause for each SAVEPOINT, RELEASE and ROLLBACK TO (their names differ),
    # which cost more than the rest of a small writer's transaction. The names are
    # SQLAlchemy's own (sa_savepoint_N), never input.
    dialect: Any = engine.dialect
    dialect.do_savepoint = lambda c, name: _to_driver(c, f"SAVEPOINT {name}")
    dialect.do_release_savepoint = lambda c, name: _to_driver(c, f"RELEASE SAVEPOINT {name}")
    dialect.do_rollback_to_savepoint = lambda c, name: _to_driver(
        c, f"ROLLBACK TO SAVEPOINT {name}"
    )
    return engine


def _to_driver(connection: Connection, sql: str) -> None:
    """``sql`` (a fixed statement without parameters) straight to the SQLite driver."""
    connection.connection.driver_connection.execute(sql).close()  # type: ignore[union-attr]


def _create_private(database: Path) -> None:
    """Create the SQLite file 0600, and every missing directory above it 0700; whatever
    exists already is left as it is (``check_database_files`` refuses it if it is open).

    The file is created here, before SQLite opens it, because SQLite would create it
    0644 (masked by the umask); SQLite then gives its -wal and -shm files the database
    file's own permissions. The database holds pseudonyms, professionals' contact details
    and the audit log: no other local user may read it.
    """
    missing = []
    folder = database.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    # An existing database (or one another process made just now) is left as it is.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def parse_url(url: str) -> URL:
    """``url`` parsed; a ConfigurationError that never repeats it (it can hold a password)
    when it is no database URL (sqlalchemy's and the port parser's messages quote it)."""
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 (parsed lazily: a port that is no number raises here)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise ConfigurationError(
            "the database URL setting (VIR_DATABASE_URL; at the key holder "
            "VIR_KEYHOLDER_DATABASE_URL) is not a database URL: sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DATABASE"
        ) from None
    return parsed


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for another database or one in memory."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def check_database_files(url: str) -> None:
    """ConfigurationError, with the commands that fix it, when the SQLite database named by
    ``url`` or its directory is accessible by group or others (``vir serve`` refuses to
    start then). Also the -wal and -shm files, which hold recent writes, and the writers'
    gate. PostgreSQL and
    an in-memory database are not files: nothing to check."""
    database = sqlite_file(url)
    if database is None:
        return
    folder = database.parent
    files = [p for p in (database, *_sidecars(database)) if p.exists()]
    open_files = [p for p in files if _open_to_others(p)]
    open_folder = folder.exists() and _open_to_others(folder)
    if not open_files and not open_folder:
        return
    fixes = []
    if open_folder:
        fixes.append(f"chmod 700 {shlex.quote(str(folder))}")
    if files:
        fixes.append("chmod 600 " + " ".join(shlex.quote(str(p)) for p in files))
    raise ConfigurationError(
        f"SQLite database {database} or its directory is accessible by group or others "
        f"(it holds pseudonyms, contact details and the audit log); run: {' && '.join(fixes)}"
    )


def _sidecars(database: Path) -> tuple[Path, ...]:
    """SQLite's -wal and -shm, and the writers' gate (vir.store.writer_gate): whoever
    can open the gate can hold every writer up."""
    return tuple(database.with_name(database.name + end) for end in ("-wal", "-shm", "-writers"))


def _open_to_others(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def _postgresql_engine(url: URL) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # the driver vir depends on
    if url.get_driver_name() != "psycopg":
        raise ConfigurationError(
            f"vir talks to PostgreSQL through psycopg 3: use postgresql+psycopg://, "
            f"not {url.drivername}://"
        )
    # A lock wait longer than this fails, like SQLite's busy timeout; other options
    # given in the URL are kept.
    options = f"-c lock_timeout={LOCK_WAIT_SECONDS}s {url.query.get('options', '')}".strip()
    # READ COMMITTED is PostgreSQL's default, stated here because the write lock
    # depends on it (see the module docstring).
    engine = create_engine(
        url.update_query_dict({"options": options}),
        isolation_level="READ COMMITTED",
        pool_size=30,
        max_overflow=0,
    )
    _ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection unused for this long is tested before it is handed out.
PING_AFTER_IDLE_SECONDS = 2.0
_IDLE_SINCE = "vir_idle_since"


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection before handing it out when it has been idle for
    ``PING_AFTER_IDLE_SECONDS``, and replace it when the server no longer has it (a
    restart, a firewall that dropped it).

    SQLAlchemy's ``pool_pre_ping`` tests every checkout: a round trip to the server
    before every transaction, one in seven of a registration's. A connection handed
    back a moment ago is not tested; should the server have gone meanwhile, the
    transaction fails (nothing stored, HTTP 503) and SQLAlchemy then invalidates every
    connection of the pool opened before, so they are all replaced.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # new (just connected), or handed back a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # The pool drops this connection and hands out another (a new one).
                raise sqlalchemy.exc.DisconnectionError() from None
            raise


# A PostgreSQL writer's transaction begins with its write lock, one round trip for both
# (the simple query protocol runs statements of one message in order, and stops at the
# first that fails). No parameters: nothing in it comes from outside.
_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock{kind}({key})"
_BEGIN_SHARED = _BEGIN.format(kind="_shared", key=WRITE_LOCK)
_BEGIN_EXCLUSIVE = _BEGIN.format(kind="", key=WRITE_LOCK)


def _begin_postgresql(
    connection: Connection, *, exclusive: bool, first: Sequence[FirstRead] = ()
) -> dict[FirstRead, list[tuple[Any, ...]]]:
    """Begin the writer's transaction on ``connection`` with the write lock taken, and
    read ``first`` (``FirstRead``) in the same round trip; their rows.

    psycopg sends BEGIN on its own, in a round trip of its own, before a transaction's
    first statement, unless the connection is in autocommit mode: in that mode vir
    sends BEGIN itself, together with the lock, and psycopg's ``commit`` and
    ``rollback`` still end the transaction (they look at the server's transaction
    status, not at the mode). ``_hand_back`` takes the mode back off before the
    connection returns to the pool.
    """
    from psycopg import sql

    connection.begin()  # SQLAlchemy's bookkeeping; psycopg sends nothing for it
    raw: Any = connection.connection.driver_connection
    raw.autocommit = True
    begin = _BEGIN_EXCLUSIVE if exclusive else _BEGIN_SHARED
    message = [
        begin,
        *(
            sql.SQL(read.sql).format(*map(sql.Literal, read.values)).as_string(raw)
            for read in first
        ),
    ]
    with (
        driver_errors(connection, "; ".join([begin, *(read.sql for read in first)])),
        raw.execute("; ".join(message), prepare=False) as cursor,
    ):
        cursor.nextset()  # from BEGIN's result to the lock's; each read's follows
        found = {}
        for read in first:
            cursor.nextset()
            found[read] = cursor.fetchall()
    return found


@contextmanager
def driver_errors(connection: Connection, statement: str) -> Iterator[None]:
    """psycopg's errors in the block, raised as SQLAlchemy raises them for a statement of
    its own (a lock timeout, a lost server: ``vir.api.errors`` answers 503), naming
    ``statement`` (give it without values) and no parameters; a connection the server
    dropped is discarded. For statements vir sends to psycopg itself."""
    import psycopg

    try:
        yield
    except psycopg.Error as error:
        raw: Any = connection.connection.driver_connection
        dropped = connection.dialect.is_disconnect(error, raw, None)  # type: ignore[arg-type]
        if dropped:
            connection.invalidate()
        raise sqlalchemy.exc.DBAPIError.instance(
            statement,
            None,
            error,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=dropped,
            dialect=connection.dialect,
        ) from error


def _hand_back(connection: Connection) -> None:
    """Make a PostgreSQL writer's connection fit for the pool again: no transaction,
    autocommit off (readers share the pool); one that cannot be is discarded."""
    from psycopg.pq import TransactionStatus

    raw: Any = connection.connection.driver_connection
    try:
        if raw.info.transaction_status != TransactionStatus.IDLE:
            raw.rollback()
        raw.autocommit = False
    except Exception:  # a broken connection: the pool must not keep it
        connection.invalidate()


def _write_out_together(group: WriteGroup) -> None:
    """PostgreSQL: what a writer writes out just before its commit (its staged audit
    events, the signals a registration stores last, the rate limits' payments last of
    all) in psycopg's pipeline mode, one round trip however many statements: a payment
    fetches its answer, which sends what is queued before it. Write-outs that run here
    talk to psycopg themselves (SQLAlchemy reads no answer in pipeline mode)."""
    write_outs = (*group.before_commit, *group.last_before_commit)
    if not write_outs:
        return
    raw: Any = group.connection.connection.driver_connection
    with driver_errors(group.connection, "the writes before the commit"), raw.pipeline():
        for write_out in write_outs:
            write_out(group.connection)


def take_write_lock(connection: Connection) -> None:
    """Make the transaction on ``connection`` the database's only writer until it ends
    (the migrations; ``Database.write(exclusive=True)`` takes it with its BEGIN).

    On PostgreSQL it must come before the transaction reads anything. On SQLite it
    does nothing: write transactions hold SQLite's lock from ``BEGIN IMMEDIATE``.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_TAKE_WRITE_LOCK)


def _usable(connection: Connection) -> bool:
    """Whether the database transaction on ``connection`` can still commit.

    A failed statement inside a savepoint leaves it usable once the savepoint is
    rolled back; but SQLite rolls back the whole transaction on some errors (disk
    full, I/O error, interrupted), and PostgreSQL's may have been aborted.
    """
    if connection.closed or connection.invalidated or not connection.in_transaction():
        return False
    raw: Any = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        from psycopg.pq import TransactionStatus

        return bool(raw.info.transaction_status == TransactionStatus.INTRANS)
    return bool(raw.in_transaction)


# The store's own bookkeeping across a group's writers: the audit log hands a writer's
# entries to the group (or takes back what it lent the writer), the rate limits its
# buckets. Every Database registers them: without them a group would lose entries.
STORE_HOOKS = (audit_log.WRITER_HOOKS, ratelimits.WRITER_HOOKS, BEFORE_COMMIT_HOOKS)


class Database:
    def __init__(self, engine: Engine, *, hooks: Sequence[WriterHooks] = ()) -> None:
        """``hooks``: called for every writer, after the store's own (``STORE_HOOKS``)."""
        self.engine = engine
        self._hooks = (*STORE_HOOKS, *hooks)
        self._postgresql = engine.dialect.name == "postgresql"
        self._reads = sessionmaker(engine, expire_on_commit=False)
        self._writer = (
            engine if self._postgresql else engine.execution_options(**{_IMMEDIATE: True})
        )
        self._observers: list[Callable[[Sequence[Any]], None]] = []
        # Until a service's integrator thread takes over (vir.services.integrator), a
        # write that staged audit events integrates them before it returns: a CLI
        # command's entries are in the log when it ends.
        self.integrate_after_commit = True
        # Every writer's session runs in a SAVEPOINT on the group's connection; on
        # PostgreSQL, in the writer's own transaction, which Database.write commits.
        self._writes = sessionmaker(
            expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        self._alone = sessionmaker(expire_on_commit=False, join_transaction_mode="rollback_only")
        self._turn = threading.Lock()  # held by the one writer using the group's connection
        self._counter = threading.Lock()
        self._queued = 0  # writers waiting for their turn
        self._group: WriteGroup | None = None  # the open group; only touched holding _turn
        self._spare: Session | None = None  # a closed write session to reuse; ditto
        # Writers of other processes on the same SQLite file queue with ours here.
        database = engine.url.database
        self._gate = (
            WriterGate(Path(database), LOCK_WAIT_SECONDS)
            if not self._postgresql and database and database != ":memory:"
            else None
        )

    @property
    def one_writer(self) -> bool:
        """Whether one write transaction runs at a time (SQLite): a writer waits for
        every other anyway. On PostgreSQL writers on different rows run in parallel."""
        return not self._postgresql

    def observe_commits(self, observer: Callable[[Sequence[Any]], None]) -> None:
        """Call ``observer`` with the audit events of every committed write transaction
        (after the commit; it must not raise)."""
        self._observers.append(observer)

    @classmethod
    def connect(
        cls, url: str, *, durable: bool = True, hooks: Sequence[WriterHooks] = ()
    ) -> Database:
        return cls(make_engine(url, durable=durable), hooks=hooks)

    def read(self) -> Session:
        """A session for reading (``with db.read() as session: ...``)."""
        return self._reads()

    @contextmanager
    def write(
        self, *, exclusive: bool = False, alone: bool = False, first: Sequence[FirstRead] = ()
    ) -> Iterator[Session]:
        """A write transaction: on success it returns once the commit is durable; on any
        exception nothing of it is stored. ``exclusive``: no other writer runs meanwhile
        (a rekey's switch); every writer on SQLite is.

        On SQLite it may share its database transaction (and commit) with writers
        queued behind it: see "Group commit" above. ``alone`` (and ``exclusive``): it
        does not, and runs without a savepoint, for a writer that changes many pages
        (a rekey's batch); on PostgreSQL every writer is alone. ``first``: reads to send
        with the transaction's BEGIN on PostgreSQL (``FirstRead``).
        """
        if self._postgresql or exclusive or alone:
            # Its own transaction, without a savepoint: on SQLite a savepoint copies every
            # page the writer changes to a sub-journal first (a rekey's switch changes
            # nearly every page of the file), and nothing needs one when no other writer
            # shares the transaction.
            group = (
                self._open_group(exclusive=exclusive, first=first)
                if self._postgresql
                else self._take_turn_alone()
            )
            ok = False
            try:
                yield from self._run(group, self._alone())
                ok = True
            finally:
                try:
                    self._finish(group, commit=ok and _usable(group.connection))
                finally:
                    if not self._postgresql:
                        self._turn.release()
        else:
            group = self._take_turn()
            try:
                session = self._session(group)
                yield from self._run(group, session)
                self._spare = session  # closed: nothing of this writer is left in it
            finally:
                self._end_turn(group)
        self._committed(group)

    def write_each(
        self, items: Sequence[T], work: Callable[[Session, T], R]
    ) -> list[R | Exception]:
        """``work(session, item)`` for each item in order, each a writer of its own as in
        ``write`` (what it raises refuses that item alone, nothing of it stored, and is
        its answer), all of them in one transaction and one commit: one turn for many
        writers, where each ``write`` from a thread of its own would wait for one.

        Returns once the commit is durable; when it fails, raises as ``write`` does, for
        every item. On PostgreSQL too the items share one transaction, each in a
        savepoint of its own."""
        answers: list[R | Exception] = []
        group = self._open_group() if self._postgresql else self._take_turn()
        ok = False
        try:
            for item in items:
                # On SQLite the turn guards the spare session; on PostgreSQL nothing does.
                session = self._writes() if self._postgresql else self._session(group)
                try:
                    with contextmanager(self._run)(group, session) as writing:
                        answers.append(work(writing, item))
                except Exception as refused:
                    answers.append(refused)
                if not self._postgresql:
                    self._spare = session
            ok = True
        finally:
            if self._postgresql:
                self._finish(group, commit=ok and _usable(group.connection))
            else:
                self._end_turn(group)
        self._committed(group)
        return answers

    def _committed(self, group: WriteGroup) -> None:
        """Wait for ``group``'s commit; raise as ``write`` says when it failed."""
        group.committed.wait()
        if isinstance(group.failure, RateLimited):
            raise group.failure  # a bucket another writer emptied meanwhile (PostgreSQL)
        if group.failure is not None:
            raise WriteNotCommitted() from group.failure
        if self.integrate_after_commit and group.events:
            self.integrate()

    def integrate(self, *, wait: bool = True) -> Integrated | None:
        """Integrate everything staged so far into the audit log, in a write transaction
        of its own (``vir.store.sequencer``); None when ``wait`` is False and another
        integrator is running."""
        with self.write() as session:
            return audit_log.flush(session, wait=wait)

    def _run(self, group: WriteGroup, session: Session) -> Iterator[Session]:
        """One writer's block in its own savepoint of the group's transaction."""
        group.members += 1
        session.bind = group.connection
        session.info.clear()
        session.info[GROUP] = group
        with session:
            try:
                yield session
                if session.in_transaction():  # not begun if it sent no statement
                    session.commit()  # releases this writer's savepoint
            except BaseException:
                session.rollback()
                for hook in self._hooks:
                    hook.rolled_back(session)
                raise
            for hook in self._hooks:
                hook.committed(session)

    def _session(self, group: WriteGroup) -> Session:
        """A session for the writer whose turn it is, on the group's connection.

        The last writer's closed session is reused when there is one: setting up a
        Session costs more than most writers' own work does (a closed Session holds
        no objects and no transaction; only its bind and info are set afresh).
        """
        session, self._spare = self._spare, None
        return session if session is not None else self._writes()

    def _wait_turn(self) -> None:
        with self._counter:
            self._queued += 1
        self._turn.acquire()
        with self._counter:
            self._queued -= 1

    def _take_turn(self) -> WriteGroup:
        self._wait_turn()
        try:
            if self._group is None:
                self._group = self._open_group()
            return self._group
        except BaseException:
            self._turn.release()
            raise

    def _take_turn_alone(self) -> WriteGroup:
        """The turn, and a transaction of its own for the writer taking it (SQLite): a
        group still open is committed first (its writers are done; only their commit
        was waiting for the next in line)."""
        self._wait_turn()
        try:
            shared, self._group = self._group, None
            if shared is not None:
                self._finish(shared, commit=_usable(shared.connection))
            return self._open_group()
        except BaseException:
            self._turn.release()
            raise

    def _open_group(
        self, *, exclusive: bool = False, first: Sequence[FirstRead] = ()
    ) -> WriteGroup:
        gated = self._gate is not None and self._gate.enter()
        first_reads: dict[FirstRead, list[tuple[Any, ...]]] = {}
        try:
            connection = self._writer.connect()
            try:
                if self._postgresql:
                    first_reads = _begin_postgresql(connection, exclusive=exclusive, first=first)
                else:
                    connection.begin()  # BEGIN IMMEDIATE
            except BaseException:
                self._close(connection)
                raise
        except BaseException:
            if gated:
                self._leave_gate()
            raise
        group = WriteGroup(connection)
        group.gated = gated
        group.first_reads = first_reads
        return group

    def _leave_gate(self) -> None:
        assert self._gate is not None
        self._gate.leave()

    def _end_turn(self, group: WriteGroup) -> None:
        """Commit the group if this writer is the last in line (or the group is full),
        or end it at once if its transaction can no longer commit; then pass the turn."""
        try:
            try:
                usable = _usable(group.connection)
            except BaseException:
                usable = False
            if not usable:
                self._group = None
                self._finish(group, commit=False)
                return
            with self._counter:
                last = self._queued == 0
            full = group.members >= MAX_GROUP
            if last or full or time.monotonic() - group.opened >= MAX_GROUP_SECONDS:
                self._group = None
                self._finish(group, commit=True)
        finally:
            self._turn.release()

    def _finish(self, group: WriteGroup, *, commit: bool) -> None:
        try:
            if commit:
                if self._postgresql:
                    _write_out_together(group)
                else:
                    for write_out in (*group.before_commit, *group.last_before_commit):
                        write_out(group.connection)
                group.connection.commit()
            else:
                group.failure = WriteNotCommitted()
        except BaseException as error:
            group.failure = error
        finally:
            try:
                self._close(group.connection)  # rolls back whatever did not commit
            finally:
                if group.gated:
                    self._leave_gate()
                group.committed.set()
        if group.failure is None and group.events:
            for observer in self._observers:
                observer(group.events)

    def _close(self, connection: Connection) -> None:
        """End a writer's connection: what did not commit is rolled back."""
        if self._postgresql and not connection.invalidated:
            _hand_back(connection)
        connection.close()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._gate is not None:
            self._gate.close()
            self._gate = None
