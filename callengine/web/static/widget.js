/* callengine call-me-back widget. Plain JS, no framework, no build step, no cookies, and no
 * request to any origin but the engine that served this file. Embed with
 *   <script async src="https://ENGINE/widget.js" data-widget="PUBLIC_KEY"></script>
 * The proof-of-work (ALTCHA v1: find n with SHA-256(salt + n) == challenge) is solved here by
 * hand with crypto.subtle: ALTCHA's own npm widget alone is bigger than this file's 15 KB gzip
 * budget and brings a UI of its own. */
(function () {
  "use strict";
  var me = document.currentScript ||
    document.querySelector("script[data-widget][src*='widget.js']");
  if (!me || customElements.get("callengine-widget")) return;
  var KEY = me.getAttribute("data-widget");
  // The panel's preview (data-preview: the widget's config, saved or not, as JSON): shown as
  // visitors see it, but it never asks for a challenge nor sends a lead.
  var PREVIEW = me.getAttribute("data-preview");
  var ORIGIN = new URL(me.src, location.href).origin;
  var API = ORIGIN + "/api/v1/widgets/" + encodeURIComponent(KEY);
  var LANG = ((document.documentElement.lang || navigator.language || "en") + "")
    .toLowerCase().slice(0, 2);
  var T = {
    en: {
      open: "Call me back", title: "We'll call you back", close: "Close",
      phone: "Your phone number", phone_hint: "Default country: {region}. Include + and the country code for another.",
      name: "Name", email: "E-mail",
      marketing: "I agree to receive marketing information (optional)",
      recording: "I agree that the call may be recorded",
      privacy: "Privacy policy", submit: "Call me", sending: "Sending…",
      solving: "Checking your browser…",
      countdown: "We'll call you in about {n} s", scheduled: "We'll call you at {time}",
      closed: "We're closed now. Next opening: {time}", pick: "Choose a time to be called",
      asap: "At the next opening",
      "ringing-agents": "Ringing our consultants…", whisper: "A consultant is answering…",
      "dialling-visitor": "Calling you now…", "recording-notice": "Connecting you…",
      connected: "You're connected", ending: "Ending the call…", queued: "You're in the queue…",
      done: "Thank you.", failed: "We couldn't reach you. We'll try again or contact you.",
      outcome_connected: "The call is over. Thank you!",
      "outcome_visitor-no-answer": "We couldn't reach you.", "outcome_visitor-busy": "Your line was busy.",
      "outcome_agents-busy": "All consultants were busy; we'll call you later.",
      "outcome_agents-no-answer": "No consultant was free; we'll call you later.",
      check_number: "Please enter a phone number: digits, +, spaces (7 to 15 digits).",
      "number-invalid": "That doesn't look like a valid phone number.",
      "number-country-not-allowed": "We can't call numbers in that country.",
      "number-type-not-allowed": "We can't call this kind of number (e.g. premium-rate).",
      "number-blocked": "We can't call this number.",
      number: "Please check the phone number.",
      "rate-limited": "Too many requests. Please try again in {wait}.",
      "slot-full": "That time is no longer free. Please choose another.",
      "slot-invalid": "That time can't be chosen any more. Please choose another.",
      closed_now: "We're closed now.",
      "challenge-failed": "The browser check failed. Please try again.",
      "origin-not-allowed": "This site may not use this widget.",
      "widget-disabled": "Callback requests are switched off at the moment. Please contact us another way.",
      preview: "Preview: no call is requested.",
      "clause-unknown": "The information clause has changed. Please reload the page.",
      "invalid-field": "Please check the form: {detail}",
      error: "Something went wrong. Please try again later.",
      min: "{n} min", sec: "{n} s"
    },
    pl: {
      open: "Zadzwońcie do mnie", title: "Oddzwonimy do Ciebie", close: "Zamknij",
      phone: "Twój numer telefonu", phone_hint: "Domyślny kraj: {region}. Inny kraj: podaj + i kod kraju.",
      name: "Imię", email: "E-mail",
      marketing: "Zgadzam się na otrzymywanie informacji marketingowych (opcjonalnie)",
      recording: "Zgadzam się na nagrywanie rozmowy",
      privacy: "Polityka prywatności", submit: "Zadzwońcie", sending: "Wysyłanie…",
      solving: "Sprawdzamy przeglądarkę…",
      countdown: "Zadzwonimy do Ciebie za około {n} s", scheduled: "Zadzwonimy do Ciebie o {time}",
      closed: "Teraz jest zamknięte. Najbliższe otwarcie: {time}", pick: "Wybierz godzinę rozmowy",
      asap: "Przy najbliższym otwarciu",
      "ringing-agents": "Dzwonimy do naszych konsultantów…", whisper: "Konsultant odbiera…",
      "dialling-visitor": "Dzwonimy do Ciebie…", "recording-notice": "Łączymy…",
      connected: "Połączono", ending: "Kończymy rozmowę…", queued: "Jesteś w kolejce…",
      done: "Dziękujemy.", failed: "Nie udało się dodzwonić. Spróbujemy ponownie.",
      outcome_connected: "Rozmowa zakończona. Dziękujemy!",
      "outcome_visitor-no-answer": "Nie udało się do Ciebie dodzwonić.", "outcome_visitor-busy": "Twoja linia była zajęta.",
      "outcome_agents-busy": "Wszyscy konsultanci byli zajęci; zadzwonimy później.",
      "outcome_agents-no-answer": "Żaden konsultant nie był wolny; zadzwonimy później.",
      check_number: "Podaj numer telefonu: cyfry, +, spacje (od 7 do 15 cyfr).",
      "number-invalid": "To nie wygląda na poprawny numer telefonu.",
      "number-country-not-allowed": "Nie dzwonimy na numery w tym kraju.",
      "number-type-not-allowed": "Nie dzwonimy na numery tego rodzaju (np. o podwyższonej opłacie).",
      "number-blocked": "Nie możemy zadzwonić na ten numer.",
      number: "Sprawdź numer telefonu.",
      "rate-limited": "Zbyt wiele prób. Spróbuj ponownie za {wait}.",
      "slot-full": "Ten termin jest już zajęty. Wybierz inny.",
      "slot-invalid": "Tego terminu nie można już wybrać. Wybierz inny.",
      closed_now: "Teraz jest zamknięte.",
      "challenge-failed": "Sprawdzenie przeglądarki nie powiodło się. Spróbuj ponownie.",
      "origin-not-allowed": "Ta strona nie może używać tego widżetu.",
      "widget-disabled": "Prośby o oddzwonienie są teraz wyłączone. Skontaktuj się z nami w inny sposób.",
      preview: "Podgląd: nie zamawiamy rozmowy.",
      "clause-unknown": "Klauzula informacyjna się zmieniła. Odśwież stronę.",
      "invalid-field": "Sprawdź formularz: {detail}",
      error: "Coś poszło nie tak. Spróbuj ponownie później.",
      min: "{n} min", sec: "{n} s"
    }
  };
  if (!T[LANG]) LANG = "en";
  // The widget's own texts (config route) -> the keys here; refusals keep the built-in ones,
  // which carry their parameters (the wait, the opening time).
  var MAP = { button: "open", title: "title", intro: "intro", phone_label: "phone",
    name_label: "name", email_label: "email", consent_marketing: "marketing",
    consent_recording: "recording", slot_label: "pick", slot_now: "asap", submit: "submit",
    close: "close", sending: "sending", challenge: "solving", scheduled: "scheduled",
    countdown: "countdown", calling: "dialling-visitor", connected: "connected" };

  function fmt(s, v) {
    return String(s).replace(/\{(\w+)\}/g, function (m, k) { return v && k in v ? v[k] : m; });
  }
  function get(path) {
    return fetch(API + path + (path.indexOf("?") < 0 ? "?" : "&") + "lang=" + LANG,
      { credentials: "omit" }).then(function (r) {
      if (!r.ok) throw r;
      return r.json();
    });
  }
  var TZ;  // the widget's calling-hours zone: times are shown as the business states them
  function when(epoch) {
    try {
      return new Date(epoch * 1000).toLocaleString(LANG, {
        weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
        hourCycle: "h23", timeZone: TZ, timeZoneName: "short"
      });
    } catch (e) { return new Date(epoch * 1000).toISOString(); }
  }
  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }
  function solve(c) {  // ALTCHA v1 proof of work
    var enc = new TextEncoder(), max = c.maxnumber || c.maxNumber || 1e6, n = 0;
    function step() {
      var batch = [];
      for (var i = 0; i < 500 && n + i <= max; i++) batch.push(n + i);
      if (!batch.length) return Promise.reject(new Error("unsolved"));
      return Promise.all(batch.map(function (k) {
        return crypto.subtle.digest("SHA-256", enc.encode(c.salt + k));
      })).then(function (hs) {
        for (var j = 0; j < hs.length; j++) {
          if (hex(hs[j]) === c.challenge) {
            return btoa(JSON.stringify({ algorithm: c.algorithm || "SHA-256",
              challenge: c.challenge, number: batch[j], salt: c.salt, signature: c.signature }));
          }
        }
        n += batch.length;
        return step();
      });
    }
    return step();
  }

  // The page's own CSS reaches the host element only; nothing inside inherits from it.
  var CSS = ":host{all:initial!important}" +
    "*{box-sizing:border-box}" +
    ".l{position:fixed;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;" +
    "font:600 16px system-ui,sans-serif;cursor:pointer;color:#fff;background:var(--c);box-shadow:0 2px 8px #0005}" +
    ".right{right:20px}.left{left:20px}" +
    "button:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px;box-shadow:0 0 0 5px #fff}" +
    ".b{position:fixed;inset:0;background:#0008;z-index:2147483001;display:flex;align-items:center;justify-content:center}" +
    ".d{background:#fff;color:#1a1a1a;width:min(420px,100vw - 16px);max-height:calc(100vh - 16px);overflow:auto;" +
    "border-radius:8px;padding:20px;position:relative;font:16px/1.4 system-ui,sans-serif;text-align:left}" +
    "h2{margin:0 40px 12px 0;font-size:20px}" +
    ".x{position:absolute;top:10px;right:10px;border:0;background:none;font-size:24px;line-height:1;padding:6px 10px;cursor:pointer;color:#1a1a1a}" +
    "label{display:block;margin:10px 0 4px;font-weight:600}" +
    "input[type=tel],input[type=text],input[type=email]{width:100%;padding:10px;font:inherit;border:2px solid #555;border-radius:4px;color:#1a1a1a;background:#fff}" +
    ".ck{display:flex;gap:8px;align-items:flex-start;font-weight:400}.ck input{margin-top:4px;width:18px;height:18px;flex:none}" +
    ".h{font-size:14px;color:#444;margin:4px 0}" +
    ".cl{font-size:13px;color:#333;white-space:pre-wrap;background:#f4f4f4;padding:8px;border-radius:4px;max-height:9em;overflow:auto;margin:10px 0 4px}" +
    "a{color:#0645ad}" +
    "fieldset{border:1px solid #777;border-radius:4px;margin:10px 0;padding:6px 10px;max-height:12em;overflow:auto}" +
    "legend{font-weight:600}" +
    ".s{margin-top:14px;width:100%;border:0;border-radius:4px;padding:12px;font:600 16px system-ui,sans-serif;color:#fff;background:var(--c);cursor:pointer}" +
    ".s[disabled]{opacity:.7}" +
    ".st{margin-top:12px;min-height:1.4em;font-weight:600}.err{color:#b00020}.hp{position:absolute;left:-9999px;width:1px;height:1px;overflow:hidden}";

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else if (attrs[k] !== false && attrs[k] != null) e.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
    }
    (kids || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  class Widget extends HTMLElement {
    constructor() {
      super();
      this.root = this.attachShadow({ mode: "open" });
      this.cfg = null;
    }
    connectedCallback() {
      var self = this;
      var shown;
      try { shown = PREVIEW && JSON.parse(PREVIEW); } catch (e) { /* not JSON: fetch it */ }
      Promise.all([
        shown || get("/config").catch(function () { return {}; }),
        get("/clause").catch(function () { return null; }),
        get("/hours").catch(function () { return null; })
      ]).then(function (r) {
        self.cfg = r[0] || {};
        self.clause = r[1];
        self.hours = r[2];
        TZ = (r[2] && r[2].time_zone) || undefined;
        self.t = Object.assign({}, T[LANG]);
        var given = self.cfg.texts || {};
        for (var k in MAP) if (typeof given[k] === "string" && given[k]) self.t[MAP[k]] = given[k];
        if (self.cfg.enabled === false && !PREVIEW) return;  // disabled: nothing to show
        self.render();
        if (!PREVIEW) self.autoOpen();
      });
    }
    ep(name) {
      var e = this.cfg.endpoints && this.cfg.endpoints[name];
      return e ? new URL(e, ORIGIN).href : API + "/" + name;
    }
    tx(k, v) { return fmt(this.t[k] != null ? this.t[k] : T.en[k] || k, v); }
    render() {
      var c = this.cfg, self = this;
      var colour = /^#[0-9a-fA-F]{3,8}$/.test(c.colour || c.color || "") ? (c.colour || c.color) : "#0b5cad";
      var css = CSS + ":host{--c:" + colour + "}";
      try {  // a constructed sheet: no <style> for the page's CSP (style-src) to refuse
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(css);
        this.root.adoptedStyleSheets = [sheet];
      } catch (e) { this.root.appendChild(el("style", { text: css })); }
      this.launcher = el("button", {
        type: "button", "class": "l " + (c.position === "left" || c.position === "bottom-left" ? "left" : "right"),
        "aria-haspopup": "dialog", text: this.tx("open"), onclick: function () { self.open(); }
      });
      this.root.appendChild(this.launcher);
    }
    autoOpen() {
      var self = this, c = this.cfg, flag = "callengine-opened-" + KEY;
      function once() {
        try { if (sessionStorage.getItem(flag)) return; sessionStorage.setItem(flag, "1"); } catch (e) { /* private mode */ }
        if (!self.dlg) self.open();
      }
      if (c.open_after_s > 0) setTimeout(once, c.open_after_s * 1000);
      if (c.exit_intent) {
        document.addEventListener("mouseout", function (e) {
          if (!e.relatedTarget && e.clientY <= 0) once();
        });
      }
    }
    open() {
      if (this.dlg) return;
      try { sessionStorage.setItem("callengine-opened-" + KEY, "1"); } catch (e) { /* private mode */ }
      var self = this, c = this.cfg, cl = this.clause, h = this.hours, id = "ce-" + Math.random().toString(36).slice(2);
      var f = el("form", { novalidate: true, onsubmit: function (e) { e.preventDefault(); self.submit(); } });
      if (this.t.intro) f.appendChild(el("p", { "class": "h", text: this.t.intro }));
      this.phone = el("input", { id: id + "p", type: "tel", autocomplete: "tel", inputmode: "tel", name: "phone",
        required: true, "aria-describedby": id + "ph " + id + "pe", oninput: function () { self.checkPhone(false); } });
      this.phoneErr = el("div", { id: id + "pe", "class": "h err" });
      f.appendChild(el("label", { "for": id + "p", text: this.tx("phone") }));
      f.appendChild(this.phone);
      f.appendChild(el("div", { id: id + "ph", "class": "h", text: this.tx("phone_hint", { region: c.default_region || "PL" }) }));
      f.appendChild(this.phoneErr);
      if (c.ask_name) {
        this.name = el("input", { id: id + "n", type: "text", autocomplete: "name", name: "name" });
        f.appendChild(el("label", { "for": id + "n", text: this.tx("name") }));
        f.appendChild(this.name);
      }
      if (c.ask_email) {
        this.email = el("input", { id: id + "e", type: "email", autocomplete: "email", name: "email" });
        f.appendChild(el("label", { "for": id + "e", text: this.tx("email") }));
        f.appendChild(this.email);
      }
      this.hp = el("input", { type: "text", name: "website", tabindex: "-1", autocomplete: "off", "aria-hidden": "true" });
      f.appendChild(el("div", { "class": "hp", "aria-hidden": "true" }, [this.hp]));
      this.mk = el("input", { id: id + "m", type: "checkbox", name: "marketing" });
      f.appendChild(el("label", { "class": "ck", "for": id + "m" }, [this.mk, el("span", { text: this.tx("marketing") })]));
      var recOn = c.recording === true || c.recording === "on" || !!(cl && cl.recording_notice);
      this.rec = null;
      if (recOn) {
        if (cl && cl.recording_notice) f.appendChild(el("p", { "class": "h", "data-part": "recording-notice", text: cl.recording_notice.text }));
        this.rec = el("input", { id: id + "r", type: "checkbox", name: "recording" });
        f.appendChild(el("label", { "class": "ck", "for": id + "r" }, [this.rec, el("span", { text: this.tx("recording") })]));
      }
      if (cl) {
        f.appendChild(el("div", { "class": "cl", id: id + "c", "data-part": "clause", tabindex: "0", role: "region",
          "aria-label": this.tx("privacy"), text: cl.text }));
        if (cl.privacy_url && /^https?:/.test(cl.privacy_url)) {
          f.appendChild(el("a", { href: cl.privacy_url, target: "_blank", rel: "noopener noreferrer", text: this.tx("privacy") }));
        }
      }
      this.slots = null;
      if (h && h.open === false) {
        f.appendChild(el("p", { "data-part": "closed", text: h.next_open_at ? this.tx("closed", { time: when(h.next_open_at) }) : this.tx("closed_now") }));
        var free = (h.slots || []).filter(function (s) { return s.free > 0; });
        if (free.length) {
          this.slots = el("fieldset", {}, [el("legend", { text: this.tx("pick") })]);
          [{ start: "" }].concat(free.slice(0, 48)).forEach(function (s, i) {
            var r = el("input", { type: "radio", name: "slot", value: s.start, id: id + "s" + i, checked: i === 0 });
            self.slots.appendChild(el("label", { "class": "ck", "for": id + "s" + i },
              [r, el("span", { text: s.start === "" ? self.tx("asap") : when(s.start) })]));
          });
          f.appendChild(this.slots);
        }
      }
      this.btn = el("button", { type: "submit", "class": "s", text: this.tx("submit") });
      f.appendChild(this.btn);
      this.status = el("div", { "class": "st", role: "status", "aria-live": "polite", "data-part": "status" });
      f.appendChild(this.status);
      var title = el("h2", { id: id + "t", text: this.tx("title") });
      var x = el("button", { type: "button", "class": "x", "aria-label": this.tx("close"), text: "×", onclick: function () { self.close(); } });
      var d = el("div", { "class": "d", role: "dialog", "aria-modal": "true", "aria-labelledby": id + "t" }, [x, title, f]);
      this.dlg = el("div", { "class": "b", onkeydown: function (e) { self.key(e); },
        onclick: function (e) { if (e.target === self.dlg) self.close(); } }, [d]);
      this.root.appendChild(this.dlg);
      this.launcher.setAttribute("aria-expanded", "true");
      this.phone.focus();
    }
    focusables() {
      return Array.prototype.filter.call(this.dlg.querySelectorAll("button,input,a[href],[tabindex='0']"), function (e) {
        return !e.disabled && e.tabIndex >= 0 && e.offsetParent !== null;
      });
    }
    key(e) {
      if (e.key === "Escape") { e.preventDefault(); this.close(); return; }
      if (e.key !== "Tab") return;
      var f = this.focusables(), a = this.root.activeElement;
      if (!f.length) return;
      if (e.shiftKey && a === f[0]) { e.preventDefault(); f[f.length - 1].focus(); }
      else if (!e.shiftKey && a === f[f.length - 1]) { e.preventDefault(); f[0].focus(); }
    }
    close() {
      if (!this.dlg) return;
      if (this.es) { this.es.close(); this.es = null; }
      clearInterval(this.timer); clearInterval(this.poller);
      this.dlg.remove(); this.dlg = null;
      this.launcher.setAttribute("aria-expanded", "false");
      this.launcher.focus();
    }
    say(text, bad) {
      this.status.textContent = text;
      this.status.className = "st" + (bad ? " err" : "");
    }
    checkPhone(strict) {
      var v = this.phone.value.trim(), digits = v.replace(/\D/g, "").length;
      var ok = /^\+?[0-9 ()\-.]*$/.test(v) && digits >= 7 && digits <= 15;
      var msg = ok || (!strict && (v === "" || digits < 7) && /^\+?[0-9 ()\-.]*$/.test(v)) ? "" : this.tx("check_number");
      this.phoneErr.textContent = msg;
      this.phone.setAttribute("aria-invalid", msg ? "true" : "false");
      return ok;
    }
    submit() {
      var self = this, c = this.cfg;
      if (this.busy) return;
      if (!this.checkPhone(true)) { this.phone.focus(); return; }
      if (PREVIEW) { this.say(this.tx("preview")); this.status.setAttribute("data-code", "preview"); return; }
      var body = {
        phone: this.phone.value.trim(),
        consent: { marketing: this.mk.checked, recording: !!(this.rec && this.rec.checked) },
        clause_version: this.clause ? this.clause.version : "none",
        language: LANG
      };
      if (this.name && this.name.value.trim()) body.name = this.name.value.trim();
      if (this.email && this.email.value.trim()) body.email = this.email.value.trim();
      if (this.hp.value) body.website = this.hp.value;
      if (this.slots) {
        var s = this.slots.querySelector("input:checked");
        if (s && s.value) body.slot = Number(s.value);
      }
      this.busy = true; this.btn.disabled = true;
      var on = c.challenge === true || c.challenge === "on";
      var pre = on ? (this.say(this.tx("solving")), fetch(this.ep("challenge"), { credentials: "omit" })
        .then(function (r) { if (!r.ok) throw r; return r.json(); }).then(solve)
        .then(function (p) { body.altcha = p; })) : Promise.resolve();
      pre.then(function () {
        self.say(self.tx("sending"));
        return fetch(self.ep("leads"), { method: "POST", credentials: "omit",
          headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (r.status === 200 || r.status === 201) return self.accepted(j);
          self.refused(r, j);
        });
      }).catch(function (e) {
        self.say(self.tx(e && e.status === 422 ? "challenge-failed" : "error"), true);
      }).then(function () { self.busy = false; if (self.btn) self.btn.disabled = false; });
    }
    refused(r, j) {
      var slug = String(j.type || "").split("/").pop(), msg;
      var code = slug || (j.code ? "number-" + j.code : "");
      if (r.status === 429) {
        var wait = Number(r.headers.get("Retry-After") || j.retry_after || 60);
        msg = this.tx("rate-limited", { wait: wait >= 90 ? this.tx("min", { n: Math.ceil(wait / 60) }) : this.tx("sec", { n: wait }) });
      } else if (/^number-/.test(code)) {
        msg = this.t[code] || this.tx("number");
        this.phoneErr.textContent = msg;
        this.phone.setAttribute("aria-invalid", "true");
        this.phone.focus();
      } else if (slug === "closed") {
        msg = this.hours && this.hours.next_open_at ? this.tx("closed", { time: when(this.hours.next_open_at) }) : this.tx("closed_now");
      } else if (this.t[slug]) {
        msg = this.tx(slug, { detail: j.detail || "" });
      } else msg = this.tx("error");
      this.say(msg, true);
      this.status.setAttribute("data-code", code || String(r.status));
    }
    accepted(j) {
      var self = this;
      this.lead = j;
      this.dlg.querySelector(".x").focus();  // keep focus inside the dialog as the button goes
      this.btn.remove(); this.btn = null;
      if (j.scheduled_for) {
        this.say(this.tx("scheduled", { time: when(j.scheduled_for) }));
        this.status.setAttribute("data-code", "scheduled");
        return;
      }
      var n = Number(this.cfg.countdown_s || 30);
      this.countdown = el("p", { "data-part": "countdown", text: this.tx("countdown", { n: n, seconds: n }) });
      this.status.parentNode.insertBefore(this.countdown, this.status);
      this.timer = setInterval(function () {
        n = Math.max(0, n - 1);
        if (self.countdown) self.countdown.textContent = self.tx("countdown", { n: n });
        if (!n) clearInterval(self.timer);
      }, 1000);
      this.show(j);
      var url = j.events_url ? new URL(j.events_url, ORIGIN).href : null;
      if (url && window.EventSource) {
        var es = this.es = new EventSource(url);
        es.addEventListener("progress", function (e) {
          try { self.show(JSON.parse(e.data)); } catch (x) { /* ignore a bad event */ }
        });
        es.addEventListener("done", function () { es.close(); });
        es.onerror = function () { es.close(); if (self.es === es) { self.es = null; self.poll(); } };
      } else this.poll();
    }
    poll() {
      var self = this, url = new URL(this.lead.status_url, ORIGIN).href;
      if (this.poller || this.finished) return;
      this.poller = setInterval(function () {
        fetch(url, { credentials: "omit" }).then(function (r) { return r.json(); })
          .then(function (j) { self.show(j); }).catch(function () { /* keep polling */ });
      }, 2000);
    }
    show(j) {
      if (!this.dlg) return;
      var st = j.status, text;
      if (j.outcome || st === "done" || st === "failed") {
        text = (j.outcome && this.t["outcome_" + j.outcome]) || this.tx(st === "failed" ? "failed" : "done");
        this.finished = true;
        clearInterval(this.poller); clearInterval(this.timer);
        if (this.es) { this.es.close(); this.es = null; }
        if (this.countdown) { this.countdown.remove(); this.countdown = null; }
      } else text = this.t[j.progress] || this.t[st] || this.tx("queued");
      this.say(text);
      this.status.setAttribute("data-code", j.outcome || j.progress || st || "");
    }
  }
  customElements.define("callengine-widget", Widget);
  function mount() { document.body.appendChild(document.createElement("callengine-widget")); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
