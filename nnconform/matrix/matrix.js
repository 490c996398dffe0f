// The details panel of the conformance matrix page: a click on a cell (or Enter on a
// focused one) shows its items from the embedded JSON; a click on a summary cell shows
// how that backend's run went. Statistical decisions are drawn as small SVG plots.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("matrix-data").textContent);
  const panel = document.getElementById("details");
  const body = document.getElementById("details-body");
  let selected = null;

  function esc(value) {
    return String(value ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  }
  function num(value) {
    return typeof value === "number" && isFinite(value);
  }
  function fmt(value) {
    return num(value) ? String(Number(value.toPrecision(6))) : esc(value);
  }

  // One row per decision: the acceptance interval (shaded), the expected value (bar) and
  // the observed statistic (dot, green when the decision passed). Without an interval the
  // p-value is drawn against alpha on a log scale; an exact check (alpha 0) is text only.
  function decisionPlot(decisions) {
    const width = 620, rowHeight = 38, x0 = 90, plotWidth = 400;
    const rows = decisions.map((d, i) => decisionRow(d, i, i * rowHeight, x0, plotWidth, width));
    return `<svg class="decision-plot" width="${width}" height="${decisions.length * rowHeight + 4}" ` +
      `viewBox="0 0 ${width} ${decisions.length * rowHeight + 4}" role="img" ` +
      `aria-label="observed statistic against expected value and acceptance interval, one row per decision">` +
      rows.join("") + "</svg>";
  }

  function decisionRow(d, i, top, x0, plotWidth, width) {
    const passed = d.passed !== false && !(num(d.p_value) && num(d.alpha) && d.alpha > 0 && d.p_value <= d.alpha);
    const caption = `#${i + 1} ${d.test}` + (num(d.p) ? ` · p=${fmt(d.p)}` : "") + ` · n=${fmt(d.n)} · α=${fmt(d.alpha)}` +
      ` · p-value=${fmt(d.p_value)}`;
    const title = `<title>${esc(`observed ${d.observed}; expected ${d.expected}` +
      (d.interval ? `; acceptance interval [${d.interval[0]}, ${d.interval[1]}]` : ""))}</title>`;
    let out = `<g class="decision" transform="translate(0,${top})">${title}` +
      `<text x="2" y="11">${esc(caption)}</text>`;
    const y = 26, dot = `observed ${passed ? "pass" : "fail"}`;
    const interval = d.interval && num(d.interval[0]) && num(d.interval[1]) ? d.interval : null;
    if (interval && num(d.statistic)) {
      const [lo, hi] = interval, expected = num(d.expected_value) ? d.expected_value : (lo + hi) / 2;
      let span = hi - lo;
      if (!(span > 0)) span = Math.max(Math.abs(expected), 1e-12) * 1e-3;
      let min = Math.min(lo, expected) - span * 0.5, max = Math.max(hi, expected) + span * 0.5;
      const far = d.statistic < lo - 3 * span || d.statistic > hi + 3 * span;
      if (!far) { min = Math.min(min, d.statistic - span * 0.1); max = Math.max(max, d.statistic + span * 0.1); }
      const x = (v) => x0 + (Math.min(Math.max(v, min), max) - min) / (max - min) * plotWidth;
      out += `<line class="axis" x1="${x0}" x2="${x0 + plotWidth}" y1="${y}" y2="${y}"/>` +
        `<rect class="band" x="${x(lo)}" y="${y - 6}" width="${Math.max(x(hi) - x(lo), 1)}" height="12"/>` +
        `<text x="${x(lo) - 3}" y="${y + 4}" text-anchor="end">${fmt(lo)}</text>` +
        `<text x="${x(hi) + 3}" y="${y + 4}">${fmt(hi)}</text>` +
        `<line class="expected" x1="${x(expected)}" x2="${x(expected)}" y1="${y - 8}" y2="${y + 8}"/>` +
        `<circle class="${dot}" cx="${x(d.statistic)}" cy="${y}" r="4.5"/>` +
        (far ? `<text x="${x(d.statistic)}" y="${y - 8}" text-anchor="middle">off scale</text>` : "") +
        `<text x="${width - 2}" y="${y + 4}" text-anchor="end">observed ${fmt(d.statistic)}</text>`;
    } else if (num(d.alpha) && d.alpha > 0 && num(d.p_value)) {
      const la = Math.log10(d.alpha), lp = Math.log10(Math.max(d.p_value, 1e-300));
      const min = Math.min(la, lp) - 1;
      const x = (v) => x0 + (v - min) / (0 - min) * plotWidth;
      out += `<line class="axis" x1="${x0}" x2="${x0 + plotWidth}" y1="${y}" y2="${y}"/>` +
        `<rect class="band" x="${x(la)}" y="${y - 6}" width="${x(0) - x(la)}" height="12"/>` +
        `<text x="${x(la) - 3}" y="${y + 4}" text-anchor="end">α ${fmt(d.alpha)}</text>` +
        `<line class="expected" x1="${x(la)}" x2="${x(la)}" y1="${y - 8}" y2="${y + 8}"/>` +
        `<circle class="${dot}" cx="${x(lp)}" cy="${y}" r="4.5"/>` +
        `<text x="${width - 2}" y="${y + 4}" text-anchor="end">p-value (log scale)</text>`;
    } else {
      out += `<circle class="${dot}" cx="${x0}" cy="${y}" r="4.5"/>` +
        `<text x="${x0 + 10}" y="${y + 4}">exact check: ${esc(d.observed)}; expected ${esc(d.expected)}</text>`;
    }
    return out + "</g>";
  }

  function shellWord(text) {
    return /^[\w@%+=:,.\/-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
  }
  // A failure's own reproduce command; otherwise the run's backend, seed and examples with -k ID.
  function command(item, column) {
    return item.reproduce || `nnconform --backend ${shellWord(column.spec)} --seed ${column.seed} ` +
      `--max-examples ${column.max_examples} -k ${shellWord(item.id)}`;
  }

  function itemHtml(item, column) {
    const label = item.reproduce ? "reproduce with" : "run it again with";
    let out = `<div class="item k-${esc(item.category)}"><div><b>${data.symbols[item.category]} ${esc(item.status)}</b> ` +
      `<code>${esc(item.id)}</code></div>` +
      `<div class="meta">${item.examples ?? 0} example(s)` + (num(item.seconds) ? `, ${fmt(item.seconds)} s` : "") +
      (item.conventions ? ` · judged under the convention ${esc(item.conventions)}` : "") + "</div>";
    if (item.message) out += `<div class="message">${esc(item.message)}</div>`;
    if (item.reason) out += `<div class="meta">${esc(item.reason)}</div>`;
    if (item.anchor) out += `<div class="meta">finding: <a href="${esc(data.findings)}#${esc(item.anchor)}">${esc(item.anchor)}</a></div>`;
    out += `<div class="meta">${label}:</div><code class="command">${esc(command(item, column))}</code>`;
    if (item.statistics.length) out += decisionPlot(item.statistics);
    return out + "</div>";
  }

  function columnHtml(column) {
    const s = column.summary;
    let out = `<h2>${esc(column.title)}: ${esc(column.state)}</h2><p>${esc(column.message)}</p><ul>` +
      `<li>passed ${s.passed} · known ${s.known} · unsupported ${s.unsupported} · failed ${s.failed} · not run ${s["not run"]}</li>`;
    if (column.version) out += `<li>version ${esc(column.version)}${column.device ? ` (${esc(column.device)})` : ""}</li>`;
    if (num(column.seconds)) out += `<li>suite time ${fmt(column.seconds)} s</li>`;
    if (num(column.wall_seconds)) out += `<li>wall time ${fmt(column.wall_seconds)} s</li>`;
    if (column.exit_status !== null && column.exit_status !== undefined) out += `<li>exit status ${esc(column.exit_status)}</li>`;
    if (column.profile) out += `<li>profile ${esc(column.profile)}, seed ${esc(column.seed)}, max examples ${esc(column.max_examples)}</li>`;
    out += "</ul>";
    if (column.command) out += `<div>command:</div><code class="command">${esc(column.command)}</code>`;
    for (const stream of ["stderr_tail", "stdout_tail"]) {
      if (column[stream]) out += `<div>last lines of its ${stream.split("_")[0]}:</div><pre class="tail">${esc(column[stream])}</pre>`;
    }
    return out;
  }

  function show(cell) {
    const row = Number(cell.dataset.row), col = Number(cell.dataset.col);
    const column = data.columns[col];
    if (row < 0) {
      body.innerHTML = columnHtml(column);
    } else {
      const clause = data.rows[row], items = data.cells[row][col];
      body.innerHTML = `<h2><code>${esc(clause.clause)}</code> × ${esc(column.title)}</h2><p>${esc(clause.statement)}</p>` +
        (items.length ? items.map((item) => itemHtml(item, column)).join("") : `<p>No item of this clause ran: ${esc(column.message || "not in this run")}.</p>`);
    }
    if (selected) selected.classList.remove("selected");
    selected = cell;
    cell.classList.add("selected");
    panel.hidden = false;
    document.body.classList.add("with-details");
    panel.scrollTop = 0;
  }

  document.getElementById("matrix").addEventListener("click", (event) => {
    const cell = event.target.closest("td.cell");
    if (cell && !event.target.closest("a")) show(cell);
  });
  document.getElementById("matrix").addEventListener("keydown", (event) => {
    const cell = event.target.closest("td.cell");
    if (cell && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); show(cell); }
  });
  function close() {
    panel.hidden = true;
    document.body.classList.remove("with-details");
    if (selected) selected.classList.remove("selected");
  }
  document.getElementById("close").addEventListener("click", close);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
})();
