// The console's only script: live mail (server-sent events). Pages work without it.
(function () {
  "use strict";
  var table = document.getElementById("mail-list");
  if (!table || !window.EventSource) return;
  var params = new URLSearchParams(window.location.search);
  var source = new EventSource("/api/mail/stream?" + params.toString());
  var status = document.getElementById("live");
  function cell(row, text) { var td = row.insertCell(-1); td.textContent = text; return td; }
  source.addEventListener("ready", function () { if (status) status.textContent = "live"; });
  source.addEventListener("problem", function (e) { if (status) status.textContent = JSON.parse(e.data).error; });
  source.addEventListener("mail", function (e) {
    var m = JSON.parse(e.data);
    var empty = document.getElementById("no-mail");
    if (empty) empty.remove();
    var row = table.tBodies[0].insertRow(0);
    row.className = "new";
    row.dataset.id = m.id;
    cell(row, m.timestamp || "-");
    cell(row, (m.to || []).join(", "));
    var subject = row.insertCell(-1);
    var link = document.createElement("a");
    link.href = "/mail/" + encodeURIComponent(m.id);
    link.textContent = m.subject || "(no subject)";
    subject.appendChild(link);
    cell(row, m.from || "");
  });
  source.onerror = function () { if (status) status.textContent = "reconnecting…"; };
})();
