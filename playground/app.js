// The playground page: pick or write a script, set its limits, run it on the broker and
// watch its event stream arrive (see timeline.js), optionally encrypted end to end (see
// crypto.js), through drops and replays (see stream.js).

import { StreamDecryptor } from './crypto.js';
import { EXAMPLES } from './examples.js';
import { SeqRecord } from './seq-record.js';
import { HttpError, RunStream } from './stream.js';
import { Timeline } from './timeline.js';

const $ = (id) => document.getElementById(id);
const ui = {
  example: $('example'),
  note: $('example-note'),
  code: $('code'),
  timeout: $('timeout'),
  maxToolCalls: $('max-tool-calls'),
  memory: $('memory'),
  token: $('token'),
  encrypt: $('encrypt'),
  run: $('run'),
  cancel: $('cancel'),
  drop: $('drop'),
  status: $('status'),
  wire: $('wire'),
  timeline: $('timeline'),
};

const timeline = new Timeline(ui.timeline);
const canEncrypt = Boolean(globalThis.crypto?.subtle);
// The run being followed, and the time into it (ms) for rows that are not events.
let current;
let elapsed = () => 0;

function setStatus(state, text, outcome = '') {
  ui.status.dataset.state = state;
  ui.status.dataset.outcome = outcome;
  ui.status.textContent = text;
}

function showExample(id) {
  const example = EXAMPLES.find((e) => e.id === id) ?? EXAMPLES[0];
  ui.example.value = example.id;
  ui.code.value = example.code;
  ui.note.textContent = example.note;
}

function authHeaders() {
  const token = ui.token.value.trim();
  return token === '' ? {} : { authorization: `Bearer ${token}` };
}

// A limit field's number; an empty field leaves the broker's own limit.
function readLimit(input, label) {
  if (input.value.trim() === '') return undefined;
  const value = Number(input.value);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${label} must be a non-negative number`);
  return value;
}

// The limits as the request sends them.
function limits() {
  const memoryMiB = readLimit(ui.memory, 'Memory');
  return {
    timeout: readLimit(ui.timeout, 'Timeout'),
    maxToolCalls: readLimit(ui.maxToolCalls, 'Max tool calls'),
    memoryLimit: memoryMiB === undefined ? undefined : Math.round(memoryMiB * 1024 * 1024),
  };
}

function describe(error) {
  if (error instanceof HttpError) return [`${error.status} ${error.code}`, error.message];
  return [error.name, error.message];
}

async function run() {
  const started = performance.now();
  const at = () => performance.now() - started;
  elapsed = at;
  // Which run the status is about (a test waits for the end of its own run).
  ui.status.dataset.run = String(Number(ui.status.dataset.run) + 1);
  const record = new SeqRecord(ui.wire);
  const encrypted = ui.encrypt.checked;
  timeline.reset();
  ui.run.disabled = true;
  ui.encrypt.disabled = true;
  setStatus('connecting', 'Connecting…');
  let decryptor;
  let stream;
  try {
    const body = { code: ui.code.value, ...limits() };
    if (encrypted) {
      decryptor = await StreamDecryptor.create();
      body.encryption = { mode: 'required', clientHello: decryptor.hello };
    }
    stream = new RunStream({
      headers: authHeaders(),
      handle: async (message) => {
        const { repeated, skipped } = record.saw(message.seq);
        if (skipped.length > 0) timeline.note('anomaly', at(), `missing #${skipped.join(', #')}`);
        if (repeated) {
          timeline.note('anomaly', at(), `#${message.seq} arrived again`);
          return false;
        }
        let event = message;
        if (message.type === 'enc') {
          if (decryptor === undefined) throw new Error(`#${message.seq} is encrypted, but this run asked for plaintext`);
          event = await decryptor.open(message);
        } else if (decryptor !== undefined && message.type !== 'session_init') {
          throw new Error(`#${message.seq} (${message.type}) arrived in plaintext on an encrypted stream`);
        }
        if (event.type === 'session_init') {
          if (decryptor !== undefined) await decryptor.accept(event.payload.encryption, event.sessionId);
          ui.cancel.disabled = false;
          ui.drop.disabled = false;
          setStatus('running', `Running ${event.sessionId}${encrypted ? ' (encrypted)' : ''}`);
        }
        timeline.event(event, at(), message.type === 'enc' ? message : undefined);
        return event.type === 'final';
      },
      onConnection: (change) => {
        if (change.state === 'dropped') {
          timeline.note(
            'connection',
            at(),
            `connection ${change.onPurpose ? 'dropped' : 'lost'} after #${change.afterSeq}`,
            'the run goes on in the broker',
          );
        } else if (change.state === 'reconnecting') {
          setStatus('reconnecting', `Reconnecting (attempt ${change.attempt}) from #${change.fromSeq}…`);
        } else if (change.state === 'connected' && change.fromSeq !== undefined) {
          record.reconnected();
          timeline.note('connection', at(), `reconnected: replay from #${change.fromSeq}`, `GET /sessions/:id/stream?fromSeq=${change.fromSeq}`);
          setStatus('running', `Running ${change.sessionId}${encrypted ? ' (encrypted)' : ''}`);
        }
      },
    });
    current = stream;
    await stream.execute(body);
    const final = ui.timeline.querySelector('[data-kind="final"]');
    const ok = final?.dataset.outcome === 'ok';
    setStatus('finished', ok ? 'Completed' : `Failed: ${final?.dataset.code}`, ok ? 'ok' : 'error');
  } catch (error) {
    const [title, message] = describe(error);
    timeline.note('failure', at(), `${title}: ${message}`, stream?.sessionId ? `session ${stream.sessionId}` : '');
    setStatus('error', `${title}: ${message}`);
  } finally {
    current = undefined;
    ui.run.disabled = false;
    ui.encrypt.disabled = !canEncrypt;
    ui.cancel.disabled = true;
    ui.drop.disabled = true;
  }
}

async function cancel() {
  const sessionId = current?.sessionId;
  if (sessionId === undefined) return;
  ui.cancel.disabled = true;
  try {
    const response = await fetch(`/sessions/${encodeURIComponent(sessionId)}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders() },
      body: '{}',
    });
    if (!response.ok) throw new Error(`cancel answered ${response.status}`);
  } catch (error) {
    timeline.note('failure', elapsed(), `Cancel failed: ${error.message}`);
  }
}

function drop() {
  current?.drop();
}

for (const example of EXAMPLES) {
  const option = document.createElement('option');
  option.value = example.id;
  option.textContent = example.title;
  ui.example.append(option);
}
// The token field sits in a form only so browsers handle it as a password; never submitted.
$('credentials').addEventListener('submit', (event) => event.preventDefault());
ui.example.addEventListener('change', () => showExample(ui.example.value));
ui.run.addEventListener('click', run);
ui.cancel.addEventListener('click', cancel);
ui.drop.addEventListener('click', drop);
ui.code.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    if (!ui.run.disabled) run();
  } else if (event.key === 'Tab' && !event.shiftKey) {
    event.preventDefault();
    ui.code.setRangeText('  ', ui.code.selectionStart, ui.code.selectionEnd, 'end');
  }
});
showExample(new URLSearchParams(location.search).get('example'));
if (!canEncrypt) {
  ui.encrypt.disabled = true;
  ui.encrypt.title = 'WebCrypto needs a secure context: open the page from 127.0.0.1 or over https';
}
setStatus('idle', 'Ready');
