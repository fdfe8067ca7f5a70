/* /markets/: search, favourites (this browser's localStorage) and live 24 h statistics from
   the !miniTicker@arr stream. */
(function () {
  "use strict";
  function drawSparkline(svg, closes) {
    const line = svg.querySelector("polyline");
    if (!closes.length) { line.setAttribute("points", ""); return; }
    // Scaled to the box: a display-only Number conversion, never used for money.
    const values = closes.map(Number);
    const lo = Math.min(...values), hi = Math.max(...values);
    const span = hi - lo || 1;
    const step = values.length > 1 ? 100 / (values.length - 1) : 0;
    line.setAttribute("points", values.map((v, i) =>
      `${(i * step).toFixed(2)},${(26 - ((v - lo) / span) * 24).toFixed(2)}`).join(" "));
    svg.classList.toggle("down", X.cmp(closes[closes.length - 1], closes[0]) < 0);
  }

  function trim(text) {
    // "50000.00000000" -> "50000"; display only
    return String(text).includes(".") ? String(text).replace(/0+$/, "").replace(/\.$/, "") : String(text);
  }

  window.marketList = function () {
    return {
      query: "",
      favouritesOnly: false,
      favourites: JSON.parse(localStorage.getItem("favouriteMarkets") || "[]"),
      state: "reconnecting",
      start() {
        const rows = [...document.querySelectorAll("tr[data-stream]")];
        this.rows = new Map(rows.map((tr) => [tr.dataset.stream.toUpperCase(), tr]));
        rows.forEach((tr) => {
          const svg = tr.querySelector("svg.sparkline");
          const pts = (svg.dataset.points || "").split(" ").filter(Boolean);
          tr._closes = pts;
          drawSparkline(svg, pts);
          tr.querySelectorAll("td.num").forEach((td) => { td.firstChild && (td.firstChild.textContent = X.digits(td.firstChild.textContent)); });
        });
        new X.Stream("/ws/!miniTicker@arr", {
          onState: (s) => { this.state = s; },
          onMessage: (msg) => { if (Array.isArray(msg)) msg.forEach((t) => this.update(t)); },
        });
      },
      update(t) {
        const tr = this.rows.get(t.s);
        if (!tr) return;
        const set = (field, text) => {
          const td = tr.querySelector(`[data-field="${field}"]`);
          if (td && td.firstChild) td.firstChild.textContent = X.digits(text);
          return td;
        };
        set("last", trim(t.c));
        set("high", trim(t.h));
        set("low", trim(t.l));
        set("volume", trim(t.q) + " ");
        // change % from open and close, exact to 2 places (BigInt), as the ticker computes it
        const p = Math.max(X.placesOf(t.o), X.placesOf(t.c));
        const open = X.units(t.o, p), close = X.units(t.c, p);
        if (open && open > 0n) {
          const bp = ((close - open) * 10000n) / open; // basis points, truncated
          const td = set("change", X.fromUnits(bp, 2) + "%");
          td.classList.toggle("pos", bp > 0n);
          td.classList.toggle("neg", bp < 0n);
        }
        tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash");
      },
      isFavourite(symbol) { return this.favourites.includes(symbol); },
      toggle(symbol) {
        this.favourites = this.isFavourite(symbol)
          ? this.favourites.filter((s) => s !== symbol) : [...this.favourites, symbol];
        localStorage.setItem("favouriteMarkets", JSON.stringify(this.favourites));
      },
      visible(symbol) {
        const q = X.toAscii(this.query).toUpperCase().replace(/[\s/]/g, "").replace("-", "");
        if (this.favouritesOnly && !this.isFavourite(symbol)) return false;
        return !q || symbol.replace("-", "").includes(q);
      },
      noneVisible() {
        return [...(this.rows || new Map()).values()].every((tr) => !this.visible(tr.dataset.symbol));
      },
    };
  };
})();
