/**
 * The SVG shapes of the graph: edges (ELK's routes, with an arrowhead; red out of a failed or
 * aborted task, dashed into an aborted one) and nodes (a box, the name, the state line; a folded
 * grid drawn as a stack). Each carries the stable classes and data attributes the styles and the
 * tests use.
 */
import * as React from 'react';

import { GraphNode, GraphSpec, nodeStateLine } from './graph';
import { Layout } from './layout';

export function EdgeShapes(props: {
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

export function NodeShape(props: {
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
  const state = nodeStateLine(node);
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
