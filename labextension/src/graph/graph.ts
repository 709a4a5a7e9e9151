/**
 * What the graph view draws, computed from the panel's task rows (`taskLayers` in `view.ts`, whose
 * states come from the reducer): one node per task, or one node per grid whose tasks are folded
 * together, and one edge per upstream → downstream pair between the nodes shown. Pure functions,
 * no DOM: the layout (`layout.ts`) and the rendering (`view.tsx`) take it from here.
 *
 * A folded grid shows the most telling state of its tasks (one failed task makes the group
 * failed, one running task makes it running): a summary of the reducer's states, not a new one.
 */
import { DISPLAY_LABEL } from '../view';
import type { Display, TaskRow } from '../view';

export type GraphNodeKind = 'task' | 'group';

export interface GraphNode {
  /** Unique among the nodes: the task's name, or `grid:<name>` for a folded grid. */
  id: string;
  kind: GraphNodeKind;
  /** What the node says: the task's name, or the grid's name as the spec writes it. */
  label: string;
  /** The grid the task (or the group) belongs to, as the pipeline's detail names it. */
  grid: string | null;
  /** The task rows it stands for: one for a task, every task of the grid for a group. */
  members: TaskRow[];
  display: Display;
  width: number;
  height: number;
}

export interface GraphEdge {
  /** `source→target`. */
  id: string;
  source: string;
  target: string;
}

export interface GraphSpec {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export const NODE_HEIGHT = 40;
export const GROUP_HEIGHT = 48;
const MIN_WIDTH = 120;
const MAX_WIDTH = 220;
/** An estimate of one character's width at the node's font size (the layout runs off-DOM). */
const CHAR_WIDTH = 7;

/** The width of a node whose longest line is `text`: wide enough for short names, capped. */
export function nodeWidth(text: string): number {
  return Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, Math.ceil(text.length * CHAR_WIDTH) + 32));
}

/** The id of a folded grid's node. */
export function groupId(grid: string): string {
  return `grid:${grid}`;
}

/** Which display wins when a group's tasks differ (first in the list wins). */
const GROUP_PRECEDENCE: Display[] = [
  'failed',
  'running',
  'aborted',
  'cancelled',
  'stopped-early',
  'waiting',
  'done',
  'skipped',
  'idle'
];

/** The state a folded grid shows: the most telling of its tasks' states. */
export function groupDisplay(members: TaskRow[]): Display {
  const present = new Set(members.map(m => m.display));
  return GROUP_PRECEDENCE.find(d => present.has(d)) ?? 'idle';
}

/**
 * How many of a group's tasks are in each state, most telling first: `3 failed · 197 done`. A
 * task outside the build shown counts under its pipeline status (`200 never built`).
 */
export function groupSummary(members: TaskRow[]): string {
  const counts = new Map<string, { rank: number; n: number }>();
  for (const member of members) {
    const label = member.display === 'idle' ? (member.status ?? '') : DISPLAY_LABEL[member.display];
    if (!label) {
      continue;
    }
    const entry = counts.get(label) ?? { rank: GROUP_PRECEDENCE.indexOf(member.display), n: 0 };
    entry.n += 1;
    counts.set(label, entry);
  }
  return [...counts]
    .sort((a, b) => a[1].rank - b[1].rank)
    .map(([label, { n }]) => `${n} ${label}`)
    .join(' · ');
}

/**
 * The nodes and edges to draw. `folded`: the grids shown as one node each (a grid of one task is
 * never folded). Edges between two tasks of a folded grid disappear; edges that several tasks of
 * a grid share with one other node are drawn once.
 */
export function graphOf(rows: TaskRow[], folded: ReadonlySet<string>): GraphSpec {
  const gridSize = new Map<string, number>();
  for (const row of rows) {
    if (row.grid) {
      gridSize.set(row.grid, (gridSize.get(row.grid) ?? 0) + 1);
    }
  }
  const isFolded = (grid: string | null): grid is string =>
    !!grid && folded.has(grid) && (gridSize.get(grid) ?? 0) > 1;
  const nodeOf = new Map<string, string>();
  const nodes: GraphNode[] = [];
  const groups = new Map<string, GraphNode>();
  for (const row of rows) {
    if (isFolded(row.grid)) {
      let group = groups.get(row.grid);
      if (!group) {
        group = {
          id: groupId(row.grid),
          kind: 'group',
          label: row.grid,
          grid: row.grid,
          members: [],
          display: 'idle',
          width: nodeWidth(`${row.grid} ×${gridSize.get(row.grid)}`),
          height: GROUP_HEIGHT
        };
        groups.set(row.grid, group);
        nodes.push(group);
      }
      group.members.push(row);
      nodeOf.set(row.name, group.id);
    } else {
      nodes.push({
        id: row.name,
        kind: 'task',
        label: row.name,
        grid: row.grid,
        members: [row],
        display: row.display,
        width: nodeWidth(row.name),
        height: NODE_HEIGHT
      });
      nodeOf.set(row.name, row.name);
    }
  }
  for (const group of groups.values()) {
    group.display = groupDisplay(group.members);
  }
  const edges: GraphEdge[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    const target = nodeOf.get(row.name)!;
    for (const up of row.upstream) {
      const source = nodeOf.get(up);
      if (source === undefined || source === target) {
        continue;
      }
      const id = `${source}→${target}`;
      if (!seen.has(id)) {
        seen.add(id);
        edges.push({ id, source, target });
      }
    }
  }
  return { nodes, edges };
}

/** The grids of the rows that have more than one task (those that can be folded). */
export function foldableGrids(rows: TaskRow[]): string[] {
  const size = new Map<string, number>();
  for (const row of rows) {
    if (row.grid) {
      size.set(row.grid, (size.get(row.grid) ?? 0) + 1);
    }
  }
  return [...size].filter(([, n]) => n > 1).map(([grid]) => grid);
}

/**
 * A node's second line: the task's state (or status, outside the build shown), or for a running
 * notebook the cell it is in (`cell 12/40`, from the reducer's cell fields; the node's colour says
 * running); a group's counts.
 */
export function nodeStateLine(node: GraphNode): string {
  if (node.kind === 'group') {
    return groupSummary(node.members);
  }
  const row = node.members[0];
  const label = row.display === 'idle' ? (row.status ?? '') : DISPLAY_LABEL[row.display];
  const run = row.run;
  if (run && run.status === 'running' && run.cell !== null && run.cell !== undefined) {
    return `cell ${run.cell}/${run.cells}`;
  }
  return label;
}
