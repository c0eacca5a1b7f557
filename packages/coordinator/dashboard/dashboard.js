// The live dashboard: reads the run's events from /events (Server-Sent Events, history first) and
// draws them with uPlot. The state is on window.ddpDashboard (tests read it).
'use strict';
(function () {
  const qs = document.currentScript.dataset.qs || '';
  const COLORS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#ff9da6', '#9d755d'];
  const $ = (id) => document.getElementById(id);

  const state = {
    start: null, // the start event: the job's configuration
    steps: [], // step numbers, one per step event
    loss: [],
    stepTimes: [], // when each step event was emitted (ms)
    samples: [],
    epochs: [],
    accuracy: [],
    ranks: new Map(), // rank -> { backend, state, computeMs: [] aligned with steps, last: {...} }
    done: null,
    lastLoss: null,
  };
  window.ddpDashboard = state;

  // ---- charts
  function chart(el, series, xLabel, yLabel, scales = {}) {
    const opts = {
      width: el.clientWidth || 560,
      height: 240,
      scales: { x: { time: false }, ...scales },
      axes: [{ label: xLabel }, { label: yLabel }],
      series: [{ label: xLabel }, ...series],
      legend: { live: true },
    };
    return new uPlot(opts, [[], ...series.map(() => [])], el);
  }
  const lossChart = chart($('loss-chart'), [{ label: 'loss', stroke: COLORS[0], width: 1.5 }], 'step', 'loss');
  const accChart = chart($('accuracy-chart'), [{ label: 'test accuracy', stroke: COLORS[2], width: 2, points: { size: 7 } }], 'epoch', 'accuracy', {
    x: { time: false, range: (u, min, max) => [0, Math.max(max || 1, state.start?.epochs ?? 1)] },
    y: { range: [0, 1] },
  });
  let rankChart = null;
  let rankChartRanks = '';

  function drawRankChart() {
    const ranks = [...state.ranks.keys()].filter((r) => state.ranks.get(r).computeMs.length).sort((a, b) => a - b);
    const key = ranks.join(',');
    if (key !== rankChartRanks) {
      rankChart?.destroy();
      rankChartRanks = key;
      rankChart = ranks.length ? chart($('rank-chart'), ranks.map((r) => ({ label: `rank ${r}`, stroke: COLORS[r % COLORS.length], width: 1 })), 'step', 'ms') : null;
    }
    rankChart?.setData([state.steps, ...ranks.map((r) => state.ranks.get(r).computeMs)]);
  }

  // ---- figures, tables
  const fmt = (x, d = 4) => (typeof x === 'number' && isFinite(x) ? x.toFixed(d) : '–');
  const clock = (t) => new Date(t).toLocaleTimeString();
  function duration(s) {
    if (!isFinite(s) || s < 0) return '–';
    s = Math.round(s);
    return s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
  }

  function drawFigures() {
    const n = state.steps.length;
    const step = n ? state.steps[n - 1] : 0;
    const total = state.start?.totalSteps;
    $('step').textContent = total ? `${step} / ${total}` : String(step);
    $('progress').value = total ? Math.min(1, step / total) : 0;
    $('epoch').textContent = n ? `${state.epochOf}${state.start ? ` / ${state.start.epochs}` : ''}` : '–';
    $('loss').textContent = fmt(state.lastLoss);
    const acc = state.done?.testAccuracy ?? state.accuracy[state.accuracy.length - 1];
    $('accuracy').textContent = acc === undefined ? '–' : `${(acc * 100).toFixed(2)}%`;
    // Rate and ETA over the last 20 steps (evaluation pauses fall between epochs and count too).
    const k = Math.max(0, n - 21);
    const dt = (state.stepTimes[n - 1] - state.stepTimes[k]) / 1000;
    let samples = 0;
    for (let i = k + 1; i < n; i++) samples += state.samples[i];
    const rate = state.done ? state.done.samplesPerSec : dt > 0 ? samples / dt : NaN;
    $('rate').textContent = fmt(rate, 0);
    const perStep = dt > 0 ? dt / (n - 1 - k) : NaN;
    $('eta').textContent = state.done ? 'done' : total ? duration((total - step) * perStep) : '–';
  }

  function drawWorkers() {
    const rows = [...state.ranks.entries()].sort((a, b) => a[0] - b[0]).map(([rank, w]) => {
      const t = w.last;
      const sum = t ? t.computeMs + t.allreduceMs + t.waitingMs || 1 : 1;
      const bar = t ? ['compute', 'allreduce', 'waiting'].map((p) => `<span class="${p}" style="width:${(100 * t[p + 'Ms']) / sum}%"></span>`).join('') : '';
      return `<tr class="${w.state === 'lost' ? 'bad' : ''}" data-rank="${rank}"><td>${rank}</td><td>${esc(w.host ?? '?')}</td><td>${esc(w.backend ?? '?')}</td><td>${esc(w.state)}</td>` +
        `<td>${fmt(t?.computeMs, 1)}</td><td>${fmt(t?.allreduceMs, 1)}</td><td>${fmt(t?.waitingMs, 1)}</td><td><div class="bar">${bar}</div></td></tr>`;
    });
    $('workers').tBodies[0].innerHTML = rows.join('');
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  function log(e, text, bad) {
    const tr = document.createElement('tr');
    if (bad) tr.className = 'bad';
    tr.innerHTML = `<td>${clock(e.time)}</td><td>${esc(e.event)}</td><td>${esc(text)}</td>`;
    $('log').tBodies[0].append(tr);
  }

  function drawConfig() {
    const rows = Object.entries(state.start).filter(([k]) => k !== 'event' && k !== 'time');
    $('config').tBodies[0].innerHTML = rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</td></tr>`).join('');
  }

  // ---- events
  function rank(r) {
    if (!state.ranks.has(r)) state.ranks.set(r, { backend: null, state: 'joined', computeMs: new Array(state.steps.length).fill(null), last: null });
    return state.ranks.get(r);
  }

  function onEvent(e) {
    switch (e.event) {
      case 'start':
        state.start = e;
        drawConfig();
        log(e, `${e.workers} worker(s), ${e.dataset}, ${e.epochs} epoch(s), batch ${e.batchSize}, ${e.backend}`);
        break;
      case 'worker_joined':
        Object.assign(rank(e.rank), { backend: e.backend ?? null, host: e.host ?? null, state: 'joined' });
        log(e, `rank ${e.rank}${e.backend ? ` (${e.backend})` : ''}; ${e.workers} worker(s)`);
        break;
      case 'worker_lost':
        rank(e.rank).state = 'lost';
        log(e, `rank ${e.rank} at step ${e.step}: ${e.code} ${e.reason}`, true);
        break;
      case 'ring_formed':
        log(e, `ring ${e.generation} of ${e.size}: ${e.ranks.join(' → ')} from step ${e.step}`);
        break;
      case 'straggler':
        log(e, `step ${e.step}: rank ${e.rank}${e.host ? ` (${e.host})` : ''} took ${fmt(e.waitedMs, 0)} ms, median ${fmt(e.medianMs, 0)} ms${e.backupRank >= 0 ? `; shard also given to rank ${e.backupRank}` : ''}`, true);
        break;
      case 'stall':
        log(e, `step ${e.step}: waiting ${fmt(e.waitedMs / 1000, 0)} s for ${e.waitingFor.map((w) => `rank ${w.rank} (${w.host}, last: ${w.last}, ${fmt(w.agoMs / 1000, 1)} s ago)`).join(', ')}`, true);
        break;
      case 'step':
        state.steps.push(e.step);
        state.loss.push(e.loss);
        state.samples.push(e.samples);
        state.stepTimes.push(e.time);
        state.lastLoss = e.loss;
        state.epochOf = e.epoch;
        for (const w of state.ranks.values()) w.computeMs.push(null);
        for (const t of e.ranks ?? []) {
          const w = rank(t.rank);
          w.computeMs[state.steps.length - 1] = t.computeMs;
          w.last = t;
          if (w.state !== 'lost') w.state = 'training';
        }
        break;
      case 'epoch':
        state.epochs.push(e.epoch);
        state.accuracy.push(e.testAccuracy);
        log(e, `epoch ${e.epoch}: train loss ${fmt(e.trainLoss)}, test loss ${fmt(e.testLoss)}, test accuracy ${fmt(e.testAccuracy * 100, 2)}%`);
        break;
      case 'saved':
        log(e, `step ${e.step}: saved to ${e.path}`);
        break;
      case 'checkpoint':
        log(e, `step ${e.step}: checkpoint ${e.path} (${fmt(e.bytes / 1e6, 1)} MB, ${fmt(e.seconds, 2)} s)`);
        break;
      case 'resumed':
        log(e, `resumed from ${e.path} after step ${e.step}`);
        break;
      case 'done':
        state.done = e;
        setStatus('done', 'done');
        log(e, `${e.steps} steps, test accuracy ${fmt(e.testAccuracy * 100, 2)}%, ${fmt(e.samplesPerSec, 0)} samples/s, ${fmt(e.wallSeconds, 1)} s`);
        break;
      case 'error':
        setStatus('failed', `failed: ${e.code ?? 'error'}`);
        log(e, `${e.code ?? ''} ${e.message}`, true);
        break;
      default:
        log(e, '');
    }
    scheduleDraw();
  }

  // Redraw at most once a frame, however many events arrived (the history comes in one burst).
  let pending = false;
  function scheduleDraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      lossChart.setData([state.steps, state.loss]);
      accChart.setData([state.epochs, state.accuracy]);
      drawRankChart();
      drawFigures();
      drawWorkers();
      state.drawn = state.steps.length; // how many steps the charts show
    });
  }

  function setStatus(cls, text) {
    $('status').className = `status ${cls}`;
    $('status').textContent = text;
  }

  const source = new EventSource(`events${qs}`);
  let opened = false;
  source.onopen = () => {
    if (opened) return location.reload(); // a reconnect replays the whole history: start afresh
    opened = true;
    setStatus('live', 'live');
  };
  source.onmessage = (m) => onEvent(JSON.parse(m.data));
  source.onerror = () => {
    if (state.done) source.close(); // the coordinator exits after the run: nothing more will come
    else setStatus('lost', 'disconnected, retrying…');
  };
  window.addEventListener('resize', () => {
    for (const c of [lossChart, accChart, rankChart]) c?.setSize({ width: c.root.parentElement.clientWidth, height: 240 });
  });
})();
