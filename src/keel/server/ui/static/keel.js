/* keel's UI glue: draws the charts the server sends, shows refusals of htmx requests, and
 * wires the pages' small behaviours (the pages carry no inline scripts or event handlers:
 * the server's Content-Security-Policy forbids them).
 *
 * A chart arrives as <div data-chart><script type="application/json">FIGURE</script></div>
 * (already downsampled on the server); htmx.onLoad runs for the first page and for every
 * piece htmx swaps in later, so lazily loaded charts are drawn the same way. */
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof Plotly === "undefined") { return; }
    root.querySelectorAll("[data-chart]:not([data-drawn])").forEach(function (el) {
      var source = el.querySelector('script[type="application/json"]');
      if (!source) { return; }
      var figure = JSON.parse(source.textContent);
      el.setAttribute("data-drawn", "");
      Plotly.newPlot(el, figure.data, figure.layout, figure.config);
    });
  }

  function flash(text) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = text;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  // htmx does not swap 4xx/5xx answers: say what went wrong instead of doing nothing.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var message = "the server refused (" + xhr.status + ")";
    try {
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var line = page.querySelector(".message");
      if (line && line.textContent.trim()) { message = line.textContent.trim(); }
    } catch (ignored) { /* keep the status line */ }
    flash(message);
  });
  document.addEventListener("htmx:sendError", function () {
    flash("the server cannot be reached");
  });

  // <select data-submit-on-change>: choosing sends the form (the jobs list's status filter).
  // <input type=checkbox data-toggle-class="C" data-toggle-target="ID">: class C on element
  // ID follows the box (compare's "show only differences").
  // <input type=checkbox data-column="metrics.K"> (the runs table's column picker): the
  // column joins or leaves the Columns box, and the filter form is sent (htmx swaps #runs).
  function toggleColumn(box) {
    var runs = box.closest("#runs");
    var input = runs && runs.querySelector("form.filter input[name=cols]");
    if (!input) { return; }
    var name = box.getAttribute("data-column");
    var items = input.value.split(",").map(function (c) { return c.trim(); })
      .filter(function (c) { return c && c !== name; });
    if (box.checked) { items.push(name); }
    input.value = items.join(", ");
    if (window.htmx) { htmx.trigger(input.form, "submit"); } else { input.form.submit(); }
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches("input[data-column]")) {
      toggleColumn(el);
    } else if (el.matches("[data-submit-on-change]") && el.form) {
      el.form.submit();
    } else if (el.matches("[data-toggle-class][data-toggle-target]")) {
      var target = document.getElementById(el.getAttribute("data-toggle-target"));
      if (target) { target.classList.toggle(el.getAttribute("data-toggle-class"), el.checked); }
    }
  });

  // htmx sends its first htmx:load (for the body) at DOMContentLoaded, after every deferred
  // script, plotly.min.js included, has run.
  if (window.htmx) {
    htmx.onLoad(drawCharts);
  } else {
    document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  }
})();
