/**
 * The panel's state logic on event sequences. `fixtures/` holds what a real server sent for two
 * builds of the example pipeline (recorded from its event bus and REST API): a success, then a
 * failure of `clean` with its downstream tasks aborted.
 */
import {
  applyDetail,
  applyEvent,
  applyHistory,
  applyListing,
  applySnapshot,
  Build,
  buildAccepted,
  BuildEvent,
  candidatePipelines,
  canBuild,
  canCancel,
  display,
  formatDuration,
  initialState,
  isPipelineFile,
  layersOf,
  PanelState,
  Pipeline,
  pipelineOwns,
  Result,
  select,
  snapshotFailed,
  taskElapsed,
  taskLayers
} from '../src/model';

import success from './fixtures/build-success.json';
import failure from './fixtures/build-failure.json';
import pipelineJson from './fixtures/pipeline.json';

const PIPELINE = pipelineJson as unknown as Pipeline;
const SUCCESS = success.events as unknown as BuildEvent[];
const SUCCESS_SNAPSHOT = success.snapshot as unknown as Build;
const FAILURE = failure.events as unknown as BuildEvent[];
const FAILURE_SNAPSHOT = failure.snapshot as unknown as Build;
const NOW = 1_800_000_000;

/** A panel showing the example pipeline, before any build. */
function opened(detail: Partial<Pipeline> = {}): PanelState {
  let state = applyListing(initialState(), [
    { path: 'pipeline.yaml', building: null, last_build: null },
    { path: 'other/pipeline.yaml', building: null, last_build: null }
  ]).state;
  state = applyDetail(state, { ...PIPELINE, building: null, last_build: null, ...detail }).state;
  return state;
}

/** Applies events in order; returns the last state and every effect asked for. */
function run(
  state: PanelState,
  events: BuildEvent[]
): { state: PanelState; effects: Result['effects'][] } {
  const effects: Result['effects'][] = [];
  for (const event of events) {
    const result = applyEvent(state, event, event.time + 0.05);
    state = result.state;
    effects.push(result.effects);
  }
  return { state, effects };
}

function states(state: PanelState): { [task: string]: string } {
  return Object.fromEntries((state.build?.tasks ?? []).map(t => [t.name, t.state]));
}

function snapshotStates(build: Build): { [task: string]: string } {
  return Object.fromEntries(build.tasks.map(t => [t.name, t.state]));
}

function fake(
  build: string,
  seq: number,
  event: string,
  extra: Partial<BuildEvent> = {}
): BuildEvent {
  return {
    build_id: build,
    pipeline: 'pipeline.yaml',
    seq,
    event,
    time: NOW + seq,
    task: null,
    state: 'running',
    task_state: null,
    details: {},
    ...extra
  };
}

describe('a build seen live from its first event', () => {
  it('takes every task to done and ends as the server recorded it', () => {
    const { state, effects } = run(opened(), SUCCESS);
    const build = state.build!;
    expect(build.id).toBe(SUCCESS[0].build_id);
    expect(build.state).toBe('success');
    expect(build.seq).toBe(SUCCESS.length);
    expect(states(state)).toEqual(snapshotStates(SUCCESS_SNAPSHOT));
    expect(Object.values(states(state))).toEqual(Array(5).fill('executed'));
    expect(state.pending).toEqual([]);
    expect(state.loading).toBeNull();
    // No REST read was needed while it ran; at the end the history and the status are reread.
    expect(effects.slice(1, -1).every(e => !e.loadBuild)).toBe(true);
    expect(effects[effects.length - 1]).toEqual({
      loadBuild: SUCCESS[0].build_id,
      reloadHistory: true,
      reloadDetail: true
    });
    expect(state.detailStale).toBe(true);
    expect(canBuild(state)).toBe(true);
    expect(canCancel(state)).toBe(false);
  });

  it('shows each task waiting, then running, then done, in the right order', () => {
    let state = opened();
    const seen: string[] = [];
    for (const event of SUCCESS) {
      state = applyEvent(state, event, event.time).state;
      const clean = state.build!.tasks.find(t => t.name === 'clean');
      const shown = display(clean?.state);
      if (seen[seen.length - 1] !== shown) {
        seen.push(shown);
      }
    }
    expect(seen).toEqual(['waiting', 'running', 'done']);
  });

  it('keeps the products, reasons and times of every task', () => {
    const { state } = run(opened(), SUCCESS);
    const clean = state.build!.tasks.find(t => t.name === 'clean')!;
    expect(clean.products.map(p => p.path)).toEqual([
      'output/clean.ipynb',
      'output/clean.html',
      'output/clean.csv'
    ]);
    expect(clean.products.every(p => p.in_root)).toBe(true);
    expect(clean.reasons.length).toBeGreaterThan(0);
    expect(clean.started).not.toBeNull();
    expect(clean.ended!).toBeGreaterThanOrEqual(clean.started!);
    expect(clean.elapsed).toBeGreaterThan(0);
    expect(state.build!.elapsed).toBeGreaterThan(0);
  });

  it('shows a failure with its cell and traceback, and the downstream tasks aborted', () => {
    const { state } = run(opened(), FAILURE);
    expect(state.build!.state).toBe('failed');
    expect(states(state)).toEqual(snapshotStates(FAILURE_SNAPSHOT));
    expect(states(state)).toEqual({
      make_raw_data: 'skipped',
      clean: 'failed',
      by_region: 'aborted',
      monthly_trend: 'aborted',
      report: 'aborted'
    });
    const clean = state.build!.tasks.find(t => t.name === 'clean')!;
    expect(clean.error!.summary).toBe('ValueError: broken on purpose (cell 10, line 1)');
    expect(clean.error!.code).toBe('raise ValueError("broken on purpose")');
    expect(clean.error!.traceback).toContain('Traceback');
    expect(clean.error!.partial_path).toBe('output/clean.failed.ipynb');
    const report = state.build!.tasks.find(t => t.name === 'report')!;
    expect(report.detail).toBe("upstream task 'clean' failed");
  });

  it('ignores an event it has already applied', () => {
    const once = run(opened(), SUCCESS.slice(0, 8)).state;
    const twice = run(once, SUCCESS.slice(4, 8)).state;
    expect(twice.build).toEqual(once.build);
    expect(twice.pending).toEqual([]);
  });

  it('ignores the events of other pipelines but marks them building in the picker', () => {
    const state = opened();
    const other = { ...SUCCESS[0], pipeline: 'other/pipeline.yaml', build_id: 'b2' };
    const next = applyEvent(state, other, NOW).state;
    expect(next.build).toBeNull();
    expect(next.pipelines!.find(p => p.path === 'other/pipeline.yaml')!.building).toBe('b2');
    const ended = { ...other, seq: 2, event: 'build_ended', state: 'success' as const };
    expect(
      applyEvent(next, ended, NOW).state.pipelines!.find(p => p.path === 'other/pipeline.yaml')!
        .building
    ).toBeNull();
  });

  it('resets a retried task (its worker died) when it starts again', () => {
    const b = 'retry';
    let state = run(opened(), [
      fake(b, 1, 'build_created', { state: 'starting' }),
      fake(b, 2, 'build_started', { details: { tasks: ['make_raw_data'] } }),
      fake(b, 3, 'task_queued', { task: 'make_raw_data', task_state: 'queued' }),
      fake(b, 4, 'task_started', { task: 'make_raw_data', task_state: 'running' })
    ]).state;
    expect(state.build!.tasks.map(t => t.name)).toEqual(['make_raw_data']); // the plan's order
    state = applyEvent(
      state,
      fake(b, 5, 'task_started', { task: 'make_raw_data', task_state: 'running', time: NOW + 50 }),
      NOW + 50
    ).state;
    const task = state.build!.tasks[0];
    expect(task.state).toBe('running');
    expect(task.started).toBe(NOW + 50);
    expect(task.ended).toBeNull();
  });
});

describe('gaps: events missed while the socket was down', () => {
  it('keeps later events aside, asks for the snapshot, then applies what follows it', () => {
    const before = run(opened(), SUCCESS.slice(0, 4)).state; // seq 1..4
    const missed = SUCCESS.slice(4, 6); // seq 5, 6 never arrive
    expect(missed.map(e => e.seq)).toEqual([5, 6]);
    let result = applyEvent(before, SUCCESS[6], NOW); // seq 7
    expect(result.effects.loadBuild).toBe(SUCCESS[0].build_id);
    expect(result.state.loading).toBe(SUCCESS[0].build_id);
    expect(result.state.build!.seq).toBe(4); // nothing applied past the gap
    // seq 8 comes while the snapshot is on its way: kept too, no second request.
    result = applyEvent(result.state, SUCCESS[7], NOW);
    expect(result.effects.loadBuild).toBeUndefined();
    expect(result.state.pending.map(e => e.seq)).toEqual([7, 8]);
    // The snapshot reflects seq 6: it is taken and 7, 8 follow.
    const atSix = snapshotAt(SUCCESS, 6);
    result = applySnapshot(result.state, atSix);
    expect(result.state.build!.seq).toBe(8);
    expect(result.state.pending).toEqual([]);
    expect(result.state.loading).toBeNull();
    const straight = run(opened(), SUCCESS.slice(0, 8)).state;
    expect(states(result.state)).toEqual(states(straight));
    // and the rest of the stream applies as usual
    const rest = run(result.state, SUCCESS.slice(8)).state;
    expect(states(rest)).toEqual(snapshotStates(SUCCESS_SNAPSHOT));
    expect(rest.build!.state).toBe('success');
  });

  it('drops kept events the snapshot already reflects', () => {
    const before = run(opened(), SUCCESS.slice(0, 4)).state;
    const kept = applyEvent(before, SUCCESS[6], NOW).state; // seq 7 kept
    const result = applySnapshot(kept, snapshotAt(SUCCESS, 10));
    expect(result.state.build!.seq).toBe(10);
    expect(result.state.pending).toEqual([]);
    expect(result.effects.loadBuild).toBeUndefined();
  });

  it('asks again when the snapshot is older than the gap', () => {
    const before = run(opened(), SUCCESS.slice(0, 4)).state;
    const kept = applyEvent(before, SUCCESS[9], NOW).state; // seq 10 kept, 5..9 missing
    const result = applySnapshot(kept, snapshotAt(SUCCESS, 6));
    expect(result.state.build!.seq).toBe(6);
    expect(result.state.pending.map(e => e.seq)).toEqual([10]);
    expect(result.effects.loadBuild).toBe(SUCCESS[0].build_id);
  });

  it('ignores a snapshot older than what it shows', () => {
    const shown = run(opened(), SUCCESS.slice(0, 10)).state;
    const result = applySnapshot(shown, snapshotAt(SUCCESS, 6));
    expect(result.state.build).toEqual(shown.build);
  });

  it('rereads the build when the pipeline status says it has more events than shown', () => {
    const shown = run(opened(), SUCCESS.slice(0, 10)).state; // the end was missed
    const summary = { ...SUCCESS_SNAPSHOT, tasks: undefined } as any;
    const result = applyDetail(shown, { ...PIPELINE, building: null, last_build: summary });
    expect(result.effects.loadBuild).toBe(SUCCESS_SNAPSHOT.id);
    const done = applySnapshot(result.state, SUCCESS_SNAPSHOT).state;
    expect(done.build!.state).toBe('success');
    expect(canBuild(done)).toBe(true);
  });
});

describe('opening the panel, and builds started elsewhere', () => {
  it('loads the running build, keeps the events that come first, then catches up', () => {
    const building = SUCCESS[0].build_id;
    let state = applyListing(initialState(), [
      { path: 'pipeline.yaml', building, last_build: null }
    ]).state;
    const detail = applyDetail(state, { ...PIPELINE, building, last_build: null });
    expect(detail.effects.loadBuild).toBe(building);
    state = detail.state;
    // Events 9 and 10 arrive before the snapshot (taken at seq 8).
    state = run(state, SUCCESS.slice(8, 10)).state;
    expect(state.build).toBeNull();
    const result = applySnapshot(state, snapshotAt(SUCCESS, 8));
    expect(result.state.build!.seq).toBe(10);
    expect(states(result.state)).toEqual(states(run(opened(), SUCCESS.slice(0, 10)).state));
  });

  it('shows the last build and its failure when nothing runs', () => {
    const last = { ...FAILURE_SNAPSHOT, tasks: undefined } as any;
    const result = applyDetail(opened(), { ...PIPELINE, building: null, last_build: last });
    expect(result.effects.loadBuild).toBe(FAILURE_SNAPSHOT.id);
    const state = applySnapshot(result.state, FAILURE_SNAPSHOT).state;
    const rows = taskLayers(state).flat();
    expect(rows.map(r => [r.name, r.display])).toEqual([
      ['make_raw_data', 'skipped'],
      ['clean', 'failed'],
      ['by_region', 'aborted'],
      ['monthly_trend', 'aborted'],
      ['report', 'aborted']
    ]);
    expect(rows[1].run!.error!.summary).toContain('ValueError');
  });

  it('follows a build started by someone else from its first event', () => {
    const result = applyEvent(opened(), SUCCESS[0], NOW);
    expect(result.state.build!.id).toBe(SUCCESS[0].build_id);
    expect(result.state.build!.state).toBe('starting');
    expect(result.effects).toEqual({ reloadHistory: true });
    expect(result.state.history[0].id).toBe(SUCCESS[0].build_id);
    expect(canBuild(result.state)).toBe(false);
    expect(canCancel(result.state)).toBe(true);
  });

  it('asks for the snapshot of a build it meets mid-way', () => {
    const result = applyEvent(opened(), SUCCESS[5], NOW);
    expect(result.effects.loadBuild).toBe(SUCCESS[0].build_id);
    expect(result.state.pending.map(e => e.seq)).toEqual([6]);
  });

  it('switches to a new build even when it missed the end of the previous one', () => {
    const first = run(opened(), SUCCESS.slice(0, 8)).state; // never saw it end
    const second = run(first, FAILURE).state;
    expect(second.build!.id).toBe(FAILURE[0].build_id);
    expect(second.build!.state).toBe('failed');
  });

  it('ignores a late event of a build that has ended', () => {
    const ended = run(opened(), SUCCESS).state;
    const next = run(ended, FAILURE.slice(0, 3)).state;
    const late = applyEvent(next, { ...SUCCESS[5], seq: 99 }, NOW);
    expect(late.state.build!.id).toBe(FAILURE[0].build_id);
    expect(late.effects.loadBuild).toBeUndefined();
  });
});

describe('starting and cancelling from the panel', () => {
  it('shows the build when the POST answers before the first event', () => {
    let state: PanelState = { ...opened(), request: 'build' };
    expect(canBuild(state)).toBe(false);
    state = buildAccepted(
      state,
      { id: SUCCESS[0].build_id, pipeline: 'pipeline.yaml', state: 'starting' },
      NOW
    ).state;
    expect(state.request).toBeNull();
    expect(state.build!.seq).toBe(0);
    expect(state.build!.tasks.map(t => display(t.state))).toEqual(Array(5).fill('waiting'));
    expect(state.history.map(b => b.id)).toEqual([SUCCESS[0].build_id]);
    const { state: done, effects } = run(state, SUCCESS);
    expect(done.build!.state).toBe('success');
    expect(effects.slice(0, -1).every(e => !e.loadBuild)).toBe(true);
    // the end: the server's record replaces ours (same seq), nothing changes
    const final = applySnapshot(done, SUCCESS_SNAPSHOT).state;
    expect(states(final)).toEqual(states(done));
    expect(final.build!.state).toBe('success');
  });

  it('keeps one build when the first event comes before the POST answer', () => {
    let state: PanelState = { ...opened(), request: 'build' };
    state = run(state, SUCCESS.slice(0, 3)).state;
    state = buildAccepted(
      state,
      { id: SUCCESS[0].build_id, pipeline: 'pipeline.yaml', state: 'starting' },
      NOW
    ).state;
    expect(state.request).toBeNull();
    expect(state.build!.seq).toBe(3);
    expect(state.history.filter(b => b.id === SUCCESS[0].build_id)).toHaveLength(1);
  });

  it('ends the unfinished tasks of a cancelled build as cancelled', () => {
    const b = SUCCESS[0].build_id;
    let state = run(opened(), SUCCESS.slice(0, 9)).state; // clean is running
    expect(canCancel(state)).toBe(true);
    state = run(state, [
      fake(b, 10, 'build_cancelling', { state: 'cancelling' }),
      fake(b, 11, 'task_cancelled', {
        task: 'clean',
        task_state: 'cancelled',
        state: 'cancelling',
        details: { reason: 'the build was interrupted' }
      }),
      fake(b, 12, 'build_finished', { state: 'cancelling', details: { outcome: 'interrupted' } }),
      fake(b, 13, 'build_ended', {
        state: 'cancelled',
        details: { message: 'cancelled on request', exit_code: 143 }
      })
    ]).state;
    expect(canCancel(state)).toBe(false);
    expect(canBuild(state)).toBe(true);
    expect(state.build!.state).toBe('cancelled');
    expect(state.build!.message).toBe('cancelled on request');
    const byName = Object.fromEntries(state.build!.tasks.map(t => [t.name, t]));
    expect(byName.make_raw_data.state).toBe('executed');
    expect(byName.clean.state).toBe('cancelled');
    expect(byName.clean.detail).toBe('the build was interrupted');
    expect(byName.report.state).toBe('cancelled');
    expect(byName.report.detail).toBe('the build was cancelled');
  });

  it('disables Cancel while cancelling', () => {
    const b = SUCCESS[0].build_id;
    const state = run(opened(), [
      ...SUCCESS.slice(0, 9),
      fake(b, 10, 'build_cancelling', { state: 'cancelling' })
    ]).state;
    expect(canCancel(state)).toBe(false);
    expect(canBuild(state)).toBe(false);
  });
});

describe('a server restart mid-build', () => {
  it('shows the build interrupted once the restarted server answers', () => {
    let state = run(opened(), SUCCESS.slice(0, 9)).state; // running
    // The server is gone: the snapshot request fails, the panel says so.
    state = snapshotFailed(state, SUCCESS[0].build_id, false);
    expect(state.connected).toBe(false);
    expect(state.notice).toMatch(/does not answer/);
    expect(canBuild(state)).toBe(false);
    // The restarted server marked the build interrupted (no event was sent for that).
    const interrupted: Build = {
      ...snapshotAt(SUCCESS, 9),
      state: 'interrupted',
      seq: 9,
      message: 'the server stopped while this build was running',
      tasks: snapshotAt(SUCCESS, 9).tasks.map(t =>
        ['executed', 'skipped'].includes(t.state)
          ? t
          : { ...t, state: 'cancelled', detail: 'the server stopped' }
      )
    };
    expect(canCancel(state)).toBe(false); // nothing to ask a server that does not answer
    const result = applySnapshot({ ...state, connected: true, notice: null }, interrupted);
    state = result.state;
    // The pipeline's status and history predate that end: both are read again.
    expect(result.effects).toEqual({ reloadDetail: true, reloadHistory: true });
    expect(state.detailStale).toBe(true);
    expect(state.build!.state).toBe('interrupted');
    expect(state.build!.message).toMatch(/server stopped/);
    expect(state.build!.tasks.find(t => t.name === 'clean')!.state).toBe('cancelled');
    expect(canBuild(state)).toBe(true);
    expect(canCancel(state)).toBe(false);
  });

  it('takes the server stopping cleanly (its build_ended event) as interrupted', () => {
    const b = SUCCESS[0].build_id;
    const state = run(opened(), [
      ...SUCCESS.slice(0, 9),
      fake(b, 10, 'build_ended', {
        state: 'interrupted',
        details: { message: 'the server stopped while this build was running', exit_code: 143 }
      })
    ]).state;
    expect(state.build!.state).toBe('interrupted');
    expect(state.build!.tasks.find(t => t.name === 'clean')!.detail).toBe('the server stopped');
  });
});

describe('pipelines, history and what the view shows', () => {
  it('keeps the selection across listings, and picks another when it disappears', () => {
    let state = opened();
    let result = applyListing(state, state.pipelines!);
    expect(result.effects).toEqual({});
    state = select(state, 'other/pipeline.yaml').state;
    expect(state.detail).toBeNull();
    result = applyListing(state, [{ path: 'pipeline.yaml', building: null, last_build: null }]);
    expect(result.state.selected).toBe('pipeline.yaml');
    expect(result.effects).toEqual({ reloadDetail: true, reloadHistory: true });
    expect(applyListing(initialState(), []).state.selected).toBeNull();
  });

  it('drops answers about a pipeline no longer selected', () => {
    const state = select(opened(), 'other/pipeline.yaml').state;
    expect(applySnapshot(state, SUCCESS_SNAPSHOT).state.build).toBeNull();
    expect(applyHistory(state, 'pipeline.yaml', [SUCCESS_SNAPSHOT]).history).toEqual([]);
    expect(applyDetail(state, PIPELINE).state.detail).toBeNull();
  });

  it('updates the history entry of the build as it runs', () => {
    let state = applyHistory(opened(), 'pipeline.yaml', []);
    state = run(state, SUCCESS).state;
    expect(state.history).toHaveLength(1);
    expect(state.history[0].state).toBe('success');
    expect(state.history[0].counts).toEqual({ executed: 5 });
    expect((state.history[0] as any).tasks).toBeUndefined();
  });

  it('lays the example DAG out in layers, upstream first', () => {
    const layers = taskLayers(opened()).map(layer => layer.map(row => row.name));
    expect(layers).toEqual([
      ['make_raw_data'],
      ['clean'],
      ['by_region', 'monthly_trend'],
      ['report']
    ]);
    const rows = taskLayers(opened()).flat();
    expect(rows.every(r => r.display === 'idle')).toBe(true);
    expect(rows.find(r => r.name === 'report')!.upstream).toEqual(['by_region', 'monthly_trend']);
  });

  it('computes layers by the longest path, in one pass, with cycles last', () => {
    const layers = layersOf(
      ['a', 'b', 'c', 'd', 'x', 'y'],
      [
        ['a', 'b'],
        ['b', 'c'],
        ['a', 'c'],
        ['c', 'd'],
        ['x', 'y'],
        ['y', 'x'],
        ['a', 'unknown']
      ]
    );
    expect(Object.fromEntries(layers)).toEqual({ a: 0, b: 1, c: 2, d: 3, x: 4, y: 4 });
  });

  it('shows tasks a build knows that the status does not (a renamed task)', () => {
    const state = run(opened({ tasks: PIPELINE.tasks.slice(0, 2), edges: [] }), SUCCESS).state;
    const rows = taskLayers(state).flat();
    expect(rows.map(r => r.name).sort()).toEqual([
      'by_region',
      'clean',
      'make_raw_data',
      'monthly_trend',
      'report'
    ]);
    const report = rows.find(r => r.name === 'report')!;
    expect(report.display).toBe('done');
    expect(report.status).toBeNull(); // the status does not know it
    expect(report.products.map(p => p.path)).toContain('output/report.html');
  });

  it('maps every engine state to what the panel says', () => {
    expect(
      [
        'pending',
        'queued',
        'running',
        'executed',
        'skipped',
        'failed',
        'aborted',
        'stopped_early',
        'cancelled',
        undefined
      ].map(s => display(s as any))
    ).toEqual([
      'waiting',
      'waiting',
      'running',
      'done',
      'skipped',
      'failed',
      'aborted',
      'stopped-early',
      'cancelled',
      'idle'
    ]);
  });

  it('counts the elapsed time of a running task on the browser clock, minus the skew', () => {
    const task = {
      name: 't',
      state: 'running' as const,
      reasons: [],
      started: 1000,
      ended: null,
      elapsed: null,
      products: [],
      detail: null,
      error: null
    };
    expect(taskElapsed(task, 1012, 2)).toBe(10);
    expect(taskElapsed({ ...task, state: 'executed', elapsed: 3.5 }, 5000, 0)).toBe(3.5);
    expect(taskElapsed({ ...task, state: 'pending', started: null }, 5000, 0)).toBeNull();
    expect([0.42, 12.4, 125, 3725, null].map(formatDuration)).toEqual([
      '0.4 s',
      '12 s',
      '2:05',
      '1:02:05',
      ''
    ]);
  });

  it('finds the pipeline a notebook belongs to', () => {
    expect(isPipelineFile('a/pipeline.yaml')).toBe(true);
    expect(isPipelineFile('pipeline.serve.yml')).toBe(true);
    expect(isPipelineFile('env.yaml')).toBe(false);
    expect(isPipelineFile('pipeline.yaml.bak')).toBe(false);
    expect(
      candidatePipelines(['pipeline.yaml', 'a/pipeline.yaml', 'b/pipeline.yaml'], 'a/x/clean.py')
    ).toEqual(['a/pipeline.yaml', 'pipeline.yaml']);
    expect(pipelineOwns(PIPELINE, 'clean.py')).toBe(true);
    expect(pipelineOwns(PIPELINE, 'output/report.ipynb')).toBe(true);
    expect(pipelineOwns(PIPELINE, 'unrelated.ipynb')).toBe(false);
  });
});

/** What GET /builds/{id} would have said after the first `seq` events (built from the events). */
function snapshotAt(events: BuildEvent[], seq: number): Build {
  const state = run(opened(), events.slice(0, seq)).state;
  const build = state.build!;
  return JSON.parse(JSON.stringify(build));
}
