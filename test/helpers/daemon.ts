/**
 * The daemon child process for end-to-end tests, removed with the test.
 */
import type { ExecutionContext } from 'ava';
import { DaemonProcess } from '../../src/demo/daemon-process.js';

export { DaemonProcess };

/** A daemon (not started) whose process, state and pins go away with the test. */
export async function testDaemon(t: ExecutionContext, tag: string, extraArgs: string[]): Promise<DaemonProcess> {
  const d = await DaemonProcess.create(tag, extraArgs);
  t.teardown(() => d.destroy());
  return d;
}
