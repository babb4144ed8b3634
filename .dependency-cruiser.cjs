/**
 * The control plane's layering (README "Layering"), checked by
 * test/unit/layering.test.ts in `npm test`; `npx depcruise src` runs it
 * by hand.
 *
 * From the bottom up: the shared leaves (errors.ts, field-path.ts,
 * package-root.ts); model/ and store/; maglev/, dataplane/ and catalog/;
 * reconciler/; lb/; inspect/; health/ and dns/; node/; api/ and kube/; metrics/ and status/;
 * daemon/, demo/ and cli/ on top.
 * Each folder has one rule that lists what it may import from src/ (npm
 * packages and node: builtins are not restricted here). Type-only imports
 * count: a type pulls its module's layer in as much as a value does.
 *
 * An exception is a separate rule for one file, named *-exception, with a
 * comment on how to remove it.
 */

/** What every layer may import: the shared leaves. */
const SHARED = 'errors\\.ts$|field-path\\.ts$|package-root\\.ts$';

/** A `to` that matches any module in src/ other than the allowed ones. */
function onlyTo(...allowed) {
  return { path: '^src/', pathNot: `^src/(${[...allowed, SHARED].join('|')})` };
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'shared-is-leaf',
      severity: 'error',
      comment:
        'errors.ts, field-path.ts and package-root.ts are imported by every layer, so they import only ' +
        'each other. Move the code that needs more up into the layer it belongs to.',
      from: { path: `^src/(${SHARED})` },
      to: onlyTo(),
    },
    {
      name: 'not-to-index',
      severity: 'error',
      comment:
        "src/index.ts is the package's public surface, for its users. Inside src/, import the module " +
        'that defines the thing.',
      from: { path: '^src/' },
      to: { path: '^src/index\\.ts$' },
    },
    {
      name: 'model-is-pure',
      severity: 'error',
      comment:
        'model/ (definitions, schema, address rules, table sizes) is the pure bottom layer: no map codecs ' +
        '(dataplane/), no Maglev internals (maglev/), no store. When the model needs a constant or a type ' +
        'that lives above it, move that into model/ and let the upper layer import it from here, as ' +
        'dataplane/ takes Protocol from model/service.ts and maglev/ takes MAGLEV_MAX_SIZE and isPrime.',
      from: { path: '^src/model/' },
      to: onlyTo('model/'),
    },
    {
      name: 'store-stands-alone',
      severity: 'error',
      comment:
        'A KvStore (memory, SQLite, etcd) is a generic, etcd-shaped key-value store: it knows nothing of ' +
        'services, catalog keys or maps, and imports only store/ and errors.ts. Key layouts and what the ' +
        'values mean belong in catalog/; what the store cannot do alone, its caller passes in (as the daemon ' +
        "passes SqliteKvStore.open the catalog's migration of schema-1 files).",
      from: { path: '^src/store/' },
      to: { path: '^src/', pathNot: '^src/(store/|errors\\.ts$)' },
    },
    {
      name: 'maglev-is-pure',
      severity: 'error',
      comment:
        'maglev/ (table builder, flow hash) is a pure function of its inputs and the model: no maps, no ' +
        'store, no LoadBalancer. The caller (lb/) passes what it needs; constants it shares with the model ' +
        'live in model/.',
      from: { path: '^src/maglev/' },
      to: onlyTo('maglev/', 'model/'),
    },
    {
      name: 'dataplane-is-bottom',
      severity: 'error',
      comment:
        'dataplane/ (the Dataplane interface, codecs, the addon binding, the fake) is the bottom of the ' +
        'node side: it may take types from model/, and knows nothing of Maglev, the reconciler, lb/, the ' +
        'catalog or the store. Callers hand it what to write.',
      from: { path: '^src/dataplane/' },
      to: onlyTo('dataplane/', 'model/'),
    },
    {
      name: 'catalog-not-to-maps',
      severity: 'error',
      comment:
        'catalog/ is desired state in the shared store; it never reaches the maps (dataplane/, lb/, ' +
        'reconciler/) nor anything node-local or above. Applying the view to this node is node/ (the ' +
        "syncer)'s job; reading the maps is inspect/'s.",
      from: { path: '^src/catalog/' },
      to: onlyTo('catalog/', 'model/', 'store/'),
    },
    {
      name: 'reconciler-below-lb',
      severity: 'error',
      comment:
        'reconciler/ diffs map contents and applies operations to a Dataplane: it may use dataplane/ types ' +
        'and model/, not lb/, the catalog or the store. The caller passes desired and current state.',
      from: { path: '^src/reconciler/' },
      to: onlyTo('reconciler/', 'dataplane/', 'model/'),
    },
    {
      name: 'lb-below-node',
      severity: 'error',
      comment:
        'lb/ (the LoadBalancer: ids, table regions, desired map contents) may use the reconciler, ' +
        'dataplane/ types, maglev/ and model/; it does not read the catalog or the store. node/ (the ' +
        'syncer) feeds it the view.',
      from: { path: '^src/lb/' },
      to: onlyTo('lb/', 'reconciler/', 'dataplane/', 'maglev/', 'model/'),
    },
    {
      name: 'inspect-node-local',
      severity: 'error',
      comment:
        "inspect/ is node-local, read-only inspection of this node's maps: it may read dataplane/, lb/ " +
        "(ids) and the catalog's view, not the store, node/ or anything above. Where a flow goes is the " +
        "dataplane's own decision (Dataplane.lookupFlow), never recomputed here from maglev/. " +
        'Changes go through the catalog.',
      from: { path: '^src/inspect/' },
      to: onlyTo('inspect/', 'lb/', 'dataplane/', 'catalog/', 'model/'),
    },
    {
      name: 'node-below-edge',
      severity: 'error',
      comment:
        "node/ wires one node's control plane (catalog view -> syncer -> LoadBalancer, inspector, " +
        'capacity). The gRPC edge and the process sit above it and call it; it never imports them.',
      from: { path: '^src/node/' },
      to: onlyTo('node/', 'health/', 'catalog/', 'store/', 'inspect/', 'lb/', 'reconciler/', 'dataplane/', 'maglev/', 'model/'),
    },
    {
      name: 'health-writes-an-overlay',
      severity: 'error',
      comment:
        "health/ probes the backends the catalog's view names and writes its verdicts through an overlay " +
        "interface of its own (node/'s RuntimeOverlay fits it); node/ builds the checker and readers take " +
        'HealthReader. It never imports node/, the maps or the store.',
      from: { path: '^src/health/' },
      to: onlyTo('health/', 'catalog/', 'model/'),
    },
    {
      name: 'dns-reads-the-view',
      severity: 'error',
      comment:
        "dns/ answers DNS for the services the catalog's view holds: it reads the view (through an " +
        'interface CatalogView fits) and takes names and types from model/. It never reaches the maps, ' +
        "the load balancer, the store or node/; the daemon starts it with the control plane's view.",
      from: { path: '^src/dns/' },
      to: onlyTo('dns/', 'catalog/', 'model/'),
    },
    {
      name: 'api-not-to-dataplane',
      severity: 'error',
      comment:
        "The gRPC edge (api/) converts messages to and from model/ and calls the catalog and the " +
        "inspector (through node/'s ControlPlane), and reads health through health/health.ts's HealthReader. " +
        'It never imports dataplane/ (codecs), lb/, ' +
        'reconciler/, maglev/ or store/: take protocol names and limits from model/, and give inspect/ ' +
        'or the catalog the function the edge needs.',
      from: { path: '^src/api/' },
      to: onlyTo('api/', 'node/', 'catalog/', 'inspect/', 'model/', 'health/health\\.ts$'),
    },
    {
      name: 'kube-is-a-source',
      severity: 'error',
      comment:
        'kube/ is a source of services, as the gRPC API is: it watches the Kubernetes API server and writes ' +
        'through the catalog (as owner "kubernetes"). It never reaches the maps, the load balancer or the ' +
        'store directly; the agent (daemon/kube-proxy.ts) wires it to a node.',
      from: { path: '^src/kube/' },
      // metrics/http.ts is the generic HTTP server (bind address, route table) its /healthz and /metrics run on.
      to: onlyTo('kube/', 'catalog/', 'model/', 'metrics/http\\.ts$'),
    },
    {
      name: 'metrics-reads-the-node',
      severity: 'error',
      comment:
        "metrics/ (the node snapshot, Prometheus families, the HTTP server they are served on) reads one " +
        "node: its control plane (node/), the maps (dataplane/, lb/ ids, inspect/'s sums), health through " +
        'HealthReader, the view (catalog/). It writes nothing and never imports the gRPC edge or the store; ' +
        'the API and the syncer are timed through observers the daemon wires to it.',
      from: { path: '^src/metrics/' },
      to: onlyTo('metrics/', 'node/', 'dataplane/', 'lb/', 'health/', 'catalog/', 'model/', 'inspect/'),
    },
    {
      name: 'status-reads-a-snapshot',
      severity: 'error',
      comment:
        'status/ (the status page: its HTTP routes and static files) shows what a SnapshotSource gives ' +
        '(metrics/snapshot.ts); it never reads the maps, the catalog or the node itself. The daemon ' +
        'builds the source and mounts the routes on its metrics server.',
      from: { path: '^src/status/' },
      to: onlyTo('status/', 'metrics/snapshot\\.ts$'),
    },
    {
      name: 'top-not-imported',
      severity: 'error',
      comment:
        'cli/, daemon/ and demo/ are the top: processes and tools that wire everything together. Nothing ' +
        'below imports them; move what is shared (flag ranges, option types) down into its layer.',
      from: { path: '^src/', pathNot: '^src/(cli|daemon|demo)/' },
      to: { path: '^src/(cli|daemon|demo)/' },
    },
    {
      name: 'cli-is-the-top',
      severity: 'error',
      comment:
        'The CLI parses flags and starts the daemon or the demo, which take options objects and know ' +
        'nothing of commander. The daemon and the demo never import cli/.',
      from: { path: '^src/(daemon|demo)/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'daemon-not-to-demo',
      severity: 'error',
      comment: 'The demo starts daemons (as processes), not the other way round: daemon/ never imports demo/.',
      from: { path: '^src/daemon/' },
      to: { path: '^src/demo/' },
    },
    {
      name: 'no-folder-cycles',
      severity: 'error',
      comment:
        'Folders form layers, so no cycle between two folders: move the shared piece down, or pass it ' +
        'in from above.',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-runtime-cycles',
      severity: 'error',
      comment:
        'Modules must not import each other in a cycle at run time (ESM evaluates one of them half-way). ' +
        'Type-only cycles are erased by the compiler and allowed. Move the shared piece into a third module.',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'An import that does not resolve is a typo, or a resolver that no longer maps the .js suffix to the ' +
        '.ts file; either way the rules above cannot see where it goes. Fix the path.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    // `import type` and `import('...').T` count: see the top of this file.
    tsPreCompilationDeps: true,
    // TypeScript's own resolution: NodeNext, `.js` suffixes naming `.ts` files.
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
