// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // The same units as the forms' size messages (formatting.file_size): MB of 1,048,576 bytes.
  function fileSize(bytes) {
    if (bytes < 1048576) { return Math.max(1, Math.ceil(bytes / 1024)) + " kB"; }
    return (bytes / 1048576).toFixed(1).replace(/\.0$/, "") + " MB";
  }

  function describedBy(input, id, add) {
    var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (x) { return x && x !== id; });
    if (add) { ids.push(id); }
    if (ids.length) { input.setAttribute("aria-describedby", ids.join(" ")); } else { input.removeAttribute("aria-describedby"); }
  }

  // A file over the upload limit is named under its field as soon as it is chosen; it stays
  // chosen, and the form is not sent while it is, so the page never submits without it.
  // "Remove the file" lets an optional image go and the rest be sent.
  function fileFits(input) {
    var field = input.closest(".field") || input.parentElement;
    var id = input.id + "_sizeerror";
    var old = document.getElementById(id);
    if (old) { old.remove(); }
    describedBy(input, id, false);
    field.classList.remove("invalid");
    var limit = Number(input.getAttribute("data-max-bytes"));
    var file = input.files && input.files[0];
    if (!file || !limit || file.size <= limit) { return true; }
    var message = document.createElement("div");
    message.id = id;
    message.className = "error client-error";
    message.setAttribute("role", "alert");
    message.textContent = "The file is " + fileSize(file.size) + "; the limit is " + fileSize(limit) +
      ". Choose a smaller image, for example a phone photo at medium size. ";
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link";
    remove.textContent = "Remove the file";
    remove.addEventListener("click", function () { input.value = ""; fileFits(input); input.focus(); });
    message.appendChild(remove);
    field.classList.add("invalid");
    field.appendChild(message);
    describedBy(input, id, true);
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
      var tooLarge = Array.prototype.filter.call(files, function (input) { return !fileFits(input); });
      if (form.submitting || tooLarge.length) {
        event.preventDefault();
        if (tooLarge.length) { tooLarge[0].focus(); }
        return;
      }
      setBusy(form, true);
    });
  });

  // Coming back with the browser's Back button must not leave a form stuck as busy.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-busy]").forEach(function (form) { setBusy(form, false); });
  });

  // The print button (shown only where this script runs); a printout holds the collapsed
  // sections opened, as the print stylesheet lays them out.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (details) {
      details.setAttribute("open", "");
      details.setAttribute("data-opened-for-print", "");
    });
  });
  window.addEventListener("afterprint", function () {
    document.querySelectorAll("details[data-opened-for-print]").forEach(function (details) {
      details.removeAttribute("open");
      details.removeAttribute("data-opened-for-print");
    });
  });

  // The activation map at twice its drawn size under the answer, in a box that scrolls (and takes
  // the keyboard) where the screen is narrower; and back. Shown only where this script runs.
  document.querySelectorAll("[data-enlarge]").forEach(function (button) {
    var figure = document.getElementById(button.getAttribute("data-enlarge"));
    var body = figure && figure.closest(".result-body");
    var view = figure && figure.querySelector(".map-view");
    if (!body || !view) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var enlarged = body.classList.toggle("enlarged");
      button.setAttribute("aria-expanded", enlarged ? "true" : "false");
      button.textContent = enlarged ? "Make the map smaller" : "Enlarge the map";
      if (enlarged) {
        view.setAttribute("tabindex", "0");
        view.setAttribute("role", "region");
        view.setAttribute("aria-label", "The map enlarged; scroll it to see all of it");
      } else {
        ["tabindex", "role", "aria-label"].forEach(function (name) { view.removeAttribute(name); });
      }
    });
  });

  // A refused form (or an upload outside what a model was validated on) takes the focus to what
  // says so, at the top: a screen reader reads it once, and its links lead to each field.
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) { summary.focus(); }

  // A result shown in answer to a form takes its own address, so reloading it shows the
  // recorded result instead of submitting the form again.
  var result = document.querySelector("[data-result-url]");
  if (result && window.history.replaceState) {
    window.history.replaceState(null, "", result.getAttribute("data-result-url"));
  }
})();
