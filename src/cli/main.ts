#!/usr/bin/env node
/**
 * The `sluice` command. For now: `sluice demo [--mode xdp|xdp-generic|tc]
 * [--requests N]`; the daemon and the service commands come with the gRPC
 * API.
 */
import { parseArgs } from 'node:util';
import { runDemo } from '../demo/demo.js';
import type { AttachMode } from '../dataplane/dataplane.js';

const USAGE = `usage: sluice <command> [options]

commands:
  demo [--mode xdp|xdp-generic|tc] [--requests N]
      build a topology of network namespaces, load sluice, balance real
      HTTP and UDP traffic over three backends, drain one, tear down
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'demo': {
      const { values } = parseArgs({
        args: rest,
        options: { mode: { type: 'string', default: 'xdp' }, requests: { type: 'string', default: '1000' } },
      });
      const mode = values.mode as AttachMode;
      if (!['xdp', 'xdp-generic', 'tc'].includes(mode)) throw new Error(`--mode: must be xdp, xdp-generic or tc, got ${mode}`);
      const requests = Number(values.requests);
      if (!Number.isInteger(requests) || requests < 1) throw new Error(`--requests: must be a positive integer`);
      await runDemo({ mode, requests });
      return process.exitCode === undefined ? 0 : Number(process.exitCode);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`sluice: unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`sluice: ${err.message}\n`);
    process.exit(1);
  },
);
