/**
 * What the panel shows, computed from its state: how a task's status and a build's state read,
 * the DAG's layers, a failure's parts, durations. Pure functions, no React (`panel.tsx` renders).
 */
import { productOf } from './files';
import { isActive, PanelState } from './model';
import { cellText, failureSummary, failureWhere } from './reducer';
import type { PipelineTaskState, Product, TaskState, TaskStatus } from './types';

export type Display =
  | 'waiting'
  | 'running'
  | 'done'
  | 'skipped'
  | 'failed'
  | 'aborted'
  | 'cancelled'
  | 'stopped-early'
  | 'idle';

export const DISPLAY_LABEL: { [display in Display]: string } = {
  waiting: 'waiting',
  running: 'running',
  done: 'done',
  skipped: 'skipped',
  failed: 'failed',
  aborted: 'aborted',
  cancelled: 'cancelled',
  'stopped-early': 'stopped early',
  idle: ''
};

/** How the panel shows a task's status (`idle`: not in the build shown). */
export function display(status: TaskStatus | null | undefined): Display {
  switch (status) {
    case 'pending':
    case 'queued':
      return 'waiting';
    case 'running':
      return 'running';
    case 'executed':
      return 'done';
    case 'skipped':
      return 'skipped';
    case 'failed':
      return 'failed';
    case 'aborted':
      return 'aborted';
    case 'cancelled':
      return 'cancelled';
    case 'stopped_early':
      return 'stopped-early';
    default:
      return 'idle';
  }
}

const BUILD_LABEL: { [state: string]: string } = {
  pending: 'starting',
  starting: 'starting',
  running: 'running',
  cancelling: 'cancelling',
  success: 'succeeded',
  failed: 'failed',
  stopped_early: 'stopped early',
  cancelled: 'cancelled',
  interrupted: 'interrupted',
  error: 'error'
};

/** How the panel names a build's state ("succeeded", "stopped early"...). */
export function buildLabel(state: string): string {
  return BUILD_LABEL[state] ?? state.replace(/_/g, ' ');
}

export interface TaskRow {
  name: string;
  kind: 'notebook' | 'function' | null;
  source: string | null;
  upstream: string[];
  /** The grid it is one task of (the spec entry's name), if any: the graph can fold it. */
  grid: string | null;
  products: Product[];
  /** Its state in the build shown, if it takes part in it. */
  run: TaskState | null;
  display: Display;
  /** Its status now, from the pipeline's status ("up to date", "outdated", ...). */
  status: PipelineTaskState | null;
  /** The longest chain of upstream tasks before it (0: no upstream task). */
  layer: number;
}

/**
 * The rows the panel shows, grouped by layer (upstream tasks come in earlier layers). Before the
 * build shown has made its plan (no task listed yet), every task of the pipeline is waiting.
 */
export function taskLayers(state: PanelState): TaskRow[][] {
  const detail = state.detail;
  const build = state.build;
  const runs = new Map((build?.tasks ?? []).map(t => [t.name, t]));
  const unplanned = isActive(build) && runs.size === 0;
  const rows: TaskRow[] = [];
  const seen = new Set<string>();
  for (const task of detail?.tasks ?? []) {
    const run = runs.get(task.name) ?? null;
    seen.add(task.name);
    rows.push({
      name: task.name,
      kind: task.kind,
      source: task.source,
      upstream: task.upstream,
      grid: task.grid ?? null,
      products: (run && run.products.length ? run.products : task.products).map(productOf),
      run,
      display: run ? display(run.status) : unplanned ? 'waiting' : 'idle',
      status: task.state,
      layer: 0
    });
  }
  for (const run of build?.tasks ?? []) {
    if (!seen.has(run.name)) {
      rows.push({
        name: run.name,
        kind: null,
        source: null,
        upstream: [],
        grid: null,
        products: run.products.map(productOf),
        run,
        display: display(run.status),
        status: null,
        layer: 0
      });
    }
  }
  const layer = layersOf(
    rows.map(r => r.name),
    rows.flatMap(r => r.upstream.map(up => [up, r.name] as [string, string]))
  );
  const grouped: TaskRow[][] = [];
  for (const row of rows) {
    row.layer = layer.get(row.name) ?? 0;
    (grouped[row.layer] = grouped[row.layer] ?? []).push(row);
  }
  return grouped.filter(group => group && group.length);
}

/**
 * Each node's layer: the length of the longest path of edges leading to it. One pass in
 * topological order (Kahn), O(nodes + edges). Nodes on a cycle (none in a valid pipeline) go
 * after everything else.
 */
export function layersOf(nodes: string[], edges: [string, string][]): Map<string, number> {
  const known = new Set(nodes);
  const indegree = new Map(nodes.map(n => [n, 0]));
  const downstream = new Map<string, string[]>(nodes.map(n => [n, []]));
  for (const [up, down] of edges) {
    if (!known.has(up) || !known.has(down)) {
      continue;
    }
    downstream.get(up)!.push(down);
    indegree.set(down, indegree.get(down)! + 1);
  }
  const layer = new Map<string, number>();
  const ready = nodes.filter(n => indegree.get(n) === 0);
  for (const n of ready) {
    layer.set(n, 0);
  }
  for (let i = 0; i < ready.length; i++) {
    const node = ready[i];
    for (const down of downstream.get(node)!) {
      layer.set(down, Math.max(layer.get(down) ?? 0, layer.get(node)! + 1));
      indegree.set(down, indegree.get(down)! - 1);
      if (indegree.get(down) === 0) {
        ready.push(down);
      }
    }
  }
  const last = ready.length ? Math.max(...ready.map(n => layer.get(n)!)) + 1 : 0;
  for (const n of nodes) {
    if (!ready.includes(n)) {
      layer.set(n, last);
    }
  }
  return layer;
}

// -- failures ------------------------------------------------------------------------------------

export interface FailureView {
  /** One line: `ValueError: broken (cell 10, line 1)`. */
  summary: string;
  /** `cell 10, line 1`, for a notebook's failure. */
  where: string | null;
  /** The failing line of code. */
  code: string | null;
  /** The traceback (or the message), without terminal colours. */
  traceback: string;
  /** The partially executed notebook, when it lies in the server root (so it can be opened). */
  partialNotebook: string | null;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/** What the panel shows of a failed task's failure (null: it has none). */
export function failureView(task: TaskState): FailureView | null {
  const failure = task.failure;
  if (!failure) {
    return null;
  }
  const partial = failure.partial_notebook ? productOf(failure.partial_notebook) : null;
  return {
    summary: task.detail || failureSummary(failure),
    where: failureWhere(failure),
    code: failure.code,
    traceback: (failure.traceback || failure.message || '').replace(ANSI, ''),
    partialNotebook: partial && partial.in_root ? partial.path : null
  };
}

// -- durations -----------------------------------------------------------------------------------

/** Seconds a task has taken: so far when it runs (`now` is the browser's clock). */
export function taskElapsed(task: TaskState, now: number, skew: number): number | null {
  if (task.status === 'running' && task.started !== null) {
    return Math.max(0, now - skew - task.started);
  }
  if (task.elapsed !== null && task.elapsed !== undefined) {
    return task.elapsed;
  }
  if (task.started !== null && task.ended !== null) {
    return task.ended - task.started;
  }
  return null;
}

/** Seconds a build has taken: so far while it runs. */
export function buildElapsed(
  build: { state: string; started: number | null; ended: number | null },
  now: number,
  skew: number
): number | null {
  if (build.started === null || build.started === undefined) {
    return null;
  }
  if (build.ended !== null && build.ended !== undefined) {
    return build.ended - build.started;
  }
  if (isActive(build)) {
    return Math.max(0, now - skew - build.started);
  }
  return null;
}

/** "0.4 s", "12 s", "2:05", "1:02:05". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 10) {
    return `${seconds.toFixed(1)} s`;
  }
  const whole = Math.round(seconds);
  if (whole < 60) {
    return `${whole} s`;
  }
  const s = whole % 60;
  const m = Math.floor(whole / 60) % 60;
  const h = Math.floor(whole / 3600);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

/**
 * A running notebook's place for its task row: `cell 12/40 · df = load(path) · 3.2 s` (the
 * running cell's time so far, or how long the last one took), or null when none is known.
 */
export function cellProgress(task: TaskState, now: number, skew: number): string | null {
  const where = cellText(task);
  if (where === null) {
    return null;
  }
  const seconds =
    task.cell_started !== null && task.cell_started !== undefined
      ? Math.max(0, now - skew - task.cell_started)
      : task.cell_elapsed;
  const took = formatDuration(seconds ?? null);
  return took ? `${where} · ${took}` : where;
}
