// A large batch action of the job list: asks the step view for one chunk after another
// (ops.job_actions), showing how far it got, until the filter has no jobs left below
// the cursor, the user stops it, or a step fails.
"use strict";
(function () {
  const box = document.getElementById("djq-batch");
  if (!box) return;
  const bar = document.getElementById("djq-batch-bar");
  const status = document.getElementById("djq-batch-status");
  const stop = document.getElementById("djq-batch-stop");
  const token = box.querySelector("input[name=csrfmiddlewaretoken]").value;
  const total = Number(box.dataset.total);
  const verb = box.dataset.doneVerb;
  let cursor = "";
  let read = 0;
  let changed = 0;
  let stopped = false;

  function show(state, text) {
    box.dataset.state = state;
    status.textContent = text;
    bar.value = Math.min(read, Number(bar.max));
  }

  function counts() {
    return `${read.toLocaleString()} of ${total.toLocaleString()} job(s) read; ` +
      `${verb.toLowerCase()}: ${changed.toLocaleString()}.`;
  }

  async function step() {
    const body = new FormData();
    body.append("action", box.dataset.action);
    body.append("query", box.dataset.query);
    body.append("cursor", cursor);
    const response = await fetch(box.dataset.stepUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: {"X-CSRFToken": token},
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok || data.error) {
      throw new Error(data.error || `the server answered ${response.status}`);
    }
    read += data.read;
    changed += data.changed;
    cursor = data.cursor || cursor;
    return data.finished;
  }

  async function run() {
    try {
      for (;;) {
        const finished = await step();
        if (finished) {
          bar.max = Math.max(read, 1);
          show("done", `Done. ${counts()}`);
          break;
        }
        if (stopped) {
          show("stopped", `Stopped. ${counts()}`);
          break;
        }
        show("running", `Working: ${counts()}`);
      }
    } catch (error) {
      show("failed", `Stopped by an error: ${error.message}. ${counts()}`);
    }
    stop.disabled = true;
  }

  stop.addEventListener("click", function () {
    stopped = true;
    stop.disabled = true;
  });
  run();
})();
