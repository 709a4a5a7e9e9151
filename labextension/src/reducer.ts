/**
 * A build's state, derived from its events: the panel's one reducer.
 *
 * It mirrors the Python reducer, `nbpipe/engine/state.py` (`BuildState.apply`), rule for rule,
 * and its state has the shape of Python's `BuildState.to_dict()`; a golden test
 * (`test/golden.test.ts`) feeds it the recorded streams of `tests/golden/*.json` and compares
 * what it derives with what Python derived. The rules, in short:
 *
 *     build_created          state "starting"
 *     build_started          state "running" (unless a cancel was asked); every task listed, pending;
 *                            the executor and its dashboard link kept
 *     task_<kind>            the task's status becomes STATUS_AFTER[kind]; times, products, reasons,
 *                            detail (why aborted/cancelled, the early-stop message, the failure's
 *                            summary) and failure kept
 *     task_cell_started      (only while the task runs) its cell, cells, the cell's first line and
 *                            start time; task_cell_finished: the cell's elapsed, no cell running;
 *                            task_output: the output tail, replaced. task_started clears these;
 *                            the task's end leaves them but for the running cell's start
 *     build_cancelling       state "cancelling"
 *     build_finished         outcome, stop reason, end time; state becomes the outcome (unless
 *                            cancelling)
 *     build_ended            state becomes the supervisor's final state; every task not yet settled
 *                            (its process died) becomes cancelled, with the reason
 *                            `unsettledReason` gives for that state
 *
 * `applyEvent` is pure: it returns a new state and never changes the one it is given. It keeps
 * whatever else the object carries (the panel's builds also have the server's fields: id, seq...).
 */
import type {
  BuildEnded,
  BuildFinished,
  BuildStarted,
  NbpipeEvent,
  TaskCellFinished,
  TaskCellStarted,
  TaskFailure,
  TaskOutput
} from './events.generated';

/** Where a task stands in a build (Python's `TaskStatus`). */
export type TaskStatus =
  | 'pending'
  | 'queued'
  | 'running'
  | 'executed'
  | 'skipped'
  | 'failed'
  | 'aborted'
  | 'stopped_early'
  | 'cancelled';

/**
 * Where a build stands: `pending` before any event, then `starting`, `running`, `cancelling`,
 * and one of the final states (`FINAL_BUILD_STATES`).
 */
export type BuildStateName =
  | 'pending'
  | 'starting'
  | 'running'
  | 'cancelling'
  | 'success'
  | 'failed'
  | 'stopped_early'
  | 'interrupted'
  | 'cancelled'
  | 'error';

/** One task in a build (Python's `TaskState.to_dict()`). */
export interface TaskState {
  name: string;
  status: TaskStatus;
  /** Why it runs. */
  reasons: string[];
  started: number | null;
  ended: number | null;
  elapsed: number | null;
  products: string[];
  /** Why aborted or cancelled, the early-stop message, the failure's summary. */
  detail: string | null;
  failure: TaskFailure | null;
  /** The notebook cell running (or last run), counted from 1. */
  cell: number | null;
  /** The notebook's cells. */
  cells: number | null;
  /** That cell's first line. */
  cell_line: string | null;
  /** When the running cell started; null between cells. */
  cell_started: number | null;
  /** How long the last finished cell took. */
  cell_elapsed: number | null;
  /** The tail of the notebook's output (stdout and stderr). */
  output: string;
}

/** A build as its events describe it (Python's `BuildState.to_dict()`). */
export interface BuildState {
  state: BuildStateName;
  dag: string | null;
  executor: string | null;
  /** Where to watch the workers (a Dask cluster's dashboard). */
  dashboard: string | null;
  /** Upstream before downstream. */
  tasks: TaskState[];
  to_run: string[];
  /** The engine's: success, failed, stopped_early, interrupted. */
  outcome: string | null;
  stop_reason: string | null;
  /** The supervisor's word on how it ended. */
  message: string | null;
  exit_code: number | null;
  started: number | null;
  ended: number | null;
}

type TaskEventKind =
  | 'task_queued'
  | 'task_skipped'
  | 'task_started'
  | 'task_finished'
  | 'task_failed'
  | 'task_aborted'
  | 'task_stopped_early'
  | 'task_cancelled';

type TaskEvent = Extract<NbpipeEvent, { event: TaskEventKind }>;

/** What a running task reports on the way: it changes what the task shows, never its status. */
type TaskProgress = TaskCellStarted | TaskCellFinished | TaskOutput;

/** The status a task is in after each task event: the transition table. */
export const STATUS_AFTER: { readonly [kind in TaskEventKind]: TaskStatus } = {
  task_queued: 'queued',
  task_skipped: 'skipped',
  task_started: 'running',
  task_finished: 'executed',
  task_failed: 'failed',
  task_aborted: 'aborted',
  task_stopped_early: 'stopped_early',
  task_cancelled: 'cancelled'
};

/** Statuses a task does not leave within a build. */
export const FINAL_STATUSES: ReadonlySet<TaskStatus> = new Set<TaskStatus>([
  'executed',
  'skipped',
  'failed',
  'aborted',
  'stopped_early',
  'cancelled'
]);

/** Build states a build does not leave. */
export const FINAL_BUILD_STATES: ReadonlySet<string> = new Set([
  'success',
  'failed',
  'stopped_early',
  'interrupted',
  'cancelled',
  'error'
]);

/** Why a task still unsettled when its build ended in `state` (its process died) is cancelled. */
export function unsettledReason(state: string): string {
  switch (state) {
    case 'cancelled':
      return 'the build was cancelled';
    case 'interrupted':
      return 'the server stopped';
    default:
      return 'the build stopped';
  }
}

export function initialState(): BuildState {
  return {
    state: 'pending',
    dag: null,
    executor: null,
    dashboard: null,
    tasks: [],
    to_run: [],
    outcome: null,
    stop_reason: null,
    message: null,
    exit_code: null,
    started: null,
    ended: null
  };
}

export function newTask(name: string): TaskState {
  return {
    name,
    status: 'pending',
    reasons: [],
    started: null,
    ended: null,
    elapsed: null,
    products: [],
    detail: null,
    failure: null,
    cell: null,
    cells: null,
    cell_line: null,
    cell_started: null,
    cell_elapsed: null,
    output: ''
  };
}

export function isSettled(task: TaskState): boolean {
  return FINAL_STATUSES.has(task.status);
}

export function isFinished(state: string): boolean {
  return FINAL_BUILD_STATES.has(state);
}

/** Folds `event` into `state`; returns the new state (events of unknown kinds change nothing). */
export function applyEvent<S extends BuildState>(state: S, event: NbpipeEvent): S {
  if (isTaskEvent(event)) {
    return applyTaskEvent(state, event);
  }
  switch (event.event) {
    case 'task_cell_started':
    case 'task_cell_finished':
    case 'task_output':
      return applyProgress(state, event);
    case 'build_created':
      return { ...state, state: 'starting' };
    case 'build_started':
      return start(state, event);
    case 'build_cancelling':
      return { ...state, state: 'cancelling' };
    case 'build_finished':
      return finish(state, event);
    case 'build_ended':
      return end(state, event);
    default:
      return state;
  }
}

function isTaskEvent(event: NbpipeEvent): event is TaskEvent {
  return Object.prototype.hasOwnProperty.call(STATUS_AFTER, event.event);
}

function start<S extends BuildState>(state: S, event: BuildStarted): S {
  const known = new Set(state.tasks.map(task => task.name));
  const added = event.tasks.filter(name => !known.has(name) && known.add(name));
  return {
    ...state,
    state: state.state === 'pending' || state.state === 'starting' ? 'running' : state.state,
    dag: event.dag,
    executor: event.executor,
    dashboard: event.dashboard ?? null,
    to_run: [...event.to_run],
    started: event.time,
    tasks: [...state.tasks, ...added.map(newTask)]
  };
}

function applyTaskEvent<S extends BuildState>(state: S, event: TaskEvent): S {
  const index = state.tasks.findIndex(task => task.name === event.task);
  const task: TaskState = { ...(index < 0 ? newTask(event.task) : state.tasks[index]) };
  task.status = STATUS_AFTER[event.event];
  task.cell_started = null;
  switch (event.event) {
    case 'task_queued':
      task.reasons = [...event.reasons];
      break;
    case 'task_started': // again, for a task retried after its worker died
      task.started = event.time;
      task.ended = null;
      task.failure = null;
      task.detail = null;
      task.cell = task.cells = task.cell_line = task.cell_elapsed = null;
      task.output = '';
      break;
    case 'task_skipped':
    case 'task_finished':
      task.products = [...event.products];
      break;
    case 'task_aborted':
    case 'task_cancelled':
      task.detail = event.reason;
      break;
    case 'task_stopped_early':
      task.detail = event.message;
      break;
    case 'task_failed':
      task.failure = taskFailure(event.failure);
      task.detail = failureSummary(task.failure);
      break;
  }
  if (
    event.event === 'task_finished' ||
    event.event === 'task_failed' ||
    event.event === 'task_stopped_early'
  ) {
    task.ended = event.time;
    task.elapsed = event.elapsed;
  } else if (event.event === 'task_cancelled' && task.started !== null) {
    task.ended = event.time;
  }
  const tasks = [...state.tasks];
  if (index < 0) {
    tasks.push(task);
  } else {
    tasks[index] = task;
  }
  return { ...state, tasks };
}

function applyProgress<S extends BuildState>(state: S, event: TaskProgress): S {
  const index = state.tasks.findIndex(task => task.name === event.task);
  if (index < 0 || state.tasks[index].status !== 'running') {
    return state;
  }
  const task: TaskState = { ...state.tasks[index] };
  switch (event.event) {
    case 'task_cell_started':
      task.cell = event.cell;
      task.cells = event.cells;
      task.cell_line = event.line;
      task.cell_started = event.time;
      task.cell_elapsed = null;
      break;
    case 'task_cell_finished':
      task.cell = event.cell;
      task.cells = event.cells;
      task.cell_started = null;
      task.cell_elapsed = event.elapsed;
      break;
    case 'task_output':
      task.output = event.text;
      break;
  }
  const tasks = [...state.tasks];
  tasks[index] = task;
  return { ...state, tasks };
}

/** Where a running notebook is, for people: `cell 12/40 · df = load(path)` (null otherwise). */
export function cellText(task: TaskState): string | null {
  if (task.status !== 'running' || task.cell === null || task.cell === undefined) {
    return null; // (a snapshot from a server before per-cell progress has no cell fields)
  }
  const where = `cell ${task.cell}/${task.cells}`;
  return task.cell_line ? `${where} · ${task.cell_line}` : where;
}

function finish<S extends BuildState>(state: S, event: BuildFinished): S {
  const outcome = event.outcome;
  return {
    ...state,
    outcome,
    stop_reason: event.stop_reason ?? null,
    ended: event.time,
    state: state.state === 'cancelling' ? state.state : outcome
  };
}

function end<S extends BuildState>(state: S, event: BuildEnded): S {
  const reason = unsettledReason(event.state);
  const tasks = state.tasks.map(task =>
    isSettled(task)
      ? task
      : {
          ...task,
          status: 'cancelled' as const,
          detail: task.detail || reason,
          cell_started: null,
          ended: task.started !== null ? event.time : task.ended
        }
  );
  return {
    ...state,
    state: event.state as BuildStateName,
    message: event.message || state.message,
    exit_code: event.exit_code ?? null,
    ended: state.ended || event.time,
    tasks
  };
}

/**
 * A failure as Python's `TaskFailure.from_dict` reads it: the known fields, each with its
 * default when absent (fields a newer writer adds are dropped).
 */
export function taskFailure(data: Partial<TaskFailure> & Pick<TaskFailure, 'type'>): TaskFailure {
  const field = <K extends keyof TaskFailure>(key: K, absent: TaskFailure[K]): TaskFailure[K] =>
    Object.prototype.hasOwnProperty.call(data, key) ? (data[key] as TaskFailure[K]) : absent;
  return {
    task: field('task', ''),
    type: data.type,
    message: field('message', ''),
    traceback: field('traceback', ''),
    source: field('source', null),
    cell: field('cell', null),
    line: field('line', null),
    code: field('code', null),
    partial_notebook: field('partial_notebook', null)
  };
}

/** Where a failure happened, for people: `cell 4, line 2` (cells counted from 1). */
export function failureWhere(failure: Pick<TaskFailure, 'cell' | 'line'>): string | null {
  if (failure.cell === null || failure.cell === undefined) {
    return null;
  }
  return `cell ${failure.cell + 1}${failure.line ? `, line ${failure.line}` : ''}`;
}

/** One line, as Python's `TaskFailure.summary()`: `KeyError: 'units' (cell 4, line 2)`. */
export function failureSummary(
  failure: Pick<TaskFailure, 'type' | 'message' | 'cell' | 'line'>
): string {
  const text = failure.message ? `${failure.type}: ${failure.message}` : failure.type;
  const where = failureWhere(failure);
  return where === null ? text : `${text} (${where})`;
}
