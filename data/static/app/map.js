/* safezone map pages: legend, search box, district filter, school panel.
 * Settings come from <script id="safezone-config" type="application/json"> written by service/maps.py.
 * Every text is set with textContent (names are data, never HTML). No external request is made. */
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function bboxOf(geometry) {
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    (function walk(c) {
      if (typeof c[0] === "number") {
        b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]);
        b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
      } else { c.forEach(walk); }
    })(geometry.type === "GeometryCollection"
      ? geometry.geometries.map(function (g) { return g.coordinates; })
      : geometry.coordinates);
    return b;
  }

  function query(cfg, extra) {
    var params = new URLSearchParams(extra || {});
    params.set("token", cfg.token);
    params.set("lang", cfg.lang);
    return params.toString();
  }

  function legend(map, cfg) {
    var control = L.control({ position: "bottomright" });
    control.onAdd = function () {
      var box = el("div", "safezone-legend leaflet-bar");
      box.appendChild(el("div", "safezone-legend-title", cfg.text.legend));
      cfg.legend.forEach(function (item) {
        var row = el("div", "safezone-legend-row");
        var swatch = el("span", "safezone-swatch safezone-swatch-" + item.kind);
        swatch.style.backgroundColor = item.kind === "line" ? "transparent" : item.colour;
        swatch.style.borderColor = item.colour;
        row.appendChild(swatch);
        row.appendChild(el("span", "", item.label));
        box.appendChild(row);
      });
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    control.addTo(map);
  }

  function search(map, cfg) {
    var control = L.control({ position: "topleft" });
    control.onAdd = function () {
      var box = el("div", "safezone-search leaflet-bar");
      var input = el("input", "safezone-search-input");
      input.type = "search";
      input.placeholder = cfg.text.search;
      input.setAttribute("aria-label", cfg.text.search);
      var list = el("ul", "safezone-search-results");
      box.appendChild(input);
      box.appendChild(list);
      var marker = null;

      function show(item) {
        var b = bboxOf(item.geometry);
        if (marker) { map.removeLayer(marker); marker = null; }
        if (b[0] === b[2] && b[1] === b[3]) {
          map.setView([b[1], b[0]], 18);
          marker = L.circleMarker([b[1], b[0]], { radius: 10, color: "#000", weight: 3, fill: false }).addTo(map);
        } else {
          map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { maxZoom: 17 });
        }
      }

      function add(kind, feature) {
        var li = el("li", "safezone-search-result safezone-" + kind);
        var a = el("a", "", feature.properties.name || "—");
        a.href = "#";
        a.addEventListener("click", function (ev) { ev.preventDefault(); show(feature); });
        li.appendChild(a);
        if (kind === "school") {
          var page = el("a", "safezone-school-link", "↗");
          page.href = "/maps/schools/" + encodeURIComponent(feature.id) + "?" + query(cfg);
          li.appendChild(page);
        }
        list.appendChild(li);
      }

      function run() {
        var text = input.value.trim();
        list.textContent = "";
        if (!text) { return; }
        var headers = { Authorization: "Bearer " + cfg.token };
        var urls = [["school", "/v1/schools?" + new URLSearchParams({ name: text, limit: "8" })]];
        if (cfg.names) { urls.push(["premises", "/v1/premises?" + new URLSearchParams({ name: text, limit: "8" })]); }
        Promise.all(urls.map(function (pair) {
          return fetch(pair[1], { headers: headers })
            .then(function (r) { return r.ok ? r.json() : { features: [] }; })
            .then(function (body) { return [pair[0], body.features || []]; })
            .catch(function () { return [pair[0], []]; });
        })).then(function (groups) {
          var n = 0;
          groups.forEach(function (g) {
            g[1].filter(function (f) { return f.geometry; }).forEach(function (f) { add(g[0], f); n += 1; });
          });
          if (!n) { list.appendChild(el("li", "safezone-search-empty", cfg.text.no_results)); }
        });
      }

      var timer = null;
      input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 300); });
      input.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { clearTimeout(timer); run(); } });
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    control.addTo(map);
  }

  function districtFilter(map, cfg) {
    if (!cfg.districts || !cfg.districts.length) { return; }
    var control = L.control({ position: "topleft" });
    control.onAdd = function () {
      var box = el("div", "safezone-district leaflet-bar");
      var select = el("select", "safezone-district-select");
      select.setAttribute("aria-label", cfg.text.all_districts);
      var all = el("option", "", cfg.text.all_districts);
      all.value = "";
      select.appendChild(all);
      cfg.districts.forEach(function (d) {
        var opt = el("option", "", d.name + " (" + d.adcode + ")");
        opt.value = d.adcode;
        if (d.adcode === cfg.district) { opt.selected = true; }
        select.appendChild(opt);
      });
      select.addEventListener("change", function () {
        var extra = select.value ? { district: select.value } : {};
        window.location.search = "?" + query(cfg, extra);
      });
      L.DomEvent.disableClickPropagation(box);
      box.appendChild(select);
      return box;
    };
    control.addTo(map);
  }

  function schoolPanel(map, cfg) {
    var control = L.control({ position: "topright" });
    control.onAdd = function () {
      var box = el("div", "safezone-panel leaflet-bar");
      box.appendChild(el("h1", "safezone-panel-title", cfg.school.name));
      box.appendChild(el("div", "safezone-panel-summary", cfg.summary));
      if (cfg.warnings && cfg.warnings.length) {
        box.appendChild(el("div", "safezone-panel-warnings", cfg.text.warnings + ": " + cfg.warnings.join(", ")));
      }
      return box;
    };
    control.addTo(map);
  }

  window.addEventListener("load", function () {
    var node = document.getElementById("safezone-config");
    if (!node) { return; }
    var cfg = JSON.parse(node.textContent);
    var map = window[cfg.map];
    if (!map) { return; }
    document.documentElement.lang = cfg.lang === "zh" ? "zh-CN" : "en";
    window.safezoneMap = map;
    if (cfg.page === "school") { schoolPanel(map, cfg); }
    search(map, cfg);
    if (cfg.page === "city") { districtFilter(map, cfg); }
    legend(map, cfg);
  });
})();
