/**
 * The long-lived calls (WatchServices, KeepAlive, Health.Watch) a server
 * has open, so that shutting down ends them with UNAVAILABLE (clients
 * reconnect elsewhere or later) instead of waiting for them forever.
 */
import * as grpc from '@grpc/grpc-js';

/** What ending one open call takes. */
interface OpenCall {
  /** Stop feeding it (unsubscribe). */
  stop(): void;
  /** The call's stream. */
  stream: NodeJS.EventEmitter & { end(): unknown };
}

/** The open long-lived calls of one server. */
export class OpenStreams {
  private readonly calls = new Set<OpenCall>();
  private closing = false;

  /** Track a call until it finishes; `stop` runs once, when it ends for any reason. Returns false if the server is closing. */
  track(stream: OpenCall['stream'], stop: () => void): boolean {
    let stopped = false;
    const entry: OpenCall = {
      stream,
      stop: () => {
        if (stopped) return;
        stopped = true;
        this.calls.delete(entry);
        stop();
      },
    };
    if (this.closing) {
      entry.stop();
      return false;
    }
    this.calls.add(entry);
    for (const ev of ['cancelled', 'close', 'finish', 'error']) stream.once(ev, () => entry.stop());
    return true;
  }

  /** End every open call with UNAVAILABLE, and refuse new ones. */
  closeAll(): void {
    this.closing = true;
    for (const c of [...this.calls]) {
      c.stop();
      c.stream.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the server is shutting down' });
    }
  }
}
