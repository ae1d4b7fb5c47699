"""``/_harness/dashboard``, ``/_harness/timeline`` and ``/_harness/charts``: the run over time, live, in a browser.

The gateway samples its deployment into a ``Timeline`` (started by the first request to one of these
routes, or by ``harness serve`` at once) and serves:

- ``GET /_harness/timeline?since=N`` (or ``since=pattern:N,...``): the points as JSON,
  ``{"patterns": {pattern: {"profile", "interval_s", "points": [...]}}}``, for a user's own tools;
- ``GET /_harness/charts?pattern=P``: ``{"patterns": [...], "html": ...}``, the charts ``timechart.render``
  draws from the same points (the Locust "Patterns" tab and the HTML report draw with it too);
- ``GET /_harness/dashboard``: a page that fetches the charts every 2 s, with a pattern selector.

The routes live under ``/_harness/`` so they shadow no route an agent's own app may serve. Several
deployments served by one process (``harness serve --patterns all``) share their timelines, so each
gateway's dashboard shows every pattern side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..pattern import Emulator
from ..timechart import render
from ..timeline import Timeline

__all__ = ["DashboardRoutes", "charts_json", "dashboard_page", "live_script", "parse_since", "timeline_json"]


class DashboardRoutes:
    """The ``/_harness/`` routes of one gateway, over its deployment's ``Timeline`` (and its peers')."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.timeline = Timeline(emulator)  # sampled once someone looks, or once ``harness serve`` starts it
        self._url: Callable[[], str | None] = lambda: None

    def routes(self, url: Callable[[], str | None]) -> list[Route]:
        """The routes to mount; ``url`` tells the gateway's base URL once it listens."""
        self._url = url
        return [Route("/_harness/dashboard", self.dashboard, methods=["GET"]),
                Route("/_harness/timeline", self.points, methods=["GET"]),
                Route("/_harness/charts", self.charts, methods=["GET"])]

    def _sampling(self) -> list[Timeline]:
        shown = self.timeline.peers or [self.timeline]  # peers: the deployments served alongside this one
        for tl in shown:
            tl.start()
        return shown

    async def dashboard(self, request: Request) -> Response:
        """The live charts page."""
        self._sampling()
        return HTMLResponse(dashboard_page("charts", intro=f"{self.emulator.pattern} gateway at {self._url()}"))

    async def points(self, request: Request) -> Response:
        """The sampled points as JSON (``?since=N`` or ``since=pattern:N,...``: only newer points; ``fresh=1``:
        take a point now first, as a reader wants at the end of a run)."""
        shown = self._sampling()
        if request.query_params.get("fresh") in ("1", "true"):
            for tl in shown:
                await tl.sample()
        return JSONResponse(timeline_json(shown, parse_since(request.query_params.get("since"))))

    async def charts(self, request: Request) -> Response:
        """The charts' HTML fragment (``?pattern=P``: that pattern only) and the pattern names."""
        doc = timeline_json(self._sampling())["patterns"]
        return JSONResponse(charts_json(doc, request.query_params.get("pattern")))


def parse_since(text: str | None) -> dict[str, int] | int:
    """``"12"`` -> 12 (every pattern); ``"serverless:12,container:30"`` -> per pattern; junk -> 0."""
    if not text:
        return 0
    if ":" not in text:
        return int(text) if text.strip().isdigit() else 0
    out: dict[str, int] = {}
    for item in text.split(","):
        name, _, n = item.partition(":")
        if n.strip().isdigit():
            out[name.strip()] = int(n)
    return out


def timeline_json(timelines: Sequence[Timeline], since: dict[str, int] | int = 0) -> dict[str, Any]:
    """The timeline document of ``timelines``: each pattern's points after its ``since``."""
    def after(p: str) -> int:
        return since if isinstance(since, int) else since.get(p, 0)

    return {"patterns": {tl.pattern: tl.to_json(after(tl.pattern)) for tl in timelines}}


def charts_json(doc: Mapping[str, Mapping[str, Any]], only: str | None = None) -> dict[str, Any]:
    """What the dashboard page fetches: the pattern names (for its selector) and the charts' HTML."""
    return {"patterns": list(doc), "html": render(doc, only if only in doc else None)}


def dashboard_page(charts_url: str, title: str = "Harness: patterns over time", intro: str = "") -> str:
    """A standalone page: a pattern selector over the charts ``charts_url`` answers, refreshed every 2 s."""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:14px system-ui,sans-serif;margin:16px;color:#111827}}h1{{font-size:18px;margin:0 0 6px}}
.bar{{display:flex;gap:12px;align-items:center;margin-bottom:8px;color:#4b5563}}</style></head><body>
<h1>{escape(title)}</h1>{f'<p class="bar">{escape(intro)}</p>' if intro else ''}
<div class="bar"><label>Pattern <select id="harness-pattern"><option value="">all</option></select></label>
<span id="harness-updated"></span></div>
<div id="harness-charts">loading...</div>
<script>{live_script(charts_url)}</script></body></html>"""


def live_script(charts_url: str, root: str = "harness-charts") -> str:
    """The JavaScript that keeps ``#root`` filled with the charts (also injected into Locust's own UI)."""
    return f"""(function(){{
const url={_js(charts_url)};
async function refresh(){{
  const root=document.getElementById({_js(root)});
  if(!root){{return;}}
  const sel=document.getElementById("harness-pattern");
  const want=sel?sel.value:"";
  try{{
    const r=await fetch(url+(url.includes("?")?"&":"?")+"pattern="+encodeURIComponent(want),{{cache:"no-store"}});
    if(!r.ok){{return;}}
    const d=await r.json();
    if(sel){{
      const have=[...sel.options].map(o=>o.value).slice(1).join(",");
      if(have!==d.patterns.join(",")){{
        sel.innerHTML='<option value="">all</option>'+d.patterns.map(p=>'<option>'+p+'</option>').join("");
        sel.value=d.patterns.includes(want)?want:"";
      }}
    }}
    root.innerHTML=d.html;
    const u=document.getElementById("harness-updated");
    if(u){{u.textContent="updated "+new Date().toLocaleTimeString();}}
  }}catch(e){{/* the server is busy or gone: keep the last picture */}}
}}
window.harnessRefreshCharts=refresh;
document.addEventListener("change",e=>{{if(e.target&&e.target.id==="harness-pattern"){{refresh();}}}});
refresh();setInterval(refresh,2000);
}})();"""


def _js(s: str) -> str:
    import json

    return json.dumps(s).replace("<", "\\u003c")
