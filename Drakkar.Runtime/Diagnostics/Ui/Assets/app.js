// The Drakkar debug page: renders /api/* and follows /api/stream (server-sent events). No external requests.
'use strict';

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function num(value) { return el('td', { class: 'num' }, value); }
function offset(value) { return value === undefined || value < 0 ? '–' : value; }
function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : '–'; }
function link(l) { return el('a', { href: l.url, target: '_blank', rel: 'noopener noreferrer' }, l.name); }
function fill(selector, rows) { document.querySelector(selector).replaceChildren(...rows); }

function renderState(s) {
  const w = s.worker;
  document.getElementById('worker-id').textContent = w.worker_id;
  document.title = 'Drakkar ' + w.worker_id;
  const identity = [['cluster', w.cluster_name], ['group', w.consumer_group], ['topic', w.source_topic],
    ['kafka cluster', w.kafka_cluster], ['version', w.version], ['started', time(w.started_at)], ['url', w.debug_url]];
  for (const [k, v] of Object.entries(w.env || {})) identity.push([k, v]);
  fill('#identity', identity.filter(([, v]) => v).map(([k, v]) => el('span', {}, k + ': ' + v)));
  const status = document.getElementById('status');
  status.textContent = w.ready ? 'ready' : 'not ready: ' + w.not_ready.join('; ');
  status.className = 'status ' + (w.ready ? 'ready' : 'not-ready');

  fill('#partitions tbody', s.partitions.map(p => el('tr', { 'data-partition': p.partition },
    el('td', {}, p.partition), num(offset(p.committed)), num(offset(p.last_consumed)), num(offset(p.high_watermark)),
    num(p.lag), num(p.in_flight))));

  const x = s.executor;
  fill('#executor', [el('span', { id: 'executor-slots' }, `slots ${x.active}/${x.slots} busy, ${x.waiting} waiting; ` +
    `load ${x.load} (pause at ${x.load_high})${x.paused ? ', consumption paused' : ''}; payloads in flight ${x.in_flight_payloads}` +
    (x.holding_for_outage ? '; a sink is holding payloads for an outage (consumption paused until it is back)' : ''))]);

  fill('#sinks tbody', s.sinks.map(k => el('tr', { 'data-sink': k.kind + '/' + k.name },
    el('td', {}, k.ui_url ? link({ name: k.kind + '/' + k.name, url: k.ui_url }) : k.kind + '/' + k.name),
    el('td', {}, k.connected ? 'yes' : 'no'), el('td', { class: 'circuit-' + k.circuit }, k.circuit),
    num(k.delivered), num(k.errors), num(k.retries), num(k.skipped), num(k.dead_lettered),
    el('td', {}, k.last_delivery_at ? time(k.last_delivery_at) + ' (' + k.last_delivery_ms + ' ms)' : '–'),
    el('td', {}, k.last_error || ''))));

  fill('#recorder', [el('span', {}, `database: ${s.recorder.database || 'none (memory only)'}; events dropped: ${s.recorder.dropped}`)]);

  const links = [];
  if (s.links.kafka) links.push(el('span', { class: 'group' }, 'Kafka'), link(s.links.kafka));
  if (s.links.custom.length) links.push(el('span', { class: 'group' }, 'Links'), ...s.links.custom.map(link));
  if (s.links.prometheus.length) links.push(el('span', { class: 'group' }, 'Prometheus'), ...s.links.prometheus.map(link));
  fill('#links', links);
}

function output(t) {
  const parts = [];
  if (t.detail && t.kind === 'task_failed') parts.push(el('div', {}, t.detail));
  if (t.stdout) parts.push(el('details', {}, el('summary', {}, 'stdout'), el('pre', {}, t.stdout)));
  if (t.stderr) parts.push(el('details', {}, el('summary', {}, 'stderr'), el('pre', {}, t.stderr)));
  return el('td', {}, ...parts);
}

function taskRow(t) {
  return el('tr', { 'data-task-id': t.task_id, class: t.kind === 'task_failed' ? 'failed' : '' },
    el('td', {}, time(t.at)), el('td', {}, t.task_id), num(t.attempt), num(t.partition ?? '–'), num(offset(t.offset)),
    num(t.exit_code ?? '–'), num(t.duration_ms), output(t));
}

function renderTasks(t) {
  fill('#recent-tasks tbody', t.recent.map(taskRow));
  fill('#slow-tasks tbody', t.slow.map(taskRow));
}

function renderDlq(d) {
  fill('#dlq tbody', d.dead_letters.map(e => el('tr', {},
    el('td', {}, time(e.at)), el('td', {}, e.sink), num(e.partition), num(offset(e.offset)), num(e.count), num(e.attempt),
    el('td', {}, e.detail))));
}

async function load(path, render) {
  const response = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (response.status === 401) throw new Error('unauthorized: open the page with ?token=<debug.auth_token>');
  render(await response.json());
}

function refresh() {
  return Promise.all([load('api/state', renderState), load('api/tasks', renderTasks), load('api/dlq', renderDlq)])
    .catch(e => { document.getElementById('status').textContent = String(e.message || e); });
}

function follow() {
  const stream = new EventSource('api/stream');
  stream.addEventListener('state', e => {
    renderState(JSON.parse(e.data));
    load('api/tasks', renderTasks).catch(() => {});
    load('api/dlq', renderDlq).catch(() => {});
  });
  stream.addEventListener('tasks', e => {
    const live = document.getElementById('live');
    for (const t of JSON.parse(e.data).tasks) {
      live.prepend(el('li', { class: t.kind === 'task_failed' ? 'failed' : '' },
        `${time(t.at)} ${t.task_id} exit ${t.exit_code ?? '–'} in ${t.duration_ms} ms`));
    }
    while (live.children.length > 200) live.lastChild.remove();
  });
  stream.onerror = async () => {
    const status = document.getElementById('status');
    if (stream.readyState !== EventSource.CLOSED) { status.textContent = 'reconnecting…'; return; }
    // Refused: the browser will not retry by itself, nor say why. A 401 means this page's session is not valid any
    // more (the worker restarted: a session lasts one run); otherwise the worker serves a limited number of live pages.
    let why = 'live updates refused (the worker serves a limited number of live pages)';
    try {
      const response = await fetch('api/state', { credentials: 'same-origin', cache: 'no-store' });
      if (response.status === 401) why = 'not authorized: the worker restarted or the session ended; open the page again with ?token=<debug.auth_token>';
    } catch {
      why = 'the worker does not answer';
    }
    status.textContent = why + '; retrying in 10 s';
    setTimeout(follow, 10000);
  };
}

async function probe(event) {
  event.preventDefault();
  const form = event.target;
  const query = new URLSearchParams(new FormData(form));
  const status = document.getElementById('probe-status');
  const result = document.getElementById('probe-result');
  form.querySelector('button').disabled = true;
  status.textContent = 'running…';
  try {
    const response = await fetch('api/probe?' + query, { method: 'POST', credentials: 'same-origin', cache: 'no-store' });
    const text = await response.text();
    status.textContent = response.ok ? 'done: nothing was delivered or committed' : `refused (${response.status})`;
    try { result.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch { result.textContent = text; }
  } catch (e) {
    status.textContent = String(e.message || e);
  } finally {
    form.querySelector('button').disabled = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('probe').addEventListener('submit', probe);
  refresh();
  load('api/config', c => { document.getElementById('config').textContent = c.yaml; }).catch(() => {});
  follow();
});
