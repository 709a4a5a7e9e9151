/**
 * The graph's context menu: a list of actions at the pointer, in the graph's viewport. It takes
 * the keyboard focus (arrows move, Enter runs, Escape closes) and closes on any click outside.
 */
import * as React from 'react';

export interface MenuItem {
  label: string;
  disabled?: boolean;
  run: () => void;
}

export function GraphMenu(props: {
  x: number;
  y: number;
  label: string;
  items: MenuItem[];
  onClose: () => void;
}): JSX.Element {
  const { x, y, label, items, onClose } = props;
  const menu = React.useRef<HTMLUListElement>(null);
  const close = React.useRef(onClose);
  close.current = onClose;
  React.useEffect(() => {
    const first = menu.current?.querySelector<HTMLButtonElement>('button:not(:disabled)');
    first?.focus();
    const outside = (event: Event) => {
      if (!menu.current?.contains(event.target as Node)) {
        close.current();
      }
    };
    document.addEventListener('pointerdown', outside, true);
    return () => document.removeEventListener('pointerdown', outside, true);
  }, []);
  const move = (step: number) => {
    const buttons = Array.from(
      menu.current?.querySelectorAll<HTMLButtonElement>('button:not(:disabled)') ?? []
    );
    const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
    buttons[(at + step + buttons.length) % buttons.length]?.focus();
  };
  return (
    <ul
      ref={menu}
      className="jp-nbpipe-graph-menu"
      role="menu"
      aria-label={label}
      style={{ left: x, top: y }}
      onKeyDown={event => {
        if (event.key === 'Escape') {
          onClose();
        } else if (event.key === 'ArrowDown') {
          move(1);
        } else if (event.key === 'ArrowUp') {
          move(-1);
        } else {
          return;
        }
        event.preventDefault();
        event.stopPropagation();
      }}
    >
      {items.map(item => (
        <li key={item.label} role="none">
          <button
            type="button"
            role="menuitem"
            className="jp-nbpipe-graph-menu-item"
            disabled={item.disabled}
            onClick={() => {
              onClose();
              item.run();
            }}
          >
            {item.label}
          </button>
        </li>
      ))}
    </ul>
  );
}
