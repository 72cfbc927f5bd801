// The registration page ("Zorg melden", docs/portal.md): the young person (BSN, or
// surname, date of birth and gender), up to two parents' BSNs and the home address are
// pseudonymised in the browser (pseudonym-form.js) and only their pseudonyms are sent.
// A date of birth (with or without a BSN) keeps the index to young persons under 23: one
// who is 23 or older is refused here, and the 23rd birthday goes with the signal as
// archive_until when it comes before the archive term ends, as the Python client's
// vir.client.lifecycle.removal_dates says; the date of birth itself is not sent.
(() => {
  "use strict";
  if (!window.virPseudonymForm) return;

  const isLeap = (y) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  // vir.domain.signals.add_years: 29 February becomes 28 February in a common year.
  function addYears(iso, years) {
    const [y, m, d] = iso.split("-").map(Number);
    const day = m === 2 && d === 29 && !isLeap(y + years) ? 28 : d;
    return `${String(y + years).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
  }
  function isDate(text) {
    if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(text)) return false;
    const [y, m, d] = text.split("-").map(Number);
    const date = new Date(Date.UTC(y, m - 1, d));
    return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
  }
  // The 23rd birthday to send (or ""), or a PageError for one outside the index's scope.
  function archiveUntil(born, PageError) {
    if (!isDate(born)) throw new PageError("birth_date", "Vul de geboortedatum in als JJJJ-MM-DD.");
    const today = new Date().toISOString().slice(0, 10); // the index's calendar: UTC
    const limit = addYears(born, 23);
    if (!(born <= today && today < limit)) {
      throw new PageError("birth_date",
        "De jongere is 23 jaar of ouder (of nog niet geboren): de verwijsindex is voor jongeren onder 23.");
    }
    const twoYears = addYears(today, 2);
    const removeOn = limit < twoYears ? limit : twoYears;
    return limit < addYears(removeOn, 5) ? limit : "";
  }

  window.virPseudonymForm({
    form: "melden",
    status: "melden-status",
    identity: ["bsn", "surname", "birth_date", "gender", "parent1_bsn", "parent2_bsn",
      "postcode", "house_number", "suffix"],
    pseudonyms: ["person", "parent_1", "parent_2", "address"],
    inputs({ value, canonical, PageError, blind }) {
      const found = [];
      const born = value("birth_date").trim();
      document.getElementById("archive_until").value = born ? archiveUntil(born, PageError) : "";
      if (value("bsn").trim()) {
        found.push(["person", canonical(() => blind.nlBsn(value("bsn")))]);
      } else if (value("surname").trim() || value("birth_date").trim()) {
        found.push(["person", canonical(() =>
          blind.nlPerson(value("surname"), value("birth_date"), value("gender")))]);
      } else {
        throw new PageError("bsn", "Vul het BSN in, of achternaam, geboortedatum en geslacht.");
      }
      for (const [index, id] of [[1, "parent1_bsn"], [2, "parent2_bsn"]]) {
        if (value(id).trim()) {
          found.push([`parent_${index}`, canonical(() => blind.nlBsn(value(id)), id)]);
        }
      }
      if (value("postcode").trim() || value("house_number").trim()) {
        found.push(["address", canonical(() =>
          blind.nlAddress(value("postcode"), value("house_number"), value("suffix")))]);
      }
      return found;
    },
    words: {
      refused: "Niet gemeld",
      working: "Bezig: de gegevens worden in uw browser omgezet in codes.",
      failed: "Het omzetten in codes is mislukt. Probeer het opnieuw.",
      sending: "Bezig met melden.",
    },
  });
})();
