/* The widget page: the preview follows the edit form as it is changed, nothing saved. The
 * form's values go to the preview's frame through its own "Preview these settings" button
 * (formaction …/preview, formtarget the frame), which works without this script too. */
(function () {
  "use strict";
  var form = document.getElementById("widget-form");
  var button = document.getElementById("preview-button");
  if (!form || !button || !form.requestSubmit) return;
  var timer = null;
  // What the frame shows: a field's "change" on leaving it, after its "input" was previewed
  // already, must not reload the frame (and reset the widget being tried in it).
  function values() { return new URLSearchParams(new FormData(form)).toString(); }
  var shown = values();
  function soon() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var now = values();
      if (now === shown) return;
      shown = now;
      form.requestSubmit(button);
    }, 400);
  }
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
})();
