// The job page's buttons ask before they post (djqueue.ops.job_page). A file of its own
// rather than inline handlers, so that the page works under a Content-Security-Policy
// that allows scripts from this origin only.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("#djq-job-actions form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
