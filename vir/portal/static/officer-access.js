// The access request page ("Inzageverzoek", docs/portal.md): the privacy officer types
// the person's BSN (or surname, date of birth and gender); it is pseudonymised in the
// browser as on the registration page (pseudonym-form.js) and only the pseudonym is sent.
(() => {
  "use strict";
  if (!window.virPseudonymForm) return;
  window.virPseudonymForm({
    form: "inzage",
    status: "inzage-status",
    identity: ["bsn", "surname", "birth_date", "gender"],
    pseudonyms: ["person"],
    // The person: the BSN, else surname, date of birth and gender.
    inputs({ value, canonical, PageError, blind }) {
      if (value("bsn").trim()) return [["person", canonical(() => blind.nlBsn(value("bsn")))]];
      if (value("surname").trim() || value("birth_date").trim()) {
        return [["person", canonical(() =>
          blind.nlPerson(value("surname"), value("birth_date"), value("gender")))]];
      }
      throw new PageError("bsn", "Vul het BSN in, of achternaam, geboortedatum en geslacht.");
    },
    words: {
      refused: "Niet opgevraagd",
      working: "Bezig: de gegevens worden in uw browser omgezet in een code.",
      failed: "Het omzetten in een code is mislukt. Probeer het opnieuw.",
      sending: "Bezig met opvragen.",
    },
  });
})();
