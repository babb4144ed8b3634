/**
 * The shapes every benchmark stage shares: what a stage is given, and what
 * it hands back for the JSON result and the Markdown/SVG report.
 *
 * A stage measures; it does not format. It returns tables of figures (the
 * report renders them), charts described as data (the report draws them as
 * SVG), the targets it checked with what was measured against each, and its
 * raw samples (kept in the JSON only).
 */

/** A cell of a table: numbers are formatted by the report, strings kept as they are. */
export type Cell = string | number | null;

export interface Table {
  title: string;
  columns: string[];
  rows: Cell[][];
  /** Sentences printed under the table. */
  notes?: string[];
}

/** One bar of a bar chart. Bars with the same group are drawn together. */
export interface Bar {
  label: string;
  value: number;
  /** Optional group (e.g. the flow count), for grouped bars. */
  group?: string;
  /** Draw this bar as the reference (e.g. the ceiling or the baseline). */
  reference?: boolean;
}

export interface Chart {
  /** File-name-safe id, unique within the run: the SVG is <id>.svg. */
  id: string;
  title: string;
  /** Unit of the values, e.g. "ns/packet", "Mpps", "s". */
  unit: string;
  bars: Bar[];
  /** Use a logarithmic axis (figures spanning orders of magnitude). */
  log?: boolean;
}

/** A figure the issue sets a target for, and how this run did. */
export interface Target {
  what: string;
  /** The target as written, e.g. "≤ 1.2 × minimal DNAT". */
  target: string;
  /** What this run measured, e.g. "2.54 ×". */
  measured: string;
  met: boolean;
  /** Where not met (or only met by noise): why, in a sentence. */
  why?: string;
}

export interface StageResult {
  /** Stage id: "per-packet", "traffic", "service-count", "control-plane", "maglev". */
  id: string;
  title: string;
  /** How it was measured, one paragraph per entry (Markdown allowed). */
  method: string[];
  tables: Table[];
  charts: Chart[];
  targets: Target[];
  /** Seconds the stage took. */
  seconds: number;
  /** Everything measured, in full (medians, every round); JSON only. */
  raw: unknown;
}

/** What a stage is handed by the runner. */
export interface StageContext {
  /** --quick: small counts and few rounds, the whole run under 3 minutes. */
  quick: boolean;
  /** Stage options from the command line (--flows 1,1000 → { flows: '1,1000' }), when given. */
  args?: Readonly<Record<string, string>>;
  /** Progress of this stage: `done` of `total` units, with a short label of what runs now. */
  progress(done: number, total: number, label?: string): void;
  /** A line for the log (kept out of the progress bars' way). */
  log(line: string): void;
  /** Register cleanup to run however the run ends (error, Ctrl-C). Returns a function that unregisters it. */
  onCleanup(fn: () => Promise<void> | void): () => void;
}

export interface Stage {
  id: string;
  title: string;
  /** Seconds the stage should take with --quick; the runner warns when it takes longer. */
  quickBudgetSeconds?: number;
  /**
   * Run with the whole process (every thread) pinned to one CPU, for figures
   * that migrations and a shared core spoil: the runner pins it before the
   * stage and restores the affinity after it, however the stage ends.
   */
  pinned?: boolean;
  run(ctx: StageContext): Promise<StageResult>;
}

/** The machine a run was made on. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  kernel: string;
  memoryGiB: number;
  node: string;
  /** The kernel's clock source (tsc, hpet...): what BPF_PROG_TEST_RUN's durations are read from. */
  clocksource?: string;
  /** Tools used by the peers, with versions (iptables, nft, trafgen...). */
  tools: Record<string, string>;
  /**
   * What a thread spinning alone on each CPU lost to the machine at the
   * start of the run (bench/lib/machine.ts, probeStalls): stalls of 1 ms or
   * more, their total and the longest.
   */
  stalls?: { seconds: number; cpus: CpuStallsInfo[] };
}

/** What a thread spinning alone on one CPU lost. */
export interface CpuStallsInfo {
  cpu: number;
  /** Gaps of at least 1 ms between two consecutive clock reads. */
  stalls: number;
  /** Their total (ms). */
  lostMs: number;
  /** The longest (ms). */
  maxMs: number;
}

export interface RunResult {
  /** ISO time the run started. */
  started: string;
  quick: boolean;
  machine: MachineInfo;
  /** Git commit of the tree measured, with "-dirty" when it had changes. */
  commit: string;
  stages: StageResult[];
  /** Stages that failed, with the error: the report says so, it does not hide them. */
  failures: Array<{ id: string; error: string }>;
}
