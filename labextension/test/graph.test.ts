/**
 * The graph view's model and layout: which nodes and edges the task rows give (grids folded or
 * not), and ELK's layered layout of them (the real elkjs, in Node): every edge routed from its
 * upstream node down to its downstream node, and no two node boxes overlapping, up to a
 * pipeline of 200 grid tasks.
 */
import ELK from 'elkjs/lib/elk.bundled.js';

import {
  foldableGrids,
  graphOf,
  groupDisplay,
  groupSummary,
  GraphSpec,
  nodeStateLine
} from '../src/graph/graph';
import { fitTransform, panBy, zoomAt } from '../src/graph/interaction';
import { Box, fromElk, Layout, layoutGraph, layoutKey, toElk } from '../src/graph/layout';
import {
  applyDetail,
  applyListing,
  applySnapshot,
  initialPanelState,
  PanelState
} from '../src/model';
import type { Build, Pipeline, PipelineTask } from '../src/types';
import { taskLayers, TaskRow } from '../src/view';

import failure from './fixtures/build-failure.json';
import pipelineJson from './fixtures/pipeline.json';

const EXAMPLE = pipelineJson as unknown as Pipeline;
const FAILURE_SNAPSHOT = failure.snapshot as unknown as Build;
const elk = new ELK();

function shown(detail: Pipeline, build?: Build): PanelState {
  let state = applyListing(initialPanelState(), [
    { path: detail.path, building: null, last_build: null }
  ]).state;
  state = applyDetail(state, detail).state;
  return build ? applySnapshot(state, build).state : state;
}

function rows(state: PanelState): TaskRow[] {
  return taskLayers(state).flat();
}

function task(name: string, upstream: string[], grid: string | null = null): PipelineTask {
  return {
    name,
    kind: 'function',
    source: 'tasks.py',
    upstream,
    grid,
    products: [{ path: `out/${name}.txt`, in_root: true }],
    state: 'never built',
    reasons: [],
    last_built: null,
    last_result: null
  };
}

/** load → fit-0 … fit-(n-1) (a grid) → summary, and a plain task beside them. */
function gridPipeline(n: number): Pipeline {
  const fits = Array.from({ length: n }, (_, i) => task(`fit-${i}`, ['load'], 'fit'));
  return {
    ...EXAMPLE,
    path: 'grid/pipeline.yaml',
    tasks: [
      task('load', []),
      ...fits,
      task(
        'summary',
        fits.map(f => f.name)
      ),
      task('notes', ['load'])
    ],
    edges: [],
    last_build: null,
    building: null
  };
}

function overlapping(layout: Layout): [string, string][] {
  const boxes = [...layout.nodes.entries()];
  const hit = (a: Box, b: Box) =>
    a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  const pairs: [string, string][] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      if (hit(boxes[i][1], boxes[j][1])) {
        pairs.push([boxes[i][0], boxes[j][0]]);
      }
    }
  }
  return pairs;
}

/** Every edge starts at its upstream node's bottom and ends at its downstream node's top. */
function expectRoutedDownwards(spec: GraphSpec, layout: Layout): void {
  for (const edge of spec.edges) {
    const points = layout.edges.get(edge.id)!;
    const from = layout.nodes.get(edge.source)!;
    const to = layout.nodes.get(edge.target)!;
    expect(points.length).toBeGreaterThanOrEqual(2);
    expect(points[0].y).toBeCloseTo(from.y + from.height, 0);
    expect(points[points.length - 1].y).toBeCloseTo(to.y, 0);
    expect(from.y + from.height).toBeLessThan(to.y);
  }
}

describe('graphOf', () => {
  it('gives the example one node per task and its upstream → downstream edges', () => {
    const spec = graphOf(rows(shown(EXAMPLE)), new Set());
    expect(spec.nodes.map(n => n.id).sort()).toEqual(EXAMPLE.tasks.map(t => t.name).sort());
    expect(spec.edges.map(e => [e.source, e.target]).sort()).toEqual([...EXAMPLE.edges].sort());
    expect(spec.nodes.every(n => n.kind === 'task' && n.display === 'idle')).toBe(true);
  });

  it("takes each node's state from the build shown: a failed task and those it aborted", () => {
    const spec = graphOf(rows(shown(EXAMPLE, FAILURE_SNAPSHOT)), new Set());
    const states = Object.fromEntries(spec.nodes.map(n => [n.id, n.display]));
    expect(states).toEqual({
      make_raw_data: 'skipped',
      clean: 'failed',
      by_region: 'aborted',
      monthly_trend: 'aborted',
      report: 'aborted'
    });
  });

  it("names the cell a running notebook is in on its node, from the reducer's cell fields", () => {
    const running = JSON.parse(JSON.stringify(FAILURE_SNAPSHOT)) as Build;
    running.state = 'running';
    running.outcome = null;
    running.ended = null;
    const clean = running.tasks.find(t => t.name === 'clean')!;
    Object.assign(clean, { status: 'running', failure: null, ended: null, cell: 7, cells: 12 });
    const node = graphOf(rows(shown(EXAMPLE, running)), new Set()).nodes.find(
      n => n.id === 'clean'
    )!;
    expect(node.display).toBe('running');
    expect(nodeStateLine(node)).toBe('cell 7/12');
    const done = graphOf(rows(shown(EXAMPLE, FAILURE_SNAPSHOT)), new Set()).nodes.find(
      n => n.id === 'make_raw_data'
    )!;
    expect(nodeStateLine(done)).toBe('skipped');
  });

  it("folds a grid's tasks into one node, its edges drawn once", () => {
    const all = rows(shown(gridPipeline(5)));
    expect(foldableGrids(all)).toEqual(['fit']);
    const spec = graphOf(all, new Set(['fit']));
    expect(spec.nodes.map(n => n.id)).toEqual(['load', 'grid:fit', 'notes', 'summary']);
    const group = spec.nodes.find(n => n.id === 'grid:fit')!;
    expect(group.kind).toBe('group');
    expect(group.members.map(m => m.name)).toEqual(['fit-0', 'fit-1', 'fit-2', 'fit-3', 'fit-4']);
    expect(spec.edges.map(e => e.id).sort()).toEqual(
      ['load→grid:fit', 'grid:fit→summary', 'load→notes'].sort()
    );
    // Unfolded: every task and every edge.
    const open = graphOf(all, new Set());
    expect(open.nodes).toHaveLength(8);
    expect(open.edges).toHaveLength(11);
  });

  it('never folds a grid of one task', () => {
    const spec = graphOf(rows(shown(gridPipeline(1))), new Set(['fit']));
    expect(spec.nodes.map(n => n.id)).toContain('fit-0');
  });

  it("shows a folded grid's most telling state", () => {
    const row = (display: TaskRow['display']) => ({ display }) as TaskRow;
    expect(groupDisplay([row('done'), row('failed'), row('running')])).toBe('failed');
    expect(groupDisplay([row('done'), row('waiting')])).toBe('waiting');
    expect(groupDisplay([row('done'), row('skipped')])).toBe('done');
    expect(groupDisplay([row('idle'), row('aborted')])).toBe('aborted');
  });

  it("sums up a folded grid's tasks by state, most telling first", () => {
    const row = (display: TaskRow['display'], status: TaskRow['status'] = null) =>
      ({ display, status }) as TaskRow;
    expect(groupSummary([row('done'), row('failed'), row('done')])).toBe('1 failed · 2 done');
    expect(groupSummary([row('idle', 'never built'), row('idle', 'never built')])).toBe(
      '2 never built'
    );
  });
});

/** ELK lays out 203 nodes in well under a second on its own; two busy cores can take several. */
const LAYOUT_TIMEOUT = 60_000;

describe('layout (ELK layered)', () => {
  it(
    'maps nodes and edges to ELK and back',
    async () => {
      const spec = graphOf(rows(shown(EXAMPLE)), new Set());
      const input = toElk(spec);
      expect(input.layoutOptions!['elk.algorithm']).toBe('layered');
      expect(input.children!.map(c => c.id)).toEqual(spec.nodes.map(n => n.id));
      expect(input.edges!.map(e => [e.sources, e.targets])).toEqual(
        spec.edges.map(e => [[e.source], [e.target]])
      );
      const layout = fromElk(await elk.layout(input));
      expect([...layout.nodes.keys()].sort()).toEqual(spec.nodes.map(n => n.id).sort());
      for (const node of spec.nodes) {
        const box = layout.nodes.get(node.id)!;
        expect([box.width, box.height]).toEqual([node.width, node.height]);
        expect(box.x + box.width).toBeLessThanOrEqual(layout.width);
        expect(box.y + box.height).toBeLessThanOrEqual(layout.height);
      }
      expect(overlapping(layout)).toEqual([]);
      expectRoutedDownwards(spec, layout);
      // Layers: make_raw_data, clean, {by_region, monthly_trend}, report.
      const y = (name: string) => layout.nodes.get(name)!.y;
      expect(y('make_raw_data')).toBeLessThan(y('clean'));
      expect(y('by_region')).toBe(y('monthly_trend'));
      expect(y('monthly_trend')).toBeLessThan(y('report'));
    },
    LAYOUT_TIMEOUT
  );

  it(
    'lays out 200 grid tasks without overlapping boxes, folded and unfolded',
    async () => {
      const all = rows(shown(gridPipeline(200)));
      const open = graphOf(all, new Set());
      const folded = graphOf(all, new Set(['fit']));
      expect(open.nodes).toHaveLength(203);
      expect(folded.nodes).toHaveLength(4);
      for (const spec of [open, folded]) {
        const layout = await layoutGraph(spec, elk);
        expect(layout.nodes.size).toBe(spec.nodes.length);
        expect(overlapping(layout)).toEqual([]);
        expectRoutedDownwards(spec, layout);
      }
    },
    LAYOUT_TIMEOUT
  );

  it('keys a layout by nodes, sizes and edges, not by states', () => {
    const before = graphOf(rows(shown(EXAMPLE)), new Set());
    const after = graphOf(rows(shown(EXAMPLE, FAILURE_SNAPSHOT)), new Set());
    expect(layoutKey(after)).toBe(layoutKey(before));
    const grid = rows(shown(gridPipeline(3)));
    expect(layoutKey(graphOf(grid, new Set(['fit'])))).not.toBe(
      layoutKey(graphOf(grid, new Set()))
    );
  });
});

describe('zoom and pan', () => {
  it('keeps the point under the pointer in place when zooming', () => {
    const t = zoomAt({ x: 10, y: 20, k: 1 }, 2, 110, 70);
    // The layout point under (110, 70) was (100, 50); it is still drawn there.
    expect([t.x + 100 * t.k, t.y + 50 * t.k]).toEqual([110, 70]);
    expect(zoomAt(t, 1e6, 0, 0).k).toBe(3);
    expect(panBy(t, 5, -5)).toEqual({ x: t.x + 5, y: t.y - 5, k: t.k });
  });

  it('fits a layout whole and centred, never enlarged', () => {
    const wide = fitTransform(1000, 100, 300, 300, 0);
    expect(wide.k).toBeCloseTo(0.3);
    expect(wide.x).toBeCloseTo(0);
    expect(wide.y).toBeCloseTo((300 - 30) / 2);
    expect(fitTransform(100, 50, 300, 300, 0)).toEqual({ k: 1, x: 100, y: 125 });
  });
});
