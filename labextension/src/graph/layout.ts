/**
 * The graph's layout, by ELK's layered algorithm (elkjs): what we hand it (`toElk`), what we keep
 * of its answer (`fromElk`), and the call between them (`layoutGraph`). ELK places the nodes in
 * layers, upstream above downstream, orders each layer to cross few edges, and routes the edges;
 * we write no layout of our own.
 *
 * elkjs's bundled build runs in the page's thread (no web worker to serve), which is fast enough:
 * a layout depends only on the nodes, their sizes and the edges, so `layoutKey` lets the view lay
 * out a pipeline once and only recolour its nodes as a build's events arrive.
 */
import type { ELK, ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api';

import type { GraphSpec } from './graph';

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Point {
  x: number;
  y: number;
}

export interface Layout {
  /** Each node's box, by node id. */
  nodes: Map<string, Box>;
  /** Each edge's route, from the upstream node's border to the downstream node's, by edge id. */
  edges: Map<string, Point[]>;
  width: number;
  height: number;
}

/** ELK's options: layers from top to bottom (the panel is tall and narrow). */
export const LAYOUT_OPTIONS: { [key: string]: string } = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  // Orthogonal routes, merged where they leave or reach the same node: a grid's fan of edges
  // shares one track between two layers instead of taking one each (which made a 200-task grid
  // thousands of pixels tall).
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.layered.mergeEdges': 'true',
  'elk.spacing.nodeNode': '16',
  'elk.layered.spacing.nodeNodeBetweenLayers': '36',
  'elk.spacing.edgeNode': '12',
  'elk.padding': '[top=12,left=12,bottom=12,right=12]'
};

/** The graph as ELK reads it. */
export function toElk(spec: GraphSpec): ElkNode {
  return {
    id: 'root',
    layoutOptions: LAYOUT_OPTIONS,
    children: spec.nodes.map(node => ({ id: node.id, width: node.width, height: node.height })),
    edges: spec.edges.map((edge): ElkExtendedEdge => ({
      id: edge.id,
      sources: [edge.source],
      targets: [edge.target]
    }))
  };
}

/** What the view needs of ELK's answer: node boxes and edge routes, in the root's coordinates. */
export function fromElk(graph: ElkNode): Layout {
  const nodes = new Map<string, Box>();
  for (const child of graph.children ?? []) {
    nodes.set(child.id, {
      x: child.x ?? 0,
      y: child.y ?? 0,
      width: child.width ?? 0,
      height: child.height ?? 0
    });
  }
  const edges = new Map<string, Point[]>();
  for (const edge of (graph.edges ?? []) as ElkExtendedEdge[]) {
    const points: Point[] = [];
    for (const section of edge.sections ?? []) {
      points.push(section.startPoint, ...(section.bendPoints ?? []), section.endPoint);
    }
    edges.set(edge.id, points);
  }
  return { nodes, edges, width: graph.width ?? 0, height: graph.height ?? 0 };
}

/** What the layout depends on: the nodes, their sizes and the edges (not their states). */
export function layoutKey(spec: GraphSpec): string {
  const nodes = spec.nodes.map(n => `${n.id}:${n.width}x${n.height}`).join('|');
  const edges = spec.edges.map(e => e.id).join('|');
  return `${nodes}#${edges}`;
}

let shared: ELK | null = null;

/** One ELK for the page, created on first use (its code is large; the list view never needs it). */
async function elkInstance(): Promise<ELK> {
  if (!shared) {
    const module = await import('elkjs/lib/elk.bundled.js');
    const ELKConstructor = (module.default ?? module) as unknown as new () => ELK;
    shared = new ELKConstructor();
  }
  return shared;
}

/** Lays the graph out. `elk`: an instance to use (tests pass one); by default the page's. */
export async function layoutGraph(spec: GraphSpec, elk?: ELK): Promise<Layout> {
  const engine = elk ?? (await elkInstance());
  return fromElk(await engine.layout(toElk(spec)));
}
