// What the wire delivered, by seq, in arrival order: across drops and replays the broker
// must deliver every event exactly once, so each seq is checked against the last one.
// The page shows the counts, and `data-seqs` on its element lists every seq as it arrived.

export class SeqRecord {
  #element;
  #seqs = [];
  #last = 0;
  #repeated = 0;
  #missing = 0;
  #reconnects = 0;

  constructor(element) {
    this.#element = element;
    this.#render();
  }

  /** Records `seq`; says whether it repeats one already seen and which seqs it skipped. */
  saw(seq) {
    this.#seqs.push(seq);
    const repeated = seq <= this.#last;
    const skipped = [];
    if (!repeated) {
      for (let s = this.#last + 1; s < seq; s++) skipped.push(s);
      this.#last = seq;
    }
    if (repeated) this.#repeated++;
    this.#missing += skipped.length;
    this.#render();
    return { repeated, skipped };
  }

  reconnected() {
    this.#reconnects++;
    this.#render();
  }

  #render() {
    const count = this.#seqs.length;
    const parts = [
      `${count} event${count === 1 ? '' : 's'} on the wire`,
      count === 0 ? 'no seq yet' : `seq ${this.#seqs[0]}–${this.#last}`,
      `${this.#reconnects} reconnect${this.#reconnects === 1 ? '' : 's'}`,
      `${this.#repeated} repeated`,
      `${this.#missing} missing`,
    ];
    this.#element.textContent = parts.join(' · ');
    this.#element.dataset.seqs = this.#seqs.join(' ');
    this.#element.dataset.repeated = String(this.#repeated);
    this.#element.dataset.missing = String(this.#missing);
    this.#element.dataset.reconnects = String(this.#reconnects);
    this.#element.classList.toggle('anomaly', this.#repeated > 0 || this.#missing > 0);
  }
}
