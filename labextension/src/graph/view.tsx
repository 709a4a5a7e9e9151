/**
 * The pipeline as a graph: ELK's layout (`layout.ts`) of the nodes and edges `graph.ts` makes of
 * the task rows, drawn as SVG in a viewport that zooms (wheel), pans (drag) and fits (button).
 *
 * Nodes take their state from the rows (the reducer's state, through `view.ts`): a failed task is
 * red, the tasks it aborted are grey and struck through, and so are the edges between them. A
 * click on a task opens its source and shows its products and state below the graph; the context
 * menu builds it (alone, or with what it needs, forced or not). A grid's tasks are folded into one
 * node while "Group grids" is on; a group's menu or its details unfold it.
 *
 * Stable hooks for tests and styles: `.jp-nbpipe-graph-node[data-task=NAME]` (a task),
 * `.jp-nbpipe-graph-node[data-group=GRID]` (a folded grid), both with `data-state`, and
 * `.jp-nbpipe-graph-edge[data-source][data-target]`.
 */
import * as React from 'react';

import { canBuild, PanelState } from '../model';
import type { IPanelActions } from '../panel';
import type { TaskRow } from '../view';
import { Details } from './details';
import { foldableGrids, GraphNode, GraphSpec, graphOf } from './graph';
import { attachZoomPan, fitTransform, IDENTITY, Transform, zoomAt } from './interaction';
import { Layout, layoutGraph, layoutKey } from './layout';
import { GraphMenu, MenuItem } from './menu';
import { EdgeShapes, NodeShape } from './shapes';

export interface IGraphViewProps {
  rows: TaskRow[];
  state: PanelState;
  now: number;
  actions: IPanelActions;
}

export function GraphView(props: IGraphViewProps): JSX.Element {
  const { rows, state, now, actions } = props;
  const [grouped, setGrouped] = React.useState(true);
  const [expanded, setExpanded] = React.useState<ReadonlySet<string>>(new Set());
  const [selected, setSelected] = React.useState<string | null>(null);
  const [menu, setMenu] = React.useState<{ node: string; x: number; y: number } | null>(null);

  const foldable = React.useMemo(() => foldableGrids(rows), [rows]);
  const folded = React.useMemo(
    () => new Set(grouped ? foldable.filter(g => !expanded.has(g)) : []),
    [grouped, foldable, expanded]
  );
  const spec = React.useMemo(() => graphOf(rows, folded), [rows, folded]);
  const layout = useLayout(spec);
  const viewport = React.useRef<HTMLDivElement>(null);
  const [transform, setTransform] = useZoomPan(viewport);

  const fit = React.useCallback(() => {
    const element = viewport.current;
    if (layout && element) {
      setTransform(
        fitTransform(layout.width, layout.height, element.clientWidth, element.clientHeight)
      );
    }
  }, [layout, setTransform]);
  // A new layout (another pipeline, a grid folded or unfolded) is shown whole.
  React.useLayoutEffect(fit, [layout]);

  const byId = React.useMemo(() => new Map(spec.nodes.map(n => [n.id, n])), [spec]);
  const picked = selected ? (byId.get(selected) ?? null) : null;
  const unfold = (grid: string) => {
    setExpanded(new Set([...expanded, grid]));
    setSelected(null);
  };
  const fold = (grid: string) => {
    const next = new Set(expanded);
    next.delete(grid);
    setExpanded(next);
    setSelected(null);
  };
  const activate = (node: GraphNode) => {
    setSelected(node.id);
    const row = node.members[0];
    if (node.kind === 'task' && row.source) {
      actions.open(row.source, row.kind === 'notebook');
    }
  };
  const zoom = (factor: number) => {
    const element = viewport.current;
    if (element) {
      setTransform(zoomAt(transform, factor, element.clientWidth / 2, element.clientHeight / 2));
    }
  };

  return (
    <div className="jp-nbpipe-graph" data-laid-out={layout ? 'true' : 'false'}>
      <div className="jp-nbpipe-graph-toolbar" role="toolbar" aria-label="Graph">
        <button
          type="button"
          className="jp-mod-styled jp-nbpipe-graph-fit"
          title="Show the whole graph"
          onClick={fit}
        >
          Fit
        </button>
        <button
          type="button"
          className="jp-mod-styled"
          aria-label="Zoom in"
          onClick={() => zoom(1.25)}
        >
          +
        </button>
        <button
          type="button"
          className="jp-mod-styled"
          aria-label="Zoom out"
          onClick={() => zoom(0.8)}
        >
          −
        </button>
        {foldable.length > 0 && (
          <label className="jp-nbpipe-graph-grouped" title="Show each grid's tasks as one node">
            <input
              type="checkbox"
              checked={grouped}
              aria-label="Group grids"
              onChange={event => {
                setGrouped(event.target.checked);
                setExpanded(new Set());
                setSelected(null);
              }}
            />
            Group grids
          </label>
        )}
      </div>
      <div
        ref={viewport}
        className="jp-nbpipe-graph-viewport"
        onClick={event => {
          if (event.target === event.currentTarget || event.target instanceof SVGSVGElement) {
            setSelected(null);
          }
        }}
      >
        {layout && (
          <svg
            className="jp-nbpipe-graph-svg"
            role="group"
            aria-label="Tasks as a graph, upstream above downstream"
          >
            <defs>
              <marker
                id="jp-nbpipe-graph-arrow"
                viewBox="0 0 10 10"
                refX="9"
                refY="5"
                markerWidth="7"
                markerHeight="7"
                orient="auto-start-reverse"
              >
                <path d="M 0 0 L 10 5 L 0 10 z" className="jp-nbpipe-graph-arrowhead" />
              </marker>
            </defs>
            <g transform={`translate(${transform.x},${transform.y}) scale(${transform.k})`}>
              <EdgeShapes spec={spec} layout={layout} byId={byId} />
              {spec.nodes.map(node => (
                <NodeShape
                  key={node.id}
                  node={node}
                  layout={layout}
                  selected={node.id === selected}
                  onActivate={() => activate(node)}
                  onMenu={(x, y) => {
                    const rect = viewport.current!.getBoundingClientRect();
                    setSelected(node.id);
                    // Inside the viewport (which clips): the menu is at most 180 × 140 px.
                    setMenu({
                      node: node.id,
                      x: Math.max(0, Math.min(x - rect.left, rect.width - 180)),
                      y: Math.max(0, Math.min(y - rect.top, rect.height - 140))
                    });
                  }}
                />
              ))}
            </g>
          </svg>
        )}
        {menu && byId.has(menu.node) && (
          <GraphMenu
            x={menu.x}
            y={menu.y}
            label={`Actions for ${byId.get(menu.node)!.label}`}
            items={menuItems(byId.get(menu.node)!, state, actions, unfold)}
            onClose={() => setMenu(null)}
          />
        )}
      </div>
      {picked && (
        <Details
          node={picked}
          state={state}
          now={now}
          actions={actions}
          onUnfold={unfold}
          onFold={grouped ? fold : null}
        />
      )}
    </div>
  );
}

/** The layout of `spec`, computed again only when the nodes, their sizes or the edges change. */
function useLayout(spec: GraphSpec): Layout | null {
  const key = layoutKey(spec);
  const [result, setResult] = React.useState<{ key: string; layout: Layout } | null>(null);
  React.useEffect(() => {
    let current = true;
    layoutGraph(spec)
      .then(layout => {
        if (current) {
          setResult({ key, layout });
        }
      })
      .catch(reason => console.error('nbpipe: the graph could not be laid out', reason));
    return () => {
      current = false;
    };
    // The layout depends on the key only (states change without a new layout).
  }, [key]);
  return result && result.key === key ? result.layout : null;
}

function useZoomPan(
  viewport: React.RefObject<HTMLDivElement>
): [Transform, (t: Transform) => void] {
  const [transform, setTransform] = React.useState<Transform>(IDENTITY);
  const latest = React.useRef(transform);
  latest.current = transform;
  React.useEffect(() => {
    const element = viewport.current;
    if (!element) {
      return;
    }
    return attachZoomPan(
      element,
      () => latest.current,
      t => {
        latest.current = t;
        setTransform(t);
      }
    );
  }, [viewport]);
  return [transform, setTransform];
}

/** The context menu of a node: build it (alone or with what it needs, forced or not). */
function menuItems(
  node: GraphNode,
  state: PanelState,
  actions: IPanelActions,
  unfold: (grid: string) => void
): MenuItem[] {
  if (node.kind === 'group') {
    return [{ label: `Show the ${node.members.length} tasks`, run: () => unfold(node.grid!) }];
  }
  const row = node.members[0];
  const enabled = canBuild(state);
  const items: MenuItem[] = [
    {
      label: 'Build this task',
      disabled: !enabled,
      run: () => actions.buildTask(row.name, { force: false, upToHere: false })
    },
    {
      label: 'Build up to here',
      disabled: !enabled,
      run: () => actions.buildTask(row.name, { force: false, upToHere: true })
    },
    {
      label: 'Force-build this task',
      disabled: !enabled,
      run: () => actions.buildTask(row.name, { force: true, upToHere: false })
    },
    {
      label: 'Force-build up to here',
      disabled: !enabled,
      run: () => actions.buildTask(row.name, { force: true, upToHere: true })
    }
  ];
  if (row.source) {
    items.push({
      label: 'Open source',
      run: () => actions.open(row.source!, row.kind === 'notebook')
    });
  }
  return items;
}
