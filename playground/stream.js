// One run's connection to the broker: `POST /execute` answers with the NDJSON stream of
// the run; when that connection ends before the `final` event (dropped on purpose, or by
// the network), the run goes on in the broker and the stream is picked up again with
// `GET /sessions/:id/stream?fromSeq=<last seq + 1>`, which replays what was missed and then
// goes on live. A line is only counted once it was read whole and handled, so an event cut
// off by a drop is asked for again.

export class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Waits between reconnection attempts (ms); a run whose stream cannot be reached after
// all of them is given up by the page (the broker keeps running it).
const RETRY_DELAYS = [0, 250, 500, 1000, 2000, 4000];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function httpError(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON: the status says enough.
  }
  return new HttpError(response.status, body.code ?? `HTTP_${response.status}`, body.message ?? response.statusText);
}

export class RunStream {
  #headers;
  #handle;
  #onConnection;
  #controller;
  #sessionId;
  #lastSeq = 0;
  #finished = false;

  /**
   * `handle(message)` is awaited for every line in order (a `final` event must make it
   * return true); `onConnection({state, ...})` hears of connects, drops and reconnects.
   */
  constructor({ headers = {}, handle, onConnection = () => {} }) {
    this.#headers = headers;
    this.#handle = handle;
    this.#onConnection = onConnection;
  }

  get sessionId() {
    return this.#sessionId;
  }

  get lastSeq() {
    return this.#lastSeq;
  }

  /** Starts the run; resolves once its `final` event was handled. */
  async execute(body) {
    this.#controller = new AbortController();
    const response = await fetch('/execute', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson', ...this.#headers },
      body: JSON.stringify(body),
      signal: this.#controller.signal,
    });
    if (!response.ok) throw await httpError(response);
    this.#sessionId = response.headers.get('x-session-id');
    this.#onConnection({ state: 'connected', sessionId: this.#sessionId });
    await this.#read(response, this.#controller.signal);
    while (!this.#finished) await this.#reconnect();
  }

  /** Cuts the current connection, as a network failure would; the stream reconnects by itself. */
  drop() {
    if (this.#finished || this.#controller === undefined) return false;
    this.#controller.abort(new DOMException('Connection dropped on purpose', 'AbortError'));
    return true;
  }

  async #reconnect() {
    for (let attempt = 0; attempt < RETRY_DELAYS.length; attempt++) {
      await sleep(RETRY_DELAYS[attempt]);
      const fromSeq = this.#lastSeq + 1;
      this.#onConnection({ state: 'reconnecting', fromSeq, attempt: attempt + 1 });
      this.#controller = new AbortController();
      let response;
      try {
        response = await fetch(`/sessions/${encodeURIComponent(this.#sessionId)}/stream?fromSeq=${fromSeq}`, {
          headers: { accept: 'application/x-ndjson', ...this.#headers },
          signal: this.#controller.signal,
        });
      } catch {
        continue;
      }
      // The session is gone (or the credentials are refused): retrying cannot help.
      if (response.status >= 400 && response.status < 500) throw await httpError(response);
      if (!response.ok) continue;
      this.#onConnection({ state: 'connected', sessionId: this.#sessionId, fromSeq });
      await this.#read(response, this.#controller.signal);
      return;
    }
    throw new Error(`The stream could not be reached again after ${RETRY_DELAYS.length} attempts`);
  }

  // Reads NDJSON lines until the final event, the end of the body, or an abort.
  async #read(response, signal) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      while (!signal.aborted) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let newline;
        while (!signal.aborted && (newline = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (line.trim() === '') continue;
          const message = JSON.parse(line);
          this.#sessionId ??= message.sessionId;
          if (await this.#handle(message)) {
            this.#finished = true;
          }
          this.#lastSeq = Math.max(this.#lastSeq, message.seq);
          if (this.#finished) return;
        }
      }
    } catch (error) {
      // A drop or a network failure ends this connection; anything else is a real error.
      if (!signal.aborted && !(error instanceof TypeError)) throw error;
    } finally {
      reader.cancel().catch(() => {});
    }
    this.#onConnection({ state: 'dropped', afterSeq: this.#lastSeq, onPurpose: signal.aborted });
  }
}
