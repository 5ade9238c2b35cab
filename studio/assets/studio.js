// editone studio: the page's logic. Plain JavaScript, no build step, nothing
// fetched from elsewhere; it speaks the JSON API of docs/studio-api.md.
//
// Flow: create a session, open its event stream, then every control posts a
// small request. Replies and `state` events carry STATE (version, mode,
// strength, alphas, busy task); `image` events say a slot has a newer
// picture, which the page then loads as /images/{slot}.png?v={version}.
// Slots are "example", a batch index, or "photo-J": with --folder, photo J
// of the session's `photos`, shown with all its faces edited.
'use strict';

const $ = (id) => document.getElementById(id);

// Everything the page knows, exposed as window.studio for the end-to-end
// test (tests/studio/e2e.mjs) and for poking at it from the console.
const studio = {
  session: null,      // the POST /api/sessions reply
  state: null,        // the newest STATE seen
  points: [],         // drag points in model pixels: handle, target, handle, ...
  requested: new Map(), // slot ("example", "0".."n-1", "photo-J") -> newest version asked for
  task: null,         // {name, total, started, loss: [[step, loss], ...]}
  doneCount: 0,       // number of `done` events seen
  requesting: 0,      // POSTs that start something, still without a reply
  choosing: null,     // 'mode' or 'paste' while the user's change is sent
  events: null,       // the EventSource
};
window.studio = studio;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- requests ----------------------------------------------------------------

function sessionPath(rest) {
  return `/api/sessions/${encodeURIComponent(studio.session.session)}/${rest}`;
}

// Sends a request and returns the parsed JSON reply; a non-2xx reply becomes
// an ApiError carrying the server's {"error": ...} message.
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'the studio is not reachable (was it stopped?)');
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    data = null;
  }
  if (!resp.ok) {
    const message = data && typeof data.error === 'string' ? data.error : `${resp.status} ${resp.statusText}`;
    throw new ApiError(resp.status, message);
  }
  return data;
}

// Runs a request that starts or changes an edit, keeping the edit buttons
// disabled until its reply arrives (the `busy` state follows by event).
async function withRequest(what, fn) {
  studio.requesting += 1;
  updateControls();
  try {
    return await fn();
  } catch (err) {
    reportError(what, err);
    return undefined;
  } finally {
    studio.requesting -= 1;
    updateControls();
  }
}

// --- status line ---------------------------------------------------------------

function setStatus(text, kind = 'info') {
  const el = $('status');
  el.textContent = text;
  el.dataset.kind = kind;
}

function reportError(what, err) {
  setStatus(`${what}: ${err.message}`, 'error');
}

// --- state ---------------------------------------------------------------------

const fmtAlpha = (a) => (a === null || a === undefined ? '—' : a.toFixed(3));
const fmtStrength = (s) => (typeof s !== 'number' ? '—' : Math.abs(s) >= 100 ? s.toFixed(0) : s.toFixed(2));

function applyState(s) {
  if (!s || typeof s.version !== 'number') return;
  // Replies and events travel on different connections, so an older STATE
  // can arrive after a newer one; the version orders them. Equal versions
  // differ only in `busy`, and the later arrival is the newer.
  if (studio.state && s.version < studio.state.version) return;
  studio.state = s;
  document.body.dataset.version = String(s.version);
  document.body.dataset.busy = s.busy || '';
  document.body.dataset.mode = s.mode;

  // The slider is the user's while they move it; otherwise it shows the
  // server's strength.
  if (!strengthSender.active()) {
    // The slider reaches twice the edit's strength (at least 10, at most the
    // server's 100): a direction on a StyleGAN2 moves every W+ row, so its
    // strength grows with sqrt(num_ws) and may not fit the default range.
    const reach = Math.min(100, Math.max(10, Math.ceil(Math.abs(s.strength ?? 0) * 2)));
    if (reach > Number($('strength').max)) {
      $('strength').min = String(-reach);
      $('strength').max = String(reach);
    }
    // (strength is null until there is an edit)
    $('strength').value = String(s.strength ?? 0);
    $('strength-value').textContent = fmtStrength(s.strength);
  }
  // Radios show the server's choice, except one the user is changing.
  for (const name of ['mode', 'paste']) {
    if (studio.choosing === name) continue;
    for (const radio of document.querySelectorAll(`input[name="${name}"]`)) {
      radio.checked = radio.value === s[name];
    }
  }

  const grid = $('grid');
  grid.classList.toggle('other-mode', s.mode !== 'editone');
  for (const fig of grid.querySelectorAll('figure.cell')) {
    const i = Number(fig.dataset.slot);
    const alpha = s.alphas ? s.alphas[i] : null;
    const cap = fig.querySelector('figcaption.alpha');
    cap.textContent = fmtAlpha(alpha);
    // alphas are always the editone ones; say so when another mode is shown
    cap.title = s.mode === 'editone' ? 'this image\'s strength alpha'
      : `alpha in editone mode (now showing ${s.mode})`;
  }

  const sess = studio.session;
  const kind = !s.has_edit ? 'no edit yet' : s.optimized ? 'optimised d*' : 'naive direction';
  $('example-caption').textContent =
    `Example · ${sess.example_label} · ${sess.resolution}×${sess.resolution} · ${kind} · mode ${s.mode}`;
  updateControls();
}

function updateControls() {
  const s = studio.state;
  const ready = s !== null;
  const busy = !ready || Boolean(s.busy) || studio.requesting > 0;
  const hasEdit = ready && s.has_edit;
  const pairs = Math.floor(studio.points.length / 2);

  $('apply-direction').disabled = busy;
  $('drag').disabled = busy || pairs === 0;
  $('clear-points').disabled = studio.points.length === 0 || (ready && s.busy === 'drag');
  $('optimize').disabled = busy || !hasEdit;
  $('cancel').disabled = !ready || !s.busy;
  $('strength').disabled = !hasEdit || (ready && Boolean(s.busy));
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.disabled = !hasEdit || (ready && Boolean(s.busy));
  }
  // Pastes compare at strength 0 too: no edit needed.
  for (const radio of document.querySelectorAll('input[name="paste"]')) {
    radio.disabled = !ready || Boolean(s.busy);
  }
  for (const id of ['save-preset', 'export']) {
    $(id).setAttribute('aria-disabled', String(!hasEdit));
  }
  $('point-count').textContent = studio.points.length
    ? `${pairs} pair${pairs === 1 ? '' : 's'}${studio.points.length % 2 ? ', waiting for a target' : ''}.`
    : '';
}

// --- images --------------------------------------------------------------------

function imageFor(slot) {
  if (slot === 'example') return $('example');
  if (typeof slot === 'string' && slot.startsWith('photo-')) {
    const fig = $('photo-list').querySelector(`figure.photo[data-slot="photo-${Number(slot.slice(6))}"]`);
    return fig ? fig.querySelector('img') : null;
  }
  const fig = $('grid').querySelector(`figure.cell[data-slot="${Number(slot)}"]`);
  return fig ? fig.querySelector('img') : null;
}

// Shows `version` of a slot unless a newer one was asked for already. An
// image still loading finishes first and then loads the newest version:
// replacing src at every event would cancel each load during a fast slider
// drag, and nothing would show until the drag stopped.
function showImage(slot, version) {
  const img = imageFor(slot);
  if (!img) return;
  const key = String(slot);
  const have = studio.requested.get(key);
  if (have !== undefined && version <= have) return;
  studio.requested.set(key, version);
  if (img.dataset.loading) {
    img.dataset.pending = String(version);
    return;
  }
  loadImage(img, key, version);
}

function loadImage(img, key, version) {
  img.dataset.loading = key;
  img.src = sessionPath(`images/${key}.png?v=${version}`);
}

// After a load (or a failed one), the newest version that arrived meanwhile.
function loadPending(img) {
  const key = img.dataset.loading;
  delete img.dataset.loading;
  if (img.dataset.pending === undefined) return;
  const version = Number(img.dataset.pending);
  delete img.dataset.pending;
  loadImage(img, key, version);
}

function showAllImages(version) {
  showImage('example', version);
  for (const photo of studio.session.photos || []) showImage(photo.slot, version);
  for (let i = 0; i < studio.session.count; i++) showImage(i, version);
}

// data-version says which version an img displays: set when it has loaded,
// read from its own URL.
function watchImage(img) {
  img.addEventListener('load', () => {
    const v = new URL(img.currentSrc || img.src, location.href).searchParams.get('v');
    if (v !== null) img.dataset.version = v;
    loadPending(img);
  });
  img.addEventListener('error', () => {
    if (img.getAttribute('src')) setStatus('An image failed to load; is the studio still running?', 'error');
    loadPending(img);
  });
}

// The box of a face (slot "example" or a batch index) in its photo, if the
// slot is a face of one.
function faceBox(slot) {
  return document.querySelector(`#photo-list .face-box[data-face="${slot}"]`);
}

// One figure per photo: the picture, a box per face (shown on hover, or
// while the face's tile or the example is hovered), and a caption.
function buildPhotos(sess) {
  const list = $('photo-list');
  list.textContent = '';
  const photos = sess.photos || [];
  $('photos').hidden = photos.length === 0;
  for (const photo of photos) {
    const fig = document.createElement('figure');
    fig.className = 'photo';
    fig.dataset.slot = photo.slot;
    const frame = document.createElement('div');
    frame.className = 'photo-frame';
    frame.style.aspectRatio = `${photo.width} / ${photo.height}`;
    // A tall photo fits the window's height (the frame keeps its shape, so
    // the face boxes stay on the faces).
    frame.style.maxWidth = `calc(80vh * ${photo.width} / ${photo.height})`;
    const img = document.createElement('img');
    img.alt = `${photo.name} with its ${photo.faces.length === 1 ? 'face' : 'faces'} edited`;
    img.width = photo.width;
    img.height = photo.height;
    watchImage(img);
    frame.append(img);
    for (const face of photo.faces) {
      const [x0, y0, x1, y1] = face.box;
      const box = document.createElement('div');
      box.className = 'face-box';
      box.dataset.face = String(face.slot);
      box.style.left = `${(100 * x0) / photo.width}%`;
      box.style.top = `${(100 * y0) / photo.height}%`;
      box.style.width = `${(100 * (x1 - x0)) / photo.width}%`;
      box.style.height = `${(100 * (y1 - y0)) / photo.height}%`;
      const tag = document.createElement('span');
      tag.textContent = face.slot === 'example' ? `${face.number} · example` : String(face.number);
      box.append(tag);
      frame.append(box);
    }
    const cap = document.createElement('figcaption');
    const name = document.createElement('b');
    name.textContent = photo.name;
    const [w, h] = photo.size;
    const left = photo.faces_found > photo.faces.length
      ? ` (${photo.faces.length} of ${photo.faces_found} found are on this page)` : '';
    cap.append(name, ` · ${w}×${h} · ${photo.faces.length} ${photo.faces.length === 1 ? 'face' : 'faces'}${left}`);
    fig.append(frame, cap);
    list.append(fig);
  }
}

// Hovering a face's tile lights its box in its photo.
function linkFace(el, slot) {
  el.addEventListener('mouseenter', () => faceBox(slot)?.classList.add('lit'));
  el.addEventListener('mouseleave', () => faceBox(slot)?.classList.remove('lit'));
}

function buildGrid(sess) {
  const grid = $('grid');
  grid.textContent = '';
  for (let i = 0; i < sess.count; i++) {
    const fig = document.createElement('figure');
    fig.className = 'cell';
    fig.dataset.slot = String(i);
    linkFace(fig, String(i));
    const seed = document.createElement('span');
    seed.className = 'seed';
    seed.textContent = sess.labels[i];
    const img = document.createElement('img');
    img.alt = `Batch image ${i + 1}, ${sess.labels[i]}`;
    watchImage(img);
    const cap = document.createElement('figcaption');
    cap.className = 'alpha';
    cap.textContent = '—';
    fig.append(seed, img, cap);
    grid.append(fig);
  }
}

// --- strength slider ---------------------------------------------------------------

// Slider moves post /strength without waiting for any rendering. At most one
// request is in flight; values arriving meanwhile replace each other, and the
// newest is sent as soon as the reply comes, so the last position always
// reaches the server and a fast drag never queues up stale requests.
const strengthSender = {
  inFlight: false,
  pending: null,
  active() {
    return this.inFlight || this.pending !== null;
  },
  send(value) {
    this.pending = value;
    if (!this.inFlight) this.pump();
  },
  async pump() {
    this.inFlight = true;
    while (this.pending !== null) {
      const value = this.pending;
      this.pending = null;
      try {
        applyState(await api('POST', sessionPath('strength'), { strength: value }));
      } catch (err) {
        reportError('Strength', err);
      }
    }
    this.inFlight = false;
    if (studio.state) applyState(studio.state); // show the server's value again
  },
};

function onStrengthInput() {
  const value = Number($('strength').value);
  $('strength-value').textContent = fmtStrength(value);
  strengthSender.send(value);
}

// --- edits ---------------------------------------------------------------------

async function applyDirection() {
  const index = Number($('direction').value);
  const strength = Number($('direction-strength').value);
  if (!Number.isFinite(strength)) {
    setStatus('Direction: the strength is not a number', 'error');
    return;
  }
  await withRequest('Direction', async () => {
    applyState(await api('POST', sessionPath('direction'), { index, strength }));
    const label = studio.session.directions.find((d) => d.index === index);
    setStatus(`Edit: ${label ? label.label : `direction ${index}`} at strength ${strength}. ` +
      'Optimise to make it consistent across the batch.');
  });
}

// Sets the session's `name` ('mode' or 'paste') to `value`.
async function setChoice(name, value) {
  studio.choosing = name;
  try {
    applyState(await api('POST', sessionPath(name), { [name]: value }));
  } catch (err) {
    reportError(name === 'mode' ? 'Mode' : 'Faces in photos', err);
  } finally {
    studio.choosing = null;
    if (studio.state) applyState(studio.state); // radios back to the server's choice
  }
}

async function startOptimize() {
  const iterations = parseInt($('iterations').value, 10);
  await withRequest('Optimise', async () => {
    await api('POST', sessionPath('optimize'), { iterations });
    beginTask('optimize', iterations);
    setStatus(`Optimising d*: ${iterations} iterations…`);
  });
}

async function startDrag() {
  const pts = studio.points;
  const n = Math.floor(pts.length / 2);
  const handles = [];
  const targets = [];
  for (let k = 0; k < n; k++) {
    handles.push(pts[2 * k]);
    targets.push(pts[2 * k + 1]);
  }
  const steps = parseInt($('drag-steps').value, 10);
  await withRequest('Drag', async () => {
    await api('POST', sessionPath('drag'), { handles, targets, steps });
    beginTask('drag', steps);
    setStatus(`Dragging ${n} point${n === 1 ? '' : 's'}: ${steps} steps…`);
  });
}

async function cancelTask() {
  try {
    const reply = await api('POST', sessionPath('cancel'));
    if (reply && !reply.cancelled) setStatus('Nothing to cancel.');
  } catch (err) {
    reportError('Cancel', err);
  }
}

// --- task progress and the loss curve ------------------------------------------------

function beginTask(name, total) {
  // Progress events may come before the POST's reply; keep what they began.
  if (studio.task && studio.task.name === name && !studio.task.finished) return;
  studio.task = { name, total, started: performance.now(), loss: [], finished: false };
  const bar = $('progress');
  bar.max = Math.max(1, total);
  bar.value = 0;
  drawLoss();
}

function onProgress(p) {
  if (!studio.task || studio.task.name !== p.task || studio.task.finished) beginTask(p.task, p.total);
  const t = studio.task;
  t.total = p.total;
  const bar = $('progress');
  bar.max = Math.max(1, p.total);
  bar.value = p.step;
  if (typeof p.loss === 'number' && Number.isFinite(p.loss)) t.loss.push([p.step, p.loss]);
  drawLoss();
  const verb = p.task === 'drag' ? 'Dragging' : 'Optimising d*';
  const loss = typeof p.loss === 'number' ? `, loss ${p.loss.toPrecision(4)}` : '';
  setStatus(`${verb}: step ${p.step} of ${p.total}${loss}`);
}

function onDone(d) {
  applyState(d.state);
  studio.doneCount += 1;
  const t = studio.task;
  const secs = t ? ((performance.now() - t.started) / 1000).toFixed(1) : null;
  if (t) t.finished = true;
  drawLoss();
  const name = d.task === 'drag' ? 'Drag' : 'Optimise';
  if (d.error) {
    setStatus(`${name} failed: ${d.error}`, 'error');
  } else if (d.cancelled) {
    setStatus(`${name} cancelled; the edit is unchanged.`);
  } else {
    $('progress').value = $('progress').max;
    const last = t && t.loss.length ? `, final loss ${t.loss[t.loss.length - 1][1].toPrecision(4)}` : '';
    setStatus(d.task === 'drag'
      ? `Drag done in ${secs} s: the edit is the example to the dragged image.`
      : `d* optimised in ${secs} s${last}: every image now moves by its own alpha.`, 'ok');
    if (d.task === 'drag') clearPoints();
  }
}

// A canvas sized to its CSS box at the screen's pixel density.
function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w: canvas.clientWidth, h: canvas.clientHeight };
}

function drawLoss() {
  const { ctx, w, h } = fitCanvas($('loss'));
  ctx.clearRect(0, 0, w, h);
  const t = studio.task;
  const pts = t ? t.loss : [];
  ctx.fillStyle = '#6b7280';
  ctx.font = '11px system-ui, sans-serif';
  if (pts.length < 2) {
    const note = !t ? 'loss curve' : t.finished ? `${t.name}: no loss reported` : `${t.name}: waiting for progress…`;
    ctx.fillText(note, 6, 14);
    return;
  }
  // A log scale when the loss spans more than a decade, as d*'s usually does.
  const positive = pts.every(([, l]) => l > 0);
  const ys = pts.map(([, l]) => l);
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  const log = positive && hi / lo > 10;
  const f = (l) => (log ? Math.log(l) : l);
  const y0 = f(lo);
  const y1 = f(hi) === y0 ? y0 + 1 : f(hi);
  const xMax = Math.max(t.total, pts[pts.length - 1][0], 1);
  const pad = 4;
  ctx.strokeStyle = '#2563eb';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  pts.forEach(([step, l], k) => {
    const x = pad + (step / xMax) * (w - 2 * pad);
    const y = pad + (1 - (f(l) - y0) / (y1 - y0)) * (h - 2 * pad - 12) + 12;
    if (k === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillText(`${t.name} loss ${pts[pts.length - 1][1].toPrecision(4)}${log ? ' (log scale)' : ''}`, 6, 11);
}

// --- drag points on the example --------------------------------------------------------

function drawPoints() {
  const canvas = $('overlay');
  const { ctx, w, h } = fitCanvas(canvas);
  ctx.clearRect(0, 0, w, h);
  if (!studio.session) return;
  const res = studio.session.resolution;
  const toScreen = ([x, y]) => [(x / res) * w, (y / res) * h];
  const pts = studio.points.map(toScreen);
  // an arrow from each handle to its target
  ctx.lineWidth = 2;
  ctx.strokeStyle = 'rgba(255, 255, 255, 0.9)';
  for (let k = 0; k + 1 < pts.length; k += 2) {
    const [ax, ay] = pts[k];
    const [bx, by] = pts[k + 1];
    ctx.beginPath();
    ctx.moveTo(ax, ay);
    ctx.lineTo(bx, by);
    const ang = Math.atan2(by - ay, bx - ax);
    ctx.moveTo(bx, by);
    ctx.lineTo(bx - 9 * Math.cos(ang - 0.45), by - 9 * Math.sin(ang - 0.45));
    ctx.moveTo(bx, by);
    ctx.lineTo(bx - 9 * Math.cos(ang + 0.45), by - 9 * Math.sin(ang + 0.45));
    ctx.stroke();
  }
  pts.forEach(([x, y], k) => {
    ctx.beginPath();
    ctx.arc(x, y, 6, 0, 2 * Math.PI);
    ctx.fillStyle = k % 2 === 0 ? '#ef4444' : '#3b82f6';
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#fff';
    ctx.stroke();
  });
}

function onExampleClick(ev) {
  if (!studio.session || !studio.state || studio.state.busy === 'drag') return;
  const canvas = $('overlay');
  const rect = canvas.getBoundingClientRect();
  const res = studio.session.resolution;
  // displayed pixels -> model pixels (0..resolution), kept to 0.01 px
  const clamp = (v) => Math.min(res, Math.max(0, v));
  const x = clamp(((ev.clientX - rect.left) / rect.width) * res);
  const y = clamp(((ev.clientY - rect.top) / rect.height) * res);
  studio.points.push([Math.round(x * 100) / 100, Math.round(y * 100) / 100]);
  drawPoints();
  updateControls();
}

function clearPoints() {
  studio.points = [];
  drawPoints();
  updateControls();
}

// --- the event stream --------------------------------------------------------------------

function openEvents() {
  const es = new EventSource(sessionPath('events'));
  studio.events = es;
  let lost = false;
  const on = (name, fn) => es.addEventListener(name, (e) => {
    let data;
    try {
      data = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    fn(data);
  });
  on('image', (d) => showImage(d.slot, d.version));
  on('progress', onProgress);
  on('done', onDone);
  on('state', applyState);
  es.addEventListener('open', () => {
    // Events sent while the stream was down are gone: catch up once.
    if (lost) {
      lost = false;
      resync();
    }
  });
  es.addEventListener('error', () => {
    lost = true;
    if (es.readyState === EventSource.CLOSED) {
      resync();
    } else {
      setStatus('Connection to the studio lost; reconnecting…', 'error');
    }
  });
}

async function resync() {
  try {
    const s = await api('GET', sessionPath('state'));
    applyState(s);
    showAllImages(s.version);
    setStatus('Reconnected.');
  } catch (err) {
    if (err.status === 404) {
      studio.events.close();
      setStatus('This session has ended (the studio closes idle sessions when 8 are open). Reload the page.', 'error');
    } else {
      reportError('Reconnecting', err);
    }
  }
}

// --- start-up ------------------------------------------------------------------------------

async function start() {
  const params = new URLSearchParams(location.search);
  const count = params.has('count') ? Number(params.get('count')) : 12;
  let sess;
  try {
    sess = await api('POST', '/api/sessions', { count });
  } catch (err) {
    reportError('Starting a session', err);
    return;
  }
  studio.session = sess;
  document.body.classList.toggle('pixelated', sess.resolution < 256);
  document.body.dataset.session = sess.session;

  const select = $('direction');
  for (const d of sess.directions) {
    const opt = document.createElement('option');
    opt.value = String(d.index);
    opt.textContent = d.label;
    select.append(opt);
  }
  $('save-preset').href = sessionPath('preset');
  $('export').href = sessionPath('export.zip');
  buildPhotos(sess);
  // A folder's images (no seeds) may be photos: offer both pastes.
  $('pastes').hidden = sess.seeds !== null;
  buildGrid(sess);
  linkFace($('example-frame'), 'example');
  watchImage($('example'));
  applyState(sess.state);
  showAllImages(sess.state.version);
  openEvents();
  drawPoints();
  drawLoss();
  const photos = (sess.photos || []).length;
  const notes = (sess.notes || []).map((n) => ` ${n}.`).join('');
  setStatus(`Ready: ${sess.count} images${photos ? ` (faces of ${photos} photo${photos === 1 ? '' : 's'})` : ''}. ` +
    `Pick a direction or click points on the example to drag.${notes}`);
}

function wire() {
  $('strength').addEventListener('input', onStrengthInput);
  $('apply-direction').addEventListener('click', applyDirection);
  $('optimize').addEventListener('click', startOptimize);
  $('drag').addEventListener('click', startDrag);
  $('clear-points').addEventListener('click', clearPoints);
  $('cancel').addEventListener('click', cancelTask);
  $('overlay').addEventListener('click', onExampleClick);
  for (const radio of document.querySelectorAll('input[name="mode"], input[name="paste"]')) {
    radio.addEventListener('change', () => {
      if (radio.checked) setChoice(radio.name, radio.value);
    });
  }
  for (const id of ['save-preset', 'export']) {
    $(id).addEventListener('click', (ev) => {
      if ($(id).getAttribute('aria-disabled') === 'true') {
        ev.preventDefault();
        setStatus('Make an edit first: pick a direction or drag.', 'error');
      }
    });
  }
  // Canvases follow their CSS size (the layout is responsive).
  const ro = new ResizeObserver(() => {
    drawPoints();
    drawLoss();
  });
  ro.observe($('overlay'));
  ro.observe($('loss'));
}

wire();
start();
