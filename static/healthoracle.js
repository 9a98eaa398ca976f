// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  function megabytes(bytes) { return (bytes / 1e6).toFixed(1); }

  // Refuse a file over the upload limit before sending it: the message sits under the
  // field, the file is cleared, and everything typed stays as it is.
  function fileFits(input) {
    var field = input.closest(".field") || input.parentElement;
    var old = field.querySelector(".client-error");
    if (old) { old.remove(); }
    field.classList.remove("invalid");
    var limit = Number(input.getAttribute("data-max-bytes"));
    var file = input.files && input.files[0];
    if (!file || !limit || file.size <= limit) { return true; }
    var message = document.createElement("p");
    message.className = "error client-error";
    message.setAttribute("role", "alert");
    message.textContent = "The file is " + megabytes(file.size) + " MB; the limit is " + megabytes(limit) +
      " MB. Choose a smaller image, for example a phone photo at medium size.";
    input.value = "";
    field.classList.add("invalid");
    field.appendChild(message);
    return false;
  }

  function setBusy(form, busy) {
    var button = form.querySelector("button[type=submit]");
    var note = form.querySelector(".busy-note");
    if (button) {
      if (busy) { button.setAttribute("data-label", button.textContent); }
      button.disabled = busy;
      button.textContent = busy ? form.getAttribute("data-busy") : (button.getAttribute("data-label") || button.textContent);
    }
    if (note) { note.textContent = busy ? "Working on it; this can take a few seconds." : ""; }
    form.setAttribute("aria-busy", busy ? "true" : "false");
    form.submitting = busy;
  }

  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    input.addEventListener("change", function () { fileFits(input); });
  });

  // One submission at a time, and a visible sign that it is under way.
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var files = form.querySelectorAll("input[type=file][data-max-bytes]");
      var fits = Array.prototype.every.call(files, fileFits);
      if (form.submitting || !fits) { event.preventDefault(); return; }
      setBusy(form, true);
    });
  });

  // Coming back with the browser's Back button must not leave a form stuck as busy.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-busy]").forEach(function (form) { setBusy(form, false); });
  });

  // A result shown in answer to a form takes its own address, so reloading it shows the
  // recorded result instead of submitting the form again.
  var result = document.querySelector("[data-result-url]");
  if (result && window.history.replaceState) {
    window.history.replaceState(null, "", result.getAttribute("data-result-url"));
  }
})();
