/**
 * The reducer's rules on small streams (the golden test, `golden.test.ts`, checks it against the
 * Python reducer on recorded ones).
 */
import * as fs from 'fs';
import * as path from 'path';

import {
  applyEvent,
  BuildState,
  failureSummary,
  initialState,
  isFinished,
  STATUS_AFTER
} from '../src/reducer';
import type { BuildStarted, NbpipeEvent, TaskFailure } from '../src/types';

function reduce(events: NbpipeEvent[]): BuildState {
  return events.reduce(applyEvent, initialState());
}

const created: NbpipeEvent = {
  event: 'build_created',
  time: 1,
  task: null,
  force: false,
  targets: []
};
const started: NbpipeEvent = {
  event: 'build_started',
  time: 2,
  task: null,
  dag: 'root',
  executor: 'Serial',
  tasks: ['a', 'b'],
  to_run: ['a', 'b'],
  dashboard: null
};
const queued = (task: string): NbpipeEvent => ({
  event: 'task_queued',
  time: 3,
  task,
  reasons: []
});

describe('the reducer', () => {
  it('settles the unsettled tasks when the server stops (the docstring example)', () => {
    const state = reduce([
      created,
      started,
      queued('a'),
      queued('b'),
      { event: 'task_started', time: 4, task: 'a' },
      {
        event: 'build_ended',
        time: 9,
        task: null,
        state: 'interrupted',
        message: null,
        exit_code: null
      }
    ]);
    expect(state.state).toBe('interrupted');
    expect(state.ended).toBe(9);
    expect(state.tasks.map(t => [t.name, t.status, t.detail, t.ended])).toEqual([
      ['a', 'cancelled', 'the server stopped', 9],
      ['b', 'cancelled', 'the server stopped', null]
    ]);
    expect(isFinished(state.state)).toBe(true);
  });

  it('keeps "cancelling" through build_started and build_finished', () => {
    const state = reduce([
      created,
      { event: 'build_cancelling', time: 1.5, task: null },
      started,
      {
        event: 'build_finished',
        time: 5,
        task: null,
        outcome: 'interrupted',
        stop_reason: null,
        failed: []
      }
    ]);
    expect(state.state).toBe('cancelling');
    expect(state.outcome).toBe('interrupted');
    expect(isFinished(state.state)).toBe(false);
  });

  it('resets a task started again (its worker died) and keeps its products', () => {
    const state = reduce([
      started,
      { event: 'task_started', time: 4, task: 'a' },
      { event: 'task_started', time: 6, task: 'a' },
      { event: 'task_finished', time: 7, task: 'a', elapsed: 1, products: ['out/a.csv'] }
    ]);
    expect(state.tasks[0]).toMatchObject({
      status: 'executed',
      started: 6,
      ended: 7,
      elapsed: 1,
      products: ['out/a.csv']
    });
  });

  it("keeps the executor's dashboard link from build_started", () => {
    const link = 'http://127.0.0.1:8787/status';
    const state = reduce([created, { ...started, executor: 'Dask(...)', dashboard: link }]);
    expect(state.dashboard).toBe(link);
    expect(reduce([created, started]).dashboard).toBeNull();
    // a stream recorded before the field existed
    const { dashboard: _unused, ...older } = started as BuildStarted;
    expect(reduce([created, older as NbpipeEvent]).dashboard).toBeNull();
  });

  it('ignores events of kinds it does not know', () => {
    const state = reduce([started]);
    const unknown = { event: 'task_paused', time: 9, task: 'a' } as unknown as NbpipeEvent;
    expect(applyEvent(state, unknown)).toBe(state);
  });

  it("summarizes a failure as Python's TaskFailure.summary()", () => {
    const failure: TaskFailure = {
      task: 'a',
      type: 'KeyError',
      message: "'units'",
      traceback: '',
      source: null,
      cell: 3,
      line: 2,
      code: null,
      partial_notebook: null
    };
    expect(failureSummary(failure)).toBe("KeyError: 'units' (cell 4, line 2)");
    expect(failureSummary({ ...failure, line: 0 })).toBe("KeyError: 'units' (cell 4)");
    expect(failureSummary({ ...failure, cell: null })).toBe("KeyError: 'units'");
    expect(failureSummary({ ...failure, message: '', cell: 0, line: null })).toBe(
      'KeyError (cell 1)'
    );
  });

  it('has the one transition table of the panel', () => {
    // No other module names a task event kind: task statuses come from the reducer only.
    const src = path.resolve(__dirname, '..', 'src');
    const files = fs
      .readdirSync(src, { recursive: true, encoding: 'utf8' })
      .filter(name => /\.tsx?$/.test(name) && !/^(reducer|events\.generated)\.ts$/.test(name));
    for (const name of files) {
      expect([
        name,
        /['"]task_[a-z_]+['"]/.test(fs.readFileSync(path.join(src, name), 'utf8'))
      ]).toEqual([name, false]);
    }
    expect(Object.keys(STATUS_AFTER)).toHaveLength(8);
  });
});
