// What the portal's pseudonymising forms share (the registration page, register.js,
// and the access request page, officer-access.js; docs/portal.md): the identity the
// person types is made canonical and blinded here (vir-blind.js), evaluated at the key
// holder(s) with the person's access token, unblinded (threshold-combined when the key
// is shared), and only the pseudonyms and their epoch are put in the form. The identity
// fields have no name (a form post cannot carry them) and are emptied before the form
// is sent.
//
// window.virPseudonymForm({form, status, identity, pseudonyms, inputs, words}):
//   form, status: the ids of the form and of its status line;
//   identity: the ids of the identity fields (each with its error box fout-<id>);
//   pseudonyms: the names of the form's hidden pseudonym fields;
//   inputs(page): [[hidden field name, canonical input], ...] of what was typed, with
//     page = {value(id), canonical(make, as), PageError, blind};
//   words: {refused, working, failed, sending}: the page's own Dutch sentences.
(() => {
  "use strict";
  if (!window.virBlind) return;
  const blind = window.virBlind;

  class PageError extends Error {
    constructor(field, message) {
      super(message);
      this.field = field;
    }
  }

  const value = (id) => document.getElementById(id).value;

  // Blind-library errors name their own field (bsn, surname, ...); ``as`` renames it
  // (for the parents' BSN fields, say).
  function canonical(make, as) {
    try {
      return make();
    } catch (error) {
      if (error instanceof blind.InputError) throw new PageError(as || error.field, error.message);
      throw error;
    }
  }

  window.virPseudonymForm = (page) => {
    const form = document.getElementById(page.form);
    if (!form) return;
    const holders = JSON.parse(form.dataset.keyholders || "[]");
    const threshold = Number(form.dataset.threshold || "1");
    const token = form.dataset.token || "";
    const status = document.getElementById(page.status);
    const words = page.words;
    let sending = false;

    function clearErrors() {
      for (const id of page.identity) {
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
      status.textContent = `${words.refused}: ${message}`;
      status.classList.add("problem");
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

    // An answer that can be used: a whole key's when the threshold is 1, else one
    // share's of this threshold.
    function usable(answer) {
      return threshold === 1
        ? answer.share_index === undefined
        : answer.threshold === threshold && Number.isInteger(answer.share_index) && answer.share_index >= 1;
    }

    // The newest epoch that ``threshold`` of the answers were given under, else null.
    function epochOf(answers) {
      const counts = new Map();
      for (const a of answers) counts.set(a.epoch, (counts.get(a.epoch) || 0) + 1);
      const ready = [...counts].filter(([, n]) => n >= threshold).map(([e]) => e);
      return ready.length ? Math.max(...ready) : null;
    }

    // The key holders' answers for ``blinded``, as the Python client gets them
    // (vir.client.connection, ``_evaluate``): the first ``threshold`` holders are asked
    // at once, and only when some fail as many of the others as are still needed, in
    // their order: every holder asked counts an evaluation of the person's organisation.
    // When the answers are under different epochs (holders activating a rotation one
    // by one), every holder not asked yet is asked, and the newest epoch that
    // ``threshold`` of them answer under is used; only its answers are combined.
    async function evaluated(blinded) {
      const answers = [];
      let refused = null;
      let waiting = holders.slice();
      while (waiting.length && epochOf(answers) === null) {
        let wave;
        if (new Set(answers.map((a) => a.epoch)).size > 1) {
          [wave, waiting] = [waiting, []];
        } else {
          const needed = threshold - answers.length;
          [wave, waiting] = [waiting.slice(0, needed), waiting.slice(needed)];
        }
        const settled = await Promise.allSettled(wave.map((url) => evaluate(url, blinded)));
        for (const s of settled) {
          if (s.status === "fulfilled" && usable(s.value)) answers.push(s.value);
          else if (s.status === "rejected" && s.reason instanceof PageError) refused = refused || s.reason;
        }
      }
      const epoch = epochOf(answers);
      if (epoch !== null) {
        const same = answers.filter((a) => a.epoch === epoch).slice(0, threshold);
        if (threshold === 1) return { epoch, elements: same[0].evaluated_elements };
        if (new Set(same.map((a) => a.share_index)).size === threshold) {
          const elements = blinded.map((_b, i) => blind.combine(
            same.map((a) => ({ index: a.share_index, evaluated: a.evaluated_elements[i] }))));
          return { epoch, elements };
        }
      }
      if (refused) throw refused;
      throw new PageError(null, "De sleutelbeheerder is nu niet bereikbaar. Probeer het later opnieuw.");
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (sending) return;
      clearErrors();
      for (const name of ["epoch", ...page.pseudonyms]) form.elements[name].value = "";
      let made;
      try {
        made = page.inputs({ value, canonical, PageError, blind });
      } catch (error) {
        if (error instanceof PageError) return showError(error.field, error.message);
        throw error;
      }
      sending = true;
      status.textContent = words.working;
      try {
        const blinds = made.map(([, input]) => blind.blind(input));
        const answer = await evaluated(blinds.map((b) => b.blinded));
        made.forEach(([name], i) => {
          form.elements[name].value = blind.unblind(blinds[i].blind, answer.elements[i]);
        });
        form.elements.epoch.value = String(answer.epoch);
      } catch (error) {
        sending = false;
        const message = error instanceof PageError ? error.message : words.failed;
        return showError(error.field || null, message);
      }
      for (const id of page.identity) document.getElementById(id).value = "";
      status.textContent = words.sending;
      form.submit();
    });
  };
})();
