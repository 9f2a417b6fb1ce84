// Live refresh for the report pages of runs still going.
//
// Such a page carries data-poll (the JSON URL of what it shows) and data-etag (the ETag of the
// version it was rendered from). Every 2 s we ask whether that changed, with If-None-Match so
// an unchanged record costs a 304 and no body, and reload the page when it did. Pages of
// finished runs carry neither attribute and run nothing.
//
// Nothing here writes to the console: the integration test treats any console message on a
// report page as a failure.
(function () {
  "use strict";

  var INTERVAL_MS = 2000;
  var body = document.body;
  var url = body.getAttribute("data-poll");
  var etag = body.getAttribute("data-etag");
  if (!url || !etag) {
    return;
  }
  var note = document.getElementById("live-note");

  function say(text) {
    if (note) {
      note.textContent = text;
    }
  }

  function schedule() {
    window.setTimeout(poll, INTERVAL_MS);
  }

  function poll() {
    fetch(url, { cache: "no-store", headers: { "If-None-Match": etag } })
      .then(function (response) {
        var current = response.headers.get("ETag");
        if (response.status === 200 && current && current !== etag) {
          window.location.reload();
          return;
        }
        if (response.status === 304 || response.ok) {
          say("Live: still going, last checked " + new Date().toLocaleTimeString() +
            "; the page reloads when the record changes.");
        } else {
          say("Live: the report server answered " + response.status + "; retrying.");
        }
        schedule();
      })
      .catch(function () {
        say("Live: the report server is not answering; retrying.");
        schedule();
      });
  }

  schedule();
})();
