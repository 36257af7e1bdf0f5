/* Draws every Plotly figure of the page. A figure is a <div data-plotly-figure="ID"> whose
   data and layout sit in <script type="application/json" id="ID"> (Django's json_script),
   so pages need no inline script and work under a strict Content-Security-Policy. */
(function () {
  "use strict";
  function draw() {
    if (typeof window.Plotly === "undefined") {
      return;
    }
    var language = document.documentElement.lang || "en";
    document.querySelectorAll("[data-plotly-figure]").forEach(function (element) {
      var source = document.getElementById(element.getAttribute("data-plotly-figure"));
      if (!source) {
        return;
      }
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(element, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
        locale: language,
        modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
      }).then(function (plot) {
        // A treemap tile whose customdata ends in a link opens that page instead of zooming.
        plot.on("plotly_treemapclick", function (event) {
          var point = event && event.points && event.points[0];
          var data = point && point.customdata;
          var link = data && data[data.length - 1];
          if (typeof link === "string" && link.charAt(0) === "/") {
            window.location.assign(link);
            return false;
          }
          return true;
        });
        element.setAttribute("data-plotly-drawn", "true");
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
