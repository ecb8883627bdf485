// The live board: re-renders its tables from the server-sent snapshots (text only, no HTML
// from the server is ever parsed). Without JavaScript the page shows the snapshot it was
// rendered with.
(function () {
  "use strict";
  var root = document.getElementById("board");
  if (!root || !window.EventSource) return;
  function when(ts) {
    return new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }
  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }
  var calls = root.querySelector("[data-part=calls]");
  var agents = root.querySelector("[data-part=agents]");
  var live = root.querySelector("[data-part=live]");
  var suffix = live.textContent.replace(/^\d+\s*/, "");
  var source = new EventSource(root.getAttribute("data-events"));
  source.addEventListener("board", function (event) {
    var board = JSON.parse(event.data);
    calls.replaceChildren();
    board.calls.forEach(function (c) {
      var row = document.createElement("tr");
      row.setAttribute("data-lead", c.lead);
      cell(row, when(c.started_at));
      cell(row, c.widget);
      cell(row, c.phone);
      cell(row, String(c.attempt));
      cell(row, (c.progress && root.getAttribute("data-t-progress-" + c.progress))
        || root.getAttribute(c.connected ? "data-t-connected" : "data-t-ringing"));
      row.lastChild.setAttribute("data-progress", c.progress || "");
      calls.appendChild(row);
    });
    agents.replaceChildren();
    board.agents.forEach(function (a) {
      var row = document.createElement("tr");
      row.setAttribute("data-agent", a.name);
      row.setAttribute("data-state", a.state);
      cell(row, a.name);
      cell(row, root.getAttribute("data-t-agent-" + a.state) || a.state);
      agents.appendChild(row);
    });
    live.textContent = board.calls.length + " " + suffix;
  });
})();
