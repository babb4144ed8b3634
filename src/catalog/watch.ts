/**
 * The WatchServices stream over a node's view: a snapshot (one SNAPSHOT per
 * service, then SYNCED at the view's revision) or, when the watcher gives a
 * revision the view still has the changes after, those changes; then every
 * change as the view applies it.
 */
import { invalid } from '../errors.js';
import type { StoredService } from '../model/definition.js';
import type { CatalogView } from './view.js';

/** One event of a watch. */
export interface WatchEvent {
  type: 'SNAPSHOT' | 'SYNCED' | 'PUT' | 'DELETE';
  /** Service name; empty for SYNCED. */
  name: string;
  /** The store revision of the change (SNAPSHOT: the service's; SYNCED: the snapshot's). */
  revision: number;
  /** The service (its new state, or for DELETE its last state); absent for SYNCED. */
  service?: StoredService;
}

/**
 * Send the services and then their changes to `onEvent`, synchronously up
 * to the present, then as the view applies them. Returns a function that
 * stops the watch. Field: `startRevision`.
 */
export function watchView(view: CatalogView, startRevision: number | undefined, onEvent: (e: WatchEvent) => void): () => void {
  if (startRevision !== undefined && (!Number.isSafeInteger(startRevision) || startRevision < 0)) {
    throw invalid('startRevision', `must be a non-negative integer, got ${JSON.stringify(startRevision)}`);
  }
  const send = onEvent;
  const replay = startRevision === undefined ? undefined : view.changesSince(startRevision);
  // Reading and subscribing in one synchronous step: no change falls between.
  if (replay) {
    for (const c of replay) send({ type: c.type, name: c.name, revision: c.revision, service: c.service });
  } else {
    for (const name of view.names()) {
      const s = view.get(name)!;
      send({ type: 'SNAPSHOT', name, revision: s.revision, service: s });
    }
    send({ type: 'SYNCED', name: '', revision: view.revision });
  }
  // The subscription gets only changes applied from now on: after what was sent.
  return view.subscribe((changes) => {
    for (const c of changes) send({ type: c.type, name: c.name, revision: c.revision, service: c.service });
  });
}
