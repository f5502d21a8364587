// The wirestate inspector page: plain browser JavaScript, served as is (no build step, no library).
//
// Live mode: the inspector (runtime/inspect/index.ts) sends, over the WebSocket at /ws,
//   hello {mode, history, retainClosed}, snapshot {now, server, connections}, then
//   line {line, stats} for every lifecycle step or close (a trace line, runtime/inspect/trace.ts),
//   tick {now, server, stats} with traffic counters, drop {connection} when a closed one is forgotten.
// Replay mode: the replay server (runtime/inspect/replay.ts) sends hello {mode: 'replay', file} and
//   trace {lines}; the page plays the lines through the same model.
//
// The diagram is Graphviz's SVG of the connection machine: each state is a <g class="node"> whose
// <title> is the state path with dots replaced by underscores (open_reading_flowing), each compound
// state a <g class="cluster"> titled cluster_<path>.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const FINAL = new Set(['closed', 'terminated']);
  const ZERO = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };

  const model = {
    mode: null,
    history: Infinity,
    connections: new Map(),
    server: '',
    /** serverNow - Date.now(): ages are measured on the server's clock. */
    skew: 0,
    /** In replay, the time of the last line applied. */
    replayNow: null,
    selected: null,
    /** Follow the newest connection until the user picks one. */
    follow: true,
  };

  // ------------------------------------------------------------------ model

  function newConnection(id, meta) {
    return {
      id,
      remoteAddress: meta.remoteAddress || '',
      protocol: meta.protocol || '',
      createdAt: meta.createdAt || meta.at || Date.now(),
      state: meta.state || 'connecting',
      value: meta.value || meta.state || 'connecting',
      stats: meta.stats || ZERO,
      steps: meta.steps || [],
      dropped: meta.dropped || 0,
      endedAt: meta.endedAt || null,
      close: meta.close || null,
    };
  }

  /** Applies one trace line (a step, or the close line) to the model. */
  function applyLine(line, stats) {
    let c = model.connections.get(line.connection);
    if (!c) {
      c = newConnection(line.connection, { remoteAddress: line.remoteAddress, protocol: line.protocol, createdAt: line.createdAt, at: line.at, state: line.from });
      model.connections.set(c.id, c);
      if (model.follow) model.selected = c.id;
    } else {
      if (line.remoteAddress !== undefined) c.remoteAddress = line.remoteAddress;
      if (line.protocol !== undefined) c.protocol = line.protocol;
      if (line.createdAt !== undefined) c.createdAt = line.createdAt;
    }
    if (stats) c.stats = stats;
    if (line.event === 'close') {
      c.close = { code: line.code, reason: line.reason || '', at: line.at };
      if (line.stats) c.stats = line.stats;
      if (c.endedAt === null) c.endedAt = line.at;
      return;
    }
    c.steps.push({ event: line.event, from: line.from, to: line.to, state: line.state, at: line.at });
    if (c.steps.length > model.history) {
      c.steps.shift();
      c.dropped++;
    }
    c.state = line.to;
    c.value = line.state;
    if (FINAL.has(line.to) && c.endedAt === null) c.endedAt = line.at;
  }

  function resetModel() {
    model.connections = new Map();
    model.replayNow = null;
    if (model.follow) model.selected = null;
  }

  // ------------------------------------------------------------------ formatting

  function shortEvent(event) {
    const after = /^xstate\.after\.([^.]+)/.exec(event);
    if (after) return 'after ' + after[1];
    return event;
  }

  function time(at) {
    const d = new Date(at);
    const pad = (n, w) => String(n).padStart(w || 2, '0');
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
  }

  function duration(ms) {
    if (ms < 0) ms = 0;
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 3600000) return Math.floor(ms / 60000) + ' min ' + Math.floor((ms % 60000) / 1000) + ' s';
    return Math.floor(ms / 3600000) + ' h ' + Math.floor((ms % 3600000) / 60000) + ' min';
  }

  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }

  function now() {
    return model.mode === 'replay' ? model.replayNow || 0 : Date.now() + model.skew;
  }

  /** The regions of a parallel state, as "reading: flowing · keepalive: waiting". */
  function regions(value) {
    if (!value || typeof value !== 'object') return '';
    const top = Object.keys(value)[0];
    const inner = value[top];
    if (!inner || typeof inner !== 'object') return '';
    return Object.keys(inner).map((k) => k + ': ' + leafName(inner[k])).join(' · ');
  }

  function leafName(value) {
    if (typeof value === 'string') return value;
    return Object.keys(value).map((k) => k + '.' + leafName(value[k])).join(', ');
  }

  // ------------------------------------------------------------------ diagrams

  const diagrams = { connection: null, server: null };

  /** Loads a Graphviz SVG inline and indexes its nodes and clusters by title. */
  function loadDiagram(name, container) {
    return fetch('diagrams/' + name + '.svg').then((res) => {
      if (!res.ok) return res.text().then((text) => { throw new Error(text || res.statusText); });
      return res.text();
    }).then((text) => {
      container.innerHTML = text.slice(text.indexOf('<svg'));
      const svg = container.querySelector('svg');
      svg.removeAttribute('width');
      svg.removeAttribute('height');
      const index = new Map();
      for (const g of svg.querySelectorAll('g.node, g.cluster')) {
        const title = g.querySelector(':scope > title');
        if (title) {
          index.set(title.textContent, g);
          g.setAttribute('data-state-id', title.textContent);
        }
      }
      diagrams[name] = { svg, index, lit: [] };
    }).catch((error) => {
      container.innerHTML = '';
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = 'diagram unavailable: ' + error.message;
      container.appendChild(p);
    });
  }

  /** The DOT ids a state value lights: its leaves, and the clusters of its compound states. */
  function activeIds(value, prefix) {
    prefix = prefix || '';
    if (typeof value === 'string') return [prefix + value];
    const ids = [];
    for (const key of Object.keys(value)) {
      ids.push('cluster_' + prefix + key);
      for (const id of activeIds(value[key], prefix + key + '_')) ids.push(id);
    }
    return ids;
  }

  function clearDiagram(diagram) {
    for (const g of diagram.lit) {
      g.classList.remove('lit', 'selected', 'selected-final');
      g.removeAttribute('data-count');
      for (const badge of g.querySelectorAll('.count')) badge.remove();
    }
    diagram.lit = [];
  }

  function light(diagram, id, cls) {
    const g = diagram.index.get(id);
    if (!g) return null;
    g.classList.add(cls);
    diagram.lit.push(g);
    return g;
  }

  function badge(g, count) {
    const box = g.getBBox();
    const ns = 'http://www.w3.org/2000/svg';
    const circle = document.createElementNS(ns, 'circle');
    circle.setAttribute('class', 'count');
    circle.setAttribute('cx', box.x + box.width);
    circle.setAttribute('cy', box.y);
    circle.setAttribute('r', 15);
    const text = document.createElementNS(ns, 'text');
    text.setAttribute('class', 'count');
    text.setAttribute('x', box.x + box.width);
    text.setAttribute('y', box.y + 7.5);
    text.setAttribute('text-anchor', 'middle');
    text.textContent = String(count);
    g.appendChild(circle);
    g.appendChild(text);
  }

  function renderDiagrams() {
    const diagram = diagrams.connection;
    if (diagram) {
      clearDiagram(diagram);
      const counts = new Map();
      for (const c of model.connections.values()) {
        if (c.endedAt !== null) continue;
        for (const id of activeIds(c.value)) counts.set(id, (counts.get(id) || 0) + 1);
      }
      for (const [id, count] of counts) {
        const g = light(diagram, id, 'lit');
        if (g) {
          g.setAttribute('data-count', String(count));
          if (g.classList.contains('node')) badge(g, count);
        }
      }
      const selected = model.connections.get(model.selected);
      if (selected) {
        for (const id of activeIds(selected.value)) light(diagram, id, selected.endedAt === null ? 'selected' : 'selected-final');
      }
    }
    const server = diagrams.server;
    if (server && model.server) {
      clearDiagram(server);
      light(server, model.server, 'lit');
    }
  }

  // ------------------------------------------------------------------ rendering

  let renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    setTimeout(render, 30);
  }

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function renderList() {
    const tbody = $('connections').tBodies[0];
    const rows = document.createDocumentFragment();
    // Live ones first (newest first), then closed ones (most recently closed first).
    const list = [...model.connections.values()].sort((a, b) => {
      const liveA = a.endedAt === null, liveB = b.endedAt === null;
      if (liveA !== liveB) return liveA ? -1 : 1;
      return liveA ? b.id - a.id : (b.endedAt - a.endedAt) || b.id - a.id;
    });
    let live = 0;
    for (const c of list) {
      if (c.endedAt === null) live++;
      const tr = document.createElement('tr');
      tr.dataset.id = c.id;
      tr.dataset.state = c.state;
      tr.dataset.messagesIn = c.stats.messagesIn;
      tr.dataset.messagesOut = c.stats.messagesOut;
      tr.dataset.bytesIn = c.stats.bytesIn;
      tr.dataset.bytesOut = c.stats.bytesOut;
      if (c.close) {
        tr.dataset.closeCode = c.close.code;
        tr.dataset.closeReason = c.close.reason;
      }
      if (c.endedAt !== null) tr.classList.add('ended');
      if (c.id === model.selected) tr.classList.add('selected');
      cell(tr, '#' + c.id);
      cell(tr, c.remoteAddress || '—');
      cell(tr, c.protocol || '—');
      const state = cell(tr, c.state, 'state');
      if (c.close) {
        const code = document.createElement('span');
        code.className = 'close-code';
        code.textContent = c.close.code + (c.close.reason ? ' “' + c.close.reason + '”' : '');
        state.appendChild(code);
      }
      cell(tr, c.stats.messagesIn + ' / ' + c.stats.messagesOut, 'num');
      cell(tr, bytes(c.stats.bytesIn) + ' / ' + bytes(c.stats.bytesOut), 'num');
      cell(tr, duration((c.endedAt !== null ? c.endedAt : now()) - c.createdAt), 'num');
      tr.onclick = () => {
        model.selected = c.id;
        model.follow = false;
        render();
      };
      rows.appendChild(tr);
    }
    tbody.replaceChildren(rows);
    $('no-connections').hidden = list.length > 0;
    const counts = $('counts');
    counts.dataset.live = live;
    counts.dataset.closed = list.length - live;
    counts.textContent = live + ' live, ' + (list.length - live) + ' closed';
  }

  function renderTimeline() {
    const ol = $('timeline');
    const c = model.connections.get(model.selected);
    const items = document.createDocumentFragment();
    ol.dataset.connection = c ? c.id : '';
    if (!c) {
      $('timeline-title').textContent = '— select a connection';
      ol.replaceChildren();
      return;
    }
    $('timeline-title').textContent = 'of #' + c.id + (c.remoteAddress ? ' from ' + c.remoteAddress : '') + (c.protocol ? ' (' + c.protocol + ')' : '');
    if (c.dropped > 0) {
      const li = document.createElement('li');
      li.className = 'dropped';
      li.textContent = '… ' + c.dropped + ' earlier steps not kept (history: ' + model.history + ')';
      items.appendChild(li);
    }
    const created = document.createElement('li');
    created.className = 'created';
    created.innerHTML = '<span class="at"></span><span><span class="to">connecting</span></span>';
    created.querySelector('.at').textContent = time(c.createdAt);
    if (c.dropped === 0) items.appendChild(created);
    for (const step of c.steps) {
      const li = document.createElement('li');
      li.className = 'step';
      li.dataset.event = step.event;
      li.dataset.from = step.from;
      li.dataset.to = step.to;
      li.dataset.at = step.at;
      const at = document.createElement('span');
      at.className = 'at';
      at.textContent = time(step.at);
      const what = document.createElement('span');
      const event = document.createElement('span');
      event.className = 'event';
      event.textContent = shortEvent(step.event);
      event.title = step.event;
      const to = document.createElement('span');
      to.className = 'to';
      to.textContent = step.to;
      what.append(event, ' → ', to);
      const detail = regions(step.state);
      if (detail) {
        const r = document.createElement('span');
        r.className = 'regions';
        r.textContent = detail;
        what.appendChild(r);
      }
      li.append(at, what);
      items.appendChild(li);
    }
    if (c.close) {
      const li = document.createElement('li');
      li.className = 'close' + (c.close.code === 1000 || (c.close.code >= 3000 && c.close.code <= 4999) ? ' clean' : '');
      li.dataset.code = c.close.code;
      li.dataset.reason = c.close.reason;
      const at = document.createElement('span');
      at.className = 'at';
      at.textContent = time(c.close.at);
      const what = document.createElement('span');
      what.append('close ');
      const code = document.createElement('span');
      code.className = 'code';
      code.textContent = String(c.close.code);
      what.appendChild(code);
      if (c.close.reason) what.append(' “' + c.close.reason + '”');
      li.append(at, what);
      items.appendChild(li);
    }
    ol.replaceChildren(items);
  }

  function render() {
    renderPending = false;
    const server = $('server-state');
    server.textContent = model.server || (model.mode === 'replay' ? 'not traced' : '…');
    server.dataset.state = model.server;
    renderList();
    renderTimeline();
    renderDiagrams();
    if (model.mode === 'replay') renderReplayPosition();
  }

  // ------------------------------------------------------------------ live mode

  function onLive(message) {
    switch (message.type) {
      case 'snapshot':
        model.skew = message.now - Date.now();
        model.server = message.server;
        model.connections = new Map();
        for (const view of message.connections) model.connections.set(view.id, newConnection(view.id, view));
        if (model.follow || !model.connections.has(model.selected)) {
          const ids = [...model.connections.keys()];
          model.selected = ids.length ? ids[ids.length - 1] : null;
        }
        document.body.dataset.snapshot = 'true';
        break;
      case 'line':
        applyLine(message.line, message.stats);
        break;
      case 'tick':
        model.skew = message.now - Date.now();
        model.server = message.server;
        for (const [id, stats] of message.stats) {
          const c = model.connections.get(id);
          if (c) c.stats = stats;
        }
        break;
      case 'drop':
        model.connections.delete(message.connection);
        if (model.selected === message.connection) model.selected = null;
        break;
    }
    scheduleRender();
  }

  // ------------------------------------------------------------------ replay mode

  const replay = { lines: [], position: 0, playing: false, timer: null };

  function replayTo(position) {
    position = Math.max(0, Math.min(position, replay.lines.length));
    if (position < replay.position) {
      resetModel();
      replay.position = 0;
    }
    while (replay.position < position) {
      const line = replay.lines[replay.position++];
      applyLine(line);
      model.replayNow = line.at;
    }
    if (position === 0) model.replayNow = replay.lines.length ? replay.lines[0].at : null;
    render();
  }

  function renderReplayPosition() {
    const pos = $('replay-position');
    const total = replay.lines.length;
    pos.dataset.position = replay.position;
    pos.dataset.total = total;
    const at = model.replayNow ? time(model.replayNow) : '';
    pos.textContent = 'line ' + replay.position + ' / ' + total + (at ? ' · ' + at : '');
    $('replay-seek').max = total;
    $('replay-seek').value = replay.position;
    $('replay-play').textContent = replay.playing ? 'pause' : 'play';
    document.body.dataset.playing = replay.playing;
  }

  function pause() {
    replay.playing = false;
    clearTimeout(replay.timer);
    replay.timer = null;
  }

  function play() {
    if (replay.position >= replay.lines.length) replayTo(0);
    replay.playing = true;
    playNext();
  }

  function playNext() {
    if (!replay.playing) return;
    if (replay.position >= replay.lines.length) {
      pause();
      render();
      return;
    }
    const previous = replay.lines[replay.position - 1];
    const next = replay.lines[replay.position];
    const speed = Number($('replay-speed').value) || 1;
    // Real gaps, sped up; a long quiet stretch is shortened to a second.
    const delay = previous ? Math.min(1000, Math.max(0, (next.at - previous.at) / speed)) : 0;
    replay.timer = setTimeout(() => {
      replayTo(replay.position + 1);
      playNext();
    }, delay);
    render();
  }

  function setUpReplay(file) {
    $('replay').hidden = false;
    $('replay-file').textContent = file;
    $('replay-start').onclick = () => (pause(), replayTo(0));
    $('replay-prev').onclick = () => (pause(), replayTo(replay.position - 1));
    $('replay-next').onclick = () => (pause(), replayTo(replay.position + 1));
    $('replay-end').onclick = () => (pause(), replayTo(replay.lines.length));
    $('replay-play').onclick = () => (replay.playing ? (pause(), render()) : play());
    $('replay-seek').oninput = (e) => (pause(), replayTo(Number(e.target.value)));
  }

  function onReplay(message) {
    if (message.type === 'trace') {
      pause();
      replay.lines = message.lines;
      replay.position = 0;
      resetModel();
      replayTo(0);
      play();
      document.body.dataset.trace = 'true';
    } else if (message.type === 'error') {
      $('replay-file').textContent = message.message;
      document.body.dataset.error = message.message;
    }
  }

  // ------------------------------------------------------------------ connection to the inspector

  let retry = 500;
  function connect() {
    const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
    document.body.dataset.link = 'connecting';
    ws.onopen = () => {
      retry = 500;
      document.body.dataset.link = 'open';
      $('link').textContent = 'connected';
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'hello') {
        model.mode = message.mode;
        document.body.dataset.mode = message.mode;
        $('mode').textContent = message.mode === 'replay' ? 'replay' : 'live';
        if (message.mode === 'live') model.history = message.history;
        else setUpReplay(message.file);
        return;
      }
      if (model.mode === 'replay') onReplay(message);
      else onLive(message);
    };
    ws.onclose = (event) => {
      document.body.dataset.link = 'closed';
      // A replay needs nothing more once it has the trace; a live view reconnects and resynchronizes.
      if (model.mode === 'replay' && replay.lines.length) {
        $('link').textContent = 'trace loaded';
        return;
      }
      $('link').textContent = 'disconnected (' + event.code + ') — retrying';
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  Promise.all([loadDiagram('connection', $('diagram')), loadDiagram('server', $('server-diagram'))]).then(() => {
    document.body.dataset.ready = 'true';
    render();
  });
  connect();
  // Ages move on even when nothing happens.
  setInterval(() => {
    if (model.mode === 'live' && model.connections.size) scheduleRender();
  }, 1000);
})();
