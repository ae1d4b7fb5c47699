"""The harness's part of Locust's web UI: the "Patterns" tab (a table per pattern and, under it, live charts).

- the table: Locust's extended-tab mechanism (``extendedTabs``/``extendedTables`` in the template arguments and
  an ``extended_stats`` entry added to ``/stats/requests``, which the React UI polls every 2 s); the same rows
  at ``/patterns/json`` and ``/patterns/csv``;
- the charts: the gateways' timelines the engine host relays (``LoadSession.series``), drawn by
  ``emulators.timechart`` (as ``/_harness/dashboard`` and the HTML report draw them), at ``/patterns/charts``;
  the points at ``/patterns/timeline``. Locust's page has no slot for custom content in a tab, so
  ``/patterns/live.js``, added to its HTML, puts them under the table and refreshes them every 2 s;
- ``/patterns``: a plain page with both, for a quick look without the React UI.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from flask import Response, jsonify, request

from emulators.gateway.dashboard import charts_json, live_script

if TYPE_CHECKING:
    from .plugin import LoadSession

__all__ = ["COLUMNS", "install_web_ui"]

COLUMNS = [  # the "Patterns" tab's table, also /patterns/csv
    {"key": "pattern", "title": "Pattern"}, {"key": "profile", "title": "Profile"},
    {"key": "calls", "title": "Calls"}, {"key": "ok", "title": "OK"}, {"key": "failures", "title": "Failures"},
    {"key": "failures_by_kind", "title": "Failures by kind"},
    {"key": "cold_start_share", "title": "Cold starts"}, {"key": "p95_ms", "title": "p95 (platform ms)"},
    {"key": "cost_per_1k_usd", "title": "Cost / 1k calls ($)"}, {"key": "llm_tokens", "title": "LLM tokens"},
    {"key": "instances_seen", "title": "Instances seen"}, {"key": "live_instances", "title": "Live instances"},
    {"key": "peak_live_instances", "title": "Peak live"},
]


def install_web_ui(web_ui: Any, s: LoadSession) -> None:
    """Add the Patterns tab, its charts and their routes to Locust's web UI (Flask's decorators are untyped)."""
    web_ui.template_args["extendedTabs"] = [{"title": "Patterns", "key": "patterns"}]
    web_ui.template_args["extendedTables"] = [{"key": "patterns", "structure": COLUMNS}]
    web_ui.template_args["extendedCsvFiles"] = [{"href": "/patterns/csv", "title": "Download harness patterns CSV"}]

    def rows() -> list[dict[str, Any]]:
        try:
            names = s.selected_patterns()
        except ValueError:
            names = None
        known = set(s.urls) | set(s.stats.patterns)
        return s.stats.rows([n for n in names if n in known or not known] if names else None)

    def _extend_stats(response: Response) -> Response:
        # The React UI polls /stats/requests every 2 s and renders "extended_stats" in the extended tabs.
        if request.path != "/stats/requests" or not response.is_json:
            return response
        data = response.get_json()
        data["extended_stats"] = [{"key": "patterns", "data": rows()}]
        response.set_data(json.dumps(data))
        return response

    def _patterns_json() -> Response:
        return jsonify({"patterns": rows(), "urls": s.urls, "columns": COLUMNS})

    def _patterns_csv() -> Response:
        out = io.StringIO()
        w = csv.DictWriter(out, [c["key"] for c in COLUMNS])
        w.writeheader()
        w.writerows(rows())
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=harness_patterns.csv"})

    def _patterns_page() -> Response:
        return Response(_PAGE, mimetype="text/html")

    def _charts() -> Response:
        return jsonify(charts_json(s.series.to_json(), request.args.get("pattern")))

    def _timeline() -> Response:
        return jsonify({"patterns": s.series.to_json()})

    def _live_js() -> Response:
        return Response(_TAB_SCRIPT + live_script("patterns/charts"), mimetype="text/javascript")

    def _inject_charts(response: Response) -> Response:
        # Locust's React page has no hook for custom content in a tab: a script of ours adds the charts
        # under the Patterns tab's table (and keeps them there while the tab is open).
        if request.path != "/" or response.mimetype != "text/html" or response.direct_passthrough:
            return response
        html = response.get_data(as_text=True)
        if "</body>" in html and "patterns/live.js" not in html:
            response.set_data(html.replace("</body>", '<script src="patterns/live.js" defer></script></body>', 1))
        return response

    app, auth = web_ui.app, web_ui.auth_required_if_enabled
    app.after_request(_extend_stats)
    app.after_request(_inject_charts)
    app.route("/patterns/charts")(auth(_charts))
    app.route("/patterns/timeline")(auth(_timeline))
    app.route("/patterns/live.js")(auth(_live_js))
    app.route("/patterns/json")(auth(_patterns_json))
    app.route("/patterns/csv")(auth(_patterns_csv))
    app.route("/patterns")(auth(_patterns_page))


# A standalone view of the same table (for a quick look without the React UI, and for headless checks).
_PAGE = """<!doctype html><meta charset="utf-8"><title>Patterns - harness</title>
<style>body{font:14px sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:4px 8px;text-align:right}td:first-child,th{text-align:left}</style>
<h1>Patterns</h1><table id="t"><thead></thead><tbody></tbody></table>
<p><label>Pattern <select id="harness-pattern"><option value="">all</option></select></label></p>
<div id="harness-charts"></div>
<script src="patterns/live.js" defer></script>
<script>
async function load(){const r=await fetch("patterns/json");const d=await r.json();
document.querySelector("#t thead").innerHTML="<tr>"+d.columns.map(c=>"<th>"+c.title+"</th>").join("")+"</tr>";
document.querySelector("#t tbody").innerHTML=d.patterns.map(p=>"<tr data-pattern='"+p.pattern+"'>"+
d.columns.map(c=>"<td>"+p[c.key]+"</td>").join("")+"</tr>").join("");}
load();setInterval(load,2000);
</script>"""

# Keeps a box with a pattern selector and the charts under the Patterns tab's table while that tab is open;
# the refresh loop that fills it (live_script) follows it in /patterns/live.js.
_TAB_SCRIPT = """(function(){
function patternsTab(){return [...document.querySelectorAll('[role=tab]')].find(b=>b.textContent.trim()==='Patterns');}
function place(){
  if(document.getElementById('t')){return;}  /* the standalone /patterns page has its own box */
  const tab=patternsTab();
  let box=document.getElementById('harness-live');
  const open=tab&&tab.getAttribute('aria-selected')==='true';
  if(!open){if(box){box.remove();}return;}
  const tables=[...document.querySelectorAll('table')].filter(t=>!(box&&box.contains(t)));
  const table=tables[tables.length-1];
  if(!table){return;}
  const anchor=table.closest('.MuiTableContainer-root')||table;
  if(!box){
    box=document.createElement('div');
    box.id='harness-live';
    box.style.cssText='margin:12px 0 24px;padding:8px;background:#fff;color:#111827;border-radius:6px';
    box.innerHTML='<div style="margin-bottom:6px">Pattern <select id="harness-pattern">'+
      '<option value="">all</option></select> <span id="harness-updated" style="color:#6b7280"></span></div>'+
      '<div id="harness-charts">loading charts...</div>';
  }
  if(anchor.nextElementSibling!==box){anchor.after(box);if(window.harnessRefreshCharts){window.harnessRefreshCharts();}}
}
setInterval(place,500);place();
})();
"""
