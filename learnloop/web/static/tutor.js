// The tutor panel's waiting state: while the question is being answered, say so and keep the
// form from being sent twice. Progressive enhancement: without JavaScript the form posts as usual.
(function () {
  "use strict";
  function enhance(form) {
    var status = form.querySelector("[data-tutor-thinking]");
    var button = form.querySelector("button[type=submit]");
    var question = form.querySelector("textarea[name=question]");
    var panel = document.querySelector("[data-tutor-panel]");
    var busy = false;
    form.addEventListener("submit", function (event) {
      if (busy) {
        event.preventDefault();
        return;
      }
      if (question && !question.value.trim()) {
        return; // the server explains what is missing
      }
      busy = true;
      if (status) {
        status.hidden = false;
      }
      if (button) {
        button.disabled = true;
        button.setAttribute("aria-disabled", "true");
      }
      if (question) {
        question.readOnly = true; // still sent with the form, unlike a disabled field
      }
      if (panel) {
        panel.setAttribute("aria-busy", "true");
      }
    });
    // Coming back with the browser's back button shows the form ready again.
    window.addEventListener("pageshow", function () {
      busy = false;
      if (status) { status.hidden = true; }
      if (button) { button.disabled = false; button.removeAttribute("aria-disabled"); }
      if (question) { question.readOnly = false; }
      if (panel) { panel.removeAttribute("aria-busy"); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("form[data-tutor-form]");
    for (var i = 0; i < forms.length; i++) {
      enhance(forms[i]);
    }
  });
})();
