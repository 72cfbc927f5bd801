// The portal's browser-side pseudonymisation (docs/portal.md). The identity a
// professional types (a BSN, or surname, date of birth and gender, or an address) is
// made canonical here exactly as vir's Python client makes it (vir/client/canonical.py),
// blinded with RFC 9497 (ristretto255-SHA512, mode 0x00) by @noble/curves, and only
// the blinded element leaves the browser. The key holder's answer k·blinded is
// unblinded here to N = k·HashToGroup(input), the pseudonym the index stores.
import { ristretto255, ristretto255_oprf } from "@noble/curves/ed25519.js";

const Point = ristretto255.Point;
const Fn = Point.Fn;
const OPRF = ristretto255_oprf.oprf;

export class InputError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

function b64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromB64url(text) {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) throw new InputError("element", "not a 32-byte element");
  const raw = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=");
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  if (b64url(bytes) !== text) throw new InputError("element", "not canonical base64url");
  return bytes;
}

// The 11-proof ("elfproef"): weights 9..2 and -1, sum divisible by 11.
export function isValidBsn(bsn) {
  if (!/^[0-9]{9}$/.test(bsn) || bsn === "000000000") return false;
  const weights = [9, 8, 7, 6, 5, 4, 3, 2, -1];
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(bsn[i]) * weights[i];
  return sum % 11 === 0;
}

export function nlBsn(text) {
  const cleaned = text.trim();
  if (!/^[0-9]{9}$/.test(cleaned)) throw new InputError("bsn", "Een BSN bestaat uit 9 cijfers.");
  if (!isValidBsn(cleaned)) throw new InputError("bsn", "Dit BSN klopt niet (elfproef).");
  return `nl-bsn:${cleaned}`;
}

// Latin letters with their diacritics (ASCII, Latin-1, Latin Extended-A and -B, Latin
// Extended Additional), spaces, hyphens, apostrophes and dots: the surnames for which
// this and the Python client agree character for character (tested over every such
// character). Anything else is refused here; the back-office system's client takes it.
const LETTERS = "A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u1E00-\u1EFF";
const SURNAME = new RegExp(`^[${LETTERS} \\u00A0'’.\\-]+$`, "u");
const NORMALISED = new RegExp(`^[${LETTERS}'’.\\-]+$`, "u");

export function normaliseSurname(surname) {
  if (!SURNAME.test(surname)) {
    throw new InputError("surname", "Gebruik alleen letters, spaties, koppeltekens en apostrofs.");
  }
  const stripped = surname.normalize("NFKD").replace(/\p{Mn}/gu, "");
  const result = stripped.replace(/[ \u00A0]+/gu, "").toLowerCase();
  if (!result) throw new InputError("surname", "De achternaam is leeg.");
  if (!NORMALISED.test(result)) {
    throw new InputError("surname", "Gebruik alleen letters, spaties, koppeltekens en apostrofs.");
  }
  return result;
}

export function nlPerson(surname, birthDate, gender) {
  const date = birthDate.trim();
  const match = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(date);
  const parsed = match && new Date(Date.UTC(+match[1], +match[2] - 1, +match[3]));
  if (!match || !parsed || parsed.toISOString().slice(0, 10) !== date || +match[1] < 1) {
    throw new InputError("birth_date", "Vul de geboortedatum in als JJJJ-MM-DD.");
  }
  const g = gender.trim().toLowerCase();
  if (!["m", "v", "x"].includes(g)) throw new InputError("gender", "Kies m, v of x.");
  return `nl-person:${normaliseSurname(surname)}:${date}:${g}`;
}

export function nlAddress(postcode, houseNumber, suffix = "") {
  const compact = postcode.replace(/\s+/gu, "").toUpperCase();
  if (!/^[1-9][0-9]{3}[A-Z]{2}$/.test(compact)) {
    throw new InputError("postcode", "Een postcode is 4 cijfers (niet beginnend met 0) en 2 letters.");
  }
  const number = String(houseNumber).trim();
  if (!/^[0-9]+$/.test(number) || +number < 1 || +number > 99999) {
    throw new InputError("house_number", "Een huisnummer is een getal van 1 tot en met 99999.");
  }
  const cleanedSuffix = suffix.replace(/[\s\-/.,]/gu, "").toUpperCase();
  if (!/^[A-Z0-9]{0,6}$/.test(cleanedSuffix)) {
    throw new InputError("suffix", "Een toevoeging is hoogstens 6 letters of cijfers.");
  }
  return `nl-address:${compact}:${Number(number)}:${cleanedSuffix}`;
}

// blind(canonical) -> {blind, blinded}: keep blind in the page, send blinded.
// ``fixedBlind`` (base64url scalar) only for known-answer tests.
export function blind(canonical, fixedBlind) {
  const input = new TextEncoder().encode(canonical);
  const made = OPRF.blind(input, fixedBlind ? fixedRng(fixedBlind) : undefined);
  return { blind: b64url(made.blind), blinded: b64url(made.blinded) };
}

// noble turns the random bytes r into the scalar (r mod (n-1)) + 1 (little-endian):
// these bytes give exactly the scalar ``fixed``.
function fixedRng(fixed) {
  let value = 0n;
  const bytes = fromB64url(fixed);
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
  if (value < 1n || value >= Fn.ORDER) throw new InputError("blind", "not a scalar");
  return (length) => {
    const out = new Uint8Array(length);
    let rest = value - 1n;
    for (let i = 0; i < length; i++, rest >>= 8n) out[i] = Number(rest & 0xffn);
    return out;
  };
}

// unblind(blind, evaluated) -> the pseudonym N = k·HashToGroup(input), base64url. The
// key holder's answer must be a canonical, non-identity ristretto255 encoding.
export function unblind(blindScalar, evaluated) {
  let point;
  try {
    point = Point.fromBytes(fromB64url(evaluated));
  } catch (error) {
    throw new InputError("evaluated", "the key holder's answer is not a valid element");
  }
  if (point.equals(Point.ZERO)) throw new InputError("evaluated", "the identity element");
  const inverse = Fn.inv(Fn.fromBytes(fromB64url(blindScalar)));
  return b64url(point.multiply(inverse).toBytes());
}

// Lagrange coefficient λ_i at 0 for the set of share indices (threshold OPRF).
export function combine(answers) {
  const indices = answers.map((a) => BigInt(a.index));
  let sum = Point.ZERO;
  for (const answer of answers) {
    const i = BigInt(answer.index);
    let lambda = 1n;
    for (const j of indices) {
      if (j === i) continue;
      lambda = Fn.mul(lambda, Fn.div(Fn.neg(j), Fn.sub(i, j)));
    }
    sum = sum.add(Point.fromBytes(fromB64url(answer.evaluated)).multiply(lambda));
  }
  return b64url(sum.toBytes());
}
