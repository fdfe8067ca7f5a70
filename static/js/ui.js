/* Shared by every page: digits, exact decimals, times, the theme and the websocket client.
   Money never goes through a float here: amounts are decimal strings, and the arithmetic
   the forms need (price x amount, fees, percentages of a balance) is done on BigInt in the
   smallest units of the number of places involved. */
(function () {
  "use strict";
  const lang = document.documentElement.lang || "en";
  const isFa = lang.startsWith("fa");
  const PERSIAN = "۰۱۲۳۴۵۶۷۸۹";
  const ARABIC = "٠١٢٣٤٥٦٧٨٩";

  /* Persian and Arabic-Indic digits, Persian/Arabic decimal and thousands separators ->
     ASCII. Anything else is left alone for the validator to refuse. */
  function toAscii(text) {
    let out = "";
    for (const ch of String(text ?? "")) {
      let i = PERSIAN.indexOf(ch);
      if (i < 0) i = ARABIC.indexOf(ch);
      if (i >= 0) out += String(i);
      else if (ch === "٫") out += ".";          // Arabic decimal separator
      else if (ch === "٬" || ch === "،") out += ","; // thousands separator, Persian comma
      else out += ch;
    }
    return out.trim();
  }

  /* Display only: ASCII digits -> Persian ones on Persian pages. */
  function digits(text) {
    const s = String(text ?? "");
    return isFa ? s.replace(/[0-9]/g, (d) => PERSIAN[Number(d)]).replace(/\./g, "٫") : s;
  }

  const PLAIN = /^(\d+)(?:\.(\d+))?$/;

  /* "12.50" with places 4 -> 125000n; null when not a plain decimal or too precise. */
  function units(text, places) {
    const m = PLAIN.exec(String(text));
    if (!m) return null;
    const frac = (m[2] || "").replace(/0+$/, "");
    if (frac.length > places) return null;
    return BigInt(m[1] + frac.padEnd(places, "0"));
  }

  /* 125000n with places 4 -> "12.5000". */
  function fromUnits(value, places) {
    const neg = value < 0n;
    let s = (neg ? -value : value).toString().padStart(places + 1, "0");
    if (places > 0) s = s.slice(0, -places) + "." + s.slice(-places);
    return (neg ? "-" : "") + s;
  }

  /* How many decimal places a plain decimal string has once trailing zeros are dropped. */
  function placesOf(text) {
    const m = PLAIN.exec(String(text));
    return m && m[2] ? m[2].replace(/0+$/, "").length : 0;
  }

  /* Compare two decimal strings exactly: -1, 0, 1. */
  function cmp(a, b) {
    const p = Math.max(placesOf(a), placesOf(b));
    const x = units(a, p), y = units(b, p);
    return x < y ? -1 : x > y ? 1 : 0;
  }

  /* Why a typed amount is refused, or "" when it is a plain positive decimal. */
  function amountProblem(raw, places, t) {
    const text = toAscii(raw);
    if (text === "") return t.required;
    if (text.startsWith("-")) return t.negative;
    if (!PLAIN.test(text)) return t.notNumber;
    if (placesOf(text) > places) return t.tooPrecise.replace("%s", String(places));
    if (text.replace(".", "").replace(/^0+/, "").length > 30) return t.tooLarge;
    if (units(text, places) === 0n) return t.notPositive;
    return "";
  }

  const zoneMeta = document.querySelector('meta[name="time-zone"]');
  const zone = (zoneMeta && zoneMeta.content) || "UTC";
  const timeFormat = new Intl.DateTimeFormat(isFa ? "fa-IR-u-ca-persian-nu-arabext" : "en-GB", {
    timeZone: zone,
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const clockFormat = new Intl.DateTimeFormat(isFa ? "fa-IR-u-nu-arabext" : "en-GB", {
    timeZone: zone,
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const when = (ms) => timeFormat.format(new Date(Number(ms)));
  const clock = (ms) => clockFormat.format(new Date(Number(ms)));

  function csrf() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  /* fetch() for the v1 API with the session: JSON in and out, CSRF on unsafe methods.
     Resolves to {ok, status, body}; never throws on an HTTP error. */
  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = csrf();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      const r = await fetch(url, {
        method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      let data = null;
      try { data = await r.json(); } catch (e) { data = null; }
      return { ok: r.ok, status: r.status, body: data };
    } catch (e) {
      return { ok: false, status: 0, body: { code: "network", message: String(e) } };
    }
  }

  /* A websocket that reconnects (1 s doubling to 15 s) and says when it is live.
     onState("live" | "reconnecting"); onOpen() after every (re)connect, for resyncs. */
  class Stream {
    constructor(path, { onMessage, onOpen, onState }) {
      this.path = path;
      this.onMessage = onMessage;
      this.onOpen = onOpen || (() => {});
      this.onState = onState || (() => {});
      this.delay = 1000;
      this.closed = false;
      this.connect();
    }
    url() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${location.host}${typeof this.path === "function" ? this.path() : this.path}`;
    }
    connect() {
      const ws = new WebSocket(this.url());
      this.ws = ws;
      ws.onopen = () => { this.delay = 1000; this.onState("live"); this.onOpen(); };
      ws.onmessage = (ev) => {
        let data;
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        this.onMessage(data);
      };
      ws.onclose = () => {
        if (this.ws !== ws || this.closed) return;
        this.onState("reconnecting");
        setTimeout(() => this.connect(), this.delay);
        this.delay = Math.min(this.delay * 2, 15000);
      };
    }
    send(obj) { if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(obj)); }
    /* Drop the socket now (tests and the interval switch): it reconnects by itself. */
    drop() { if (this.ws) this.ws.close(); }
    reopen() { this.drop(); }
  }

  /* Light and dark: stored per browser, the system's choice until the user picks one. */
  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    document.dispatchEvent(new CustomEvent("themechange", { detail: theme }));
  }
  function currentTheme() {
    return localStorage.getItem("theme")
      || (matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark");
  }
  applyTheme(currentTheme());
  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("theme-toggle");
    if (button) {
      button.addEventListener("click", () => {
        const next = document.documentElement.dataset.theme === "light" ? "dark" : "light";
        localStorage.setItem("theme", next);
        applyTheme(next);
      });
    }
    /* Persian and Arabic-Indic digits typed into a numeric field become ASCII as typed. */
    document.addEventListener("input", (ev) => {
      const el = ev.target;
      if (el instanceof HTMLInputElement && el.dataset.numeric !== undefined) {
        const ascii = toAscii(el.value);
        if (ascii !== el.value.trim() && /[۰-۹٠-٩٫]/.test(el.value)) {
          el.value = ascii;
          el.dispatchEvent(new Event("input", { bubbles: true }));
        }
      }
    }, true);
  });

  window.X = { isFa, toAscii, digits, units, fromUnits, placesOf, cmp, amountProblem,
    when, clock, api, csrf, Stream, currentTheme };
})();
