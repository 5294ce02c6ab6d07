// The "Next runs" field of a periodic task's or a schedule's page: while the form is
// edited, its values are sent to the admin's preview view and the runs it computes (or
// the error that makes the values unusable) replace the field's content.
"use strict";

(function () {
  const DELAY_MS = 300;

  function start() {
    const box = document.querySelector(".djq-next-runs[data-preview-url]");
    const form = box && box.closest("form");
    if (!box || !form) {
      return;
    }
    let timer = null;
    let asked = 0;
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(update, DELAY_MS);
    };
    form.addEventListener("input", later);
    form.addEventListener("change", later);

    async function update() {
      const url = new URL(box.dataset.previewUrl, window.location.href);
      for (const [name, value] of new FormData(form)) {
        // The CSRF token never goes into an address (logs keep addresses).
        if (name !== "csrfmiddlewaretoken" && typeof value === "string") {
          url.searchParams.append(name, value);
        }
      }
      const mine = ++asked;
      let data;
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        data = await response.json();
      } catch (error) {
        data = { runs: [], note: "", error: "Could not compute the next runs (the server did not answer)." };
      }
      if (mine === asked) {
        show(data);
      }
    }

    function show(data) {
      const list = box.querySelector(".djq-runs");
      list.replaceChildren(
        ...(data.runs || []).map((run) => {
          const item = document.createElement("li");
          item.textContent = run.text;
          return item;
        }),
      );
      box.querySelector(".djq-note").textContent = data.note || "";
      const error = box.querySelector(".djq-error");
      error.textContent = data.error || "";
      error.hidden = !data.error;
      box.dataset.updates = String(Number(box.dataset.updates || 0) + 1);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
