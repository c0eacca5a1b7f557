import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { DEPLOY_HELP, renderDeploy } from './deploy.js';

const EXAMPLE = fileURLToPath(new URL('../../../../deploy/k8s/ddp.yaml', import.meta.url));
const EXAMPLE_ARGS = ['k8s', '--workers', '3', '--image', 'ddp:latest'];

// parseFlags reads DDP_* variables: the output must not depend on this shell's.
beforeAll(() => {
  for (const k of Object.keys(process.env)) if (k.startsWith('DDP_')) delete process.env[k];
});

describe('ddp deploy k8s', () => {
  it('deploy/k8s/ddp.yaml is the generator\'s output (regenerate: npx ddp deploy k8s --workers 3 --image ddp:latest > deploy/k8s/ddp.yaml)', () => {
    expect(fs.readFileSync(EXAMPLE, 'utf8')).toBe(renderDeploy(EXAMPLE_ARGS));
  });

  it('the file says how it was made and how to create the token Secret, with no token in it', () => {
    const text = renderDeploy([...EXAMPLE_ARGS, '--namespace', 'ml'])!;
    expect(text).toMatch(/^# ddp on Kubernetes, written by: ddp deploy k8s --workers 3 --image ddp:latest --namespace ml\n/);
    expect(text).toContain('kubectl -n ml create secret generic ddp-token --from-literal=token=$(openssl rand -hex 16)');
    expect(text).not.toMatch(/^\s*- name: DDP_TOKEN\n\s*value:/m);
  });

  it('names the DDP_* variables it read in the command line it writes', () => {
    process.env.DDP_EPOCHS = '2';
    try {
      const text = renderDeploy(EXAMPLE_ARGS)!;
      expect(text).toMatch(/^# ddp on Kubernetes, written by: DDP_EPOCHS=2 ddp deploy k8s /);
      expect(text).toMatch(/- name: DDP_EPOCHS\n\s*value: "2"/);
    } finally {
      delete process.env.DDP_EPOCHS;
    }
  });

  it.each([
    [['k8s', '--workers', '0', '--image', 'x'], '--workers must be at least 1, got 0'],
    [['k8s', '--workers', '2'], '--image IMAGE is required (the ddp image, e.g. built from deploy/Dockerfile)'],
    [['k8s', '--image', 'x'], '--workers N is required (how many worker pods)'],
    [['k8s', '--workers', 'two', '--image', 'x'], "--workers expects an integer, got 'two'"],
    [['--workers', '2', '--image', 'x'], "ddp deploy: missing target (expected 'k8s')"],
    [['helm', '--workers', '2', '--image', 'x'], "ddp deploy: unknown target 'helm' (expected 'k8s')"],
    [['k8s', '--workers', '2', '--image', 'x', '--name', 'My_Job'], "--name must be a DNS label of at most 40 characters (lower-case letters, digits, '-'; a letter first), got 'My_Job'"],
    [['k8s', '--workers', '2', '--image', 'x', '--storage', 'lots'], "--storage expects a Kubernetes quantity (e.g. 500m, 2, 1Gi), got 'lots'"],
    [['k8s', '--workers', '2', '--image', 'x', '--allreduce', 'tree'], "--allreduce must be one of star, ring, got 'tree'"],
    [['k8s', '--workers', '2', '--image', 'x', '--min-workers', '3'], '--min-workers 3 is more than --workers 2'],
    [['k8s', '--workers', '2', '--image', 'x', '--reduction', 'exact', '--compress', 'fp16'], '--reduction exact cannot be combined with --compress fp16'],
    [['k8s', '--workers', '2', '--image', 'x', '--token', 's3cret'], 'unknown flag --token (see --help)'],
  ])('%j is a usage error: %s', (argv, message) => {
    let caught: unknown;
    try {
      renderDeploy(argv);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toContain(message);
    expect((caught as Error).message).not.toContain('\n');
  });

  it('--help lists every flag with its variable, and prints nothing else', () => {
    expect(renderDeploy(['k8s', '--help'])).toBeUndefined();
    for (const flag of ['workers', 'image', 'namespace', 'name', 'allreduce', 'tls-secret', 'storage', 'token-secret', 'epochs', 'join-timeout']) {
      expect(DEPLOY_HELP).toMatch(new RegExp(`--${flag}\\b.*\\[env DDP_${flag.toUpperCase().replace(/-/g, '_')}\\]`));
    }
  });
});
