// The job list's copy buttons: put a job's whole id on the clipboard.
"use strict";
(function () {
  function copied(button) {
    button.classList.add("djq-copied");
    button.textContent = "copied";
    setTimeout(function () {
      button.classList.remove("djq-copied");
      button.textContent = "copy";
    }, 1500);
  }

  // Without the clipboard API (a page not served over https nor from localhost):
  // select the text in a field and copy the selection.
  function copyBySelection(text) {
    const field = document.createElement("textarea");
    field.value = text;
    field.setAttribute("readonly", "");
    field.style.position = "fixed";
    field.style.opacity = "0";
    document.body.appendChild(field);
    field.select();
    try {
      return document.execCommand("copy");
    } finally {
      document.body.removeChild(field);
    }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.djq-copy");
    if (!button) return;
    event.preventDefault();
    const text = button.dataset.copy;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { copied(button); },
        function () { if (copyBySelection(text)) copied(button); }
      );
    } else if (copyBySelection(text)) {
      copied(button);
    }
  });
})();
