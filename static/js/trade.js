/* /trade/<SYMBOL>/: the live trading page (Alpine component `tradePage`).

   Market data: one combined stream (/stream?streams=<s>@depth@100ms/<s>@trade/<s>@ticker/
   <s>@kline_<i>). The book follows the documented rule (docs/api/streams.md): buffer the
   diffs, read GET /api/v3/depth, drop diffs with u <= lastUpdateId, the first kept one must
   straddle lastUpdateId + 1, and every later one must start at the previous u + 1; a gap or
   a reconnect starts again from a new snapshot.
   The trader's data: /ws/account (the session) sends executionReport and
   outboundAccountPosition; the page then re-reads its open orders from /api/v1/orders and
   applies the balances it was sent. Orders are placed and cancelled through /api/v1 with
   the session's CSRF token. Amounts stay decimal strings; the form's arithmetic is BigInt. */
(function () {
  "use strict";
  const BOOK_ROWS = 14;
  const TRADE_ROWS = 40;
  const INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d", "1w"];
  const P18 = 18;
  const key = (p) => X.units(p, P18);              // exact sort key of a price string
  const clean = (s) => (String(s).includes(".") ? String(s).replace(/0+$/, "").replace(/\.$/, "") : String(s));

  function floorTo(valueUnits, stepUnits) { return valueUnits - (valueUnits % stepUnits); }
  /* BigInt units of `from` places -> of `to` places, truncated. */
  function rescale(u, from, to) { return to >= from ? u * 10n ** BigInt(to - from) : u / 10n ** BigInt(from - to); }

  window.tradePage = function () {
    const cfg = JSON.parse(document.getElementById("market-config").textContent);
    const labels = JSON.parse(document.getElementById("labels").textContent);
    const pp = cfg.price_places, qp = cfg.quantity_places, vp = cfg.quote_decimals;
    return {
      cfg, labels, intervals: INTERVALS,
      state: "reconnecting",
      ticker: {}, tickerDir: 0,
      asks: [], bids: [], spread: "",
      trades: [],
      interval: localStorage.getItem("chartInterval") || "1h",
      chartView: "candles",
      side: "buy", type: "limit", marketBy: "total",
      price: "", stopPrice: "", amount: "", total: "",
      errors: {}, serverError: "", notice: "", busy: false,
      balances: Object.fromEntries(Object.entries(cfg.balances || {}).map(([k, v]) => [k, { available: clean(v.available), locked: clean(v.locked) }])),
      openOrders: [], history: [], fills: [], tab: "open",

      /* ---------- start ---------- */
      start() {
        window.tradePageInstance = this;
        this.book = { bids: new Map(), asks: new Map(), lastId: 0, synced: false, buffer: [] };
        this.initChart();
        this.market = new X.Stream(() => this.streamPath(), {
          onState: (s) => { this.state = s === "live" && this.book.synced ? "live" : "reconnecting"; },
          onOpen: () => { this.resync(); this.loadCandles(); this.loadTrades(); this.loadTicker(); },
          onMessage: (m) => this.onMarket(m),
        });
        if (cfg.signed_in) {
          this.account = new X.Stream("/ws/account", {
            onOpen: () => { this.loadOpenOrders(); this.loadBalances(); },
            onMessage: (m) => this.onAccount(m),
          });
        }
      },
      streamPath() {
        const s = cfg.stream;
        return `/stream?streams=${s}@depth@100ms/${s}@trade/${s}@ticker/${s}@kline_${this.interval}`;
      },
      label(k) { return this.labels[k] || k; },

      /* ---------- market stream ---------- */
      onMarket(msg) {
        const d = msg && msg.data;
        if (!d) return;
        switch (d.e) {
          case "depthUpdate": return this.onDepth(d);
          case "trade": return this.onTrade(d);
          case "24hrTicker": return this.onTicker(d);
          case "kline": return this.onKline(d.k);
        }
      },
      async resync() {
        const b = this.book;
        b.synced = false; b.buffer = b.buffer || [];
        this.state = "reconnecting";
        let snap;
        try {
          const r = await fetch(`/api/v3/depth?symbol=${cfg.rest_symbol}&limit=1000`);
          snap = await r.json();
        } catch (e) { setTimeout(() => this.resync(), 1000); return; }
        b.bids = new Map(snap.bids.map(([p, q]) => [clean(p), clean(q)]));
        b.asks = new Map(snap.asks.map(([p, q]) => [clean(p), clean(q)]));
        b.lastId = snap.lastUpdateId;
        const pending = b.buffer.filter((d) => d.u > b.lastId);
        b.buffer = [];
        if (pending.length && pending[0].U > b.lastId + 1) { setTimeout(() => this.resync(), 200); return; }
        b.synced = true;
        for (const d of pending) this.apply(d);
        this.state = this.market.ws.readyState === 1 ? "live" : "reconnecting";
        this.render();
      },
      onDepth(d) {
        const b = this.book;
        if (!b.synced) { b.buffer.push(d); return; }
        if (d.u <= b.lastId) return;
        if (d.U !== b.lastId + 1) { b.buffer = [d]; this.resync(); return; } // a gap: start again
        this.apply(d);
        this.render();
      },
      apply(d) {
        const b = this.book;
        for (const [p, q] of d.b) { const k = clean(p); if (X.cmp(q, "0") === 0) b.bids.delete(k); else b.bids.set(k, clean(q)); }
        for (const [p, q] of d.a) { const k = clean(p); if (X.cmp(q, "0") === 0) b.asks.delete(k); else b.asks.set(k, clean(q)); }
        b.lastId = d.u;
      },
      levels(side) {
        const rows = [...this.book[side].entries()];
        rows.sort((x, y) => { const a = key(x[0]), c = key(y[0]); return side === "bids" ? (a < c ? 1 : a > c ? -1 : 0) : (a < c ? -1 : a > c ? 1 : 0); });
        return rows;
      },
      render() {
        const make = (rows) => {
          let sum = 0n;
          const out = rows.slice(0, BOOK_ROWS).map(([p, q]) => {
            const t = X.units(p, pp) * X.units(q, qp);
            sum += X.units(q, qp);
            return { price: p, qty: q, total: clean(X.fromUnits(t, pp + qp)), cum: sum };
          });
          return out;
        };
        const bids = make(this.levels("bids")), asks = make(this.levels("asks"));
        const max = [...bids, ...asks].reduce((m, r) => (r.cum > m ? r.cum : m), 1n);
        for (const r of [...bids, ...asks]) r.depth = Number((r.cum * 100n) / max);
        this.bids = bids;
        this.asks = asks.reverse(); // best ask next to the spread
        if (bids.length && asks.length) {
          const best = asks[asks.length - 1].price;
          this.spread = clean(X.fromUnits(X.units(best, pp) - X.units(bids[0].price, pp), pp));
        } else this.spread = "";
        this.bookChanged = true;
        if (this.chartView === "depth") this.drawDepth();
      },
      onTrade(d) {
        this.trades.unshift({ id: d.t, price: clean(d.p), qty: clean(d.q), time: d.T, buy: !d.m });
        if (this.trades.length > TRADE_ROWS) this.trades.length = TRADE_ROWS;
        if (this.ticker.last !== undefined) {
          this.tickerDir = X.cmp(clean(d.p), this.ticker.last);
          this.ticker.last = clean(d.p);
        }
      },
      onTicker(d) {
        this.ticker = { last: clean(d.c), change: clean(d.P) + "%", high: clean(d.h), low: clean(d.l), volume: clean(d.v) };
        this.tickerDir = X.cmp(d.c, d.o);
      },
      async loadTicker() {
        try {
          const r = await fetch(`/api/v3/ticker/24hr?symbol=${cfg.rest_symbol}`);
          const t = await r.json();
          if (t && t.lastPrice !== undefined) {
            this.onTicker({ c: t.lastPrice, P: t.priceChangePercent, h: t.highPrice, l: t.lowPrice, v: t.volume, o: t.openPrice, p: t.priceChange });
          }
        } catch (e) { /* the stream sends it */ }
      },
      tickerClass() { return this.tickerDir > 0 ? "pos" : this.tickerDir < 0 ? "neg" : ""; },
      async loadTrades() {
        try {
          const r = await fetch(`/api/v3/trades?symbol=${cfg.rest_symbol}&limit=${TRADE_ROWS}`);
          const rows = await r.json();
          this.trades = rows.reverse().map((t) => ({ id: t.id, price: clean(t.price), qty: clean(t.qty), time: t.time, buy: !t.isBuyerMaker }));
          if (this.trades.length && this.ticker.last === undefined) this.ticker.last = this.trades[0].price;
        } catch (e) { /* the stream fills it */ }
      },

      /* ---------- charts ---------- */
      initChart() {
        const el = document.getElementById("candles");
        const css = getComputedStyle(document.documentElement);
        const LC = window.LightweightCharts;
        this.chart = LC.createChart(el, {
          autoSize: true,
          layout: { background: { color: "transparent" }, textColor: css.getPropertyValue("--muted").trim() },
          grid: { vertLines: { color: css.getPropertyValue("--border").trim() }, horzLines: { color: css.getPropertyValue("--border").trim() } },
          timeScale: { timeVisible: true, secondsVisible: false },
          localization: { locale: X.isFa ? "fa-IR" : "en-GB" },
        });
        this.candles = this.chart.addSeries(LC.CandlestickSeries, {
          upColor: css.getPropertyValue("--buy").trim(), downColor: css.getPropertyValue("--sell").trim(),
          wickUpColor: css.getPropertyValue("--buy").trim(), wickDownColor: css.getPropertyValue("--sell").trim(), borderVisible: false,
          priceFormat: { type: "price", precision: pp, minMove: Number(cfg.tick_size) },
        });
        this.volume = this.chart.addSeries(LC.HistogramSeries, { priceScaleId: "", priceFormat: { type: "volume" } });
        this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
        this.lastCandle = null;
      },
      /* Chart libraries draw with numbers: a display-only conversion of the decimal strings. */
      bar(t, o, h, l, c) { return { time: Math.floor(t / 1000), open: Number(o), high: Number(h), low: Number(l), close: Number(c) }; },
      vol(t, v, up) { return { time: Math.floor(t / 1000), value: Number(v), color: up ? "rgba(22,199,132,.45)" : "rgba(234,57,67,.45)" }; },
      async loadCandles() {
        try {
          const r = await fetch(`/api/v3/klines?symbol=${cfg.rest_symbol}&interval=${this.interval}&limit=500`);
          const rows = await r.json();
          this.candles.setData(rows.map((k) => this.bar(k[0], k[1], k[2], k[3], k[4])));
          this.volume.setData(rows.map((k) => this.vol(k[0], k[5], X.cmp(k[4], k[1]) >= 0)));
          this.lastCandle = rows.length ? { t: rows[rows.length - 1][0], c: clean(rows[rows.length - 1][4]) } : null;
        } catch (e) { /* next reconnect reloads */ }
      },
      onKline(k) {
        if (k.i !== this.interval) return;
        this.candles.update(this.bar(k.t, k.o, k.h, k.l, k.c));
        this.volume.update(this.vol(k.t, k.v, X.cmp(k.c, k.o) >= 0));
        this.lastCandle = { t: k.t, c: clean(k.c) };
      },
      setInterval(i) {
        if (i === this.interval) return;
        const s = cfg.stream, old = this.interval;
        this.interval = i;
        localStorage.setItem("chartInterval", i);
        this.market.send({ method: "UNSUBSCRIBE", params: [`${s}@kline_${old}`], id: Date.now() });
        this.market.send({ method: "SUBSCRIBE", params: [`${s}@kline_${i}`], id: Date.now() + 1 });
        this.loadCandles();
      },
      showChart(view) {
        this.chartView = view;
        if (view === "depth") this.$nextTick(() => this.drawDepth());
      },
      drawDepth() {
        const cum = (rows) => { let s = 0; return rows.map(([p, q]) => ({ x: Number(p), y: (s += Number(q)) })); };
        const bids = cum(this.levels("bids").slice(0, 200)).reverse(), asks = cum(this.levels("asks").slice(0, 200));
        const css = getComputedStyle(document.documentElement);
        if (!this.depthChart) {
          this.depthChart = new Chart(document.getElementById("depth-chart"), {
            type: "line",
            data: { datasets: [
              { label: this.label("bids"), data: bids, stepped: true, fill: true, borderColor: css.getPropertyValue("--buy").trim(), backgroundColor: "rgba(22,199,132,.2)", pointRadius: 0 },
              { label: this.label("asks"), data: asks, stepped: true, fill: true, borderColor: css.getPropertyValue("--sell").trim(), backgroundColor: "rgba(234,57,67,.2)", pointRadius: 0 },
            ] },
            options: { animation: false, maintainAspectRatio: false, parsing: false, scales: { x: { type: "linear" } }, plugins: { legend: { labels: { color: css.getPropertyValue("--muted").trim() } } } },
          });
        } else {
          this.depthChart.data.datasets[0].data = bids;
          this.depthChart.data.datasets[1].data = asks;
          this.depthChart.update("none");
        }
      },

      /* ---------- the trader's orders and balances ---------- */
      onAccount(d) {
        if (d.e === "outboundAccountPosition") {
          for (const b of d.B) {
            if (b.a === cfg.base || b.a === cfg.quote) this.balances[b.a] = { available: clean(b.f), locked: clean(b.l) };
          }
        } else if (d.e === "executionReport" && d.s === cfg.rest_symbol) {
          clearTimeout(this.reloadTimer);
          this.reloadTimer = setTimeout(() => {
            this.loadOpenOrders();
            this.loadBalances();
            if (this.tab === "history") this.loadHistory();
            if (this.tab === "fills") this.loadFills();
          }, 150);
        }
      },
      async loadBalances() {
        const r = await X.api("GET", "/api/v1/balances");
        if (!r.ok) return;
        for (const b of r.body.results) {
          if (b.asset === cfg.base || b.asset === cfg.quote) this.balances[b.asset] = { available: clean(b.available), locked: clean(b.locked) };
        }
      },
      async loadOpenOrders() {
        const r = await X.api("GET", `/api/v1/orders?market=${cfg.symbol}&status=open`);
        if (r.ok) this.openOrders = r.body.results.map((o) => this.tidy(o));
      },
      async loadHistory() {
        const r = await X.api("GET", `/api/v1/orders?market=${cfg.symbol}`);
        if (r.ok) this.history = r.body.results.map((o) => this.tidy(o));
      },
      async loadFills() {
        const r = await X.api("GET", `/api/v1/trades?market=${cfg.symbol}`);
        if (r.ok) this.fills = r.body.results.map((f) => ({ ...f, price: clean(f.price), quantity: clean(f.quantity), fee: clean(f.fee) }));
      },
      tidy(o) {
        return { ...o, price: o.price && clean(o.price), quantity: o.quantity && clean(o.quantity), quote_amount: o.quote_amount && clean(o.quote_amount), filled_quantity: clean(o.filled_quantity || "0") };
      },
      async cancel(o) {
        const r = await X.api("DELETE", `/api/v1/orders/${o.id}`);
        this.notice = r.ok ? this.label("cancel_requested") : "";
        this.serverError = r.ok ? "" : (r.body && r.body.message) || this.label("failed");
        this.loadOpenOrders();
      },
      async cancelAll() {
        const r = await X.api("DELETE", `/api/v1/orders?market=${cfg.symbol}`);
        this.notice = r.ok ? this.label("cancel_requested") : "";
        this.serverError = r.ok ? "" : (r.body && r.body.message) || this.label("failed");
        this.loadOpenOrders();
      },

      /* ---------- the order form ---------- */
      available() {
        const b = this.balances[this.side === "buy" ? cfg.quote : cfg.base];
        return b ? b.available : "0";
      },
      pickPrice(p) { if (this.type !== "market") { this.price = p; this.linked("price"); } },
      linked(changed) {
        const price = X.toAscii(this.price), amount = X.toAscii(this.amount), total = X.toAscii(this.total);
        const pu = X.units(price, pp), au = X.units(amount, qp), tu = X.units(total, vp);
        if (this.type !== "market") {
          if ((changed === "price" || changed === "amount") && pu !== null && au !== null && price && amount) {
            this.total = clean(X.fromUnits(rescale(pu * au, pp + qp, vp), vp));
          } else if (changed === "total" && pu && tu !== null && total) {
            // amount = total / price, floored to the lot
            const raw = (tu * 10n ** BigInt(pp + qp)) / (pu * 10n ** BigInt(vp));
            this.amount = clean(X.fromUnits(floorTo(raw, X.units(cfg.lot_size, qp)), qp));
          }
        }
        this.check();
      },
      percent(p) {
        const avail = this.available();
        const share = (text, places) => (X.units(text, places) * BigInt(p)) / 100n;
        if (this.side === "sell") {
          const base = cfg.base_decimals;
          const au = floorTo(rescale(share(avail, base) || 0n, base, qp), X.units(cfg.lot_size, qp));
          this.amount = clean(X.fromUnits(au, qp));
          this.linked("amount");
        } else if (this.type === "market" && this.marketBy === "total") {
          this.total = clean(X.fromUnits(share(avail, vp), vp));
          this.check();
        } else {
          this.total = clean(X.fromUnits(share(avail, vp), vp));
          this.linked("total");
        }
      },
      feeRate() { return this.type === "limit" ? cfg.maker_fee : cfg.taker_fee; },
      feePreview() {
        const total = X.toAscii(this.total);
        const tu = X.units(total, vp);
        if (!tu) return "";
        const rate = cfg.taker_fee, rp = X.placesOf(rate);
        const fee = (tu * X.units(rate, rp)) / 10n ** BigInt(rp);
        const pct = (r) => clean(X.fromUnits(X.units(r, rp) * 100n, rp));
        return this.label("fee_preview")
          .replace("{fee}", X.digits(clean(X.fromUnits(fee, vp))) + " " + cfg.quote)
          .replace("{maker}", X.digits(pct(cfg.maker_fee)))
          .replace("{taker}", X.digits(pct(cfg.taker_fee)));
      },
      check() {
        const e = {}, L = this.labels;
        const t = { required: L.required, negative: L.negative, notNumber: L.not_number, tooPrecise: L.too_precise, tooLarge: L.too_large, notPositive: L.not_positive };
        const multiple = (value, step, places) => X.units(value, places) % X.units(step, places) === 0n;
        const needsPrice = this.type !== "market";
        const byTotal = this.type === "market" && this.side === "buy" && this.marketBy === "total";
        if (this.type === "stop_limit") {
          const bad = X.amountProblem(this.stopPrice, pp, t);
          if (bad) e.stop_price = bad;
          else if (!multiple(X.toAscii(this.stopPrice), cfg.tick_size, pp)) e.stop_price = L.off_tick.replace("%s", X.digits(cfg.tick_size));
        }
        if (needsPrice) {
          const bad = X.amountProblem(this.price, pp, t);
          if (bad) e.price = bad;
          else if (!multiple(X.toAscii(this.price), cfg.tick_size, pp)) e.price = L.off_tick.replace("%s", X.digits(cfg.tick_size));
        }
        if (!byTotal) {
          const q = X.toAscii(this.amount);
          const bad = X.amountProblem(this.amount, qp, t);
          if (bad) e.quantity = bad;
          else if (!multiple(q, cfg.lot_size, qp)) e.quantity = L.off_lot.replace("%s", X.digits(cfg.lot_size));
          else if (X.cmp(q, cfg.min_quantity) < 0) e.quantity = L.below_min_qty.replace("%s", X.digits(cfg.min_quantity));
          else if (X.cmp(q, cfg.max_quantity) > 0) e.quantity = L.above_max_qty.replace("%s", X.digits(cfg.max_quantity));
        } else {
          const bad = X.amountProblem(this.total, vp, t);
          if (bad) e.total = bad;
          else if (X.cmp(X.toAscii(this.total), cfg.min_notional) < 0) e.total = L.below_notional.replace("%s", X.digits(cfg.min_notional) + " " + cfg.quote);
        }
        if (needsPrice && !e.price && !e.quantity) {
          const notional = X.fromUnits(X.units(X.toAscii(this.price), pp) * X.units(X.toAscii(this.amount), qp), pp + qp);
          if (X.cmp(notional, cfg.min_notional) < 0) e.total = L.below_notional.replace("%s", X.digits(cfg.min_notional) + " " + cfg.quote);
        }
        this.errors = e;
        return Object.keys(e).length === 0;
      },
      async submit() {
        this.serverError = ""; this.notice = "";
        this.touched = true;
        if (!this.check()) return;
        const body = { market: cfg.symbol, side: this.side, type: this.type };
        if (this.type !== "market") body.price = X.toAscii(this.price);
        if (this.type === "stop_limit") body.stop_price = X.toAscii(this.stopPrice);
        if (this.type === "market" && this.side === "buy" && this.marketBy === "total") body.quote_amount = X.toAscii(this.total);
        else body.quantity = X.toAscii(this.amount);
        this.busy = true;
        const r = await X.api("POST", "/api/v1/orders", body);
        this.busy = false;
        if (r.ok) {
          this.notice = this.label("placed");
          this.amount = ""; this.total = "";
          this.loadOpenOrders();
          this.loadBalances();
        } else {
          const b = r.body || {};
          this.serverError = b.message || this.label("failed");
          const field = b.field === "quote_amount" ? "total" : b.field;
          if (field && ["price", "quantity", "total", "stop_price"].includes(field)) this.errors = { ...this.errors, [field]: b.message };
        }
      },
    };
  };
})();
