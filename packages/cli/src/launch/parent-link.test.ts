// urlFromLauncher in a real child process with an IPC channel, as `ddp train` starts its workers
// (the child runs the built module: parent-link needs a process with process.send).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONNECT_FROM_LAUNCHER_ENV, connectNotice, urlFromLauncher } from './parent-link.js';

const BUILT = fileURLToPath(new URL('../../dist/launch/parent-link.js', import.meta.url));

describe('urlFromLauncher', () => {
  it('first is the first connect notice; latest() follows the later ones (a coordinator restarted elsewhere)', async () => {
    const script = `
      const { urlFromLauncher } = await import(${JSON.stringify(BUILT)});
      const link = urlFromLauncher();
      const first = await link.first;
      process.send({ first, latest: link.latest() });
      process.on('message', (m) => {
        if (m === 'report') { process.send({ first, latest: link.latest() }); process.disconnect(); }
      });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, [CONNECT_FROM_LAUNCHER_ENV]: '1' } });
    const replies: unknown[] = [];
    const next = () => new Promise((resolve) => child.once('message', (m) => (replies.push(m), resolve(m))));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.send(connectNotice('ws://127.0.0.1:1000'));
    expect(await next()).toEqual({ first: 'ws://127.0.0.1:1000', latest: 'ws://127.0.0.1:1000' });
    child.send(connectNotice('ws://127.0.0.1:2000'));
    child.send({ type: 'something else' });
    child.send('report');
    expect(await next()).toEqual({ first: 'ws://127.0.0.1:1000', latest: 'ws://127.0.0.1:2000' });
    expect(await exited).toBe(0);
  }, 20_000);

  it('is null without the launcher (no IPC channel or no variable)', () => {
    expect(urlFromLauncher()).toBeNull();
  });
});
