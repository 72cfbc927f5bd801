// The registration page ("Zorg melden", docs/portal.md): the young person (BSN, or
// surname, date of birth and gender), up to two parents' BSNs and the home address are
// pseudonymised in the browser (pseudonym-form.js) and only their pseudonyms are sent.
(() => {
  "use strict";
  if (!window.virPseudonymForm) return;
  window.virPseudonymForm({
    form: "melden",
    status: "melden-status",
    identity: ["bsn", "surname", "birth_date", "gender", "parent1_bsn", "parent2_bsn",
      "postcode", "house_number", "suffix"],
    pseudonyms: ["person", "parent_1", "parent_2", "address"],
    inputs({ value, canonical, PageError, blind }) {
      const found = [];
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
