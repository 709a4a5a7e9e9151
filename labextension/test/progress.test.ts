/**
 * The reducer's rules for what a running notebook reports (task_cell_started,
 * task_cell_finished, task_output): the golden streams `notebook_cells*.json` check the same
 * against the Python reducer on recorded builds.
 */
import { applyEvent, BuildState, cellText, initialState } from '../src/reducer';
import type { NbpipeEvent } from '../src/types';

function reduce(events: NbpipeEvent[]): BuildState {
  return events.reduce(applyEvent, initialState());
}

const begin: NbpipeEvent[] = [
  {
    event: 'build_started',
    time: 1,
    task: null,
    dag: 'root',
    executor: 'Serial()',
    tasks: ['nb'],
    to_run: ['nb'],
    dashboard: null
  },
  { event: 'task_queued', time: 1, task: 'nb', reasons: ['forced'] },
  { event: 'task_started', time: 2, task: 'nb' }
];
const cellStarted = (cell: number, time: number): NbpipeEvent => ({
  event: 'task_cell_started',
  time,
  task: 'nb',
  cell,
  cells: 40,
  line: `step_${cell}()`
});
const cellFinished = (cell: number, time: number, elapsed: number): NbpipeEvent => ({
  event: 'task_cell_finished',
  time,
  task: 'nb',
  cell,
  cells: 40,
  elapsed
});
const output = (text: string, task = 'nb'): NbpipeEvent => ({
  event: 'task_output',
  time: 5,
  task,
  text
});

describe('a running notebook', () => {
  it('shows the cell it runs, its first line and start', () => {
    const task = reduce([...begin, cellStarted(12, 3)]).tasks[0];
    expect(task).toMatchObject({ cell: 12, cells: 40, cell_line: 'step_12()', cell_started: 3 });
    expect(cellText(task)).toBe('cell 12/40 · step_12()');
  });

  it('keeps the elapsed of the cell that ended, with no cell running', () => {
    const task = reduce([...begin, cellStarted(12, 3), cellFinished(12, 6.2, 3.2)]).tasks[0];
    expect(task).toMatchObject({ cell: 12, cell_started: null, cell_elapsed: 3.2 });
  });

  it('replaces its output tail', () => {
    const task = reduce([...begin, output('a\n'), output('a\nb\n')]).tasks[0];
    expect(task.output).toBe('a\nb\n');
  });

  it('keeps where it was when it ends, but no running cell, and shows no cell text', () => {
    const task = reduce([
      ...begin,
      cellStarted(3, 3),
      output('x\n'),
      { event: 'task_finished', time: 9, task: 'nb', elapsed: 7, products: [] }
    ]).tasks[0];
    expect(task).toMatchObject({ status: 'executed', cell: 3, cell_started: null, output: 'x\n' });
    expect(cellText(task)).toBeNull();
  });

  it('starts clean when the task starts again (a retry)', () => {
    const task = reduce([
      ...begin,
      cellStarted(3, 3),
      output('x\n'),
      { event: 'task_started', time: 9, task: 'nb' }
    ]).tasks[0];
    expect(task).toMatchObject({ cell: null, cells: null, cell_line: null, output: '' });
  });

  it('changes nothing for a task that is not running, or unknown', () => {
    const ended = reduce([
      ...begin,
      { event: 'task_finished', time: 9, task: 'nb', elapsed: 7, products: [] }
    ]);
    expect(applyEvent(ended, cellStarted(4, 10))).toBe(ended);
    expect(applyEvent(ended, output('late', 'other'))).toBe(ended);
  });
});
