/**
 * `sluice top` in a real terminal: tmux (its own server, a 120x30 pane)
 * runs it against a daemon balancing HTTP in network namespaces. Its
 * screen, read back with capture-pane, shows the service, then its
 * packets/s once traffic flows; Enter shows the backends with state,
 * weight, health and their own rates; `s` changes the sort; a resize
 * redraws the frame to the new size; Esc goes back; `q` ends it with the
 * terminal as it was (main screen, cursor shown, canonical mode).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { lbInterfaceFlags } from '../../src/demo/topology.js';
import { startLab } from '../../src/demo/lab.js';
import { DEMO_HTTP_PORT, DEMO_VIP } from '../../src/demo/services.js';
import { sluiceCommand } from '../helpers/cli.js';
import { testDaemon } from '../helpers/daemon.js';
import { until } from '../helpers/kube-node.js';

const sh = promisify(execFile);

test('sluice top under tmux: services, live rates, backends, sort, resize, quit restores the terminal', async (t) => {
  const tag = `tp${process.pid.toString(36)}`.slice(0, 8);
  const lab = await startLab(tag);
  t.teardown(() => lab.destroy());
  const { topo, client } = lab;
  const ifaces = lbInterfaceFlags(topo);
  const daemon = await testDaemon(t, `top-${tag}`, [...ifaces, '--mode', 'xdp']);
  await daemon.start();
  const api = daemon.client();
  t.teardown(() => api.close());
  await api.applyService({
    name: 'default/web',
    addresses: [DEMO_VIP],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: DEMO_HTTP_PORT }],
    backends: topo.backends.map((b, i) => ({ address: b.address, weight: i + 1 })),
  });

  // A tmux server of our own (-S, in a directory of ours): nothing of anyone else's tmux is touched,
  // and kill-server ends it all.
  const dir = await mkdtemp(path.join(tmpdir(), `sluice-top-${tag}-`));
  const tmux = async (...args: string[]): Promise<string> => (await sh('tmux', ['-S', path.join(dir, 'tmux.sock'), ...args])).stdout;
  t.teardown(async () => {
    await tmux('kill-server').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  // After top: its exit status and whether the tty is back in canonical mode, then the pane stays to be read.
  const script = `${sluiceCommand()} --server '${daemon.address}' top --interval 500ms; echo "exit=$?"; stty -a | grep -o -- '-\\?icanon'; sleep 600`;
  await tmux('new-session', '-d', '-s', 'top', '-x', '120', '-y', '30', script);
  const screen = async (): Promise<string[]> => (await tmux('capture-pane', '-p', '-t', 'top')).replace(/\n$/, '').split('\n');
  const display = async (format: string): Promise<string> => (await tmux('display-message', '-p', '-t', 'top', format)).trim();
  let last: string[] = [];
  const see = async (what: string, cond: (lines: string[]) => boolean, ms = 30_000): Promise<string[]> => {
    await until(() => `${what}; the screen:\n${last.join('\n')}`, async () => cond((last = await screen())), ms);
    return last;
  };
  const cells = (lines: string[], first: RegExp): string[] | undefined => lines.find((l) => first.test(l))?.trim().split(/\s{2,}/);
  const positive = (v: string | undefined): boolean => v !== undefined && v !== '-' && v !== '0';

  await see('the web row', (l) => cells(l, /^default\/web /) !== undefined);
  t.is(await display('#{alternate_on}'), '1', 'top draws on the alternate screen');
  t.is(await display('#{cursor_flag}'), '0', 'with the cursor hidden');
  t.regex(last[0]!, /^sluice top  unix:\/\/.*sluice\.sock  \d\d:\d\d:\d\d  every 500ms  sort: packets\/s$/);
  t.regex(last.join('\n'), /^SERVICE +PKT\/S +BYTES\/S +CONN\/S +BACKENDS +PACKETS +BYTES +CONNS$/m);
  t.is(cells(last, /^default\/web /)?.[4], '3/3', 'three backends up');

  // Traffic until the page is done with it: each round is a batch of new connections.
  let traffic = true;
  const sent = (async () => {
    while (traffic) {
      const r = await client.http(`http://${DEMO_VIP}/`, 40, 4);
      if (r.failed > 0) throw new Error(`HTTP through the VIP failed: ${r.errors.join('; ')}`);
    }
  })();
  t.teardown(async () => {
    traffic = false;
    await sent.catch(() => undefined);
  });

  const web = await see('packets/s > 0 on the web row', (l) => positive(cells(l, /^default\/web /)?.[1]));
  const row = cells(web, /^default\/web /)!;
  t.true(positive(row[2]) && positive(row[3]), `bytes/s and conns/s move too: ${row.join(' ')}`);
  t.true(web.every((l) => l.length <= 120));

  await tmux('send-keys', '-t', 'top', 'Enter');
  const addresses = topo.backends.map((b) => b.address);
  const backendRow = (l: string[], a: string): string[] | undefined => cells(l, new RegExp(`^${a.replace(/\./g, '\\.')} `));
  const drilled = await see('the backends, each with traffic', (l) => addresses.every((a) => positive(backendRow(l, a)?.[4])));
  t.regex(drilled[1]!, /^default\/web  packets\/s \S+  bytes\/s \S+  conns\/s \S+  backends up 3\/3$/);
  t.regex(drilled.join('\n'), /^BACKEND +STATE +WEIGHT +HEALTH +PKT\/S +BYTES\/S +CONN\/S +PACKETS +BYTES +CONNS +LAST PROBE$/m);
  addresses.forEach((a, i) => {
    const r = backendRow(drilled, a)!;
    t.is(r[1], 'active', a);
    t.is(r[2], String(i + 1), `${a}: its weight`);
    t.is(r[3], 'not checked', `${a}: no health check configured`);
  });
  t.regex(drilled[29]!, /^Esc\/Backspace back/, 'the keys on the last line');

  await tmux('send-keys', '-t', 'top', 's');
  await see('the sort by bytes/s', (l) => /sort: bytes\/s$/.test(l[0]!));

  await tmux('resize-window', '-t', 'top', '-x', '60', '-y', '12');
  const small = await see('the frame redrawn at 60x12', (l) => l.length === 12 && /^Esc\/Backspace back/.test(l[11]!) && l.every((x) => x.length <= 60));
  t.truthy(addresses.find((a) => backendRow(small, a)), small.join('\n'));

  await tmux('send-keys', '-t', 'top', 'Escape');
  await see('the services again', (l) => l.some((x) => /^SERVICE /.test(x)) && cells(l, /^default\/web /) !== undefined);

  await tmux('send-keys', '-t', 'top', 'q');
  // stty's line comes after exit=0: wait for both.
  const after = await see('top to end, and stty', (l) => l.some((x) => x === 'exit=0') && l.some((x) => /^-?icanon$/.test(x)));
  t.true(after.some((x) => x === 'icanon'), `the tty is back in canonical mode:\n${after.join('\n')}`);
  t.false(after.some((x) => /^SERVICE|^sluice top/.test(x)), 'the main screen is back, without top\'s frame');
  t.is(await display('#{alternate_on}'), '0', 'off the alternate screen');
  t.is(await display('#{cursor_flag}'), '1', 'the cursor shown again');
});
