import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { forwardLines } from './line-prefixer.js';

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

describe('forwardLines', () => {
  it('labels whole lines even when chunks split them, and flushes a last line without newline', async () => {
    const from = new PassThrough();
    const to = sink();
    const done = forwardLines(from, to.stream, '[worker 2] ');
    for (const chunk of ['fir', 'st\nsec', 'ond\n\nthi', 'rd']) from.write(chunk);
    from.end();
    await done;
    expect(to.text()).toBe('[worker 2] first\n[worker 2] second\n[worker 2] \n[worker 2] third\n');
  });

  it('forwards unlabelled with an empty label (NDJSON stays NDJSON)', async () => {
    const from = new PassThrough();
    const to = sink();
    const done = forwardLines(from, to.stream, '');
    from.end('{"event":"start"}\n{"event":"done"}\n');
    await done;
    expect(to.text().split('\n').filter(Boolean).map((l) => JSON.parse(l).event)).toEqual(['start', 'done']);
  });

  it('drops progress-bar redraws and keeps the text after the last carriage return', async () => {
    const from = new PassThrough();
    const to = sink();
    const done = forwardLines(from, to.stream, '[c] ');
    from.end('\r\x1b[2Kepoch 1 ███ 3/10\r\x1b[2K\nresult\rfinal text\n');
    await done;
    expect(to.text()).toBe('[c] final text\n');
  });
});
