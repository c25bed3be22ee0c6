// Sluice Streaming tab: Spark's Streaming tab for `sluice serve`, drawn by this script alone (SVG), from the server's
// JSON API, polled every second. No library, no request to any other origin (the server's CSP forbids it anyway).
'use strict';
(() => {
  const BASE = (document.querySelector('meta[name="sluice-base"]') || {}).content || '';
  const POLL_MS = 1000;
  const CHART_BATCHES = 300; // the batches fetched for the charts and the table (the server keeps up to 1000)
  const PAGE_ROWS = 25;
  const LOG_LINES = 200;
  const FINAL = new Set(['success', 'dead', 'killed']);

  const view = document.getElementById('view');
  const crumbs = document.getElementById('crumbs');
  const conn = document.getElementById('status');

  const ui = { page: 0, armed: null, stopping: new Set() };
  let route = parseRoute();
  let generation = 0;
  let timer = null;

  // MARK: - Fetching

  async function api(path, options) {
    const response = await fetch(BASE + path, Object.assign({
      cache: 'no-store',
      headers: { Accept: 'application/json', 'X-Requested-By': 'sluice-streaming-tab' },
    }, options || {}));
    let body = {};
    try { body = await response.json(); } catch (_) { /* an empty or non-JSON answer */ }
    if (!response.ok) {
      const error = new Error(body.msg || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function setConnection(ok, error) {
    if (ok) {
      conn.className = 'conn live';
      conn.textContent = 'live · updated ' + clock(Date.now());
    } else {
      conn.className = 'conn lost';
      conn.textContent = 'no answer from the server (' + (error && error.message || 'error') + ') · retrying';
    }
  }

  // MARK: - Routing: #/ · #/batches/ID · #/batches/ID/streaming/batches/BATCH (the API's own paths)

  function parseRoute() {
    const hash = location.hash.replace(/^#/, '');
    let m = hash.match(/^\/batches\/(\d+)\/streaming\/batches\/(\d+)\/?$/);
    if (m) return { kind: 'batch', id: +m[1], batch: +m[2] };
    m = hash.match(/^\/batches\/(\d+)\/?$/);
    if (m) return { kind: 'pipeline', id: +m[1] };
    return { kind: 'list' };
  }

  function navigate() {
    generation += 1;
    clearTimeout(timer);
    route = parseRoute();
    ui.page = 0;
    ui.armed = null;
    view.innerHTML = '';
    view.dataset.kind = '';
    window.scrollTo(0, 0);
    tick();
  }

  async function tick() {
    const mine = generation;
    try {
      if (route.kind === 'list') await showList(mine);
      else if (route.kind === 'pipeline') await showPipeline(mine);
      else await showBatch(mine);
      if (mine === generation) setConnection(true);
    } catch (error) {
      if (mine === generation) {
        if (error.status === 404) { showMissing(error); setConnection(true); } else setConnection(false, error);
      }
    }
    if (mine === generation) {
      clearTimeout(timer);
      timer = setTimeout(tick, POLL_MS);
    }
  }

  function refreshNow() {
    clearTimeout(timer);
    tick();
  }

  // MARK: - Formatting

  function esc(value) {
    return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  const isNum = (v) => typeof v === 'number' && isFinite(v);
  const dash = '<span class="muted">—</span>';
  function count(v) { return isNum(v) ? Math.round(v).toLocaleString('en-US') : dash; }
  function rate(v) { return isNum(v) ? v.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 }) : dash; }
  /// Milliseconds as Spark's tab shows durations: two decimals under 1 ms, one under a second, then seconds.
  function ms(v) {
    if (!isNum(v)) return dash;
    if (v < 1) return v.toFixed(2) + ' ms';
    if (v < 1000) return v.toFixed(1) + ' ms';
    if (v < 60000) return (v / 1000).toFixed(2) + ' s';
    return duration(v);
  }
  function duration(v) {
    if (!isNum(v)) return dash;
    const s = Math.floor(v / 1000);
    const d = Math.floor(s / 86400); const h = Math.floor(s % 86400 / 3600);
    const m = Math.floor(s % 3600 / 60); const sec = s % 60;
    if (d > 0) return `${d} d ${h} h`;
    if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min`;
    if (m > 0) return `${m} min ${String(sec).padStart(2, '0')} s`;
    return `${sec} s`;
  }
  const pad = (n, w) => String(n).padStart(w || 2, '0');
  function clock(t, millis) {
    const d = new Date(t);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` + (millis ? '.' + pad(d.getMilliseconds(), 3) : '');
  }
  function dateTime(t) {
    if (!isNum(t)) return dash;
    const d = new Date(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(t)}`;
  }
  function badge(state) { return `<span class="badge ${esc(state)}" data-field="state">${esc(state)}</span>`; }
  function pipelineLink(p) { return `#/batches/${p.id}`; }
  function batchLink(id, batch) { return `#/batches/${id}/streaming/batches/${batch}`; }

  // MARK: - Tables: rows kept by key and cells rewritten only when they change, so a button under the pointer
  // is not replaced by the next poll.

  function syncTable(tbody, rows, columns, emptyText) {
    if (!rows.length) {
      const html = `<tr class="none"><td colspan="${columns}" class="empty">${esc(emptyText)}</td></tr>`;
      if (tbody._html !== html) { tbody.innerHTML = html; tbody._html = html; }
      return;
    }
    if (tbody._html) { tbody.innerHTML = ''; tbody._html = null; }
    const existing = new Map();
    for (const tr of Array.from(tbody.rows)) existing.set(tr.dataset.key, tr);
    let previous = null;
    for (const row of rows) {
      let tr = existing.get(row.key);
      if (tr) existing.delete(row.key); else { tr = document.createElement('tr'); tr.dataset.key = row.key; }
      tr.className = row.cls || '';
      for (const [name, value] of Object.entries(row.attrs || {})) tr.setAttribute(name, value);
      while (tr.cells.length > row.cells.length) tr.deleteCell(-1);
      row.cells.forEach((cell, index) => {
        const td = tr.cells[index] || tr.insertCell(-1);
        if (td._html !== cell.html) { td.innerHTML = cell.html; td._html = cell.html; }
        const cls = cell.cls || '';
        if (td.className !== cls) td.className = cls;
        if (cell.field) td.dataset.field = cell.field;
        if (cell.value !== undefined) td.dataset.value = cell.value === null ? '' : String(cell.value);
      });
      const wanted = previous ? previous.nextSibling : tbody.firstChild;
      if (wanted !== tr) tbody.insertBefore(tr, wanted);
      previous = tr;
    }
    for (const tr of existing.values()) tr.remove();
  }

  function skeleton(kind, html) {
    if (view.dataset.kind === kind) return false;
    view.innerHTML = html;
    view.dataset.kind = kind;
    return true;
  }
  const $ = (id) => document.getElementById(id);
  function setHTML(el, html) { if (el && el._html !== html) { el.innerHTML = html; el._html = html; } }

  function setCrumbs(parts) {
    setHTML(crumbs, parts.map((p) => (p.href ? `<a href="${p.href}">${esc(p.text)}</a>` : esc(p.text)))
      .join('<span class="sep">/</span>'));
  }

  // MARK: - Stopping: a DELETE, after a second click on the same button (no browser dialog)

  function stopButton(p) {
    if (FINAL.has(p.state)) return '';
    if (ui.stopping.has(p.id)) return `<button class="stop" data-action="stop" data-id="${p.id}" disabled>Stopping…</button>`;
    if (ui.armed && ui.armed.id === p.id && ui.armed.until > Date.now()) {
      return `<button class="stop confirm" data-action="stop" data-id="${p.id}" title="Click again to stop">Confirm stop</button>`;
    }
    return `<button class="stop" data-action="stop" data-id="${p.id}" title="DELETE /batches/${p.id}: the batch in flight finishes and commits">Stop</button>`;
  }

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    if (button.dataset.action === 'page') {
      ui.page = Math.max(0, ui.page + Number(button.dataset.step));
      refreshNow();
      return;
    }
    if (button.dataset.action !== 'stop') return;
    const id = Number(button.dataset.id);
    if (!(ui.armed && ui.armed.id === id && ui.armed.until > Date.now())) {
      ui.armed = { id, until: Date.now() + 5000 };
      refreshNow();
      setTimeout(() => { if (ui.armed && ui.armed.id === id) { ui.armed = null; refreshNow(); } }, 5100);
      return;
    }
    ui.armed = null;
    ui.stopping.add(id);
    refreshNow();
    try {
      await api(`/batches/${id}`, { method: 'DELETE' });
    } catch (error) {
      alertInline(`Stopping pipeline ${id} failed: ${error.message}`);
    } finally {
      ui.stopping.delete(id);
      refreshNow();
    }
  });

  function alertInline(message) {
    const box = document.createElement('div');
    box.className = 'card';
    box.innerHTML = `<pre class="cause">${esc(message)}</pre>`;
    view.prepend(box);
  }

  function showMissing(error) {
    view.dataset.kind = 'missing';
    const what = route.kind === 'batch'
      ? `Batch ${route.batch} of pipeline ${route.id} is not among the batches the server keeps.`
      : `Pipeline ${route.id} is not known to this server (it was removed, or never submitted).`;
    setHTML(view, `<div class="card"><p class="empty">${esc(what)}<br><span class="muted">${esc(error.message)}</span><br><br>
      <a href="#/">All pipelines</a>${route.kind === 'batch' ? ` · <a href="${pipelineLink(route)}">Pipeline ${route.id}</a>` : ''}</p></div>`);
  }

  // MARK: - The list of pipelines

  async function showList(mine) {
    const overview = await api('/ui/api/pipelines');
    if (mine !== generation) return;
    setCrumbs([{ text: 'Pipelines' }]);
    skeleton('list', `
      <div class="titlebar"><h1>Pipelines <span class="sub" id="list-count"></span></h1></div>
      <div class="card"><div class="scroll"><table id="pipelines">
        <thead><tr><th class="n">ID</th><th>Name</th><th>State</th><th class="n">Uptime</th>
        <th class="n">Input rate <small>(rec/s)</small></th><th>Input rate, last 60 batches</th>
        <th class="n">Batches</th><th class="n">Records</th><th class="n">Last total delay</th>
        <th class="n">Restarts</th><th></th></tr></thead><tbody></tbody></table></div></div>`);
    const list = overview.pipelines || [];
    const running = list.filter((p) => !FINAL.has(p.state)).length;
    setHTML($('list-count'), `${list.length} submitted · ${running} running`);
    syncTable($('pipelines').tBodies[0], list.slice().reverse().map((p) => ({
      key: String(p.id),
      attrs: { 'data-pipeline-id': p.id },
      cells: [
        { html: `<a href="${pipelineLink(p)}">${p.id}</a>`, cls: 'n', field: 'id', value: p.id },
        { html: `<a href="${pipelineLink(p)}">${esc(p.name)}</a>`, cls: 'nowrap', field: 'name' },
        { html: badge(p.state) + (p.state === 'dead' && p.cause ? ` <span class="muted" title="${esc(p.cause)}">${esc(firstLine(p.cause))}</span>` : ''), field: 'state', value: p.state },
        { html: isNum(p.uptimeMilliseconds) ? duration(p.uptimeMilliseconds) : dash, cls: 'n', field: 'uptime', value: p.uptimeMilliseconds },
        { html: rate(p.inputRate), cls: 'n', field: 'inputRate', value: p.inputRate },
        { html: sparkline(p.recentInputRates || []), field: 'sparkline' },
        { html: count(p.batchesCompleted) + (p.batchesFailed ? ` <span class="badge failed">${p.batchesFailed} failed</span>` : ''), cls: 'n', field: 'batches', value: p.batchesCompleted },
        { html: count(p.records), cls: 'n', field: 'records', value: p.records },
        { html: ms(p.lastTotalDelayMilliseconds), cls: 'n', field: 'totalDelay', value: p.lastTotalDelayMilliseconds },
        { html: count(p.restarts), cls: 'n', field: 'restarts', value: p.restarts },
        { html: stopButton(p), field: 'actions' },
      ],
    })), 11, 'No pipelines yet. Submit one with POST /batches (or `sluice submit FILE`).');
  }

  /// The head of a cause or error for a table cell ("exited with status 2"); the whole text is its tooltip.
  function firstLine(text) {
    const line = String(text).split('\n')[0].split('; last log lines')[0];
    return line.length > 60 ? line.slice(0, 57) + '…' : line;
  }

  function sparkline(values) {
    const w = 140; const h = 26;
    if (values.length < 2) return `<span class="muted">${values.length ? rate(values[0]) : '—'}</span>`;
    const max = Math.max(...values, 1e-9);
    const step = w / (values.length - 1);
    const d = values.map((v, i) => `${i ? 'L' : 'M'}${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`).join('');
    return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" aria-label="input rate"><path d="${d}"/></svg>`;
  }

  // MARK: - One pipeline: Spark's Streaming tab

  const METRICS = [
    { key: 'inputRate', name: 'Input Rate', unit: 'records/s', format: rate, axis: (v) => compact(v) },
    { key: 'schedulingDelayMilliseconds', name: 'Scheduling Delay', unit: 'ms', format: ms, axis: axisMs },
    { key: 'processingMilliseconds', name: 'Processing Time', unit: 'ms', format: ms, axis: axisMs, interval: true },
    { key: 'totalDelayMilliseconds', name: 'Total Delay', unit: 'ms', format: ms, axis: axisMs, interval: true },
  ];

  async function showPipeline(mine) {
    const id = route.id;
    const [summary, statistics, batches, log] = await Promise.all([
      api(`/ui/api/pipelines/${id}`),
      api(`/batches/${id}/streaming/statistics`),
      api(`/batches/${id}/streaming/batches?size=${CHART_BATCHES}`),
      api(`/batches/${id}/log?size=${LOG_LINES}`),
    ]);
    if (mine !== generation) return;
    setCrumbs([{ text: 'Pipelines', href: '#/' }, { text: `${summary.id} · ${summary.name}` }]);
    skeleton('pipeline', `
      <div class="titlebar"><h1 id="p-title"></h1><span id="p-state"></span><span class="grow"></span><span id="p-actions"></span></div>
      <div class="card"><dl class="facts" id="p-facts"></dl><pre class="cause" id="p-cause" hidden></pre></div>
      <div class="card"><div class="card-head"><h2>Streaming statistics</h2><span class="hint" id="c-hint"></span></div>
        <div id="charts">${METRICS.map((m) => `<div class="chart-row" data-metric="${m.key}">
          <div class="chart-label"><div class="name">${m.name}</div><div class="avg" id="avg-${m.key}"></div>
          <div class="unit">average, ${m.unit}</div><div class="extra" id="extra-${m.key}"></div></div>
          <div class="chart-box" id="tl-${m.key}"></div><div class="chart-box" id="hist-${m.key}"></div></div>`).join('')}
        </div></div>
      <div class="card"><div class="card-head"><h2>Active batches</h2><span class="hint" id="active-hint"></span></div>
        <div class="scroll"><table id="active"><thead><tr><th class="n">Batch</th><th>Batch time</th>
        <th class="n">Scheduling delay</th><th>Source ranges</th><th>Status</th></tr></thead><tbody></tbody></table></div></div>
      <div class="card"><div class="card-head"><h2>Completed batches</h2><span class="hint" id="done-hint"></span>
        <span class="grow"></span><div class="pager" id="pager"></div></div>
        <div class="scroll"><table id="completed"><thead><tr><th class="n">Batch</th><th>Batch time</th><th class="n">Records</th>
        <th class="n">Input rate <small>(rec/s)</small></th><th class="n">Scheduling delay</th><th class="n">Processing time</th>
        <th class="n">Total delay</th><th class="n">Discarded</th><th class="n">Errors · retries</th><th>Status</th></tr></thead><tbody></tbody></table></div></div>
      <div class="card"><div class="card-head"><h2>Source partitions</h2><span class="hint">committed position and lag, after each batch</span></div>
        <div class="scroll"><table id="partitions"><thead><tr><th>Source</th><th class="n">Partition</th><th class="n">Position</th>
        <th class="n">Records read</th><th class="n">Last batch</th><th class="n">Available end</th><th class="n">Lag</th></tr></thead>
        <tbody></tbody></table></div></div>
      <div class="card"><div class="card-head"><h2>Log</h2><span class="hint" id="log-hint"></span></div><div class="log" id="log"></div></div>`);

    setHTML($('p-title'), `${esc(summary.name)}<span class="sub">pipeline ${summary.id}</span>`);
    setHTML($('p-state'), badge(summary.state));
    $('p-state').dataset.state = summary.state;
    setHTML($('p-actions'), stopButton(summary));
    setHTML($('p-facts'), facts(summary, statistics));
    const cause = $('p-cause');
    const showCause = summary.cause && (summary.state === 'dead' || summary.state === 'starting');
    cause.hidden = !showCause;
    setHTML(cause, showCause ? esc((summary.state === 'starting' ? 'Last failure, restarting: ' : 'Cause: ') + summary.cause) : '');

    const list = (batches.batches || []).slice().sort((a, b) => a.id - b.id);
    const completed = list.filter((b) => b.status === 'completed');
    const failed = list.filter((b) => b.status === 'failed');
    const interval = statistics.batchIntervalMilliseconds;
    setHTML($('c-hint'), completed.length
      ? `the last ${completed.length} completed batches · batch interval ${isNum(interval) ? ms(interval) : '—'}${failed.length ? ` · ${failed.length} failed (red marks)` : ''}`
      : 'no completed batch yet');
    for (const metric of METRICS) drawMetric(metric, completed, failed, interval);

    const active = list.filter((b) => b.status === 'processing').reverse();
    setHTML($('active-hint'), active.length ? `${active.length} processing` : '');
    syncTable($('active').tBodies[0], active.map((b) => ({
      key: String(b.id), attrs: { 'data-batch-id': b.id },
      cells: [
        { html: `<a href="${batchLink(id, b.id)}">${b.id}</a>`, cls: 'n', field: 'id', value: b.id },
        { html: `<span title="${esc(dateTime(b.time))}">${clock(b.time, true)}</span>`, field: 'time', value: b.time },
        { html: ms(b.schedulingDelayMilliseconds), cls: 'n', field: 'schedulingDelayMilliseconds', value: b.schedulingDelayMilliseconds },
        { html: ranges(b.ranges), field: 'ranges' },
        // A pipeline that ended with a batch started and never finished: the next start replays it from the checkpoint.
        { html: (FINAL.has(summary.state) ? '<span class="badge failed" title="the pipeline ended during this batch; a restart replays it">unfinished</span>' : badge(b.status))
          + (b.isReplay ? ' <span class="muted">replay</span>' : ''), field: 'status', value: b.status },
      ],
    })), 5, summary.state === 'running' ? 'No batch is processing at this moment.' : 'No batch is processing.');

    const done = list.filter((b) => b.status !== 'processing').reverse();
    const pages = Math.max(1, Math.ceil(done.length / PAGE_ROWS));
    ui.page = Math.min(ui.page, pages - 1);
    const shown = done.slice(ui.page * PAGE_ROWS, (ui.page + 1) * PAGE_ROWS);
    setHTML($('done-hint'), `${count(statistics.batchesCompleted)} completed${statistics.batchesFailed ? `, ${statistics.batchesFailed} failed` : ''} since the server started watching`);
    setHTML($('pager'), done.length > PAGE_ROWS
      ? `<button data-action="page" data-step="-1" ${ui.page === 0 ? 'disabled' : ''}>‹ Newer</button>
         <span>${ui.page * PAGE_ROWS + 1}–${ui.page * PAGE_ROWS + shown.length} of ${done.length}</span>
         <button data-action="page" data-step="1" ${ui.page >= pages - 1 ? 'disabled' : ''}>Older ›</button>` : '');
    syncTable($('completed').tBodies[0], shown.map((b) => ({
      key: String(b.id), cls: b.status === 'failed' ? 'failed' : '', attrs: { 'data-batch-id': b.id, 'data-status': b.status },
      cells: [
        { html: `<a href="${batchLink(id, b.id)}">${b.id}</a>`, cls: 'n', field: 'id', value: b.id },
        { html: `<span title="${esc(dateTime(b.time))}">${clock(b.time, true)}</span>`, field: 'time', value: b.time },
        { html: count(b.records), cls: 'n', field: 'records', value: b.records },
        { html: rate(b.inputRate), cls: 'n', field: 'inputRate', value: b.inputRate },
        { html: ms(b.schedulingDelayMilliseconds), cls: 'n', field: 'schedulingDelayMilliseconds', value: b.schedulingDelayMilliseconds },
        { html: ms(b.processingMilliseconds), cls: 'n', field: 'processingMilliseconds', value: b.processingMilliseconds },
        { html: ms(b.totalDelayMilliseconds), cls: 'n', field: 'totalDelayMilliseconds', value: b.totalDelayMilliseconds },
        { html: b.discarded ? count(b.discarded) : dash, cls: 'n', field: 'discarded', value: b.discarded },
        { html: incidents(b), cls: 'n', field: 'incidents' },
        { html: badge(b.status) + (b.isReplay ? ' <span class="muted">replay</span>' : '') + (b.error ? ` <span class="muted" title="${esc(b.error)}">${esc(firstLine(b.error))}</span>` : ''), field: 'status', value: b.status },
      ],
    })), 10, FINAL.has(summary.state) ? 'This pipeline ended before completing a batch the server kept.' : 'No batch has completed yet.');

    const partitions = statistics.partitions || [];
    const maxLag = Math.max(1, ...partitions.map((p) => p.lag || 0));
    syncTable($('partitions').tBodies[0], partitions.map((p) => ({
      key: `${p.source}\u0000${p.partition}`,
      cells: [
        { html: esc(p.source), field: 'source' },
        { html: String(p.partition), cls: 'n', field: 'partition', value: p.partition },
        { html: count(p.position), cls: 'n', field: 'position', value: p.position },
        { html: count(p.records), cls: 'n', field: 'records', value: p.records },
        { html: `<a href="${batchLink(id, p.lastBatch)}">${p.lastBatch}</a>`, cls: 'n', field: 'lastBatch', value: p.lastBatch },
        { html: count(p.availableEnd), cls: 'n', field: 'availableEnd', value: p.availableEnd },
        { html: isNum(p.lag) ? `<span class="bar"></span>${count(p.lag)}` : dash, cls: 'n', field: 'lag', value: p.lag },
      ],
    })), 7, 'No source position reported yet (the first completed batch reports them).');
    // Lag bars: widths set through the CSSOM (the policy forbids inline style attributes).
    for (const tr of $('partitions').tBodies[0].rows) {
      const bar = tr.querySelector('.bar');
      const lag = Number(tr.cells[6] && tr.cells[6].dataset.value);
      if (bar) { bar.style.width = `${Math.round(60 * (lag || 0) / maxLag)}px`; }
    }

    showLog(log);
  }

  function facts(p, s) {
    const items = [
      ['State', badge(p.state)],
      [FINAL.has(p.state) ? 'Last started' : 'Running since', isNum(p.startTime) ? dateTime(p.startTime) : dash],
      ['Uptime', isNum(p.uptimeMilliseconds) ? duration(p.uptimeMilliseconds) : dash],
      ['Batch interval', isNum(s.batchIntervalMilliseconds) ? ms(s.batchIntervalMilliseconds) : dash],
      ['Batches completed', count(s.batchesCompleted) + (s.batchesFailed ? ` <small>${s.batchesFailed} failed</small>` : '')],
      ['Records processed', count(s.records)],
      ['Avg input rate', isNum(s.averages && s.averages.inputRate) ? `${rate(s.averages.inputRate)} <small>rec/s</small>` : dash],
      ['Restarts', count(p.restarts)],
      ['Process', isNum(p.pid) ? `pid ${p.pid}` : dash],
      ['Submitted', dateTime(p.submitted)],
    ];
    return items.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join('');
  }

  /// Plugin calls that returned an error and sink retries in a batch (a completed batch may have some), as "2 · 1".
  function incidents(b) {
    const errors = (b.errors || []).reduce((a, e) => a + e.count, 0);
    const retries = Object.values(b.sinkRetries || {}).reduce((a, n) => a + n, 0);
    if (!errors && !retries) return dash;
    const detail = (b.errors || []).map((e) => `${e.component} ${e.call}: ${e.count} error(s)`)
      .concat(Object.entries(b.sinkRetries || {}).map(([sink, n]) => `${sink}: ${n} retr${n === 1 ? 'y' : 'ies'}`)).join('\n');
    return `<span class="${errors ? 'warn' : ''}" title="${esc(detail)}">${count(errors)} · ${count(retries)}</span>`;
  }

  function ranges(list) {
    if (!list || !list.length) return dash;
    return list.map((r) => `<span class="mono">${esc(r.source)}/${r.partition}: ${count(r.from)}–${count(r.to)}</span>`).join('<br>');
  }

  // MARK: - Charts: a timeline and, beside it on the same y scale, a histogram (Spark's layout)

  /// The top of a y axis with four gridlines at round values: four times a step of 1, 2, 2.5 or 5 × 10^n.
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const quarter = v / 4;
    const p = Math.pow(10, Math.floor(Math.log10(quarter)));
    for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= quarter * 1.0001) return 4 * f * p;
    return 40 * p;
  }
  function compact(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + 'M';
    if (v >= 1e3) return (v / 1e3).toFixed(v >= 1e4 ? 0 : 1) + 'k';
    return String(Math.round(v * 10) / 10);
  }
  function axisMs(v) {
    if (v >= 1000) return (Math.round(v / 10) / 100) + ' s';
    return (Math.round(v * 100) / 100) + ' ms';
  }

  const H = 170;
  const M = { l: 56, r: 14, t: 12, b: 24 };

  function drawMetric(metric, completed, failed, interval) {
    const points = completed.filter((b) => isNum(b[metric.key])).map((b) => ({ id: b.id, t: b.time, v: b[metric.key] }));
    const avg = points.length ? points.reduce((a, p) => a + p.v, 0) / points.length : null;
    const reference = metric.interval && isNum(interval) ? interval : null;
    const max = points.length ? Math.max(...points.map((p) => p.v)) : 0;
    const yMax = niceCeil(Math.max(max, reference || 0, metric.key === 'inputRate' ? 1 : 0.2));
    setHTML($('avg-' + metric.key), avg === null ? dash : metric.format(avg));
    setHTML($('extra-' + metric.key), points.length
      ? `max ${metric.format(max)} · ${points.length} batch${points.length === 1 ? '' : 'es'}` : '');
    const tl = $('tl-' + metric.key);
    const hist = $('hist-' + metric.key);
    const key = [points.length, points.length && points[points.length - 1].id, failed.length, tl.clientWidth, hist.clientWidth, reference].join('/');
    if (tl._key === key) return;
    tl._key = key;
    tl.innerHTML = timeline(metric, points, failed, avg, yMax, reference, Math.max(300, tl.clientWidth - 8));
    hist.innerHTML = histogram(metric, points, yMax, Math.max(160, hist.clientWidth - 8));
    // Clicking a point opens its batch, as in Spark.
    for (const dot of tl.querySelectorAll('circle.pt')) {
      dot.addEventListener('click', () => { location.hash = batchLink(route.id, dot.dataset.batchId); });
    }
  }

  function timeline(metric, points, failed, avg, yMax, reference, W) {
    const y = (v) => M.t + (1 - v / yMax) * (H - M.t - M.b);
    const head = `<svg data-chart="${metric.key}" data-points="${points.length}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${metric.name} over time">`;
    let s = '';
    for (let i = 0; i <= 4; i++) {
      const v = yMax * i / 4;
      s += `<line class="grid" x1="${M.l}" x2="${W - M.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/>`;
      s += `<text x="${M.l - 6}" y="${(y(v) + 3.5).toFixed(1)}" text-anchor="end">${esc(metric.axis(v))}</text>`;
    }
    s += `<line class="axis" x1="${M.l}" x2="${W - M.r}" y1="${H - M.b}" y2="${H - M.b}"/>`;
    if (!points.length) {
      return `${head}${s}<text class="nodata" x="${(M.l + W - M.r) / 2}" y="${H / 2}" text-anchor="middle">No completed batches yet</text></svg>`;
    }
    const t0 = Math.min(points[0].t, ...failed.map((b) => b.time));
    const t1 = Math.max(points[points.length - 1].t, ...failed.map((b) => b.time));
    const span = Math.max(1, t1 - t0);
    const x = (t) => (t1 === t0 ? (M.l + W - M.r) / 2 : M.l + (t - t0) / span * (W - M.l - M.r));
    for (let i = 0; i <= 4; i++) {
      const t = t0 + span * i / 4;
      if (t1 === t0 && i !== 2) continue;
      s += `<text x="${x(t).toFixed(1)}" y="${H - 7}" text-anchor="${i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}">${clock(t)}</text>`;
    }
    const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('');
    const base = (H - M.b).toFixed(1);
    s += `<path class="area" d="${line}L${x(points[points.length - 1].t).toFixed(1)},${base}L${x(points[0].t).toFixed(1)},${base}Z"/>`;
    s += `<path class="line" d="${line}"/>`;
    if (reference !== null) {
      s += `<line class="refline" x1="${M.l}" x2="${W - M.r}" y1="${y(reference).toFixed(1)}" y2="${y(reference).toFixed(1)}"/>`;
      s += `<text x="${W - M.r - 2}" y="${(y(reference) - 4).toFixed(1)}" text-anchor="end">batch interval ${esc(stripTags(ms(reference)))}</text>`;
    }
    if (avg !== null) {
      s += `<line class="avgline" x1="${M.l}" x2="${W - M.r}" y1="${y(avg).toFixed(1)}" y2="${y(avg).toFixed(1)}"/>`;
      s += `<text class="avglabel" x="${M.l + 4}" y="${(y(avg) - 4).toFixed(1)}">avg ${esc(stripTags(metric.format(avg)))}</text>`;
    }
    const r = points.length > 150 ? 1.8 : 2.6;
    for (const p of points) {
      s += `<circle class="pt" cx="${x(p.t).toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="${r}" data-batch-id="${p.id}" data-value="${p.v}">`
        + `<title>batch ${p.id} · ${clock(p.t, true)} · ${esc(stripTags(metric.format(p.v)))}</title></circle>`;
    }
    for (const b of failed) {
      s += `<rect class="fail" x="${(x(b.time) - 2).toFixed(1)}" y="${H - M.b - 6}" width="4" height="6" data-batch-id="${b.id}">`
        + `<title>batch ${b.id} failed${b.error ? ': ' + esc(b.error) : ''}</title></rect>`;
    }
    return head + s + '</svg>';
  }

  function histogram(metric, points, yMax, W) {
    const y = (v) => M.t + (1 - v / yMax) * (H - M.t - M.b);
    const bins = 10;
    const counts = new Array(bins).fill(0);
    for (const p of points) counts[Math.min(bins - 1, Math.floor(p.v / yMax * bins))] += 1;
    const most = Math.max(1, ...counts);
    const left = 6; const right = 34;
    let s = `<svg data-chart="${metric.key}-histogram" data-points="${points.length}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${metric.name} histogram">`;
    s += `<line class="axis" x1="${left}" x2="${left}" y1="${M.t}" y2="${H - M.b}"/>`;
    counts.forEach((n, i) => {
      const top = y(yMax * (i + 1) / bins); const bottom = y(yMax * i / bins);
      const w = n / most * (W - left - right);
      if (n > 0) {
        s += `<rect class="hbar" x="${left}" y="${(top + 0.5).toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(1, bottom - top - 1).toFixed(1)}">`
          + `<title>${n} batch${n === 1 ? '' : 'es'} between ${esc(metric.axis(yMax * i / bins))} and ${esc(metric.axis(yMax * (i + 1) / bins))}</title></rect>`;
        s += `<text x="${(left + w + 4).toFixed(1)}" y="${((top + bottom) / 2 + 3.5).toFixed(1)}">${n}</text>`;
      }
    });
    s += `<text x="${left}" y="${H - 7}">batches per bucket</text>`;
    return s + '</svg>';
  }

  function stripTags(html) { return String(html).replace(/<[^>]*>/g, ''); }

  // MARK: - The log tail: JSON log records (`--log-format json`) as columns, anything else as it came

  function showLog(log) {
    const lines = log.log || [];
    setHTML($('log-hint'), `last ${lines.length} of ${count(log.total)} lines kept · GET /batches/${route.id}/log`);
    const box = $('log');
    const key = `${log.total}/${lines.length}/${lines[lines.length - 1] || ''}`;
    if (box._key === key) return;
    box._key = key;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    box.innerHTML = lines.length ? lines.map(logLine).join('') : '<div class="ln muted">No log lines yet.</div>';
    if (atBottom || !box._scrolled) { box.scrollTop = box.scrollHeight; box._scrolled = true; }
  }

  function logLine(line) {
    if (line.startsWith('{')) {
      try {
        const r = JSON.parse(line);
        if (r && typeof r.message === 'string') {
          const skip = new Set(['timestamp', 'level', 'pipeline', 'component', 'message']);
          const meta = Object.keys(r).filter((k) => !skip.has(k)).map((k) => `${k}=${typeof r[k] === 'string' ? r[k] : JSON.stringify(r[k])}`);
          const ts = typeof r.timestamp === 'string' ? r.timestamp.replace(/^\d{4}-\d\d-\d\dT/, '').replace(/Z$/, '') : '';
          return `<div class="ln"><span class="ts">${esc(ts)}</span><span class="lv ${esc(r.level || '')}">${esc(r.level || '')}</span>`
            + `<span class="cp">${esc(r.component || '')}</span>${esc(r.message)}${meta.length ? ` <span class="md">${esc(meta.join(' '))}</span>` : ''}</div>`;
        }
      } catch (_) { /* not JSON after all: shown as it is */ }
    }
    const cls = /^sluice serve: .*(SIGKILL|over the limit)|error/i.test(line) ? 'ln err' : 'ln';
    return `<div class="${cls}">${esc(line)}</div>`;
  }

  // MARK: - One batch: its figures, its stages and its source ranges

  async function showBatch(mine) {
    const { id, batch } = route;
    const [summary, b] = await Promise.all([api(`/ui/api/pipelines/${id}`), api(`/ui/api/pipelines/${id}/batches/${batch}`)]);
    if (mine !== generation) return;
    setCrumbs([{ text: 'Pipelines', href: '#/' }, { text: `${summary.id} · ${summary.name}`, href: pipelineLink(summary) }, { text: `batch ${b.id}` }]);
    skeleton('batch', `
      <div class="titlebar"><h1 id="b-title"></h1><span id="b-state"></span><span class="grow"></span><span id="b-nav"></span></div>
      <div class="card"><dl class="facts" id="b-facts"></dl><pre class="cause" id="b-error" hidden></pre></div>
      <div class="card"><div class="card-head"><h2>Stages and sinks</h2><span class="hint">records in and out, and the time in each one's own calls</span></div>
        <div class="scroll"><table id="stages"><thead><tr><th>Stage</th><th class="n">Records in</th><th class="n">Records out</th>
        <th class="n">Time</th><th>Share of the stages' time</th></tr></thead><tbody></tbody></table></div></div>
      <div class="card"><div class="card-head"><h2>Plugin errors and sink retries</h2><span class="hint">calls that returned an error, and sink writes retried, in this batch</span></div>
        <div class="scroll"><table id="incidents"><thead><tr><th>Component</th><th>Call</th><th class="n">Count</th></tr></thead>
        <tbody></tbody></table></div></div>
      <div class="card"><div class="card-head"><h2>Source ranges</h2><span class="hint">what the batch read: [from, to) per partition</span></div>
        <div class="scroll"><table id="ranges"><thead><tr><th>Source</th><th class="n">Partition</th><th class="n">From</th>
        <th class="n">To</th><th class="n">Records</th></tr></thead><tbody></tbody></table></div></div>`);
    setHTML($('b-title'), `Batch ${b.id}<span class="sub">${esc(dateTime(b.time))}</span>`);
    setHTML($('b-state'), badge(b.status) + (b.isReplay ? ' <span class="badge processing">replay</span>' : ''));
    setHTML($('b-nav'), `<a href="${batchLink(id, b.id - 1)}">‹ batch ${b.id - 1}</a> · <a href="${batchLink(id, b.id + 1)}">batch ${b.id + 1} ›</a>`);
    setHTML($('b-facts'), [
      ['Batch time', `${clock(b.time, true)}`], ['Records', count(b.records)], ['Input rate', isNum(b.inputRate) ? `${rate(b.inputRate)} <small>rec/s</small>` : dash],
      ['Scheduling delay', ms(b.schedulingDelayMilliseconds)], ['Processing time', ms(b.processingMilliseconds)],
      ['Total delay', ms(b.totalDelayMilliseconds)], ['Discarded', b.discarded ? count(b.discarded) : dash],
    ].map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join(''));
    const error = $('b-error');
    error.hidden = !b.error;
    setHTML(error, b.error ? esc('Error: ' + b.error) : '');
    const stages = b.stages || [];
    const total = stages.reduce((a, st) => a + (st.milliseconds || 0), 0) || 1;
    syncTable($('stages').tBodies[0], stages.map((st) => ({
      key: st.stage,
      cells: [
        { html: `<span class="mono">${esc(st.stage)}</span>`, field: 'stage', value: st.stage },
        { html: count(st.recordsIn), cls: 'n', field: 'recordsIn', value: st.recordsIn },
        { html: count(st.recordsOut), cls: 'n', field: 'recordsOut', value: st.recordsOut },
        { html: ms(st.milliseconds), cls: 'n', field: 'milliseconds', value: st.milliseconds },
        { html: `<span class="bar"></span><span class="muted">${Math.round(100 * st.milliseconds / total)} %</span>`, field: 'share', value: st.milliseconds / total },
      ],
    })), 5, b.status === 'processing' ? 'The batch is still processing.' : 'The batch reported no stage figures.');
    for (const tr of $('stages').tBodies[0].rows) {
      const bar = tr.querySelector('.bar');
      if (bar) bar.style.width = `${Math.round(160 * Number(tr.cells[4].dataset.value || 0))}px`;
    }
    const rows = (b.errors || []).map((e) => ({ component: e.component, call: `${e.call} (error)`, count: e.count }))
      .concat(Object.entries(b.sinkRetries || {}).map(([sink, n]) => ({ component: sink, call: 'write retried', count: n })));
    syncTable($('incidents').tBodies[0], rows.map((r) => ({
      key: `${r.component}\u0000${r.call}`,
      cells: [
        { html: `<span class="mono">${esc(r.component)}</span>`, field: 'component' },
        { html: esc(r.call), field: 'call' },
        { html: count(r.count), cls: 'n', field: 'count', value: r.count },
      ],
    })), 3, 'None: every call succeeded at the first attempt.');
    syncTable($('ranges').tBodies[0], (b.ranges || []).map((r) => ({
      key: `${r.source}\u0000${r.partition}`,
      cells: [
        { html: esc(r.source), field: 'source' },
        { html: String(r.partition), cls: 'n', field: 'partition', value: r.partition },
        { html: count(r.from), cls: 'n', field: 'from', value: r.from },
        { html: count(r.to), cls: 'n', field: 'to', value: r.to },
        { html: count(r.to - r.from), cls: 'n', field: 'records', value: r.to - r.from },
      ],
    })), 5, 'The batch read no source range.');
  }

  window.addEventListener('hashchange', navigate);
  window.addEventListener('resize', () => { for (const el of document.querySelectorAll('.chart-box')) el._key = null; });
  tick();
})();
