// Forwards a child's output line by line, each line labelled, so that the output of several
// processes interleaves by whole lines and says who wrote it.
import type { Readable, Writable } from 'node:stream';

/**
 * Copies `from` to `to`, prefixing each line with `label` (an empty label forwards lines as they are).
 * Carriage-return redraws (progress bars) are dropped: they do not survive interleaving.
 * Resolves when `from` ends.
 */
export function forwardLines(from: Readable, to: Writable, label: string | (() => string)): Promise<void> {
  const prefix = typeof label === 'string' ? () => label : label;
  return new Promise((resolve) => {
    let partial = '';
    from.setEncoding('utf8');
    const emit = (line: string) => {
      const cr = line.lastIndexOf('\r');
      const text = cr === -1 ? line : line.slice(cr + 1);
      if (cr !== -1 && text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '') === '') return;
      to.write(`${prefix()}${text}\n`);
    };
    from.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) emit(line);
    });
    from.on('end', () => {
      if (partial !== '') emit(partial);
      resolve();
    });
    from.on('error', () => resolve());
  });
}
