// The access request page ("Inzageverzoek", docs/portal.md): the privacy officer types
// the person's BSN (or surname, date of birth and gender); it is made canonical and
// blinded here (vir-blind.js), evaluated at the key holder(s) with the officer's access
// token, unblinded (threshold-combined when the key is shared), and only the pseudonym
// is put in the form, as on the registration page (register.js). The identity fields
// have no name (a form post cannot carry them) and are emptied before the form is sent.
(() => {
  "use strict";
  const form = document.getElementById("inzage");
  if (!form || !window.virBlind) return;
  const blind = window.virBlind;
  const holders = JSON.parse(form.dataset.keyholders || "[]");
  const threshold = Number(form.dataset.threshold || "1");
  const token = form.dataset.token || "";
  const status = document.getElementById("inzage-status");
  const IDENTITY = ["bsn", "surname", "birth_date", "gender"];
  let sending = false;

  const value = (id) => document.getElementById(id).value;

  class PageError extends Error {
    constructor(field, message) {
      super(message);
      this.field = field;
    }
  }

  function clearErrors() {
    for (const id of IDENTITY) {
      const box = document.getElementById(`fout-${id}`);
      box.hidden = true;
      box.textContent = "";
      document.getElementById(id).removeAttribute("aria-invalid");
    }
    status.textContent = "";
    status.classList.remove("problem");
  }

  function showError(field, message) {
    const input = field && document.getElementById(field);
    if (input) {
      const box = document.getElementById(`fout-${field}`);
      box.textContent = message;
      box.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    status.textContent = `Niet opgevraagd: ${message}`;
    status.classList.add("problem");
  }

  // The canonical input of the person: the BSN, else surname, date of birth and gender.
  function input() {
    try {
      if (value("bsn").trim()) return blind.nlBsn(value("bsn"));
      if (value("surname").trim() || value("birth_date").trim()) {
        return blind.nlPerson(value("surname"), value("birth_date"), value("gender"));
      }
    } catch (error) {
      if (error instanceof blind.InputError) throw new PageError(error.field, error.message);
      throw error;
    }
    throw new PageError("bsn", "Vul het BSN in, of achternaam, geboortedatum en geslacht.");
  }

  async function evaluate(url, blinded) {
    const answer = await fetch(`${url}/v1/oprf/evaluate`, {
      method: "POST",
      headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ blinded_elements: [blinded] }),
      credentials: "omit",
      cache: "no-store",
    });
    if (answer.status === 401 || answer.status === 403) {
      throw new PageError(null, "Uw inlogsessie is verlopen. Log uit en log opnieuw in.");
    }
    if (answer.status === 429) {
      throw new PageError(null, "Te veel verzoeken van uw organisatie. Probeer het later opnieuw.");
    }
    if (!answer.ok) throw new Error("key holder");
    const body = await answer.json();
    if (!Array.isArray(body.evaluated_elements) || body.evaluated_elements.length !== 1) {
      throw new Error("key holder answer");
    }
    return body;
  }

  // The evaluated element: one key holder with a whole key, else ``threshold`` shares.
  async function evaluated(blinded) {
    const settled = await Promise.allSettled(holders.map((url) => evaluate(url, blinded)));
    const answers = settled.filter((s) => s.status === "fulfilled").map((s) => s.value);
    const refused = settled.find((s) => s.status === "rejected" && s.reason instanceof PageError);
    if (threshold === 1) {
      const whole = answers.find((a) => a.share_index === undefined);
      if (whole) return { epoch: whole.epoch, element: whole.evaluated_elements[0] };
    } else {
      const shares = answers.filter((a) => a.threshold === threshold && a.share_index >= 1);
      const epoch = shares.length ? shares[0].epoch : null;
      const same = shares.filter((a) => a.epoch === epoch).slice(0, threshold);
      if (same.length === threshold) {
        const element = blind.combine(
          same.map((a) => ({ index: a.share_index, evaluated: a.evaluated_elements[0] })));
        return { epoch, element };
      }
    }
    if (refused) throw refused.reason;
    throw new PageError(null, "De sleutelbeheerder is nu niet bereikbaar. Probeer het later opnieuw.");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (sending) return;
    clearErrors();
    form.elements.epoch.value = "";
    form.elements.person.value = "";
    let made;
    try {
      made = input();
    } catch (error) {
      if (error instanceof PageError) return showError(error.field, error.message);
      throw error;
    }
    sending = true;
    status.textContent = "Bezig: de gegevens worden in uw browser omgezet in een code.";
    try {
      const blinded = blind.blind(made);
      const answer = await evaluated(blinded.blinded);
      form.elements.person.value = blind.unblind(blinded.blind, answer.element);
      form.elements.epoch.value = String(answer.epoch);
    } catch (error) {
      sending = false;
      const message = error instanceof PageError ? error.message
        : "Het omzetten in een code is mislukt. Probeer het opnieuw.";
      return showError(error.field || null, message);
    }
    for (const id of IDENTITY) document.getElementById(id).value = "";
    status.textContent = "Bezig met opvragen.";
    form.submit();
  });
})();
