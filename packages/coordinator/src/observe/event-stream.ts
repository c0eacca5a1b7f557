/**
 * GET /events: the run's events as Server-Sent Events (`data: <json>` per event, the event's fields plus
 * `time`, when the coordinator emitted it in ms since the Unix epoch), read from the same
 * Reporter as the NDJSON output and /metrics. A new client first gets every event so far, then the
 * new ones as they happen, so a dashboard opened mid-run draws the whole run.
 *
 * The history is bounded: every non-step event is kept (there are few: joins, losses, epochs,
 * checkpoints), and the last `maxSteps` step events (default 20,000). Each event is serialised once.
 * A client that stops reading (more than `maxBuffered` bytes queued) is disconnected rather than
 * letting its queue grow without bound.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DdpEvent } from '@ddp/core';

export interface EventStreamOptions {
  /** Step events kept for replay (default 20,000); older ones are dropped. */
  maxSteps?: number;
  /** Bytes queued for one client before it is dropped (default 8 MiB). */
  maxBuffered?: number;
  /** A comment line this often keeps proxies from closing an idle stream (default 15,000 ms; 0: none). */
  keepAliveMs?: number;
  /** ms since the Unix epoch (tests pass their own). */
  now?: () => number;
}

interface Entry {
  seq: number;
  frame: string;
}

export class EventStream {
  private readonly maxSteps: number;
  private readonly maxBuffered: number;
  private readonly keepAliveMs: number;
  private readonly now: () => number;
  private seq = 0;
  private readonly others: Entry[] = [];
  /** Step frames, oldest first from `stepHead` (compacted now and then, not shifted per event). */
  private steps: Entry[] = [];
  private stepHead = 0;
  private readonly clients = new Set<ServerResponse>();

  constructor(opts: EventStreamOptions = {}) {
    this.maxSteps = opts.maxSteps ?? 20_000;
    this.maxBuffered = opts.maxBuffered ?? 8 * 1024 * 1024;
    this.keepAliveMs = opts.keepAliveMs ?? 15_000;
    this.now = opts.now ?? Date.now;
    if (!Number.isInteger(this.maxSteps) || this.maxSteps < 1) throw new RangeError(`EventStream: maxSteps must be an integer >= 1, got ${opts.maxSteps}`);
  }

  /** Takes one event (subscribe this to the Reporter). */
  observe(e: DdpEvent): void {
    const entry = { seq: this.seq++, frame: `data: ${JSON.stringify({ ...e, time: this.now() })}\n\n` };
    if (e.event === 'step') {
      this.steps.push(entry);
      if (this.steps.length - this.stepHead > this.maxSteps) this.stepHead++;
      if (this.stepHead >= this.maxSteps) {
        this.steps = this.steps.slice(this.stepHead);
        this.stepHead = 0;
      }
    } else {
      this.others.push(entry);
    }
    for (const res of this.clients) this.write(res, entry.frame);
  }

  /** The frames a new client is sent first, in the order the events happened. */
  history(): string[] {
    const out: string[] = [];
    let i = 0;
    let j = this.stepHead;
    while (i < this.others.length || j < this.steps.length) {
      const a = this.others[i];
      const b = this.steps[j];
      if (b === undefined || (a !== undefined && a.seq < b.seq)) {
        out.push(a!.frame);
        i++;
      } else {
        out.push(b.frame);
        j++;
      }
    }
    return out;
  }

  /** Clients connected now. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Answers GET /events (the token is checked before): the history, then every new event. */
  serve(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\n\n${this.history().join('')}`);
    this.clients.add(res);
    const timer = this.keepAliveMs > 0 ? setInterval(() => this.write(res, ': keep-alive\n\n'), this.keepAliveMs) : null;
    timer?.unref();
    const gone = () => {
      if (timer) clearInterval(timer);
      this.clients.delete(res);
    };
    req.on('close', gone);
    res.on('close', gone);
  }

  /** Ends every client's stream (the server is closing). */
  close(): void {
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private write(res: ServerResponse, frame: string): void {
    if (res.writableLength > this.maxBuffered) {
      this.clients.delete(res);
      res.destroy();
      return;
    }
    res.write(frame);
  }
}
