/**
 * The panel's state logic on event sequences. `fixtures/` holds what a real server sent for two
 * builds of the example pipeline (recorded from its event bus and REST API by
 * `ui-tests/record_fixtures.py`): a success, then a failure of `clean` with its downstream tasks
 * aborted.
 */
import { isPipelineFile } from '../src/files';
import {
  applyBusEvent,
  applyDetail,
  applyHistory,
  applyListing,
  applySnapshot,
  buildAccepted,
  canBuild,
  canCancel,
  initialPanelState,
  PanelState,
  Result,
  select,
  snapshotFailed
} from '../src/model';
import { initialState, newTask } from '../src/reducer';
import type {
  Build,
  BuildEnvelope,
  BuildState,
  BuildStateName,
  NbpipeEvent,
  Pipeline,
  TaskState
} from '../src/types';
import {
  buildElapsed,
  buildLabel,
  display,
  failureView,
  formatDuration,
  layersOf,
  taskElapsed,
  taskLayers
} from '../src/view';

import success from './fixtures/build-success.json';
import failure from './fixtures/build-failure.json';
import pipelineJson from './fixtures/pipeline.json';

const PIPELINE = pipelineJson as unknown as Pipeline;
const SUCCESS = success.events as unknown as BuildEnvelope[];
const SUCCESS_SNAPSHOT = success.snapshot as unknown as Build;
const FAILURE = failure.events as unknown as BuildEnvelope[];
const FAILURE_SNAPSHOT = failure.snapshot as unknown as Build;
const NOW = 1_800_000_000;

/** A panel showing the example pipeline, before any build. */
function opened(detail: Partial<Pipeline> = {}): PanelState {
  let state = applyListing(initialPanelState(), [
    { path: 'pipeline.yaml', building: null, last_build: null },
    { path: 'other/pipeline.yaml', building: null, last_build: null }
  ]).state;
  state = applyDetail(state, { ...PIPELINE, building: null, last_build: null, ...detail }).state;
  return state;
}

/** Applies events in order; returns the last state and every effect asked for. */
function run(
  state: PanelState,
  events: BuildEnvelope[]
): { state: PanelState; effects: Result['effects'][] } {
  const effects: Result['effects'][] = [];
  for (const envelope of events) {
    const result = applyBusEvent(state, envelope, envelope.event.time + 0.05);
    state = result.state;
    effects.push(result.effects);
  }
  return { state, effects };
}

function states(state: PanelState): { [task: string]: string } {
  return Object.fromEntries((state.build?.tasks ?? []).map(t => [t.name, t.status]));
}

function snapshotStates(build: Build): { [task: string]: string } {
  return Object.fromEntries(build.tasks.map(t => [t.name, t.status]));
}

/** An envelope of build `build`: its `seq`-th event (`time` NOW + seq unless given). */
function fake(
  build: string,
  seq: number,
  event: Partial<NbpipeEvent> & Pick<NbpipeEvent, 'event'>,
  state: BuildStateName = 'running'
): BuildEnvelope {
  return {
    build_id: build,
    pipeline: 'pipeline.yaml',
    seq,
    state,
    event: { time: NOW + seq, task: null, ...event } as NbpipeEvent
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
    for (const envelope of SUCCESS) {
      state = applyBusEvent(state, envelope, envelope.event.time).state;
      const shown = taskLayers(state)
        .flat()
        .find(r => r.name === 'clean')!.display;
      if (seen[seen.length - 1] !== shown) {
        seen.push(shown);
      }
    }
    expect(seen).toEqual(['waiting', 'running', 'done']);
  });

  it('keeps the products, reasons and times of every task', () => {
    const { state } = run(opened(), SUCCESS);
    const clean = state.build!.tasks.find(t => t.name === 'clean')!;
    expect(clean.products).toEqual(['output/clean.ipynb', 'output/clean.html', 'output/clean.csv']);
    const row = taskLayers(state)
      .flat()
      .find(r => r.name === 'clean')!;
    expect(row.products.every(p => p.in_root)).toBe(true);
    expect(clean.reasons.length).toBeGreaterThan(0);
    expect(clean.started).not.toBeNull();
    expect(clean.ended!).toBeGreaterThanOrEqual(clean.started!);
    expect(clean.elapsed).toBeGreaterThan(0);
    expect(buildElapsed(state.build!, NOW, 0)).toBeGreaterThan(0);
    // What the panel derives is what the server recorded (the same reducer on both sides).
    expect(buildState(state.build!)).toEqual(buildState(SUCCESS_SNAPSHOT));
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
    expect(clean.detail).toBe('ValueError: broken on purpose (cell 10, line 1)');
    const shown = failureView(clean)!;
    expect(shown.summary).toBe('ValueError: broken on purpose (cell 10, line 1)');
    expect(shown.where).toBe('cell 10, line 1');
    expect(shown.code).toBe('raise ValueError("broken on purpose")');
    expect(shown.traceback).toContain('Traceback');
    expect(shown.partialNotebook).toBe('output/clean.failed.ipynb');
    const report = state.build!.tasks.find(t => t.name === 'report')!;
    expect(report.detail).toBe("upstream task 'clean' failed");
    expect(buildState(state.build!)).toEqual(buildState(FAILURE_SNAPSHOT));
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
    const next = applyBusEvent(state, other, NOW).state;
    expect(next.build).toBeNull();
    expect(next.pipelines!.find(p => p.path === 'other/pipeline.yaml')!.building).toBe('b2');
    const ended = fake('b2', 2, { event: 'build_ended', state: 'success' }, 'success');
    ended.pipeline = 'other/pipeline.yaml';
    expect(
      applyBusEvent(next, ended, NOW).state.pipelines!.find(p => p.path === 'other/pipeline.yaml')!
        .building
    ).toBeNull();
  });

  it('resets a retried task (its worker died) when it starts again', () => {
    const b = 'retry';
    let state = run(opened(), [
      fake(b, 1, { event: 'build_created', force: false, targets: [] }, 'starting'),
      fake(b, 2, {
        event: 'build_started',
        dag: 'root',
        executor: 'Serial',
        tasks: ['make_raw_data'],
        to_run: ['make_raw_data'],
        dashboard: null
      }),
      fake(b, 3, { event: 'task_queued', task: 'make_raw_data', reasons: [] }),
      fake(b, 4, { event: 'task_started', task: 'make_raw_data' })
    ]).state;
    expect(state.build!.tasks.map(t => t.name)).toEqual(['make_raw_data']); // the plan's order
    state = applyBusEvent(
      state,
      fake(b, 5, { event: 'task_started', task: 'make_raw_data', time: NOW + 50 }),
      NOW + 50
    ).state;
    const task = state.build!.tasks[0];
    expect(task.status).toBe('running');
    expect(task.started).toBe(NOW + 50);
    expect(task.ended).toBeNull();
  });
});

describe('gaps: events missed while the socket was down', () => {
  it('keeps later events aside, asks for the snapshot, then applies what follows it', () => {
    const before = run(opened(), SUCCESS.slice(0, 4)).state; // seq 1..4
    const missed = SUCCESS.slice(4, 6); // seq 5, 6 never arrive
    expect(missed.map(e => e.seq)).toEqual([5, 6]);
    let result = applyBusEvent(before, SUCCESS[6], NOW); // seq 7
    expect(result.effects.loadBuild).toBe(SUCCESS[0].build_id);
    expect(result.state.loading).toBe(SUCCESS[0].build_id);
    expect(result.state.build!.seq).toBe(4); // nothing applied past the gap
    // seq 8 comes while the snapshot is on its way: kept too, no second request.
    result = applyBusEvent(result.state, SUCCESS[7], NOW);
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
    const kept = applyBusEvent(before, SUCCESS[6], NOW).state; // seq 7 kept
    const result = applySnapshot(kept, snapshotAt(SUCCESS, 10));
    expect(result.state.build!.seq).toBe(10);
    expect(result.state.pending).toEqual([]);
    expect(result.effects.loadBuild).toBeUndefined();
  });

  it('asks again when the snapshot is older than the gap', () => {
    const before = run(opened(), SUCCESS.slice(0, 4)).state;
    const kept = applyBusEvent(before, SUCCESS[9], NOW).state; // seq 10 kept, 5..9 missing
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
    let state = applyListing(initialPanelState(), [
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
    expect(failureView(rows[1].run!)!.summary).toContain('ValueError');
  });

  it('follows a build started by someone else from its first event', () => {
    const result = applyBusEvent(opened(), SUCCESS[0], NOW);
    expect(result.state.build!.id).toBe(SUCCESS[0].build_id);
    expect(result.state.build!.state).toBe('starting');
    expect(result.effects).toEqual({ reloadHistory: true });
    expect(result.state.history[0].id).toBe(SUCCESS[0].build_id);
    expect(canBuild(result.state)).toBe(false);
    expect(canCancel(result.state)).toBe(true);
  });

  it('asks for the snapshot of a build it meets mid-way', () => {
    const result = applyBusEvent(opened(), SUCCESS[5], NOW);
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
    const late = applyBusEvent(next, { ...SUCCESS[5], seq: 99 }, NOW);
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
    // No plan yet (no build_started): every task of the pipeline shows waiting.
    expect(state.build!.tasks).toEqual([]);
    expect(
      taskLayers(state)
        .flat()
        .map(r => r.display)
    ).toEqual(Array(5).fill('waiting'));
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
      fake(b, 10, { event: 'build_cancelling' }, 'cancelling'),
      fake(
        b,
        11,
        { event: 'task_cancelled', task: 'clean', reason: 'the build was interrupted' },
        'cancelling'
      ),
      fake(
        b,
        12,
        { event: 'build_finished', outcome: 'interrupted', stop_reason: null, failed: [] },
        'cancelling'
      ),
      fake(
        b,
        13,
        {
          event: 'build_ended',
          state: 'cancelled',
          message: 'cancelled on request',
          exit_code: 143
        },
        'cancelled'
      )
    ]).state;
    expect(canCancel(state)).toBe(false);
    expect(canBuild(state)).toBe(true);
    expect(state.build!.state).toBe('cancelled');
    expect(state.build!.message).toBe('cancelled on request');
    const byName = Object.fromEntries(state.build!.tasks.map(t => [t.name, t]));
    expect(byName.make_raw_data.status).toBe('executed');
    expect(byName.clean.status).toBe('cancelled');
    expect(byName.clean.detail).toBe('the build was interrupted');
    expect(byName.report.status).toBe('cancelled');
    expect(byName.report.detail).toBe('the build was cancelled');
  });

  it('disables Cancel while cancelling', () => {
    const b = SUCCESS[0].build_id;
    const state = run(opened(), [
      ...SUCCESS.slice(0, 9),
      fake(b, 10, { event: 'build_cancelling' }, 'cancelling')
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
        ['executed', 'skipped'].includes(t.status)
          ? t
          : { ...t, status: 'cancelled', detail: 'the server stopped' }
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
    expect(state.build!.tasks.find(t => t.name === 'clean')!.status).toBe('cancelled');
    expect(canBuild(state)).toBe(true);
    expect(canCancel(state)).toBe(false);
  });

  it('takes the server stopping cleanly (its build_ended event) as interrupted', () => {
    const b = SUCCESS[0].build_id;
    const state = run(opened(), [
      ...SUCCESS.slice(0, 9),
      fake(
        b,
        10,
        {
          event: 'build_ended',
          state: 'interrupted',
          message: 'the server stopped while this build was running',
          exit_code: 143
        },
        'interrupted'
      )
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
    expect(applyListing(initialPanelState(), []).state.selected).toBeNull();
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
    const task: TaskState = { ...newTask('t'), status: 'running', started: 1000 };
    expect(taskElapsed(task, 1012, 2)).toBe(10);
    expect(taskElapsed({ ...task, status: 'executed', elapsed: 3.5 }, 5000, 0)).toBe(3.5);
    expect(taskElapsed({ ...task, status: 'cancelled', ended: 1004 }, 5000, 0)).toBe(4);
    expect(taskElapsed({ ...task, status: 'pending', started: null }, 5000, 0)).toBeNull();
    const build = { state: 'running', started: 1000, ended: null };
    expect(buildElapsed(build, 1012, 2)).toBe(10);
    expect(buildElapsed({ ...build, state: 'success', ended: 1003 }, 5000, 0)).toBe(3);
    expect(buildElapsed({ ...build, started: null }, 5000, 0)).toBeNull();
    expect([0.42, 12.4, 125, 3725, null].map(formatDuration)).toEqual([
      '0.4 s',
      '12 s',
      '2:05',
      '1:02:05',
      ''
    ]);
  });

  it('opens products and partial notebooks in the root only (absolute paths are outside)', () => {
    const task: TaskState = {
      ...newTask('t'),
      status: 'failed',
      products: ['output/t.ipynb', '/elsewhere/t.csv'],
      failure: {
        task: 't',
        type: 'KeyError',
        message: "'units'",
        traceback: '\u001b[0;31mKeyError\u001b[0m',
        source: '/elsewhere/t.py',
        cell: 3,
        line: null,
        code: 'x["units"]',
        partial_notebook: '/elsewhere/t.failed.ipynb'
      }
    };
    const state = { ...opened(), build: { ...SUCCESS_SNAPSHOT, tasks: [task] } };
    const row = taskLayers(state)
      .flat()
      .find(r => r.name === 't')!;
    expect(row.products).toEqual([
      { path: 'output/t.ipynb', in_root: true },
      { path: '/elsewhere/t.csv', in_root: false }
    ]);
    expect(failureView(task)).toEqual({
      summary: "KeyError: 'units' (cell 4)",
      where: 'cell 4',
      code: 'x["units"]',
      traceback: 'KeyError',
      partialNotebook: null
    });
    expect(buildLabel('stopped_early')).toBe('stopped early');
    expect(buildLabel('success')).toBe('succeeded');
  });

  it('recognises pipeline files', () => {
    expect(isPipelineFile('a/pipeline.yaml')).toBe(true);
    expect(isPipelineFile('pipeline.serve.yml')).toBe(true);
    expect(isPipelineFile('env.yaml')).toBe(false);
    expect(isPipelineFile('pipeline.yaml.bak')).toBe(false);
  });
});

/** The reducer's part of a build (what the server adds left out). */
function buildState(build: Build): BuildState {
  const keys = Object.keys(initialState()) as (keyof BuildState)[];
  return Object.fromEntries(keys.map(key => [key, build[key]])) as unknown as BuildState;
}

/** What GET /builds/{id} would have said after the first `seq` events (built from the events). */
function snapshotAt(events: BuildEnvelope[], seq: number): Build {
  const state = run(opened(), events.slice(0, seq)).state;
  const build = state.build!;
  return JSON.parse(JSON.stringify(build));
}
