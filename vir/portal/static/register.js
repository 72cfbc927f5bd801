// The registration page ("Zorg melden", docs/portal.md): the identity the professional
// types is made canonical and blinded here (vir-blind.js), evaluated at the key
// holder(s) with the person's access token, unblinded (threshold-combined when the
// key is shared), and only the pseudonyms are put in the form. The identity fields have
// no name (a form post cannot carry them) and are emptied before the form is sent.
(() => {
  "use strict";
  const form = document.getElementById("melden");
  if (!form || !window.virBlind) return;
  const blind = window.virBlind;
  const holders = JSON.parse(form.dataset.keyholders || "[]");
  const threshold = Number(form.dataset.threshold || "1");
  const token = form.dataset.token || "";
  const status = document.getElementById("melden-status");
  const IDENTITY = ["bsn", "surname", "birth_date", "gender", "parent1_bsn", "parent2_bsn",
    "postcode", "house_number", "suffix"];
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
    status.textContent = `Niet gemeld: ${message}`;
    status.classList.add("problem");
  }

  // Blind-library errors name their own field (bsn, surname, ...); ``as`` renames it for
  // the parents' BSN fields.
  function canonical(make, as) {
    try {
      return make();
    } catch (error) {
      if (error instanceof blind.InputError) throw new PageError(as || error.field, error.message);
      throw error;
    }
  }

  // [hidden field name, canonical input] for every identity given.
  function inputs() {
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
  }

  async function evaluate(url, blinded) {
    const answer = await fetch(`${url}/v1/oprf/evaluate`, {
      method: "POST",
      headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ blinded_elements: blinded }),
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
    if (!Array.isArray(body.evaluated_elements) || body.evaluated_elements.length !== blinded.length) {
      throw new Error("key holder answer");
    }
    return body;
  }

  // The key holders' answers for ``blinded``: one with a whole key, else ``threshold``
  // answers of holders that each say they are one share of that threshold.
  async function evaluated(blinded) {
    const settled = await Promise.allSettled(holders.map((url) => evaluate(url, blinded)));
    const answers = settled.filter((s) => s.status === "fulfilled").map((s) => s.value);
    const refused = settled.find((s) => s.status === "rejected" && s.reason instanceof PageError);
    if (threshold === 1) {
      const whole = answers.find((a) => a.share_index === undefined);
      if (whole) return { epoch: whole.epoch, elements: whole.evaluated_elements };
    } else {
      const shares = answers.filter((a) => a.threshold === threshold && a.share_index >= 1);
      const epoch = shares.length ? shares[0].epoch : null;
      const same = shares.filter((a) => a.epoch === epoch).slice(0, threshold);
      if (same.length === threshold) {
        const elements = blinded.map((_b, i) => blind.combine(
          same.map((a) => ({ index: a.share_index, evaluated: a.evaluated_elements[i] }))));
        return { epoch, elements };
      }
    }
    if (refused) throw refused.reason;
    throw new PageError(null, "De sleutelbeheerder is nu niet bereikbaar. Probeer het later opnieuw.");
  }

  function clearIdentity() {
    for (const id of IDENTITY) document.getElementById(id).value = "";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (sending) return;
    clearErrors();
    for (const name of ["epoch", "person", "parent_1", "parent_2", "address"]) {
      form.elements[name].value = "";
    }
    let made;
    try {
      made = inputs();
    } catch (error) {
      if (error instanceof PageError) return showError(error.field, error.message);
      throw error;
    }
    sending = true;
    status.textContent = "Bezig: de gegevens worden in uw browser omgezet in codes.";
    try {
      const blinds = made.map(([, input]) => blind.blind(input));
      const answer = await evaluated(blinds.map((b) => b.blinded));
      made.forEach(([name], i) => {
        form.elements[name].value = blind.unblind(blinds[i].blind, answer.elements[i]);
      });
      form.elements.epoch.value = String(answer.epoch);
    } catch (error) {
      sending = false;
      const message = error instanceof PageError ? error.message
        : "Het omzetten in codes is mislukt. Probeer het opnieuw.";
      return showError(error.field || null, message);
    }
    clearIdentity();
    status.textContent = "Bezig met melden.";
    form.submit();
  });
})();
