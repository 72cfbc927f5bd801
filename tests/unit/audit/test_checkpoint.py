"""C2SP tlog-checkpoint and signed-note formats: round trips, strict parsing, known answers."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.note_vectors import SUMDB_NOTE, SUMDB_VKEY

from vir.audit.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    NoteSignature,
    SignedNote,
    ed25519_key_hash,
    format_verifier_key,
    parse_verifier_key,
    verify_note,
)

# --- Known answers, copied from their sources (not computed here) ----------------------
# golang.org/x/mod sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen).
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
PETER_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
    "dngotpRZb6KE6RyyBwJnAM=\n"
).encode()
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTG"
    "wnWLox33WWd1RvMc+QQ=\n"
).encode()
# transparency-dev/formats log/note_test.go: verifier keys of its test signers.
FORMATS_VKEYS = [
    "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs",
    "Known+451c786d+AXAQ0T7lbwuY4ABJ9/MYY9bWV3hmSyOGVt2x42NkmdUH",
    "KnownAgain+4893b26c+AQ+LR7BFF/F/dkpIBjBpSvT0crkteizuUkavAoGeaYMj",
    "Unknown+fdbb2e08+AWgRIYZ+8x1Vl+1Q+sR8zciNHiYI1SdlBjNw+RV0rots",
]

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT)

# --- Strategies ------------------------------------------------------------------------
_CONTROLS = "".join(chr(c) for c in range(0x20))  # codec="utf-8" already excludes surrogates
_line_char = st.characters(codec="utf-8", exclude_characters=_CONTROLS)
lines = st.text(_line_char, min_size=1, max_size=30)
origins = lines.filter(lambda s: s.strip() == s)
key_names = st.text(
    st.characters(codec="utf-8", exclude_characters=_CONTROLS + "+"),
    min_size=1,
    max_size=20,
).filter(lambda s: not any(c.isspace() for c in s))
checkpoints = st.builds(
    Checkpoint,
    origin=origins,
    size=st.integers(0, 2**64 - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(lines, max_size=3).map(tuple),
)
note_texts = st.lists(st.text(_line_char, max_size=30), min_size=1, max_size=5).map(
    lambda ls: "".join(line + "\n" for line in ls).encode("utf-8")
)
note_signatures = st.builds(
    NoteSignature,
    name=key_names,
    key_hash=st.binary(min_size=4, max_size=4),
    signature=st.binary(min_size=1, max_size=80),
)
signed_notes = st.builds(
    SignedNote,
    text=note_texts,
    signatures=st.lists(note_signatures, min_size=1, max_size=5).map(tuple),
)


# --- Round trips -----------------------------------------------------------------------
@given(checkpoints)
def test_checkpoint_round_trips(checkpoint: Checkpoint) -> None:
    body = checkpoint.body()
    assert Checkpoint.parse_body(body) == checkpoint
    assert Checkpoint.parse_body(body).body() == body


@given(signed_notes)
def test_signed_note_round_trips(note: SignedNote) -> None:
    data = note.render()
    assert SignedNote.parse(data) == note
    assert SignedNote.parse(data).render() == data


@given(checkpoints, st.lists(note_signatures, min_size=1, max_size=3))
def test_signed_checkpoint_round_trips(
    checkpoint: Checkpoint, signatures: list[NoteSignature]
) -> None:
    note = SignedNote.parse(SignedNote(checkpoint.body(), tuple(signatures)).render())
    assert Checkpoint.parse_body(note.text) == checkpoint


def test_body_layout_is_exact() -> None:
    checkpoint = Checkpoint("example.com/log", 20852163, ROOT, ("ext one", "ext two"))
    assert checkpoint.body() == b"example.com/log\n20852163\n" + ROOT_B64 + b"\next one\next two\n"
    assert Checkpoint("o", 0, ROOT).body() == b"o\n0\n" + ROOT_B64 + b"\n"


def test_render_layout_is_exact() -> None:
    note = SignedNote(b"hello\n", (NoteSignature("k", b"\x01\x02\x03\x04", b"\xff" * 3),))
    expected = "hello\n\n\u2014 k " + base64.b64encode(b"\x01\x02\x03\x04\xff\xff\xff").decode()
    assert note.render() == (expected + "\n").encode("utf-8")
    assert note.render().count("\u2014 ".encode()) == 1  # EM DASH U+2014, then a space


def test_text_with_blank_lines_splits_at_the_last_one() -> None:
    note = SignedNote(b"a\n\nb\n\n", (NoteSignature("k", b"abcd", b"s"),))
    assert SignedNote.parse(note.render()) == note


# --- Strict checkpoint parsing ---------------------------------------------------------
def _body(origin: bytes = b"example.com/log", size: bytes = b"42", root: bytes = ROOT_B64) -> bytes:
    return origin + b"\n" + size + b"\n" + root + b"\n"


@pytest.mark.parametrize(
    "size",
    [
        b"007",
        b"00",
        b"01",
        b"+7",
        b"-1",
        b" 7",
        b"7 ",
        b"1_000",
        b"0x10",
        b"",
        b"1e3",
        "\u0663".encode(),
        b"18446744073709551616",
        b"99999999999999999999999",
    ],
)
def test_rejects_non_canonical_tree_size(size: bytes) -> None:
    with pytest.raises(ValueError, match="tree size"):
        Checkpoint.parse_body(_body(size=size))


def test_accepts_boundary_tree_sizes() -> None:
    assert Checkpoint.parse_body(_body(size=b"0")).size == 0
    assert Checkpoint.parse_body(_body(size=b"18446744073709551615")).size == 2**64 - 1


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_rejects_root_hash_of_wrong_length(length: int) -> None:
    with pytest.raises(ValueError, match="root hash"):
        Checkpoint.parse_body(_body(root=base64.b64encode(bytes(length))))


@pytest.mark.parametrize(
    "root",
    [
        b"not base64!",
        ROOT_B64.rstrip(b"="),  # padding missing
        base64.urlsafe_b64encode(b"\xff" * 32),  # URL-safe alphabet
        ROOT_B64[:-2] + b"B=",  # spare bits set: decodes, but not the canonical spelling
        b" " + ROOT_B64,
    ],
)
def test_rejects_bad_base64_root(root: bytes) -> None:
    with pytest.raises(ValueError, match="root hash"):
        Checkpoint.parse_body(_body(root=root))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_body()[:-1], "newline"),
        (_body() + b"ext", "newline"),
        (b"example.com/log\n42\n", "three lines"),
        (_body() + b"\n", "extension line is empty"),
        (_body() + b"ext\n\n", "extension line is empty"),
        (_body(origin=b""), "origin is empty"),
        (_body(origin=b" example.com/log"), "whitespace"),
        (_body(origin=b"example.com/log "), "whitespace"),
        (_body(origin=b"example.com/log\r"), "control"),
        (_body(origin=b"\xffexample"), "UTF-8"),
        (b"", "newline"),
    ],
)
def test_rejects_malformed_checkpoint(text: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Checkpoint.parse_body(text)


def test_origin_may_hold_inner_spaces() -> None:
    # The spec only recommends URL-like origins; sum.golang.org's is "go.sum database tree".
    assert Checkpoint.parse_body(_body(origin=b"a b")).origin == "a b"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": ""},
        {"origin": " x"},
        {"origin": "a\nb"},
        {"size": -1},
        {"size": 2**64},
        {"size": True},
        {"root_hash": bytes(31)},
        {"root_hash": bytes(33)},
        {"extensions": ("",)},
        {"extensions": ("a\nb",)},
    ],
)
def test_checkpoint_refuses_values_it_could_not_render(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"origin": "o", "size": 1, "root_hash": ROOT, **kwargs}
    with pytest.raises(ValueError):
        Checkpoint(**fields)  # type: ignore[arg-type]


# --- Strict signed-note parsing --------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (PETER_TEXT, "blank line"),  # go: text
        (PETER_TEXT + b"\n", "no signature lines"),  # go: text + "\n"
        (PETER_TEXT + b"\n" + PETER_SIG[:-1], "newline"),  # go: last newline cut
        (PETER_TEXT + PETER_SIG, "blank line"),  # no blank line before the signature
        (b"\x01" + PETER_TEXT + b"\n" + PETER_SIG, "control"),  # go: "\x01" + ...
        (b"\xff" + PETER_TEXT + b"\n" + PETER_SIG, "UTF-8"),  # go: "\xff" + ...
        (PETER_TEXT + b"\n" + PETER_SIG.replace(b"PeterNeumann", b"Bad Name"), "base64"),
        (PETER_TEXT + b"\n" + PETER_SIG + b"Unexpected line.\n", "em dash"),  # go
        (PETER_TEXT + b"\n" + PETER_SIG.replace("\u2014".encode(), b"-"), "em dash"),
        (PETER_TEXT + b"\n" + PETER_SIG.replace("\u2014".encode(), "\u2013".encode()), "em dash"),
        (PETER_TEXT + b"\n" + PETER_SIG.replace("\u2014 ".encode(), "\u2014".encode()), "em dash"),
        (PETER_TEXT + b"\n" + PETER_SIG.replace("\u2014 ".encode(), b"-- "), "em dash"),
        (PETER_TEXT + b"\n" + b" " + PETER_SIG, "em dash"),
        (PETER_TEXT + "\n\u2014 PeterNeumann\n".encode(), "no signature after"),
        (PETER_TEXT + "\n\u2014 PeterNeumann \n".encode(), "no signature after"),
        (PETER_TEXT + "\n\u2014  AAAAAAA=\n".encode(), "key name"),
        (PETER_TEXT + "\n\u2014 a+b AAAAAAA=\n".encode(), "key name"),
        (PETER_TEXT + "\n\u2014 k AAAAAA==\n".encode(), "too short"),  # 4 bytes: no signature
        (PETER_TEXT + "\n\u2014 k AAAAAAA\n".encode(), "base64"),  # padding missing
        (PETER_TEXT + "\n\u2014 k AAAAAAB=\n".encode(), "canonical"),  # spare bits set
        (PETER_TEXT + "\n\u2014 k AAAA AAA=\n".encode(), "base64"),
        (PETER_TEXT + "\n\u2014 k AAAAAAA= \n".encode(), "base64"),
        (PETER_TEXT + "\n\u2014 k AAAAAAA=\r\n".encode(), "control"),
        (PETER_TEXT + b"\n" + PETER_SIG * (MAX_SIGNATURES + 1), "more than"),
    ],
)
def test_rejects_malformed_signed_note(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SignedNote.parse(data)


def test_accepts_the_maximum_number_of_signatures() -> None:
    note = SignedNote.parse(PETER_TEXT + b"\n" + PETER_SIG * MAX_SIGNATURES)
    assert len(note.signatures) == MAX_SIGNATURES


@pytest.mark.parametrize(
    ("text", "signatures"),
    [
        (b"no newline", (NoteSignature("k", b"abcd", b"s"),)),
        (b"tab\there\n", (NoteSignature("k", b"abcd", b"s"),)),
        (b"\xff\n", (NoteSignature("k", b"abcd", b"s"),)),
        (b"text\n", ()),
    ],
)
def test_signed_note_refuses_values_it_could_not_render(
    text: bytes, signatures: tuple[NoteSignature, ...]
) -> None:
    with pytest.raises(ValueError):
        SignedNote(text, signatures)


@pytest.mark.parametrize(
    ("name", "key_hash", "signature"),
    [
        ("", b"abcd", b"s"),
        ("a b", b"abcd", b"s"),
        ("a+b", b"abcd", b"s"),
        ("a\u00a0b", b"abcd", b"s"),  # a Unicode space
        ("a\x00b", b"abcd", b"s"),
        ("\ud800", b"abcd", b"s"),  # lone surrogate: not encodable as UTF-8
        ("k", b"abc", b"s"),
        ("k", b"abcde", b"s"),
        ("k", b"abcd", b""),
    ],
)
def test_note_signature_refuses_malformed_fields(
    name: str, key_hash: bytes, signature: bytes
) -> None:
    with pytest.raises(ValueError):
        NoteSignature(name, key_hash, signature)


# --- Known answers ---------------------------------------------------------------------
def test_peter_neumann_verifier_key() -> None:
    name, public_key = parse_verifier_key(PETER_VKEY)
    assert name == "PeterNeumann"
    assert len(public_key) == 32
    assert ed25519_key_hash(name, public_key).hex() == "c74f20a3"
    assert format_verifier_key(name, public_key) == PETER_VKEY


@pytest.mark.parametrize("vkey", [PETER_VKEY, ENOCH_VKEY, SUMDB_VKEY, *FORMATS_VKEYS])
def test_published_verifier_keys_round_trip(vkey: str) -> None:
    name, public_key = parse_verifier_key(vkey)
    assert ed25519_key_hash(name, public_key).hex() == vkey.split("+")[1]
    assert format_verifier_key(name, public_key) == vkey


def test_mangled_verifier_keys_are_refused() -> None:
    # The manglings of sumdb/note's TestNewVerifier: every proper substring, and every
    # single character bumped by one.
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(ValueError):
                    parse_verifier_key(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        bumped = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(ValueError):
            parse_verifier_key(bumped)


def _with_matching_hash(name: str, key: bytes) -> str:
    """A verifier key whose hash is right for ``key``, whatever its length or algorithm."""
    key_hash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    return f"{name}+{key_hash.hex()}+{base64.b64encode(key).decode()}"


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        # From TestNewVerifier, with key hashes adjusted to match: only the later checks can
        # refuse. (Go decodes the first leniently and refuses its length; it also has spare
        # base64 bits set, which we refuse first.)
        (
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "verifier key",
        ),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "algorithm"),
        (_with_matching_hash("PeterNeumann", b"\x01" + bytes(31)), "32-byte"),
        (_with_matching_hash("PeterNeumann", b"\x01" + bytes(33)), "32-byte"),
        (_with_matching_hash("PeterNeumann", b"\x02" + bytes(32)), "algorithm"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "lowercase"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a3", "is not <name>"),
    ],
)
def test_verifier_key_checks_length_algorithm_and_hash(vkey: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_verifier_key(vkey)


def test_peter_neumann_note_parses_and_renders_byte_for_byte() -> None:
    data = PETER_TEXT + b"\n" + PETER_SIG + ENOCH_SIG
    note = SignedNote.parse(data)
    assert note.text == PETER_TEXT
    assert [(s.name, s.key_hash.hex(), len(s.signature)) for s in note.signatures] == [
        ("PeterNeumann", "c74f20a3", 64),
        ("EnochRoot", "af0cfe78", 64),
    ]
    assert note.render() == data


def test_sumdb_checkpoint_parses() -> None:
    note = SignedNote.parse(SUMDB_NOTE)
    checkpoint = Checkpoint.parse_body(note.text)
    assert checkpoint.origin == "go.sum database tree"
    assert checkpoint.size == 6476701
    assert checkpoint.root_hash == base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=")
    assert checkpoint.extensions == ()
    assert checkpoint.body() == note.text
    assert note.render() == SUMDB_NOTE
    name, public_key = parse_verifier_key(SUMDB_VKEY)
    assert note.signatures[0].name == name
    assert note.signatures[0].key_hash == ed25519_key_hash(name, public_key)


# --- verify_note, with the Ed25519 check injected --------------------------------------
class RecordingVerifier:
    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.calls: list[tuple[bytes, bytes, bytes]] = []

    def __call__(self, public_key: bytes, signature: bytes, message: bytes) -> bool:
        self.calls.append((public_key, signature, message))
        return self.answer


def test_verify_note_checks_only_the_matching_line() -> None:
    note = SignedNote.parse(PETER_TEXT + b"\n" + ENOCH_SIG + PETER_SIG)
    name, public_key = parse_verifier_key(PETER_VKEY)
    verifier = RecordingVerifier()
    assert verify_note(note, name, public_key, verifier)
    assert verifier.calls == [(public_key, note.signatures[1].signature, PETER_TEXT)]
    assert not verify_note(note, name, public_key, RecordingVerifier(answer=False))


def test_verify_note_is_false_without_a_matching_line() -> None:
    note = SignedNote.parse(PETER_TEXT + b"\n" + ENOCH_SIG)
    name, public_key = parse_verifier_key(PETER_VKEY)
    verifier = RecordingVerifier()
    assert not verify_note(note, name, public_key, verifier)
    # Same name, another key (so another key hash): not this key's signature.
    relabelled = SignedNote.parse(
        PETER_TEXT + b"\n" + ENOCH_SIG.replace(b"EnochRoot", b"PeterNeumann")
    )
    assert not verify_note(relabelled, name, public_key, verifier)
    # Same key hash under another name: also ignored.
    renamed = SignedNote.parse(PETER_TEXT + b"\n" + PETER_SIG.replace(b"PeterNeumann", b"Peter"))
    assert not verify_note(renamed, name, public_key, verifier)
    assert verifier.calls == []


def test_verify_note_rejects_if_any_matching_line_fails() -> None:
    name, public_key = parse_verifier_key(PETER_VKEY)
    good = SignedNote.parse(PETER_TEXT + b"\n" + PETER_SIG).signatures[0]
    bad = NoteSignature(good.name, good.key_hash, b"\x00" * 64)
    note = SignedNote(PETER_TEXT, (good, bad))

    def only_good(pk: bytes, signature: bytes, message: bytes) -> bool:
        return signature == good.signature

    assert verify_note(SignedNote(PETER_TEXT, (good,)), name, public_key, only_good)
    assert not verify_note(note, name, public_key, only_good)


def test_key_hash_refuses_bad_inputs() -> None:
    with pytest.raises(ValueError):
        ed25519_key_hash("k", bytes(31))
    with pytest.raises(ValueError):
        ed25519_key_hash("a b", bytes(32))
    with pytest.raises(ValueError):
        format_verifier_key("a+b", bytes(32))
