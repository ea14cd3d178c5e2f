// The live timeline: one row per thing that happened in the run, built from the stream's
// events as they arrive. A tool call is one row from its `tool_call` to its
// `tool_result_applied` (its `tool_progress` events update it), heartbeats fold into the
// tool call they waited on, or else into one row per quiet stretch, and the `final` event
// shows the result or the error with its code. Rows are
// built with DOM calls only (the page's policy allows no HTML from strings).
//
// Each row: `data-kind`, `data-seqs` (every seq it stands for, heartbeats folded into it
// included, counted in `data-heartbeats`), a `.summary` that says what
// happened and nothing that differs between two runs of the same script (ids, times), and
// a `.detail` with the rest.

const MAX_PREVIEW = 400;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A value as short JSON: long arrays by their length and first items, long text cut. */
export function preview(value) {
  if (value === undefined) return 'undefined';
  let text;
  if (Array.isArray(value) && value.length > 10) {
    const head = JSON.stringify(value.slice(0, 2));
    text = `[${value.length} items: ${head.slice(1, -1)}, …]`;
  } else {
    text = JSON.stringify(value) ?? String(value);
  }
  return text.length > MAX_PREVIEW ? `${text.slice(0, MAX_PREVIEW - 1)}…` : text;
}

function formatTime(ms) {
  return ms < 10_000 ? `+${Math.round(ms)} ms` : `+${(ms / 1000).toFixed(1)} s`;
}

function beats(count) {
  return count === 0 ? '' : ` · ${count} heartbeat${count === 1 ? '' : 's'} meanwhile`;
}

function short(text, keep = 16) {
  return text.length > keep ? `${text.slice(0, keep)}…` : text;
}

export class Timeline {
  #list;
  #calls = new Map();
  #heartbeats;

  constructor(list) {
    this.#list = list;
  }

  reset() {
    this.#list.replaceChildren();
    this.#calls.clear();
    this.#heartbeats = undefined;
  }

  #row(kind, seq, at, label, summary) {
    const row = element('li', `row kind-${kind}`);
    row.dataset.kind = kind;
    row.dataset.seqs = seq === undefined ? '' : String(seq);
    const body = element('div', 'body');
    body.append(element('span', 'summary', summary), element('span', 'detail'));
    row.append(
      element('span', 'seq', seq === undefined ? '' : `#${seq}`),
      element('span', 'time', formatTime(at)),
      element('span', 'label', label),
      body,
    );
    this.#list.append(row);
    row.scrollIntoView({ block: 'nearest' });
    if (kind !== 'heartbeat') this.#heartbeats = undefined;
    return row;
  }

  #detail(row, text) {
    row.querySelector('.detail').textContent = text;
  }

  #addSeq(row, seq) {
    const seqs = row.dataset.seqs.split(' ');
    seqs.push(String(seq));
    row.dataset.seqs = seqs.join(' ');
    row.querySelector('.seq').textContent = `#${seqs[0]}–${seq}`;
  }

  // What the wire carried for this event when the stream is encrypted.
  #wire(row, envelope) {
    const { nonceB64, ciphertextB64 } = envelope.payload;
    let wire = row.querySelector('.wire');
    if (wire === null) {
      wire = element('div', 'wire');
      wire.dataset.envelopes = '0';
      row.querySelector('.body').append(wire);
    }
    const count = Number(wire.dataset.envelopes) + 1;
    wire.dataset.envelopes = String(count);
    const bytes = Math.floor((ciphertextB64.length * 3) / 4);
    const line = element('span', 'envelope');
    line.append(
      element('span', 'lock', 'enc'),
      ` #${envelope.seq} nonce `,
      element('code', undefined, short(nonceB64, 16)),
      ` ${bytes} bytes: `,
      element('code', undefined, short(ciphertextB64, 44)),
    );
    wire.append(line);
  }

  /** Adds `event` (received `at` ms into the run; `envelope` is what carried it, if encrypted). */
  event(event, at, envelope) {
    const row = this.#place(event, at);
    if (envelope !== undefined && row !== undefined) this.#wire(row, envelope);
    return row;
  }

  #place({ seq, type, payload, sessionId }, at) {
    switch (type) {
      case 'session_init': {
        const row = this.#row('session', seq, at, 'session', 'session started');
        const encryption = payload.encryption;
        this.#detail(
          row,
          `${sessionId} · ${encryption?.enabled ? `encrypted: AES-256-GCM under key ${encryption.keyId}` : 'plaintext stream'}`,
        );
        return row;
      }
      case 'tool_call': {
        const row = this.#row('tool', seq, at, 'tool', `${payload.toolName}(${preview(payload.args)})`);
        this.#detail(row, 'called');
        row.classList.add('pending');
        this.#calls.set(payload.callId, { row, at, phase: 'called', beats: 0 });
        return row;
      }
      case 'tool_progress':
      case 'tool_result_applied': {
        const call = this.#calls.get(payload.callId);
        if (call === undefined) return this.#other(seq, type, payload, at);
        this.#addSeq(call.row, seq);
        if (type === 'tool_progress') {
          call.phase = `${payload.phase}…`;
          this.#detail(call.row, call.phase + beats(call.beats));
        } else {
          call.row.classList.remove('pending');
          this.#detail(call.row, `result applied in ${Math.round(at - call.at)} ms${beats(call.beats)}`);
          this.#calls.delete(payload.callId);
        }
        return call.row;
      }
      case 'stdout':
        return this.#row('console', seq, at, 'console', payload.chunk.replace(/\n$/, ''));
      case 'log': {
        const data = payload.data === undefined ? '' : ` ${preview(payload.data)}`;
        return this.#row('console', seq, at, `console.${payload.level}`, `${payload.message}${data}`);
      }
      case 'heartbeat': {
        // While a tool call is pending, the heartbeat says the run is waiting on it.
        const waiting = [...this.#calls.values()].at(-1);
        if (waiting !== undefined) {
          waiting.beats += 1;
          this.#addSeq(waiting.row, seq);
          waiting.row.dataset.heartbeats = String(waiting.beats);
          this.#detail(waiting.row, waiting.phase + beats(waiting.beats));
          return waiting.row;
        }
        if (this.#heartbeats === undefined) {
          const row = this.#row('heartbeat', seq, at, 'heartbeat', 'heartbeat');
          this.#heartbeats = { row, count: 1 };
        } else {
          this.#heartbeats.count += 1;
          this.#addSeq(this.#heartbeats.row, seq);
          this.#heartbeats.row.querySelector('.summary').textContent = `heartbeat ×${this.#heartbeats.count}`;
        }
        this.#detail(this.#heartbeats.row, `last at ${payload.ts}`);
        return this.#heartbeats.row;
      }
      case 'final':
        return this.#final(seq, payload, at);
      default:
        return this.#other(seq, type, payload, at);
    }
  }

  #final(seq, payload, at) {
    const summary = payload.ok
      ? `result ${preview(payload.result)}`
      : `error ${payload.error.code}: ${payload.error.message}`;
    const row = this.#row('final', seq, at, 'final', summary);
    row.dataset.outcome = payload.ok ? 'ok' : 'error';
    if (!payload.ok) row.dataset.code = payload.error.code;
    const stats = payload.stats ?? {};
    this.#detail(
      row,
      `${stats.durationMs} ms in the broker · ${stats.toolCallCount} tool calls · ${stats.stdoutBytes} bytes of console output`,
    );
    for (const { row: call } of this.#calls.values()) {
      call.classList.remove('pending');
      this.#detail(call, 'no result: the run ended');
    }
    this.#calls.clear();
    return row;
  }

  #other(seq, type, payload, at) {
    return this.#row(type.replaceAll('_', '-'), seq, at, type, preview(payload));
  }

  /** A row that is not an event: the connection dropped, a replay began, or the page failed. */
  note(kind, at, summary, detail = '') {
    const row = this.#row(kind, undefined, at, kind === 'failure' ? 'error' : 'connection', summary);
    this.#detail(row, detail);
    return row;
  }
}
