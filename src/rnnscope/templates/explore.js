// rnnscope explorer: the page's callbacks. They read the packed arrays of the page's JSON block,
// compute the selection and the matches, and hand numbers to Bokeh's data sources and widgets;
// Bokeh does all the drawing. `m` holds the Bokeh models by name, `action` says what happened.
function rnnscopeExplore(m, cb_obj, action) {
  const all = window.__rnnscopeExplore || (window.__rnnscopeExplore = {});
  let E = all[m.uid];
  if (E === undefined) {
    const meta = JSON.parse(document.getElementById(m.uid).textContent);
    E = all[m.uid] = {meta: meta, cache: {}, sel: null, jump: null};
    E.ND = m.img_src.data.image[0].constructor;  // Bokeh's 2D array type, from a placeholder
  }
  const meta = E.meta, T = meta.time, S = meta.samples;

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
  }
  function bytes(b64) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(b64);
    const bin = atob(b64), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function decode(p) {  // a packed array: value = lo + step * stored
    const raw = bytes(document.getElementById(p.block).textContent);
    const q = p.enc === "f32" ? new Float32Array(raw.buffer)
      : p.enc === "u16" ? new Uint16Array(raw.buffer) : raw;
    return {q: q, lo: p.lo, step: p.step, shape: p.shape, p: p};
  }
  function packed(key) {
    if (E.cache[key] === undefined) E.cache[key] = decode(meta.signals[key]);
    return E.cache[key];
  }
  function current() {
    const key = m.signal.value + "|" + m.direction.value;
    return {key: key, s: Number(m.sample.value), a: packed(key)};
  }
  function rows(a, s) {  // sample s of a (samples, time, size) array as (size, time), row-major
    const U = a.shape[2], base = s * T * U, flat = new Float32Array(U * T), out = [];
    const lo = new Float32Array(T).fill(Infinity), hi = new Float32Array(T).fill(-Infinity);
    for (let t = 0; t < T; t++) {
      const o = base + t * U;
      for (let u = 0; u < U; u++) {
        const v = a.lo + a.step * a.q[o + u];
        flat[u * T + t] = v;
        if (v < lo[t]) lo[t] = v;
        if (v > hi[t]) hi[t] = v;
      }
    }
    for (let u = 0; u < U; u++) out.push(flat.subarray(u * T, (u + 1) * T));
    return {rows: out, lo: lo, hi: hi, image: new E.ND(flat, [U, T])};
  }
  function range() {
    let t0 = Math.round(m.trange.value[0]), t1 = Math.round(m.trange.value[1]);
    if (t0 > t1) [t0, t1] = [t1, t0];
    return [Math.max(0, Math.min(T - 1, t0)), Math.max(0, Math.min(T - 1, t1))];
  }

  function view() {
    const c = current(), a = c.a, U = a.shape[2], v = rows(a, c.s), r = v.rows;
    const xs = Array.from({length: T}, (_, t) => t);
    const chosen = new Set(E.sel !== null && E.sel.key === c.key ? E.sel.units : []);
    // every unit while there are few; else an even spread of the selected units and of the
    // others, at most meta.max_lines each, over a band of every unit's range
    function spread(units, n) {
      if (units.length <= n) return units;
      return Array.from({length: n}, (_, k) => units[Math.floor((k * units.length) / n)]);
    }
    let drawn = r.map((_, u) => u), title = "every unit over time";
    if (U > meta.max_lines) {
      const on = [...chosen], off = drawn.filter((u) => !chosen.has(u));
      const a = spread(on, meta.max_lines), b = spread(off, meta.max_lines - Math.min(
        a.length, meta.max_lines / 2));
      drawn = a.concat(b);
      title = "units over time: " + a.length + " of the " + on.length + " selected (red) and " +
        b.length + " of the other " + off.length + "; the band spans every unit";
    }
    m.lines.title.text = title;
    const order = drawn.sort((u, w) => chosen.has(u) - chosen.has(w) || u - w);
    const dim = U > 64 ? 0.25 : 0.35;
    m.lines_src.data = {
      xs: order.map(() => xs),
      ys: order.map((u) => r[u]),
      unit: order,
      color: order.map((u) => (chosen.has(u) ? "#d62728" : "#1f77b4")),
      alpha: order.map((u) => (chosen.has(u) ? 0.95 : dim)),
      width: order.map((u) => (chosen.has(u) ? 2 : 1)),
    };
    m.band_src.data = {x: xs, lo: v.lo, hi: v.hi};
    const p = a.p, pad = 0.05 * (p.hi_view - p.lo_view) || 0.5;
    m.lines.y_range.setv({start: p.lo_view - pad, end: p.hi_view + pad});
    m.img_src.data = {image: [v.image], x: [-0.5], y: [-0.5], dw: [T], dh: [U]};
    m.cmap.setv({low: p.lo_view, high: p.hi_view, palette: meta.palettes[p.palette]});
    m.heatmap.y_range.setv({start: -0.5, end: U - 0.5});
    m.span.location = m.threshold.value;
    if (meta.tokens !== null) {
      m.input_src.data = {x: xs, text: meta.tokens[c.s]};
    } else {
      if (E.features === undefined) E.features = decode(meta.features);
      const f = rows(E.features, c.s);
      m.input_src.data = {image: [f.image], x: [-0.5], y: [-0.5], dw: [T], dh: [f.rows.length]};
    }
    const sel = E.sel, here = sel !== null && sel.s === c.s && sel.key === c.key;
    m.box.setv({visible: here, left: here ? sel.t0 - 0.5 : 0, right: here ? sel.t1 + 0.5 : 0});
    const j = E.jump, there = j !== null && j.s === c.s;
    m.match_box.setv({visible: there, left: there ? j.a - 0.5 : 0, right: there ? j.b + 0.5 : 0});
    E.view = {key: c.key, s: c.s};
  }

  function select() {
    const c = current(), a = c.a, U = a.shape[2], q = a.q, base = c.s * T * U;
    const [t0, t1] = range(), thr = m.threshold.value, units = [];
    for (let u = 0; u < U; u++) {
      let on = true;
      for (let t = t0; t <= t1 && on; t++) on = a.lo + a.step * q[base + t * U + u] > thr;
      if (on) units.push(u);
    }
    E.sel = {key: c.key, s: c.s, t0: t0, t1: t1, thr: thr, units: units};
    E.jump = null;
    m.sel_src.data = {
      unit: units,
      x: units.map(() => (t0 + t1) / 2),
      w: units.map(() => t1 - t0 + 1),
    };
    const shown = units.slice(0, 64).join(", ") + (units.length > 64 ? ", ..." : "");
    m.count.text = "<b>" + units.length + "</b> of " + U + " units stay above " + esc(thr) +
      " from t=" + t0 + " to t=" + t1 + " (" + esc(meta.labels[c.s]) + ", " +
      esc(m.signal.value) + ", " + esc(m.direction.value) + ")" +
      (units.length ? ": " + shown : "");
    matches(a, units, t1 - t0 + 1, thr);
    view();
  }

  // Runs of timesteps, in every sample, where all selected units are above the threshold.
  // score = (selected / units on over the whole run) * min(L, L0) / max(L, L0)
  function matches(a, units, L0, thr) {
    const U = a.shape[2], q = a.q, k = units.length, found = [];
    const mins = new Float64Array(U);
    for (let s = 0; s < S && k > 0; s++) {
      let start = -1;
      for (let t = 0; t <= T; t++) {
        let on = t < T;
        for (let i = 0; i < k && on; i++) {
          on = a.lo + a.step * q[(s * T + t) * U + units[i]] > thr;
        }
        if (on && start < 0) start = t;
        if (!on && start >= 0) {
          mins.fill(Infinity);
          for (let r = start; r < t; r++) {
            const o = (s * T + r) * U;
            for (let u = 0; u < U; u++) {
              const v = a.lo + a.step * q[o + u];
              if (!(v >= mins[u])) mins[u] = v;
            }
          }
          let onAll = 0;
          for (let u = 0; u < U; u++) if (mins[u] > thr) onAll++;
          const L = t - start;
          const score = (k / onAll) * Math.min(L, L0) / Math.max(L, L0);
          found.push([score, s, start, t - 1, onAll]);
          start = -1;
        }
      }
    }
    found.sort((x, y) => y[0] - x[0] || x[1] - y[1] || x[2] - y[2]);
    const top = found.slice(0, meta.max_matches);
    E.matchCount = found.length;
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
    m.match_src.selected.indices = [];
    // the table redraws on a change of its view, which a new list of the same length never makes
    m.match_table.view.change.emit();
    m.match_title.text = "<b>" + found.length + "</b> place" + (found.length === 1 ? "" : "s") +
      " where the " + k + " selected units are all on" +
      (found.length > top.length ? " (best " + top.length + " listed)" : "") +
      "; click one to jump there";
  }

  function jump() {
    const i = cb_obj.indices[0];
    if (i === undefined) return;
    const d = m.match_src.data, s = d.sample[i], a = d.start[i], b = d.end[i];
    E.jump = {s: s, a: a, b: b};
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

  const t = performance.now();
  if (action === "init" || action === "select") select();
  else if (action === "sample") view();
  else if (action === "jump") jump();
  else if (action === "brush") brush();
  E.last = {action: action, start: t, ms: performance.now() - t};
}
