/**
 * One daemon per state directory and per pin directory: an exclusive
 * flock(2) on the directory itself, held for the daemon's life. The kernel
 * releases it when the process dies, however it dies, so there is no stale
 * lock file to clean up after a SIGKILL. A second daemon is refused with
 * the process that holds the lock, found in /proc/locks.
 */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { SluiceError } from '../errors.js';
import { native } from '../dataplane/native.js';

/** A held lock. */
export interface DirectoryLock {
  /** Release it (idempotent). */
  release(): void;
}

/**
 * Lock `dir` (which must exist) for this process. FAILED_PRECONDITION
 * naming the holder if another process has it; `what` says what the
 * directory is to the reader ("state directory"), `flag` the option that
 * names it.
 */
export function lockDirectory(dir: string, what: string, flag: string): DirectoryLock {
  const fd = openSync(dir, 'r');
  try {
    native().flock(fd, 'exclusive');
  } catch (err) {
    closeSync(fd);
    const code = (err as { code?: string }).code;
    if (code !== 'EWOULDBLOCK' && code !== 'EAGAIN') throw err;
    const holder = lockHolder(dir);
    throw new SluiceError(
      'FAILED_PRECONDITION',
      `the ${what} ${dir} is in use by ${holder ?? 'another process'}: one daemon per ${what}; ` +
        `stop that daemon, or give this one another ${flag}`,
      { cause: err },
    );
  }
  let held = true;
  return {
    release(): void {
      if (!held) return;
      held = false;
      closeSync(fd); // closing the only descriptor of the open file releases the flock
    },
  };
}

/** "process 1234 (sluice daemon --listen ...)" for the holder of a flock on `path`, from /proc/locks. */
export function lockHolder(path: string): string | undefined {
  let st;
  let locks: string;
  try {
    st = statSync(path);
    locks = readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  // "1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF": device major:minor (hex) and inode.
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | ((st.dev >> 12) & 0xfff00);
  for (const line of locks.split('\n')) {
    const m = /^\d+:\s+FLOCK\s+\S+\s+WRITE\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m) continue;
    if (parseInt(m[2]!, 16) !== major || parseInt(m[3]!, 16) !== minor || Number(m[4]) !== st.ino) continue;
    const pid = Number(m[1]);
    return `process ${pid}${commandOf(pid)}`;
  }
  return undefined;
}

function commandOf(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const i = argv.findIndex((a) => a.endsWith('main.js') || a.endsWith('/sluice') || a === 'sluice');
    const shown = (i >= 0 ? ['sluice', ...argv.slice(i + 1)] : argv).join(' ');
    return shown === '' ? '' : ` (${shown.length > 120 ? `${shown.slice(0, 119)}…` : shown})`;
  } catch {
    return '';
  }
}
