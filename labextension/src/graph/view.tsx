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
import { Products } from '../products';
import { DISPLAY_LABEL, Display, failureView, formatDuration, TaskRow, taskElapsed } from '../view';
import { foldableGrids, GraphNode, GraphSpec, graphOf, groupSummary } from './graph';
import { attachZoomPan, fitTransform, IDENTITY, Transform, zoomAt } from './interaction';
import { Layout, layoutGraph, layoutKey } from './layout';
import { GraphMenu, MenuItem } from './menu';

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
              <Edges spec={spec} layout={layout} byId={byId} />
              {spec.nodes.map(node => (
                <Node
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

function Edges(props: {
  spec: GraphSpec;
  layout: Layout;
  byId: Map<string, GraphNode>;
}): JSX.Element {
  const { spec, layout, byId } = props;
  return (
    <g className="jp-nbpipe-graph-edges">
      {spec.edges.map(edge => {
        const points = layout.edges.get(edge.id);
        if (!points || points.length < 2) {
          return null;
        }
        const from = byId.get(edge.source)?.display;
        const to = byId.get(edge.target)?.display;
        const classes = ['jp-nbpipe-graph-edge'];
        if (from === 'failed' || from === 'aborted') {
          classes.push('jp-mod-broken');
        }
        if (to === 'aborted') {
          classes.push('jp-mod-aborted');
        }
        return (
          <path
            key={edge.id}
            className={classes.join(' ')}
            data-source={edge.source}
            data-target={edge.target}
            d={points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ')}
            markerEnd="url(#jp-nbpipe-graph-arrow)"
          />
        );
      })}
    </g>
  );
}

/** Characters of a line that fit in a node `width` wide (the font's average width: 7 px). */
function fitText(text: string, width: number): string {
  const room = Math.floor((width - 20) / 7);
  return text.length <= room ? text : `${text.slice(0, Math.max(1, room - 1))}…`;
}

function stateLine(node: GraphNode): string {
  if (node.kind === 'group') {
    return groupSummary(node.members);
  }
  const row = node.members[0];
  return row.display === 'idle' ? (row.status ?? '') : DISPLAY_LABEL[row.display];
}

function Node(props: {
  node: GraphNode;
  layout: Layout;
  selected: boolean;
  onActivate: () => void;
  onMenu: (clientX: number, clientY: number) => void;
}): JSX.Element | null {
  const { node, layout, selected, onActivate, onMenu } = props;
  const box = layout.nodes.get(node.id);
  if (!box) {
    return null;
  }
  const group = node.kind === 'group';
  const title = group ? `${node.label} ×${node.members.length}` : node.label;
  const state = stateLine(node);
  const classes = ['jp-nbpipe-graph-node', `jp-nbpipe-graph-node-${node.display}`];
  if (group) {
    classes.push('jp-nbpipe-graph-group');
  }
  if (selected) {
    classes.push('jp-mod-selected');
  }
  const label = group
    ? `Grid ${node.label}, ${node.members.length} tasks${state ? `: ${state}` : ''}`
    : `Task ${node.label}${state ? `, ${state}` : ''}`;
  return (
    <g
      className={classes.join(' ')}
      data-task={group ? undefined : node.id}
      data-group={group ? node.grid! : undefined}
      data-state={node.display}
      transform={`translate(${box.x},${box.y})`}
      role="button"
      tabIndex={0}
      aria-label={label}
      aria-pressed={selected}
      onClick={onActivate}
      onKeyDown={event => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          onActivate();
        } else if (event.key === 'ContextMenu' || (event.shiftKey && event.key === 'F10')) {
          event.preventDefault();
          const rect = (event.currentTarget as SVGGElement).getBoundingClientRect();
          onMenu(rect.left + rect.width / 2, rect.bottom);
        }
      }}
      onContextMenu={event => {
        event.preventDefault();
        event.stopPropagation();
        onMenu(event.clientX, event.clientY);
      }}
    >
      <title>{group ? `${title}: ${state}` : `${title}${state ? ` (${state})` : ''}`}</title>
      {group && (
        <rect
          className="jp-nbpipe-graph-stack"
          x={4}
          y={4}
          width={box.width}
          height={box.height}
          rx={6}
        />
      )}
      <rect className="jp-nbpipe-graph-box" width={box.width} height={box.height} rx={6} />
      <text className="jp-nbpipe-graph-label" x={10} y={17}>
        {fitText(title, box.width)}
      </text>
      <text className="jp-nbpipe-graph-state" x={10} y={group ? 38 : 32}>
        {fitText(state, box.width)}
      </text>
    </g>
  );
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

/** What the node picked is: its state, its source, its products, its failure. */
function Details(props: {
  node: GraphNode;
  state: PanelState;
  now: number;
  actions: IPanelActions;
  onUnfold: (grid: string) => void;
  onFold: ((grid: string) => void) | null;
}): JSX.Element {
  const { node, state, now, actions, onUnfold, onFold } = props;
  if (node.kind === 'group') {
    return (
      <div className="jp-nbpipe-graph-details" role="group" aria-label={`Grid ${node.label}`}>
        <div className="jp-nbpipe-graph-details-title">
          {node.label} <span className="jp-nbpipe-graph-details-state">{stateLine(node)}</span>
        </div>
        <button type="button" className="jp-nbpipe-link" onClick={() => onUnfold(node.grid!)}>
          Show its {node.members.length} tasks
        </button>
      </div>
    );
  }
  const row = node.members[0];
  const run = row.run;
  const elapsed = run ? formatDuration(taskElapsed(run, now, state.skew)) : '';
  const failure = run ? failureView(run) : null;
  return (
    <div className="jp-nbpipe-graph-details" role="group" aria-label={`Task ${row.name}`}>
      <div className="jp-nbpipe-graph-details-title">
        {row.name}{' '}
        <span className="jp-nbpipe-graph-details-state">
          {stateLine(node)}
          {elapsed && shownElapsed(row.display) ? ` · ${elapsed}` : ''}
        </span>
      </div>
      {row.source && (
        <button
          type="button"
          className="jp-nbpipe-link"
          aria-label={`Open the source of task ${row.name}: ${row.source}`}
          onClick={() => actions.open(row.source!, row.kind === 'notebook')}
        >
          {row.source}
        </button>
      )}
      {failure ? (
        <div className="jp-nbpipe-graph-details-failure">{failure.summary}</div>
      ) : (
        run?.detail && <div className="jp-nbpipe-task-detail">{run.detail}</div>
      )}
      <Products task={row.name} products={row.products} actions={actions} />
      {row.grid && onFold && (
        <button type="button" className="jp-nbpipe-link" onClick={() => onFold(row.grid!)}>
          Group the grid {row.grid}
        </button>
      )}
    </div>
  );
}

function shownElapsed(display: Display): boolean {
  return display === 'running' || display === 'done' || display === 'failed';
}
