// rnnscope explorer: the page's callbacks. They read the packed arrays of the page's blocks,
// compute the selection and the matches, and hand numbers to Bokeh's data sources and widgets;
// Bokeh draws the plots; the script fills the page's own text boxes and match list (plain HTML
// of fixed size, cheaper to change than Bokeh models). The page holds this script once; every
// callback calls rnnscopeExplore. `m` holds the Bokeh models by name, `action` says what happened.
// Every array is packed one block per sample and decoded on first use; the blocks of samples
// other than the first come after Bokeh's start in the file, so the first view is drawn while
// the browser still reads them, and the match search waits for them (DOMContentLoaded).
function rnnscopeExplore(m, cb_obj, action) {
  // one explorer per page, made by the first callback and used by all of them, so that the
  // browser compiles and optimises its loops once
  const all = window.__rnnscopeExplore || (window.__rnnscopeExplore = {});
  if (all[m.uid] === undefined) all[m.uid] = rnnscopeExplorer(m);
  all[m.uid].run(action, cb_obj);
}

function rnnscopeExplorer(m) {
  const meta = JSON.parse(document.getElementById(m.uid).textContent);
  const E = {meta: meta, sel: null, jump: null, vc: null};
  E.ND = m.img_src.data.image[0].constructor;  // Bokeh's 2D array type, from a placeholder
  const T = meta.time, S = meta.samples;
  let parts = {}, cb_obj = null;
  function part(name, t0) {  // where an update's time goes (E.last.parts; read by the bench)
    const now = performance.now();
    parts[name] = (parts[name] || 0) + now - t0;
    return now;
  }

  // the count and the match list's title: boxes of fixed size outside Bokeh (see the template)
  function say(box, text) {
    const el = document.getElementById(m.uid + "-" + box);
    if (el !== null && el.innerHTML !== text) el.innerHTML = text;
  }
  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
  }
  function bytes(b64) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(b64);
    const bin = atob(b64), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function packed(p) {  // a packed array: value = lo + step * stored, one block per sample
    if (p.cache === undefined) {
      const size = p.enc === "f32" ? 4 : p.enc === "u16" ? 2 : 1;
      Object.defineProperty(p, "cache", {value: {
        p: p, U: p.shape[2], q: new Array(S).fill(null), masks: {}, size: size,
        b64len: Math.ceil((T * p.shape[2] * size) / 3) * 4,
      }});
    }
    return p.cache;
  }
  // sample s of a packed array, (time, size) row-major as stored; null while not yet read
  function sample(A, s) {
    if (A.q[s] === null) {
      const el = document.getElementById(A.p.blocks[s]);
      const text = el === null ? "" : el.textContent;
      if (text.length !== A.b64len) return null;  // not (fully) parsed yet
      const raw = bytes(text);
      A.q[s] = A.p.enc === "f32" ? new Float32Array(raw.buffer)
        : A.p.enc === "u16" ? new Uint16Array(raw.buffer) : raw;
    }
    return A.q[s];
  }
  // Bits of sample s above thr (strictly): unit u at step t is bit u % 32 of word
  // t * W + u / 32 (W words per step). A stored level v is above thr when lo + step * v > thr;
  // as that grows with v, it holds from the first such level on: the test is exactly
  // `lo + step * stored > thr`, made as one integer comparison per value.
  function mask(A, s, thr) {
    const key = String(thr);
    if (A.masks.thr !== key) A.masks = {thr: key, by: new Array(S).fill(null)};
    if (A.masks.by[s] !== null) return A.masks.by[s];
    const q = sample(A, s);
    if (q === null) return null;
    const U = A.U, W = (U + 31) >> 5, out = new Uint32Array(T * W);
    let cut = thr;  // float32: compared as they are
    if (A.p.enc !== "f32") {
      const levels = A.p.enc === "u16" ? 65536 : 256;
      cut = levels;
      for (let v = 0; v < levels; v++) {
        if (A.p.lo + A.p.step * v > thr) { cut = v; break; }
      }
    }
    const integer = A.p.enc !== "f32";
    for (let t = 0; t < T; t++) {
      const o = t * U, w0 = t * W;
      for (let w = 0; w < W; w++) {
        const u0 = o + 32 * w, n = Math.min(32, U - 32 * w);
        let bits = 0;
        if (integer) {
          for (let b = 0; b < n; b++) if (q[u0 + b] >= cut) bits |= 1 << b;
        } else {
          for (let b = 0; b < n; b++) if (q[u0 + b] > cut) bits |= 1 << b;
        }
        out[w0 + w] = bits;
      }
    }
    return (A.masks.by[s] = out);
  }
  function bitsOn(x) {  // how many bits of a 32-bit word are set
    x -= (x >>> 1) & 0x55555555;
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
  }
  function current() {
    const key = m.signal.value + "|" + m.direction.value;
    return {key: key, s: Number(m.sample.value), A: packed(meta.signals[key])};
  }
  // sample s as (size, time) rows of float32 values, with each step's min and max
  function rows(A, s) {
    const U = A.U, q = sample(A, s), lo0 = A.p.lo, step = A.p.step;
    const flat = new Float32Array(U * T), out = [];
    const lo = new Float32Array(T).fill(Infinity), hi = new Float32Array(T).fill(-Infinity);
    for (let t = 0; t < T; t++) {
      const o = t * U;
      let a = Infinity, b = -Infinity;
      for (let u = 0; u < U; u++) {
        const v = lo0 + step * q[o + u];
        flat[u * T + t] = v;
        if (v < a) a = v;
        if (v > b) b = v;
      }
      lo[t] = a;
      hi[t] = b;
    }
    for (let u = 0; u < U; u++) out.push(flat.subarray(u * T, (u + 1) * T));
    return {rows: out, lo: lo, hi: hi, image: new E.ND(flat, [U, T])};
  }
  function range() {
    let t0 = Math.round(m.trange.value[0]), t1 = Math.round(m.trange.value[1]);
    if (t0 > t1) [t0, t1] = [t1, t0];
    return [Math.max(0, Math.min(T - 1, t0)), Math.max(0, Math.min(T - 1, t1))];
  }
  // Once every block is parsed: "select" (a selection tried on a sample not yet read) runs
  // the selection again from the widgets; "matches" searches every sample for the selection
  // made meanwhile (its own sample, range and threshold, whatever is shown now); "sample"
  // draws the view. Each redraws the view.
  function later(what) {
    if (document.readyState !== "loading") return;
    if (E.pending === undefined) {
      E.pending = new Set();
      document.addEventListener("DOMContentLoaded", () => {
        const p = E.pending, sel = E.sel;
        E.pending = undefined;
        if (p.has("select")) {
          E.run("select", null);
        } else if (p.has("matches") && sel !== null) {
          matches(packed(meta.signals[sel.key]), sel.units, sel.t1 - sel.t0 + 1, sel.thr);
          view();
        } else {
          view();
        }
      }, {once: true});
    }
    E.pending.add(what);
  }

  // the sample's heatmap, band and input: redrawn only when the sample or the signal changes
  function base(c) {
    const A = c.A, U = A.U, v = rows(A, c.s), p = A.p;
    if (E.xs === undefined) E.xs = Float64Array.from({length: T}, (_, t) => t);
    m.band_src.data = {x: E.xs, lo: v.lo, hi: v.hi};
    const pad = 0.05 * (p.hi_view - p.lo_view) || 0.5;
    m.lines.y_range.setv({start: p.lo_view - pad, end: p.hi_view + pad});
    m.cmap.setv({low: p.lo_view, high: p.hi_view, palette: meta.palettes[p.palette]});
    m.heatmap.y_range.setv({start: -0.5, end: U - 0.5});
    if (meta.tokens !== null) {
      m.input_src.data = {x: E.xs, text: meta.tokens[c.s]};
    } else {
      const F = packed(meta.features), f = rows(F, c.s);
      m.input_src.data = {image: [f.image], x: [-0.5], y: [-0.5], dw: [T], dh: [F.U]};
    }
    E.vc = {key: c.key, s: c.s, rows: v.rows, image: v.image};
    E.drawn = null;
    heat();
  }

  // The heatmap's columns: the steps the lines cover (the visible ones and as many again on
  // each side), one column per step while they are at most meta.max_columns; else one column
  // per bucket of steps, its colour the bucket's mean. Hover reads the exact stored value of
  // the step and unit under the mouse from E.vc (valueAt), whatever the column holds.
  function heatWindow() {
    const C = meta.max_columns;
    if (T <= C) return {lo: 0, hi: T - 1, a: 0, b: T - 1, bucket: 1};
    const a = Math.max(0, Math.floor(m.x.start + 0.5));
    const b = Math.min(T - 1, Math.ceil(m.x.end - 0.5));
    const span = Math.max(1, b - a + 1);
    const lo = Math.max(0, a - span);
    let hi = Math.min(T - 1, b + span);
    const bucket = hi - lo + 1 <= C ? 1 : Math.ceil((hi - lo + 1) / C);
    hi = Math.min(T - 1, lo + Math.ceil((hi - lo + 1) / bucket) * bucket - 1);
    return {lo: lo, hi: hi, a: a, b: b, bucket: bucket};
  }
  function heat() {
    const w = heatWindow(), v = E.vc, U = v.rows.length;
    if (w.lo === 0 && w.hi === T - 1 && w.bucket === 1) {
      m.img_src.data = {image: [v.image], x: [-0.5], y: [-0.5], dw: [T], dh: [U]};
    } else {
      const n = Math.ceil((w.hi - w.lo + 1) / w.bucket), img = new Float32Array(U * n);
      for (let u = 0; u < U; u++) {
        const r = v.rows[u];
        for (let j = 0; j < n; j++) {
          const t0 = w.lo + j * w.bucket, t1 = Math.min(w.hi, t0 + w.bucket - 1);
          let sum = 0;
          for (let t = t0; t <= t1; t++) sum += r[t];
          img[u * n + j] = sum / (t1 - t0 + 1);
        }
      }
      m.img_src.data = {image: [new E.ND(img, [U, n])], x: [w.lo - 0.5], y: [-0.5],
        dw: [n * w.bucket], dh: [U]};
    }
    E.hw = w;
  }
  E.valueAt = function (x, y) {  // the stored value under the mouse (float32, 6 decimals)
    const v = E.vc;
    if (v === null) return "";
    const u = Math.round(y), t = Math.round(x);
    if (!(u >= 0 && u < v.rows.length && t >= 0 && t < T)) return "";
    return v.rows[u][t].toFixed(6);
  };


  // The steps the unit lines cover: the visible ones and as many again on each side (for
  // panning), every step while the lines hold at most meta.max_points points in all; else
  // buckets of steps, each drawn as its lowest and highest value in time order (real points).
  function window_(n) {
    const a = Math.max(0, Math.floor(m.x.start + 0.5));
    const b = Math.min(T - 1, Math.ceil(m.x.end - 0.5));
    const per = Math.max(2, Math.floor(meta.max_points / Math.max(1, n)));
    if (T <= per) return {lo: 0, hi: T - 1, a: a, b: b, bucket: 1};
    const span = Math.max(1, b - a + 1);
    const lo = Math.max(0, a - span), hi = Math.min(T - 1, b + span);
    const bucket = hi - lo + 1 <= per ? 1 : Math.ceil((2 * (hi - lo + 1)) / per);
    return {lo: lo, hi: hi, a: a, b: b, bucket: bucket};
  }
  function thin(y, w) {
    if (w.bucket === 1) {
      if (w.lo === 0 && w.hi === T - 1) return {x: E.xs, y: y};
      return {x: E.xs.subarray(w.lo, w.hi + 1), y: y.subarray(w.lo, w.hi + 1)};
    }
    const nb = Math.ceil((w.hi - w.lo + 1) / w.bucket);
    const xo = new Float64Array(2 * nb), yo = new Float32Array(2 * nb);
    let k = 0;
    for (let t0 = w.lo; t0 <= w.hi; t0 += w.bucket) {
      const t1 = Math.min(w.hi, t0 + w.bucket - 1);
      let i = t0, j = t0;
      for (let t = t0 + 1; t <= t1; t++) {
        if (y[t] < y[i]) i = t;
        if (y[t] > y[j]) j = t;
      }
      const first = Math.min(i, j), second = Math.max(i, j);
      xo[k] = first; yo[k++] = y[first];
      if (second !== first) { xo[k] = second; yo[k++] = y[second]; }
    }
    return {x: xo.subarray(0, k), y: yo.subarray(0, k)};
  }
  function zoom() {  // redraw the lines when the visible steps leave what they cover, or shrink
    if (E.lw === undefined || E.view === undefined) return;
    const w = window_(E.lw.n || 1), old = E.lw;
    if (w.a < old.lo || w.b > old.hi || (old.bucket > 1 && w.bucket < old.bucket / 2)) view();
    const h = heatWindow(), was = E.hw;  // the heatmap: when the columns no longer fit the view
    if (E.vc !== null && (h.a < was.lo || h.b > was.hi || h.bucket !== was.bucket)) heat();
  }

  function view() {
    const c = current(), U = c.A.U;
    if (sample(c.A, c.s) === null || (meta.tokens === null &&
        sample(packed(meta.features), c.s) === null)) {
      say("count", esc(meta.labels[c.s]) + " is still loading");
      later("sample");
      return;
    }
    if (E.vc === null || E.vc.key !== c.key || E.vc.s !== c.s) base(c);
    const r = E.vc.rows;
    const chosen = E.sel !== null && E.sel.key === c.key ? E.sel.units : [];
    // every unit while there are few; else an even spread of meta.max_lines units (blue, the
    // same whatever is selected) and of the selected ones (red, on the overlay layer, so a new
    // selection repaints only them), over a band of every unit's range
    function spread(units, n) {
      if (units.length <= n) return units;
      return Array.from({length: n}, (_, k) => units[Math.floor((k * units.length) / n)]);
    }
    const others = spread(r.map((_, u) => u), meta.max_lines), red = spread(chosen, meta.max_lines);
    const w = window_(others.length + red.length);
    let title = others.length === U ? "every unit over time (red: the selected units)"
      : "units over time: " + others.length + " of the " + U + " units (blue) and at most " +
        meta.max_lines + " of the selected (red); the band spans every unit";
    if (w.bucket > 1) {
      title += "; each line: the lowest and highest value of every " + w.bucket +
        " steps (zoom in for every step)";
    }
    if (m.lines.title.text !== title) m.lines.title.text = title;
    E.lw = Object.assign(w, {n: others.length + red.length});
    const drawn = [c.key, c.s, w.lo, w.hi, w.bucket].join(" ");
    if (E.drawn !== drawn) {
      const lines = others.map((u) => thin(r[u], w));
      m.others_src.data = {xs: lines.map((l) => l.x), ys: lines.map((l) => l.y), unit: others};
      E.drawn = drawn;
    }
    const lines = red.map((u) => thin(r[u], w));
    m.lines_src.data = {xs: lines.map((l) => l.x), ys: lines.map((l) => l.y), unit: red};
    m.span.location = m.threshold.value;
    const sel = E.sel, here = sel !== null && sel.s === c.s && sel.key === c.key;
    m.box.setv({visible: here, left: here ? sel.t0 - 0.5 : 0, right: here ? sel.t1 + 0.5 : 0});
    const j = E.jump, there = j !== null && j.s === c.s;
    m.match_box.setv({visible: there, left: there ? j.a - 0.5 : 0, right: there ? j.b + 0.5 : 0});
    E.view = {key: c.key, s: c.s};
  }

  function select() {
    const c = current(), A = c.A, U = A.U, [t0, t1] = range(), thr = m.threshold.value;
    let t = performance.now();
    const on = mask(A, c.s, thr);
    t = part("mask", t);
    if (on === null) {
      later("select");
      view();
      return;
    }
    const W = (U + 31) >> 5, units = [];
    for (let w = 0; w < W; w++) {
      let all = -1;
      for (let t = t0; t <= t1 && all !== 0; t++) all &= on[t * W + w];
      for (let b = 0; b < 32 && all !== 0; b++) if ((all >>> b) & 1) units.push(w * 32 + b);
    }
    E.sel = {key: c.key, s: c.s, t0: t0, t1: t1, thr: thr, units: units};
    t = part("units", t);
    E.jump = null;
    m.sel_src.data = {
      unit: units,
      x: units.map(() => (t0 + t1) / 2),
      w: units.map(() => t1 - t0 + 1),
    };
    const shown = units.slice(0, 64).join(", ") + (units.length > 64 ? ", ..." : "");
    say("count", "<b>" + units.length + "</b> of " + U + " units stay above " + esc(thr) +
      " from t=" + t0 + " to t=" + t1 + " (" + esc(meta.labels[c.s]) + ", " +
      esc(m.signal.value) + ", " + esc(m.direction.value) + ")" +
      (units.length ? ": " + shown : "") + (units.length > meta.max_lines ? "; " +
      meta.max_lines + " of them drawn in red" : ""));
    t = part("count", t);
    matches(A, units, t1 - t0 + 1, thr);
    t = part("matches", t);
    view();
    part("view", t);
  }

  // Runs of timesteps, in every sample, where all selected units are above the threshold.
  // score = (selected / units on over the whole run) * min(L, L0) / max(L, L0)
  function matches(A, units, L0, thr) {
    const U = A.U, W = (U + 31) >> 5, k = units.length, found = [];
    const want = new Uint32Array(W), acc = new Uint32Array(W), t00 = performance.now();
    for (const u of units) want[u >> 5] |= 1 << (u & 31);
    for (let s = 0; s < S && k > 0; s++) {
      const on = mask(A, s, thr);
      if (on === null) {  // the other samples are still being read: search once they are
        m.match_src.data = {rank: [], sample: [], label: [], start: [], end: [], length: [],
          on: [], score: []};
        list([], 0);
        say("match-title", "searching every sample once the page has loaded");
        later("matches");
        return;
      }
      let start = -1;
      for (let t = 0; t <= T; t++) {
        let together = t < T;
        for (let w = 0, o = t * W; w < W && together; w++) {
          together = ((on[o + w] & want[w]) >>> 0) === want[w];  // unsigned, as want is
        }
        if (together) {
          // the units on over the whole run so far: the words of every step ANDed together
          if (start < 0) {
            start = t;
            for (let w = 0; w < W; w++) acc[w] = on[t * W + w];
          } else {
            for (let w = 0, o = t * W; w < W; w++) acc[w] &= on[o + w];
          }
        } else if (start >= 0) {
          let n = 0;
          for (let w = 0; w < W; w++) n += bitsOn(acc[w]);
          const L = t - start;
          found.push([(k / n) * Math.min(L, L0) / Math.max(L, L0), s, start, t - 1, n]);
          start = -1;
        }
      }
    }
    let t = part("search", t00);
    found.sort((x, y) => y[0] - x[0] || x[1] - y[1] || x[2] - y[2]);
    const top = found.slice(0, meta.max_matches);
    E.matchCount = found.length;
    if (E.matched === undefined) E.matched = performance.now();
    m.match_src.data = {
      rank: top.map((_, i) => i + 1),
      sample: top.map((f) => f[1]),
      label: top.map((f) => meta.labels[f[1]]),
      start: top.map((f) => f[2]),
      end: top.map((f) => f[3]),
      length: top.map((f) => f[3] - f[2] + 1),
      on: top.map((f) => f[4]),
      score: top.map((f) => f[0]),
    };
    t = part("match list", t);
    if (m.match_src.selected.indices.length) m.match_src.selected.indices = [];
    E.marked = -1;
    list(top, 0);
    say("match-title", "<b>" + found.length + "</b> place" + (found.length === 1 ? "" : "s") +
      " where the " + k + " selected units are all on" +
      (found.length > top.length ? " (best " + top.length + " listed)" : "") +
      "; click one to jump there");
    part("match table", t);
  }

  // The match list: an HTML table in a box of fixed size (see the page's template), a page of
  // meta.page_rows rows at a time (so a new list costs the same however many were found); a
  // click on a row (or Enter on it) selects that row of match_src, whose callback jumps there.
  function list(top, page) {
    const el = document.getElementById(m.uid + "-matches");
    if (el === null) return;
    if (el.dataset.ready === undefined) {
      el.dataset.ready = "1";
      const pick = (ev) => {
        const button = ev.target.closest("button[data-page]");
        if (button !== null) {  // a new page; the focus stays on the same button
          list(E.listed, Number(button.dataset.page));
          const same = el.querySelector("button[data-dir=\"" + button.dataset.dir + "\"]");
          if (same !== null && !same.disabled) same.focus();
          return;
        }
        const tr = ev.target.closest("tr[data-row]");
        if (tr !== null) m.match_src.selected.indices = [Number(tr.dataset.row)];
      };
      el.addEventListener("click", pick);
      el.addEventListener("keydown", (ev) => { if (ev.key === "Enter") pick(ev); });
    }
    const n = meta.page_rows, first = page * n, rows = top.slice(first, first + n);
    E.listed = top;
    const td = (v) => "<td class=\"n\">" + v + "</td>";
    const row = (f, i) => "<tr data-row=\"" + (first + i) + "\" tabindex=\"0\"" +
      (first + i === E.marked ? " class=\"on\">" : ">") + td(first + i + 1) + "<td>" +
      esc(meta.labels[f[1]]) + "</td>" + td(f[2]) + td(f[3]) + td(f[4]) +
      td(f[0].toFixed(3)) + "</tr>";
    const turn = (to, dir, text, off) => "<button data-page=\"" + to + "\" data-dir=\"" + dir +
      "\"" + (off ? " disabled" : "") + ">" + text + "</button>";
    el.innerHTML = "<table><colgroup><col style=\"width:34px\"><col>" +
      "<col style=\"width:58px\"><col style=\"width:46px\"><col style=\"width:72px\">" +
      "<col style=\"width:56px\"></colgroup><thead><tr><th>#</th><th>sample</th>" +
      "<th>from t</th><th>to t</th><th>units on</th><th>score</th></tr></thead><tbody>" +
      rows.map(row).join("") + "</tbody></table>" + (top.length <= n ? "" :
      "<div class=\"pager\">" + turn(page - 1, "prev", "&lsaquo; previous", page === 0) + " rows " +
      (first + 1) + "&ndash;" + (first + rows.length) + " of " + top.length + " " +
      turn(page + 1, "next", "next &rsaquo;", first + n >= top.length) + "</div>");
  }
  function mark(i) {  // the row of the match the view jumped to
    E.marked = i;
    const el = document.getElementById(m.uid + "-matches");
    if (el === null) return;
    for (const tr of el.querySelectorAll("tr.on")) tr.classList.remove("on");
    const tr = el.querySelector("tr[data-row=\"" + i + "\"]");
    if (tr !== null) tr.classList.add("on");
  }

  function jump() {
    const i = cb_obj.indices[0], d = m.match_src.data;
    if (i === undefined || !(i < d.sample.length)) return;
    const s = d.sample[i], a = d.start[i], b = d.end[i];
    E.jump = {s: s, a: a, b: b};
    mark(i);
    const pad = Math.max(3, b - a + 1);
    m.x.setv({start: Math.max(-0.5, a - pad - 0.5), end: Math.min(T - 0.5, b + pad + 0.5)});
    if (String(s) !== m.sample.value) m.sample.value = String(s);
    else view();
  }

  function brush() {
    const g = cb_obj.geometry;
    if (g === undefined || g.x0 === undefined) return;
    const lo = Math.max(0, Math.min(T - 1, Math.round(Math.min(g.x0, g.x1))));
    const hi = Math.max(0, Math.min(T - 1, Math.round(Math.max(g.x0, g.x1))));
    m.trange.value = [lo, hi];
  }

  E.run = function (action, obj) {
    const t = performance.now();
    parts = {};
    cb_obj = obj;
    if (action === "init" || action === "select") select();
    else if (action === "sample") view();
    else if (action === "jump") jump();
    else if (action === "brush") brush();
    else if (action === "zoom") zoom();
    E.last = {action: action, start: t, ms: performance.now() - t, parts: parts};
  };
  return E;
}
