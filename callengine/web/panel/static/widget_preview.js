/* The widget page: the preview follows the edit form as it is changed, nothing saved. The
 * form's values go to the preview's frame through its own "Preview these settings" button
 * (formaction …/preview, formtarget the frame), which works without this script too. */
(function () {
  "use strict";
  var form = document.getElementById("widget-form");
  var button = document.getElementById("preview-button");
  if (!form || !button || !form.requestSubmit) return;
  var timer = null;
  function soon() {
    clearTimeout(timer);
    timer = setTimeout(function () { form.requestSubmit(button); }, 400);
  }
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
})();
