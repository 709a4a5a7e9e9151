/**
 * The panel's state, and the pure functions that change it.
 *
 * Nothing here touches the network, the DOM or JupyterLab: the controller (`controller.ts`) feeds
 * in what the server says (REST snapshots and event-bus envelopes) and carries out the *effects*
 * the functions ask for (load a build, reload the history, reload the pipeline's status). What a
 * build's events make of it is the reducer's business (`reducer.ts`); here is how the live event
 * stream and the REST snapshots are merged.
 *
 * The server numbers each build's events from 1 (`seq`), and every REST snapshot of a build
 * carries the `seq` it reflects. So the rule is:
 *
 *   - an event with `seq <= build.seq` is already in what we show: dropped;
 *   - `seq == build.seq + 1`: applied (through the reducer);
 *   - `seq > build.seq + 1`: something was missed (a reconnect, a server restart): the event is
 *     kept aside and a snapshot is asked for; when it comes, the kept events after its `seq` are
 *     applied in order.
 *
 * Example: we show build B at seq 4, the socket drops, events 5 and 6 are lost and 7 arrives.
 * `applyBusEvent` keeps 7 and asks for B's snapshot; the snapshot comes at seq 6; `applySnapshot`
 * takes it and applies 7. Had the snapshot come at seq 7 or later, 7 would be dropped.
 */
import { applyEvent, initialState as initialBuildState, isFinished } from './reducer';
import type {
  Accepted,
  Build,
  BuildEnvelope,
  BuildSummary,
  Pipeline,
  PipelineListing
} from './types';

/** How the panel shows a pipeline's tasks: a laid-out graph, or a list of layers. */
export type TaskView = 'graph' | 'list';

export interface PanelState {
  /** How the tasks are shown (the user's choice, kept when another pipeline is picked). */
  view: TaskView;
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
  pending: BuildEnvelope[];
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

export function initialPanelState(): PanelState {
  return {
    view: 'list',
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

/** Whether a build is on its way (not in a final state). */
export function isActive(build: { state: string } | null | undefined): boolean {
  return !!build && !isFinished(build.state);
}

/** Whether "Build pipeline" applies now. */
export function canBuild(state: PanelState): boolean {
  return !!state.selected && state.request === null && !isActive(state.build) && state.connected;
}

/** Whether "Cancel" applies now: a build runs and no cancel was asked yet. */
export function canCancel(state: PanelState): boolean {
  return (
    isActive(state.build) &&
    state.build!.state !== 'cancelling' &&
    state.request === null &&
    state.connected
  );
}

/** Show the tasks as a graph or as a list. */
export function showAs(state: PanelState, view: TaskView): PanelState {
  return state.view === view ? state : { ...state, view };
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
  const { view, pipelines, connected, skew } = state;
  return {
    state: { ...initialPanelState(), view, pipelines, connected, skew, selected: path },
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
export function buildAccepted(state: PanelState, accepted: Accepted, now: number): Result {
  const base = { ...state, request: null, notice: null };
  if (accepted.pipeline !== state.selected || state.build?.id === accepted.id) {
    return { state: base, effects: {} }; // its first event came before the answer
  }
  const build = blankBuild(accepted.id, accepted.pipeline, now - state.skew);
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
export function applyBusEvent(state: PanelState, envelope: BuildEnvelope, now: number): Result {
  if (envelope.pipeline !== state.selected) {
    return { state: listingEvent(state, envelope), effects: {} };
  }
  const time = envelope.event?.time;
  const skew = typeof time === 'number' ? now - time : state.skew;
  let next: PanelState = { ...listingEvent(state, envelope), skew, connected: true };
  const effects: Effects = {};
  const build = next.build;
  if (!build || build.id !== envelope.build_id) {
    if (historyHas(next, envelope.build_id) && !isActive(historyEntry(next, envelope.build_id))) {
      return { state: next, effects }; // a late event of an old build
    }
    if (envelope.seq === 1) {
      const fresh = blankBuild(envelope.build_id, envelope.pipeline, time ?? now - state.skew);
      next = { ...next, build: fresh, loading: null };
      next = applyInOrder(next, envelope, effects);
      next.pending = next.pending.filter(e => e.build_id === fresh.id);
      next = drain(next, effects);
      next.history = [summary(next.build!), ...next.history.filter(b => b.id !== fresh.id)];
      effects.reloadHistory = true;
      return { state: next, effects };
    }
    next.pending = keep(
      next.pending.filter(e => e.build_id === envelope.build_id),
      envelope
    );
    if (next.loading !== envelope.build_id) {
      next.loading = envelope.build_id;
      effects.loadBuild = envelope.build_id;
    }
    return { state: next, effects };
  }
  if (envelope.seq <= build.seq) {
    return { state: next, effects }; // already in what we show
  }
  if (envelope.seq > build.seq + 1) {
    next.pending = keep(next.pending, envelope);
    if (next.loading !== build.id) {
      next.loading = build.id;
      effects.loadBuild = build.id;
    }
    return { state: next, effects };
  }
  next = applyInOrder(next, envelope, effects);
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
      next.build = fromSnapshot(snapshot);
    }
  } else if (!shown || snapshot.created >= shown.created) {
    next.build = fromSnapshot(snapshot);
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

/** The next event of the build shown: the reducer makes the build's state of it. */
function applyInOrder(state: PanelState, envelope: BuildEnvelope, effects: Effects): PanelState {
  const event = envelope.event;
  const build: Build = { ...applyEvent(state.build!, event), seq: envelope.seq };
  let stale = state.detailStale;
  if (event.event === 'build_created') {
    // What the server adds to the build's state comes with its first event.
    build.created = event.time;
    build.force = !!event.force;
    build.targets = [...(event.targets ?? [])];
  } else if (event.event === 'build_ended') {
    // The server's record is the last word (the build, its history, the pipeline's status).
    effects.loadBuild = build.id;
    effects.reloadHistory = true;
    effects.reloadDetail = true;
    stale = true;
  }
  const history = mergeHistory(state.history, build);
  return { ...state, build, history, detailStale: stale };
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
  for (const envelope of kept) {
    if (envelope.seq <= build().seq) {
      continue;
    }
    if (envelope.seq === build().seq + 1) {
      next = applyInOrder(next, envelope, effects);
    } else {
      rest = [...rest, envelope];
    }
  }
  return { ...next, pending: rest.filter(e => e.build_id !== id || e.seq > build().seq) };
}

function keep(pending: BuildEnvelope[], envelope: BuildEnvelope): BuildEnvelope[] {
  const others = pending.filter(e => !(e.build_id === envelope.build_id && e.seq === envelope.seq));
  const kept = [...others, envelope];
  return kept.length > 1000 ? kept.slice(kept.length - 1000) : kept; // bounded
}

/** Keeps the pipeline listing's "building" marks current from events of any pipeline. */
function listingEvent(state: PanelState, envelope: BuildEnvelope): PanelState {
  if (!state.pipelines) {
    return state;
  }
  const active = !isFinished(envelope.state);
  let changed = false;
  const pipelines = state.pipelines.map(p => {
    if (p.path !== envelope.pipeline) {
      return p;
    }
    const building = active
      ? envelope.build_id
      : p.building === envelope.build_id
        ? null
        : p.building;
    if (building === p.building) {
      return p;
    }
    changed = true;
    return { ...p, building };
  });
  return changed ? { ...state, pipelines } : state;
}

// -- building blocks -----------------------------------------------------------------------------

/** A build before its first event: the reducer's initial state, and the server's fields. */
function blankBuild(id: string, pipeline: string, created: number): Build {
  return {
    ...initialBuildState(),
    id,
    pipeline,
    force: false,
    targets: [],
    created,
    seq: 0
  };
}

/** A snapshot as the panel keeps it (a build the server has not planned yet has no tasks). */
function fromSnapshot(snapshot: Build): Build {
  return {
    ...snapshot,
    targets: [...(snapshot.targets ?? [])],
    tasks: [...(snapshot.tasks ?? [])]
  };
}

/** A build as the history lists it: without its tasks, with how many are in each status. */
export function summary(build: Build): BuildSummary {
  const counts: { [status: string]: number } = {};
  for (const task of build.tasks) {
    counts[task.status] = (counts[task.status] ?? 0) + 1;
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
