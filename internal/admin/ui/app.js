// The holdfast dashboard. It reads the admin API of the origin it came
// from every two seconds (/api/v1/pools, /api/v1/stats, /api/v1/failures)
// and drains and enables servers through it.
//
// Every string from the API reaches the page as text (Node.append with a
// string, textContent, attribute values), never as markup: request paths
// and IDs come from clients. The page's Content-Security-Policy forbids
// inline script as a second line of defence.
//
// The admin token is asked for when a call needs it, kept in this tab's
// sessionStorage only, and sent as "Authorization: Bearer".
'use strict';

(() => {
  const POLL_MS = 2000;
  const WINDOW_S = 300; // the window of the totals: the last 5 minutes
  const TOKEN_KEY = 'holdfast.admin.token';
  const SVG = 'http://www.w3.org/2000/svg';
  const STATES = new Set(['up', 'slow_start', 'down', 'ejected', 'draining']);

  const $ = (id) => document.getElementById(id);

  // el returns a new element with attributes and children; a string child
  // becomes a text node. attrs: class, dataset (an object), on<event>
  // (a listener), anything else an attribute.
  function el(tag, attrs, ...children) {
    return build(document.createElement(tag), attrs, children);
  }

  function svg(tag, attrs, ...children) {
    return build(document.createElementNS(SVG, tag), attrs, children);
  }

  function build(e, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.setAttribute('class', v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c !== undefined && c !== null && c !== false) e.append(c);
    }
    return e;
  }

  // reconcile makes parent's children exactly nodes, in order, moving only
  // the nodes that are out of place so that focus and expanded rows stay.
  function reconcile(parent, nodes) {
    let cursor = parent.firstChild;
    for (const n of nodes) {
      if (n === cursor) {
        cursor = cursor.nextSibling;
        continue;
      }
      parent.insertBefore(n, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }

  // ---- time and numbers

  // skew is the server's clock minus ours, in ms, when the two differ by
  // more than the Date header's one-second precision: "12s ago" is
  // measured on the server's clock.
  let skew = 0;

  function noteClock(date) {
    const t = Date.parse(date || '');
    if (Number.isNaN(t)) return;
    const d = t - Date.now();
    skew = Math.abs(d) > 2000 ? d : 0;
  }

  const now = () => Date.now() + skew;

  function span(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m < 10 && s % 60 ? `${m}m ${s % 60}s` : m + 'm';
    const h = Math.floor(m / 60);
    if (h < 24) return m % 60 ? `${h}h ${m % 60}m` : h + 'h';
    const d = Math.floor(h / 24);
    return h % 24 ? `${d}d ${h % 24}h` : d + 'd';
  }

  function ago(iso) {
    const t = Date.parse(iso || '');
    if (Number.isNaN(t)) return '';
    return span((now() - t) / 1000) + ' ago';
  }

  function localTime(iso) {
    const t = Date.parse(iso || '');
    return Number.isNaN(t) ? '' : new Date(t).toLocaleString();
  }

  function millis(v) {
    if (typeof v !== 'number') return '–';
    if (v < 1) return v.toFixed(2) + ' ms';
    if (v < 10) return v.toFixed(1) + ' ms';
    if (v < 1000) return Math.round(v) + ' ms';
    if (v < 60000) return (v / 1000).toFixed(1) + ' s';
    return span(v / 1000);
  }

  function rate(v) {
    if (v === 0) return '0';
    return v < 10 ? v.toFixed(1) : String(Math.round(v));
  }

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  // ---- the token

  const token = {
    get() {
      try {
        return sessionStorage.getItem(TOKEN_KEY) || '';
      } catch (e) {
        return '';
      }
    },
    set(v) {
      try {
        sessionStorage.setItem(TOKEN_KEY, v);
      } catch (e) {
        // Storage refused (a private window): the token lasts until the
        // page is left, in the prompt's answer only.
      }
      showTokenButtons();
    },
    clear() {
      try {
        sessionStorage.removeItem(TOKEN_KEY);
      } catch (e) {
        // Nothing was stored.
      }
      showTokenButtons();
    },
  };

  function showTokenButtons() {
    const has = token.get() !== '';
    $('token-forget').hidden = !has;
    $('token-set').textContent = has ? 'Change token' : 'Enter token';
  }

  // askToken opens the token dialog with a reason and resolves to the
  // token entered, or null when the user cancels. While the dialog is open,
  // every caller gets the same answer.
  let answerToken = null;
  let asking = null;

  function askToken(reason) {
    $('token-reason').textContent = reason;
    if (asking) return asking;
    asking = new Promise((resolve) => {
      answerToken = (v) => {
        answerToken = null;
        asking = null;
        const dlg = $('token-dialog');
        if (dlg.open) dlg.close();
        if (v) token.set(v);
        resolve(v || null);
      };
    });
    $('token-input').value = '';
    $('token-dialog').showModal();
    $('token-input').focus();
    return asking;
  }

  function wireTokenDialog() {
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('token-input').value.trim();
      if (v && answerToken) answerToken(v);
    });
    $('token-cancel').addEventListener('click', () => answerToken && answerToken(null));
    $('token-dialog').addEventListener('cancel', (ev) => {
      ev.preventDefault();
      if (answerToken) answerToken(null);
    });
    $('token-set').addEventListener('click', async () => {
      readTokenDeclined = false;
      if (await askToken('Enter the admin token for this tab.')) refresh();
    });
    $('token-forget').addEventListener('click', () => {
      token.clear();
      notice('The token is forgotten.');
    });
    showTokenButtons();
  }

  // ---- the API

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  // api calls the admin API and returns the decoded body, or throws an
  // ApiError carrying the problem's detail.
  async function api(path, method) {
    const headers = { Accept: 'application/json' };
    const t = token.get();
    if (t) headers.Authorization = 'Bearer ' + t;
    let resp;
    try {
      resp = await fetch(path, { method: method || 'GET', headers, cache: 'no-store', redirect: 'error' });
    } catch (e) {
      throw new ApiError(0, 'cannot reach the admin API: is holdfast running?');
    }
    noteClock(resp.headers.get('Date'));
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) {
      const detail = body && typeof body.detail === 'string' ? body.detail : `${resp.status} ${resp.statusText}`;
      throw new ApiError(resp.status, detail);
    }
    return body;
  }

  const enc = encodeURIComponent;

  function notice(text, isError) {
    const n = $('notice');
    n.textContent = text;
    n.classList.toggle('error', !!isError);
    n.hidden = false;
  }

  // ---- polling

  // readTokenDeclined is set when the user cancelled the prompt that a
  // refused read opened: the page asks again only when told to.
  let readTokenDeclined = false;
  let timer = 0;
  let polling = false;
  let again = false;

  function refresh() {
    if (polling) {
      again = true;
      return;
    }
    clearTimeout(timer);
    polling = true;
    poll().finally(() => {
      polling = false;
      if (again) {
        again = false;
        refresh();
        return;
      }
      timer = setTimeout(refresh, POLL_MS);
    });
  }

  async function poll() {
    const [pools, stats, failures] = await Promise.allSettled([
      api('/api/v1/pools'),
      api('/api/v1/stats'),
      api('/api/v1/failures'),
    ]);
    const errors = [pools, stats, failures].filter((r) => r.status === 'rejected').map((r) => r.reason);
    const refused = errors.find((e) => e instanceof ApiError && (e.status === 401 || e.status === 403));
    const unreachable = errors.find((e) => e instanceof ApiError && e.status === 0);
    const readError = $('read-error');
    if (refused || unreachable) {
      readError.textContent = refused
        ? 'This admin listener needs the token to read: ' + refused.message
        : unreachable.message;
      readError.hidden = false;
    } else {
      readError.hidden = true;
    }
    if (refused && refused.status === 401 && !readTokenDeclined) {
      token.clear();
      askToken('This admin listener needs the token to show anything: ' + refused.message).then((v) => {
        if (v) refresh();
        else readTokenDeclined = true;
      });
    }

    if (pools.status === 'fulfilled') renderPools((pools.value && pools.value.pools) || []);
    if (stats.status === 'fulfilled') {
      $('stats-note').hidden = true;
      renderStats(stats.value || {});
    } else {
      showNote('stats-note', stats.reason);
    }
    if (failures.status === 'fulfilled') {
      $('failures-note').hidden = true;
      renderFailures((failures.value && failures.value.failures) || []);
    } else {
      showNote('failures-note', failures.reason);
    }
    if (!errors.length) {
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString() + ', every 2 s';
    } else {
      $('updated').textContent = 'last update failed at ' + new Date().toLocaleTimeString() + '; retrying';
    }
  }

  // showNote says why a section has no data; a refused or failed call is
  // said once, at the top of the page.
  function showNote(id, err) {
    const n = $(id);
    if (err instanceof ApiError && [0, 401, 403].includes(err.status)) {
      n.hidden = true;
      return;
    }
    n.textContent = err instanceof ApiError && err.status === 404 ? 'Not available: ' + err.message + '.' : String(err.message || err);
    n.hidden = false;
  }

  // ---- pools and servers

  const poolViews = new Map(); // pool name -> view

  function renderPools(pools) {
    const box = $('pools');
    if (!pools.length) {
      reconcile(box, [el('p', { class: 'muted' }, 'No pool is configured.')]);
      poolViews.clear();
      return;
    }
    const seen = new Set();
    const sections = pools.map((p) => {
      seen.add(p.name);
      let v = poolViews.get(p.name);
      if (!v) {
        v = newPoolView(p.name);
        poolViews.set(p.name, v);
      }
      updatePoolView(v, p);
      return v.section;
    });
    for (const name of poolViews.keys()) if (!seen.has(name)) poolViews.delete(name);
    reconcile(box, sections);
  }

  function newPoolView(name) {
    const title = el('h3', null, 'pool ', el('span', { class: 'pool-name' }, name));
    const summary = el('p', { class: 'pool-summary muted' });
    const tbody = el('tbody');
    const table = el('table', { class: 'servers' },
      el('caption', { class: 'visually-hidden' }, `Servers of pool ${name}`),
      el('thead', null, el('tr', null,
        ...['#', 'Server', 'State', 'Weight', 'In flight', 'Last failure', 'Active checks', 'Passive', 'Action']
          .map((h) => el('th', { scope: 'col' }, h)))),
      tbody);
    const section = el('section', { class: 'pool', dataset: { pool: name } },
      title, summary, el('div', { class: 'table-wrap' }, table));
    return { section, summary, tbody, rows: new Map() };
  }

  function updatePoolView(v, p) {
    const n = (p.servers || []).length;
    let s = `${p.balance} · ${p.available} of ${plural(n, 'server', 'servers')} available`;
    if (p.discover) s += ` · discovered from ${p.discover}`;
    v.summary.textContent = s;
    v.summary.classList.toggle('bad', p.available === 0);
    const seen = new Set();
    const rows = (p.servers || []).map((srv) => {
      seen.add(srv.url);
      let r = v.rows.get(srv.url);
      if (!r) {
        r = newServerRow(p.name, srv.url);
        v.rows.set(srv.url, r);
      }
      updateServerRow(r, srv);
      return r.tr;
    });
    for (const url of v.rows.keys()) if (!seen.has(url)) v.rows.delete(url);
    reconcile(v.tbody, rows);
  }

  function newServerRow(pool, url) {
    const r = {};
    r.index = el('td', { class: 'index' });
    r.url = el('span', { class: 'url' }, url);
    r.addresses = el('div', { class: 'addresses muted' });
    r.state = el('span', { class: 'state badge' });
    r.stateNote = el('span', { class: 'state-note muted' });
    r.weight = el('td', { class: 'weight num' });
    r.inFlight = el('td', { class: 'in-flight num' });
    r.failure = el('td', { class: 'last-failure' });
    r.checks = el('td', { class: 'checks' });
    r.passive = el('td', { class: 'passive' });
    r.button = el('button', { type: 'button' });
    r.button.addEventListener('click', () => steer(pool, url, r.button.dataset.action === 'drain', r.button));
    r.tr = el('tr', { class: 'server', dataset: { server: url, pool } },
      r.index,
      el('th', { scope: 'row', class: 'server-cell' }, r.url, r.addresses),
      el('td', { class: 'state-cell' }, r.state, ' ', r.stateNote),
      r.weight, r.inFlight, r.failure, r.checks, r.passive,
      el('td', { class: 'action' }, r.button));
    return r;
  }

  function updateServerRow(r, s) {
    r.tr.dataset.index = String(s.index);
    r.tr.dataset.state = s.state;
    r.index.textContent = String(s.index);
    if (s.backup) r.index.append(el('span', { class: 'tag' }, 'backup'));

    const addrs = (s.addresses || []).join(', ');
    const host = (() => {
      try {
        return new URL(s.url).hostname;
      } catch (e) {
        return '';
      }
    })();
    const parts = [];
    if (addrs && addrs !== host && addrs !== host.replace(/^\[|\]$/g, '')) parts.push(addrs);
    if (s.dns && s.dns.error) parts.push(`DNS ${s.dns.error.cause} ${ago(s.dns.error.at)}`);
    r.addresses.textContent = parts.join(' · ');
    r.addresses.hidden = parts.length === 0;

    const state = STATES.has(s.state) ? s.state : 'unknown';
    r.state.textContent = s.state;
    r.state.setAttribute('class', 'state badge state-' + state);
    let note = '';
    if (s.state === 'ejected' && s.passive && s.passive.ejected_until) {
      const left = (Date.parse(s.passive.ejected_until) - now()) / 1000;
      if (left > 0) note = 'for ' + span(left);
    }
    if (s.state === 'slow_start') note = 'ramping up';
    r.stateNote.textContent = note;

    r.weight.textContent = s.effective_weight < s.weight
      ? `${Number(s.effective_weight.toFixed(1))}/${s.weight}`
      : String(s.weight);
    r.weight.title = s.effective_weight < s.weight ? 'effective/configured weight during the slow start' : 'weight';
    r.inFlight.textContent = String(s.in_flight);

    const f = s.last_failure;
    if (f) {
      r.failure.replaceChildren(...[
        el('span', { class: 'cause' }, f.cause), ' ',
        el('span', { class: 'ago muted', title: localTime(f.at) }, ago(f.at)),
        f.source ? el('span', { class: 'source muted' }, ` (${f.source})`) : null,
        f.detail ? el('div', { class: 'detail muted', title: f.detail }, f.detail) : null,
      ].filter(Boolean));
    } else {
      r.failure.replaceChildren(el('span', { class: 'muted' }, 'none'));
    }

    r.checks.textContent = checksSummary(s);
    if (s.active) {
      r.checks.title = `passed ${s.active.passed}, failed ${s.active.failed}` +
        (s.active.last_check ? `, last check ${ago(s.active.last_check)}` : '');
    } else {
      r.checks.removeAttribute('title');
    }

    const pv = s.passive || {};
    const fails = pv.max_fails ? `${pv.fails}/${pv.max_fails} fails` : 'off';
    r.passive.textContent = pv.ejections_total ? `${fails} · ejected ${plural(pv.ejections_total, 'time', 'times')}` : fails;

    const drain = s.state !== 'draining';
    const action = drain ? 'drain' : 'enable';
    if (r.button.dataset.action !== action) {
      r.button.dataset.action = action;
      r.button.setAttribute('class', action);
      r.button.textContent = drain ? 'Drain' : 'Enable';
    }
    r.button.setAttribute('aria-label', `${drain ? 'Drain' : 'Enable'} ${s.url} in pool ${r.tr.dataset.pool}`);
  }

  function checksSummary(s) {
    const a = s.active;
    if (!a) return '–';
    if (a.awaiting_first) return 'awaiting the first';
    if (a.consecutive_failures > 0) return `${plural(a.consecutive_failures, 'fail', 'fails')} in a row`;
    if (s.state === 'down' && a.consecutive_passes > 0) return `${plural(a.consecutive_passes, 'pass', 'passes')} in a row`;
    if (a.last_result === 'pass') return 'ok';
    return '–';
  }

  // steer drains (drain true) or enables a server, asking for the token
  // when there is none or the API refuses the one held.
  async function steer(pool, url, drain, button) {
    const verb = drain ? 'drain' : 'enable';
    if (!token.get() && !(await askToken(`To ${verb} ${url} in pool ${pool}, enter the admin token.`))) return;
    button.disabled = true;
    try {
      for (let tries = 0; ; tries++) {
        try {
          const st = await api(`/api/v1/pools/${enc(pool)}/servers/${enc(url)}/${verb}`, 'POST');
          notice(`${drain ? 'Drained' : 'Enabled'} ${url} in pool ${pool}: now ${st.state}` +
            (drain && st.in_flight ? `, finishing ${plural(st.in_flight, 'request', 'requests')} in flight.` : '.'));
          return;
        } catch (e) {
          if (e instanceof ApiError && e.status === 401 && tries < 2) {
            token.clear();
            if (await askToken(`The token was refused: ${e.message}`)) continue;
          }
          notice(`Cannot ${verb} ${url}: ${e.message}`, true);
          return;
        }
      }
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  // ---- requests and errors

  // Colours of the causes: the common ones fixed, others by a hash of the
  // name, so that a cause has the same colour in every chart.
  const PALETTE = ['#c2410c', '#7c3aed', '#0e7490', '#b91c1c', '#a16207', '#be185d', '#4d7c0f', '#1d4ed8', '#57534e', '#9333ea'];
  const FIXED = {
    connection_refused: '#b91c1c',
    connection_timeout: '#c2410c',
    connection_terminated: '#a16207',
    http_response_timeout: '#7c3aed',
    upstream_status: '#be185d',
    destination_unavailable: '#57534e',
    dns_error: '#0e7490',
    tls_certificate_error: '#1d4ed8',
  };

  function colourOf(cause) {
    if (FIXED[cause]) return FIXED[cause];
    let h = 0;
    for (const ch of cause) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }

  const REQUESTS_COLOUR = '#1f2937';

  const routeViews = new Map(); // route name -> view

  function renderStats(st) {
    const interval = st.interval_seconds > 0 ? st.interval_seconds : 5;
    const routes = st.routes || [];
    let newest = 0;
    for (const r of routes) {
      for (const p of r.points || []) newest = Math.max(newest, Date.parse(p.time) || 0);
    }
    const inWindow = (p) => (Date.parse(p.time) || 0) > newest - WINDOW_S * 1000;

    let requests = 0;
    let errors = 0;
    let codes5xx = 0;
    const causes = new Map();
    for (const r of routes) {
      for (const p of (r.points || []).filter(inWindow)) {
        requests += p.requests;
        errors += p.errors;
        codes5xx += p.codes_5xx;
        for (const [c, n] of Object.entries(p.causes || {})) causes.set(c, (causes.get(c) || 0) + n);
      }
    }
    $('requests-total').textContent = String(requests);
    $('errors-total').textContent = String(errors);
    $('codes5xx-total').textContent = String(codes5xx);
    $('error-ratio').textContent = requests ? (100 * errors / requests).toFixed(1) + ' %' : '–';
    $('errors-total').classList.toggle('bad', errors > 0);
    renderCauses(causes);

    const seen = new Set();
    // A route that answered nothing in the whole span (the "none" of
    // requests no route matched, most of the time) gets no chart.
    const active = routes.filter((r) => (r.points || []).some((p) => p.requests > 0));
    const views = active.map((r) => {
      seen.add(r.route);
      let v = routeViews.get(r.route);
      if (!v) {
        v = newRouteView(r.route);
        routeViews.set(r.route, v);
      }
      updateRouteView(v, r, interval, newest);
      return v.figure;
    });
    for (const name of routeViews.keys()) if (!seen.has(name)) routeViews.delete(name);
    if (!views.length) views.push(el('p', { class: 'muted' }, 'No request has been answered yet.'));
    reconcile($('routes'), views);
  }

  function renderCauses(causes) {
    const box = $('causes');
    if (!causes.size) {
      reconcile(box, []);
      return;
    }
    const rows = [...causes.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([c, n]) => el('tr', { class: 'cause-row', dataset: { cause: c } },
        el('th', { scope: 'row' }, swatch(colourOf(c)), ' ', el('span', { class: 'cause' }, c)),
        el('td', { class: 'count num' }, String(n))));
    reconcile(box, [el('table', { class: 'causes' },
      el('caption', null, 'Errors by cause, last 5 min'),
      el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'Cause'), el('th', { scope: 'col' }, 'Errors'))),
      el('tbody', null, ...rows))]);
  }

  function swatch(colour, line) {
    return svg('svg', { class: 'swatch', width: 12, height: 12, viewBox: '0 0 12 12', 'aria-hidden': 'true' },
      line
        ? svg('line', { x1: 0, y1: 6, x2: 12, y2: 6, stroke: colour, 'stroke-width': 2.5 })
        : svg('rect', { x: 0, y: 0, width: 12, height: 12, rx: 2, fill: colour }));
  }

  function newRouteView(name) {
    const totals = el('p', { class: 'route-totals' });
    const chart = el('div', { class: 'chart' });
    const legend = el('ul', { class: 'legend' });
    const figure = el('figure', { class: 'route', dataset: { route: name } },
      el('figcaption', null, el('h3', null, 'route ', el('span', { class: 'route-name' }, name))),
      totals, chart, legend);
    return { figure, totals, chart, legend };
  }

  function updateRouteView(v, r, interval, newest) {
    const points = r.points || [];
    const last = points[points.length - 1];
    const recent = points.filter((p) => (Date.parse(p.time) || 0) > newest - WINDOW_S * 1000);
    const req = recent.reduce((s, p) => s + p.requests, 0);
    const err = recent.reduce((s, p) => s + p.errors, 0);
    v.totals.replaceChildren(
      'now ', el('strong', { class: 'rate' }, last ? rate(last.requests / interval) : '0'), ' req/s, ',
      el('strong', { class: 'error-rate' }, last ? rate(last.errors / interval) : '0'), ' errors/s · last 5 min: ',
      el('span', { class: 'requests' }, String(req)), req === 1 ? ' request, ' : ' requests, ',
      el('span', { class: 'errors' }, String(err)), err === 1 ? ' error' : ' errors');

    const causes = new Set();
    for (const p of points) for (const c of Object.keys(p.causes || {})) causes.add(c);
    const order = [...causes].sort();
    v.chart.replaceChildren(chart(r.route, points, order, interval, newest));
    reconcile(v.legend, [
      el('li', null, swatch(REQUESTS_COLOUR, true), ' requests/s'),
      ...order.map((c) => el('li', null, swatch(colourOf(c)), ' ', c, ' errors/s')),
    ]);
  }

  // chart draws requests per second as a line and errors per second as
  // bars stacked by cause, over the points' time span (15 minutes when
  // full).
  function chart(route, points, causes, interval, newest) {
    const W = 560;
    const H = 160;
    const L = 44;
    const R = 8;
    const T = 10;
    const B = 22;
    const spanS = Math.max(points.length * interval, 60);
    const start = newest - spanS * 1000;
    const x = (t) => L + ((t - start) / (spanS * 1000)) * (W - L - R);
    let max = 0;
    for (const p of points) max = Math.max(max, p.requests / interval, p.errors / interval);
    max = niceCeil(max);
    const y = (v) => T + (1 - v / max) * (H - T - B);

    const g = [];
    for (const v of [0, max / 2, max]) {
      g.push(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      g.push(svg('text', { class: 'axis', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, rate(v) + '/s'));
    }
    const minutes = spanS / 60;
    const step = minutes > 10 ? 5 : minutes > 3 ? 1 : 0.5;
    for (let m = 0; m <= minutes + 1e-9; m += step) {
      const t = newest - m * 60000;
      g.push(svg('text', { class: 'axis', x: x(t), y: H - 6, 'text-anchor': m === 0 ? 'end' : 'middle' },
        m === 0 ? 'now' : `-${m}m`));
    }
    const bw = Math.max(1, ((W - L - R) / (spanS / interval)) - 1);
    for (const p of points) {
      const t = Date.parse(p.time) || 0;
      let acc = 0;
      const entries = causes.map((c) => [c, (p.causes || {})[c] || 0]);
      const known = entries.reduce((s, e) => s + e[1], 0);
      if (p.errors > known) entries.push(['unknown', p.errors - known]);
      for (const [c, n] of entries) {
        if (!n) continue;
        const v0 = acc / interval;
        acc += n;
        const v1 = acc / interval;
        g.push(svg('rect', { class: 'bar', x: x(t) - bw, y: y(v1), width: bw, height: Math.max(0.5, y(v0) - y(v1)), fill: colourOf(c) },
          svg('title', null, `${c}: ${n} in the ${interval} s to ${new Date(t).toLocaleTimeString()}`)));
      }
    }
    if (points.length) {
      const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(Date.parse(p.time) || 0).toFixed(1)},${y(p.requests / interval).toFixed(1)}`).join(' ');
      g.push(svg('path', { class: 'line', d, fill: 'none', stroke: REQUESTS_COLOUR, 'stroke-width': 1.75 }));
    }
    const label = `Requests and errors per second of route ${route} over the last ${span(spanS)}`;
    return svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'xMinYMin meet' },
      svg('title', null, label), ...g);
  }

  function niceCeil(v) {
    if (v <= 1) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // ---- recent failures

  const failureViews = new Map(); // key -> view
  const expanded = new Set(); // keys of the rows showing their attempts

  function renderFailures(list) {
    $('failures-empty').hidden = list.length > 0;
    const seen = new Set();
    const nodes = [];
    for (const f of list) {
      const key = `${f.time}|${f.request_id}|${f.method}|${f.path}`;
      if (seen.has(key)) continue;
      seen.add(key);
      let v = failureViews.get(key);
      if (!v) {
        v = newFailureView(key, f);
        failureViews.set(key, v);
      }
      v.when.textContent = ago(f.time);
      nodes.push(v.row);
      if (expanded.has(key)) nodes.push(v.ledgerRow);
    }
    for (const key of failureViews.keys()) {
      if (!seen.has(key)) {
        failureViews.delete(key);
        expanded.delete(key);
      }
    }
    reconcile($('failures-body'), nodes);
  }

  function newFailureView(key, f) {
    const id = f.request_id || '(none)';
    const when = el('span', { class: 'ago' });
    const toggle = el('button', { type: 'button', class: 'expand', 'aria-expanded': 'false', 'aria-label': `Attempts of request ${id}` },
      el('span', { class: 'chevron', 'aria-hidden': 'true' }), when);
    const request = `${f.method} ${f.path}`;
    const row = el('tr', { class: 'failure', dataset: { requestId: f.request_id || '', cause: f.cause, pool: f.pool || '' } },
      el('td', { class: 'when', title: localTime(f.time) }, toggle),
      el('td', { class: 'status num' }, String(f.status)),
      el('td', null, el('span', { class: 'cause' }, f.cause)),
      el('td', { class: 'route' }, f.route, f.pool ? el('span', { class: 'muted' }, ` → ${f.pool}`) : null),
      el('td', { class: 'request', title: request }, el('span', { class: 'method' }, f.method), ' ', el('span', { class: 'path' }, f.path)),
      el('td', { class: 'request-id' }, id),
      el('td', { class: 'duration num' }, millis(f.duration_ms)));
    const ledgerRow = el('tr', { class: 'ledger-row' }, el('td', { colspan: 7 }, ledger(f)));
    const flip = () => {
      const open = !expanded.has(key);
      if (open) expanded.add(key);
      else expanded.delete(key);
      toggle.setAttribute('aria-expanded', String(open));
      row.classList.toggle('open', open);
      if (open) row.after(ledgerRow);
      else ledgerRow.remove();
    };
    toggle.addEventListener('click', (ev) => {
      ev.stopPropagation();
      flip();
    });
    // The whole row opens the ledger for a pointer; the button is there
    // for the keyboard and for screen readers.
    row.addEventListener('click', (ev) => {
      if (window.getSelection && String(window.getSelection()).length) return;
      if (ev.target.closest('button')) return;
      flip();
    });
    return { row, ledgerRow, when };
  }

  function ledger(f) {
    const attempts = f.attempts || [];
    const head = ['#', 'Server', 'Phase', 'Reused', 'Idle', 'Written', 'Cause', 'Status', 'Took'];
    return el('div', { class: 'ledger-box' },
      f.detail ? el('p', { class: 'detail' }, f.detail) : null,
      attempts.length
        ? el('table', { class: 'ledger' },
          el('caption', null, `Attempts of request ${f.request_id || '(no ID)'}, ${localTime(f.time)}`),
          el('thead', null, el('tr', null, ...head.map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', null, ...attempts.map((a, i) => el('tr', { class: 'attempt', dataset: { server: a.server } },
            el('td', { class: 'num' }, String(i + 1)),
            el('td', { class: 'server' }, a.server),
            el('td', { class: 'phase' }, a.phase),
            el('td', { class: 'reused' }, a.reused ? 'yes' : 'no'),
            el('td', { class: 'idle num' }, a.reused ? millis(a.idle_ms) : '–'),
            el('td', { class: 'written' }, a.written ? 'yes' : 'no'),
            el('td', { class: 'cause' }, a.cause || '–'),
            el('td', { class: 'status num' }, a.status ? String(a.status) : '–'),
            el('td', { class: 'duration num' }, millis(a.duration_ms))))))
        : el('p', { class: 'muted' }, 'No attempt reached a server.'));
  }

  document.addEventListener('DOMContentLoaded', () => {
    wireTokenDialog();
    refresh();
  });
})();
