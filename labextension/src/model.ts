/**
 * The panel's state, and the pure functions that change it.
 *
 * Nothing here touches the network, the DOM or JupyterLab: the controller (`controller.ts`) feeds
 * in what the server says (REST snapshots and event-bus events) and carries out the *effects* the
 * functions ask for (load a build, reload the history, reload the pipeline's status). That keeps
 * the one tricky part, merging a live event stream with snapshots, testable on plain data.
 *
 * The server numbers each build's events from 1 (`seq`), and every REST snapshot of a build
 * carries the `seq` it reflects. So the rule is:
 *
 *   - an event with `seq <= build.seq` is already in what we show: dropped;
 *   - `seq == build.seq + 1`: applied;
 *   - `seq > build.seq + 1`: something was missed (a reconnect, a server restart): the event is
 *     kept aside and a snapshot is asked for; when it comes, the kept events after its `seq` are
 *     applied in order.
 *
 * Example: we show build B at seq 4, the socket drops, events 5 and 6 are lost and 7 arrives.
 * `applyEvent` keeps 7 and asks for B's snapshot; the snapshot comes at seq 6; `applySnapshot`
 * takes it and applies 7. Had the snapshot come at seq 7 or later, 7 would be dropped.
 *
 * Task states are the engine's (`pending`, `queued`, `running`, `executed`, `skipped`, `failed`,
 * `aborted`, `stopped_early`, `cancelled`); the panel shows them as `display()` says.
 */

// -- what the server sends (nbpipe/server/openapi.yaml) -----------------------------------------

export type TaskState =
  | 'pending'
  | 'queued'
  | 'running'
  | 'executed'
  | 'skipped'
  | 'failed'
  | 'aborted'
  | 'stopped_early'
  | 'cancelled';

export type BuildState =
  | 'starting'
  | 'running'
  | 'cancelling'
  | 'success'
  | 'failed'
  | 'stopped_early'
  | 'cancelled'
  | 'interrupted'
  | 'error';

export interface Product {
  path: string;
  in_root: boolean;
}

export interface TaskError {
  summary?: string;
  message?: string;
  type?: string;
  ename?: string;
  evalue?: string;
  cell_index?: number;
  line?: number | null;
  code?: string | null;
  traceback?: string;
  partial_path?: string;
  source?: string;
}

export interface BuildTask {
  name: string;
  state: TaskState;
  reasons: string[];
  started: number | null;
  ended: number | null;
  elapsed: number | null;
  products: Product[];
  detail: string | null;
  error: TaskError | null;
}

export interface BuildSummary {
  id: string;
  pipeline: string;
  state: BuildState;
  force: boolean;
  targets: string[];
  created: number;
  started: number | null;
  ended: number | null;
  elapsed: number | null;
  outcome: string | null;
  exit_code: number | null;
  message: string | null;
  seq: number;
  counts?: { [state: string]: number };
}

export interface Build extends BuildSummary {
  tasks: BuildTask[];
}

export type PipelineTaskState = 'up to date' | 'outdated' | 'never built' | 'error';

export interface PipelineTask {
  name: string;
  kind: 'notebook' | 'function';
  source: string | null;
  upstream: string[];
  products: Product[];
  state: PipelineTaskState;
  reasons: string[];
  last_built: number | null;
  last_result: { state: TaskState; ended: number | null; build_id: string } | null;
}

export interface Pipeline {
  path: string;
  name: string;
  executor: string;
  tasks: PipelineTask[];
  edges: [string, string][];
  warnings: string[];
  building: string | null;
  last_build: BuildSummary | null;
}

export interface PipelineListing {
  path: string;
  building: string | null;
  last_build: BuildSummary | null;
}

/** One event from the server's event bus (schema https://events.nbpipe.org/build/v1). */
export interface BuildEvent {
  build_id: string;
  pipeline: string;
  seq: number;
  event: string;
  time: number;
  task?: string | null;
  state: BuildState;
  task_state?: TaskState | null;
  details?: { [key: string]: any };
}

export const EVENT_SCHEMA_ID = 'https://events.nbpipe.org/build/v1';

export const ACTIVE_BUILD_STATES: ReadonlySet<string> = new Set([
  'starting',
  'running',
  'cancelling'
]);

export const FINAL_TASK_STATES: ReadonlySet<string> = new Set([
  'executed',
  'skipped',
  'failed',
  'aborted',
  'stopped_early',
  'cancelled'
]);

/** The task state after each engine task event (nbpipe.engine.events.STATUS_AFTER). */
const STATE_AFTER: { [event: string]: TaskState } = {
  task_queued: 'queued',
  task_skipped: 'skipped',
  task_started: 'running',
  task_finished: 'executed',
  task_failed: 'failed',
  task_aborted: 'aborted',
  task_stopped_early: 'stopped_early',
  task_cancelled: 'cancelled'
};

// -- the panel's state ---------------------------------------------------------------------------

export interface PanelState {
  /** The pipelines under the server root, as listed (null: not loaded yet). */
  pipelines: PipelineListing[] | null;
  /** The pipeline picked (its path relative to the root). */
  selected: string | null;
  /** Its tasks, edges and status (null while loading, or when it cannot be loaded). */
  detail: Pipeline | null;
  /** The status in `detail` predates the end of the build shown (a new one is on its way). */
  detailStale: boolean;
  /** Why the pipeline cannot be loaded (a spec error), if it cannot. */
  detailError: string | null;
  /** The build shown: the one running, else the pipeline's last one. */
  build: Build | null;
  /** Events that arrived ahead of what `build` reflects (or for a build being loaded). */
  pending: BuildEvent[];
  /** The build whose snapshot was asked for and has not come yet. */
  loading: string | null;
  /** The pipeline's builds, newest first. */
  history: BuildSummary[];
  /** A build or cancel request is on its way. */
  request: 'build' | 'cancel' | null;
  /** False while the server does not answer. */
  connected: boolean;
  /** Something to tell the user (a refused request, an unreachable server). */
  notice: string | null;
  /** Browser clock minus server clock, in seconds (for the elapsed time of running tasks). */
  skew: number;
}

export interface Effects {
  /** Load this build's snapshot (GET /builds/{id}) and hand it to `applySnapshot`. */
  loadBuild?: string;
  /** Reload the pipeline's build history. */
  reloadHistory?: boolean;
  /** Reload the pipeline's status (GET /pipelines/{path}). */
  reloadDetail?: boolean;
}

export interface Result {
  state: PanelState;
  effects: Effects;
}

export function initialState(): PanelState {
  return {
    pipelines: null,
    selected: null,
    detail: null,
    detailStale: false,
    detailError: null,
    build: null,
    pending: [],
    loading: null,
    history: [],
    request: null,
    connected: true,
    notice: null,
    skew: 0
  };
}

export function isActive(build: BuildSummary | null | undefined): boolean {
  return !!build && ACTIVE_BUILD_STATES.has(build.state);
}

// -- pipelines -----------------------------------------------------------------------------------

/** The listing came: keep the selection if it still exists, else pick the first pipeline. */
export function applyListing(state: PanelState, pipelines: PipelineListing[]): Result {
  let selected = state.selected;
  if (selected === null || !pipelines.some(p => p.path === selected)) {
    selected = pipelines.length ? pipelines[0].path : null;
  }
  if (selected === state.selected) {
    return { state: { ...state, pipelines }, effects: {} };
  }
  return select({ ...state, pipelines }, selected);
}

/** Pick another pipeline: what was shown for the last one goes. */
export function select(state: PanelState, path: string | null): Result {
  if (path === state.selected && state.detail) {
    return { state, effects: {} };
  }
  const { pipelines, connected, skew } = state;
  return {
    state: { ...initialState(), pipelines, connected, skew, selected: path },
    effects: path ? { reloadDetail: true, reloadHistory: true } : {}
  };
}

/**
 * The pipeline's status came. Asks for the build to show: the one running, else the last one
 * (its task results and errors), unless that build is already shown.
 */
export function applyDetail(state: PanelState, detail: Pipeline): Result {
  if (detail.path !== state.selected) {
    return { state, effects: {} };
  }
  const next = { ...state, detail, detailError: null, detailStale: false };
  const effects: Effects = {};
  const shown = state.build;
  let wanted: string | null = null;
  if (detail.building) {
    wanted = detail.building === shown?.id ? null : detail.building;
  } else if (detail.last_build) {
    const last = detail.last_build;
    // Nothing shown yet, or the shown build is behind the server's record (we missed events).
    if (!shown || (last.id === shown.id && last.seq > shown.seq)) {
      wanted = last.id;
    }
  }
  if (wanted && wanted !== state.loading) {
    effects.loadBuild = wanted;
    next.loading = wanted;
  }
  if (shown && !shown.tasks.length) {
    next.build = { ...shown, tasks: blankTasks(detail) };
  }
  return { state: next, effects };
}

export function applyDetailError(state: PanelState, path: string, message: string): PanelState {
  if (path !== state.selected) {
    return state;
  }
  return { ...state, detail: null, detailError: message };
}

export function applyHistory(state: PanelState, path: string, builds: BuildSummary[]): PanelState {
  if (path !== state.selected) {
    return state;
  }
  return { ...state, history: builds };
}

// -- builds --------------------------------------------------------------------------------------

/** The server accepted a build (POST /builds answered 202). */
export function buildAccepted(
  state: PanelState,
  accepted: { id: string; pipeline: string; state: BuildState },
  now: number
): Result {
  const base = { ...state, request: null, notice: null };
  if (accepted.pipeline !== state.selected || state.build?.id === accepted.id) {
    return { state: base, effects: {} }; // its first event came before the answer
  }
  const build = blankBuild(accepted.id, accepted.pipeline, now - state.skew, state.detail);
  build.state = accepted.state;
  const history = [summary(build), ...state.history.filter(b => b.id !== build.id)];
  // Events of this build that came before the answer are kept in `pending`.
  return {
    state: drain({ ...base, build, history }),
    effects: {}
  };
}

/**
 * A live event. Events of other pipelines are ignored; events of a build not shown start
 * showing it (its first event) or ask for its snapshot (a later one: we came in mid-build).
 */
export function applyEvent(state: PanelState, event: BuildEvent, now: number): Result {
  if (event.pipeline !== state.selected) {
    return { state: listingEvent(state, event), effects: {} };
  }
  const skew = typeof event.time === 'number' ? now - event.time : state.skew;
  let next: PanelState = { ...listingEvent(state, event), skew, connected: true };
  const effects: Effects = {};
  const build = next.build;
  if (!build || build.id !== event.build_id) {
    if (historyHas(next, event.build_id) && !isActive(historyEntry(next, event.build_id))) {
      return { state: next, effects }; // a late event of an old build
    }
    if (event.seq === 1) {
      const fresh = blankBuild(event.build_id, event.pipeline, event.time, next.detail);
      fresh.seq = 0;
      next = { ...next, build: fresh, loading: null };
      next = applyInOrder(next, event, effects);
      next.pending = next.pending.filter(e => e.build_id === fresh.id);
      next = drain(next, effects);
      next.history = [summary(next.build!), ...next.history.filter(b => b.id !== fresh.id)];
      effects.reloadHistory = true;
      return { state: next, effects };
    }
    next.pending = keep(
      next.pending.filter(e => e.build_id === event.build_id),
      event
    );
    if (next.loading !== event.build_id) {
      next.loading = event.build_id;
      effects.loadBuild = event.build_id;
    }
    return { state: next, effects };
  }
  if (event.seq <= build.seq) {
    return { state: next, effects }; // already in what we show
  }
  if (event.seq > build.seq + 1) {
    next.pending = keep(next.pending, event);
    if (next.loading !== build.id) {
      next.loading = build.id;
      effects.loadBuild = build.id;
    }
    return { state: next, effects };
  }
  next = applyInOrder(next, event, effects);
  next = drain(next, effects);
  return { state: next, effects };
}

/**
 * A build's snapshot came (GET /builds/{id}). It replaces what we show when it is as new as or
 * newer than that (by `seq`), or when it is the build we were waiting for; then the events kept
 * aside that follow it are applied. A gap that remains asks for another snapshot.
 */
export function applySnapshot(state: PanelState, snapshot: Build): Result {
  const effects: Effects = {};
  if (snapshot.pipeline !== state.selected) {
    return { state, effects };
  }
  const shown = state.build;
  const waited = state.loading === snapshot.id;
  let next: PanelState = { ...state, connected: true };
  if (waited) {
    next.loading = null;
  }
  if (shown && shown.id === snapshot.id) {
    if (snapshot.seq >= shown.seq) {
      next.build = withTasks(snapshot, next.detail);
    }
  } else if (!shown || snapshot.created >= shown.created) {
    next.build = withTasks(snapshot, next.detail);
  } else {
    return { state: next, effects }; // an older build than the one shown
  }
  const current = next.build!;
  next.pending = next.pending.filter(e => e.build_id === current.id && e.seq > current.seq);
  next = drain(next, effects);
  if (shown && isActive(shown) && !isActive(next.build)) {
    // It ended while we were not listening (a lost connection, a server restart).
    next.detailStale = true;
    effects.reloadDetail = true;
    effects.reloadHistory = true;
  }
  if (next.pending.length && next.loading === null) {
    next.loading = current.id; // still a gap: the snapshot was older than the gap
    effects.loadBuild = current.id;
  }
  next.history = mergeHistory(next.history, next.build!);
  return { state: next, effects };
}

/** The server did not answer (or answered with an error) when asked for a build. */
export function snapshotFailed(state: PanelState, buildId: string, reachable: boolean): PanelState {
  return {
    ...state,
    loading: state.loading === buildId ? null : state.loading,
    connected: reachable ? state.connected : false,
    notice: reachable ? state.notice : 'The server does not answer; retrying…'
  };
}

export function reconnected(state: PanelState): PanelState {
  if (state.connected) {
    return state;
  }
  return { ...state, connected: true, notice: null };
}

// -- applying one event --------------------------------------------------------------------------

function applyInOrder(state: PanelState, event: BuildEvent, effects: Effects): PanelState {
  const build = cloneBuild(state.build!);
  let stale = state.detailStale;
  const details = event.details ?? {};
  build.seq = event.seq;
  if (event.state) {
    build.state = event.state;
  }
  switch (event.event) {
    case 'build_created':
      build.created = event.time;
      build.force = !!details.force;
      build.targets = Array.isArray(details.targets) ? details.targets : [];
      break;
    case 'build_started':
      build.started = event.time;
      if (Array.isArray(details.tasks)) {
        build.tasks = planTasks(build.tasks, details.tasks);
      }
      break;
    case 'build_finished':
      build.outcome = details.outcome ?? build.outcome;
      build.message = details.stop_reason ?? build.message;
      break;
    case 'build_ended':
      build.ended = event.time;
      build.elapsed = build.started !== null ? event.time - build.started : null;
      build.message = details.message ?? build.message;
      build.exit_code = details.exit_code ?? build.exit_code;
      endUnfinished(build, event.time);
      // The server's record is the last word (the build, its history, the pipeline's status).
      effects.loadBuild = build.id;
      effects.reloadHistory = true;
      effects.reloadDetail = true;
      stale = true;
      break;
    default:
      if (event.task) {
        applyTaskEvent(build, event);
      }
  }
  const history = mergeHistory(state.history, build);
  return { ...state, build, history, detailStale: stale };
}

function applyTaskEvent(build: Build, event: BuildEvent): void {
  const details = event.details ?? {};
  let task = build.tasks.find(t => t.name === event.task);
  if (!task) {
    task = blankTask(event.task!);
    build.tasks.push(task);
  }
  const state = event.task_state ?? STATE_AFTER[event.event];
  if (state) {
    task.state = state;
  }
  switch (event.event) {
    case 'task_queued':
      task.reasons = Array.isArray(details.reasons) ? details.reasons : [];
      break;
    case 'task_started': // may repeat once: a task whose worker died is retried
      task.started = event.time;
      task.ended = null;
      task.elapsed = null;
      task.error = null;
      break;
    case 'task_finished':
    case 'task_failed':
    case 'task_stopped_early':
      task.ended = event.time;
      break;
  }
  if (typeof details.elapsed === 'number') {
    task.elapsed = details.elapsed;
  }
  if (Array.isArray(details.products)) {
    task.products = details.products;
  }
  const detail = details.reason ?? details.message;
  if (detail) {
    task.detail = detail;
  }
  if (event.event === 'task_failed') {
    task.error = failure(details);
  }
}

function failure(details: { [key: string]: any }): TaskError {
  const error: TaskError = { ...(details.details ?? {}) };
  if (!error.message && typeof details.error === 'string') {
    error.message = details.error;
  }
  if (!error.summary) {
    const lines = (error.message ?? '').trim().split('\n');
    error.summary = lines[lines.length - 1] || 'failed';
  }
  return error;
}

/** Mirrors the server's record at the end of a build: unfinished tasks end cancelled. */
function endUnfinished(build: Build, when: number): void {
  const reason =
    build.state === 'cancelled'
      ? 'the build was cancelled'
      : build.state === 'interrupted'
        ? 'the server stopped'
        : 'the build stopped';
  for (const task of build.tasks) {
    if (!FINAL_TASK_STATES.has(task.state)) {
      task.state = 'cancelled';
      task.detail = task.detail ?? reason;
      if (task.started !== null) {
        task.ended = when;
      }
    }
  }
}

/** Applies the kept events that now follow the build shown, in order. */
function drain(state: PanelState, effects: Effects = {}): PanelState {
  let next = state;
  const build = () => next.build!;
  if (!next.build) {
    return next;
  }
  const id = build().id;
  const kept = next.pending.filter(e => e.build_id === id).sort((a, b) => a.seq - b.seq);
  let rest = next.pending.filter(e => e.build_id !== id);
  for (const event of kept) {
    if (event.seq <= build().seq) {
      continue;
    }
    if (event.seq === build().seq + 1) {
      next = applyInOrder(next, event, effects);
    } else {
      rest = [...rest, event];
    }
  }
  return { ...next, pending: rest.filter(e => e.build_id !== id || e.seq > build().seq) };
}

function keep(pending: BuildEvent[], event: BuildEvent): BuildEvent[] {
  const others = pending.filter(e => !(e.build_id === event.build_id && e.seq === event.seq));
  const kept = [...others, event];
  return kept.length > 1000 ? kept.slice(kept.length - 1000) : kept; // bounded
}

/** Keeps the pipeline listing's "building" marks current from events of any pipeline. */
function listingEvent(state: PanelState, event: BuildEvent): PanelState {
  if (!state.pipelines) {
    return state;
  }
  const active = ACTIVE_BUILD_STATES.has(event.state);
  let changed = false;
  const pipelines = state.pipelines.map(p => {
    if (p.path !== event.pipeline) {
      return p;
    }
    const building = active ? event.build_id : p.building === event.build_id ? null : p.building;
    if (building === p.building) {
      return p;
    }
    changed = true;
    return { ...p, building };
  });
  return changed ? { ...state, pipelines } : state;
}

// -- building blocks -----------------------------------------------------------------------------

function blankTask(name: string): BuildTask {
  return {
    name,
    state: 'pending',
    reasons: [],
    started: null,
    ended: null,
    elapsed: null,
    products: [],
    detail: null,
    error: null
  };
}

function blankTasks(detail: Pipeline | null): BuildTask[] {
  return detail ? detail.tasks.map(t => blankTask(t.name)) : [];
}

function blankBuild(id: string, pipeline: string, created: number, detail: Pipeline | null): Build {
  return {
    id,
    pipeline,
    state: 'starting',
    force: false,
    targets: [],
    created,
    started: null,
    ended: null,
    elapsed: null,
    outcome: null,
    exit_code: null,
    message: null,
    seq: 0,
    tasks: blankTasks(detail)
  };
}

function withTasks(snapshot: Build, detail: Pipeline | null): Build {
  const build = cloneBuild(snapshot);
  if (!build.tasks || !build.tasks.length) {
    build.tasks = blankTasks(detail);
  }
  return build;
}

/** The build's task rows in the plan's order; rows of tasks outside the plan are dropped. */
function planTasks(rows: BuildTask[], plan: string[]): BuildTask[] {
  const byName = new Map(rows.map(t => [t.name, t]));
  return plan.map(name => byName.get(name) ?? blankTask(name));
}

function cloneBuild(build: Build): Build {
  return {
    ...build,
    targets: [...(build.targets ?? [])],
    tasks: (build.tasks ?? []).map(t => ({ ...t }))
  };
}

export function summary(build: Build): BuildSummary {
  const counts: { [state: string]: number } = {};
  for (const task of build.tasks) {
    counts[task.state] = (counts[task.state] ?? 0) + 1;
  }
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { tasks, ...rest } = build;
  return { ...rest, counts };
}

function historyEntry(state: PanelState, id: string): BuildSummary | undefined {
  return state.history.find(b => b.id === id);
}

function historyHas(state: PanelState, id: string): boolean {
  return historyEntry(state, id) !== undefined;
}

function mergeHistory(history: BuildSummary[], build: Build): BuildSummary[] {
  const index = history.findIndex(b => b.id === build.id);
  if (index < 0) {
    return history;
  }
  const merged = [...history];
  merged[index] = summary(build);
  return merged;
}

// -- what the view shows -------------------------------------------------------------------------

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

export function display(state: TaskState | null | undefined): Display {
  switch (state) {
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

export interface TaskRow {
  name: string;
  kind: 'notebook' | 'function' | null;
  source: string | null;
  upstream: string[];
  products: Product[];
  /** Its state in the build shown, if it takes part in it. */
  run: BuildTask | null;
  display: Display;
  /** Its status now, from the pipeline's status ("up to date", "outdated", ...). */
  status: PipelineTaskState | null;
  /** The longest chain of upstream tasks before it (0: no upstream task). */
  layer: number;
}

/** The rows the panel shows, grouped by layer (upstream tasks come in earlier layers). */
export function taskLayers(state: PanelState): TaskRow[][] {
  const detail = state.detail;
  const runs = new Map((state.build?.tasks ?? []).map(t => [t.name, t]));
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
      products: run && run.products.length ? run.products : task.products,
      run,
      display: display(run?.state),
      status: task.state,
      layer: 0
    });
  }
  for (const run of state.build?.tasks ?? []) {
    if (!seen.has(run.name)) {
      rows.push({
        name: run.name,
        kind: null,
        source: null,
        upstream: [],
        products: run.products,
        run,
        display: display(run.state),
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

/** Seconds a task has taken: so far when it runs (`now` is the browser's clock). */
export function taskElapsed(task: BuildTask, now: number, skew: number): number | null {
  if (task.state === 'running' && task.started !== null) {
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

export function buildElapsed(build: BuildSummary, now: number, skew: number): number | null {
  if (build.elapsed !== null && build.elapsed !== undefined) {
    return build.elapsed;
  }
  if (build.started !== null && build.ended !== null) {
    return build.ended - build.started;
  }
  if (build.started !== null && ACTIVE_BUILD_STATES.has(build.state)) {
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

export const BUILD_LABEL: { [state in BuildState]: string } = {
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

/** Whether "Build pipeline" applies now. */
export function canBuild(state: PanelState): boolean {
  return !!state.selected && state.request === null && !isActive(state.build) && state.connected;
}

/** Whether "Cancel" applies now. */
export function canCancel(state: PanelState): boolean {
  return (
    !!state.build &&
    state.request === null &&
    state.connected &&
    (state.build.state === 'starting' || state.build.state === 'running')
  );
}

/** Whether a pipeline task's source or product is at `path` (the notebook toolbar button). */
export function pipelineOwns(detail: Pipeline, path: string): boolean {
  return detail.tasks.some(
    t => t.source === path || t.products.some(p => p.in_root && p.path === path)
  );
}

/** The pipelines whose folder holds `path` (at any depth), nearest first. */
export function candidatePipelines(pipelines: string[], path: string): string[] {
  const folder = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
  return pipelines
    .filter(p => {
      const dir = folder(p);
      return dir === '' || path === dir || path.startsWith(dir + '/');
    })
    .sort((a, b) => folder(b).length - folder(a).length);
}

/** Whether a file name is a pipeline spec the server lists (pipeline*.yaml / pipeline*.yml). */
export function isPipelineFile(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return /^pipeline.*\.ya?ml$/.test(name);
}
