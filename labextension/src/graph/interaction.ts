/**
 * Zoom and pan of the graph: the view transform (a scale `k` and a translation, so a point of the
 * layout at (px, py) is drawn at (x + k px, y + k py)), the pure functions that change it, and
 * the listeners that apply them to a viewport element: the wheel zooms about the pointer, a drag
 * pans. A drag ends without a click on what it started on (so panning never opens a notebook).
 */

export interface Transform {
  x: number;
  y: number;
  k: number;
}

export const MIN_SCALE = 0.02;
export const MAX_SCALE = 3;

export const IDENTITY: Transform = { x: 0, y: 0, k: 1 };

function clampScale(k: number): number {
  return Math.min(MAX_SCALE, Math.max(MIN_SCALE, k));
}

/** Zooms by `factor` about the viewport point (px, py), which stays where it is. */
export function zoomAt(t: Transform, factor: number, px: number, py: number): Transform {
  const k = clampScale(t.k * factor);
  const ratio = k / t.k;
  return { k, x: px - (px - t.x) * ratio, y: py - (py - t.y) * ratio };
}

export function panBy(t: Transform, dx: number, dy: number): Transform {
  return { ...t, x: t.x + dx, y: t.y + dy };
}

/**
 * The transform that shows a `width` × `height` layout whole and centred in a `viewWidth` ×
 * `viewHeight` viewport, never enlarged past its natural size.
 */
export function fitTransform(
  width: number,
  height: number,
  viewWidth: number,
  viewHeight: number,
  padding = 8
): Transform {
  if (width <= 0 || height <= 0 || viewWidth <= 0 || viewHeight <= 0) {
    return IDENTITY;
  }
  const k = clampScale(
    Math.min((viewWidth - 2 * padding) / width, (viewHeight - 2 * padding) / height, 1)
  );
  return { k, x: (viewWidth - width * k) / 2, y: (viewHeight - height * k) / 2 };
}

/** How far the pointer may move before a press becomes a drag (CSS pixels). */
const DRAG_THRESHOLD = 4;
/** The wheel's zoom per pixel of scroll. */
const WHEEL_RATE = 0.0015;

/**
 * Wheel zoom and drag pan on `viewport`; `get`/`set` read and replace the transform. Returns
 * what removes the listeners.
 */
export function attachZoomPan(
  viewport: HTMLElement,
  get: () => Transform,
  set: (t: Transform) => void
): () => void {
  let press: { id: number; x: number; y: number; dragging: boolean } | null = null;

  const onWheel = (event: WheelEvent) => {
    event.preventDefault();
    const rect = viewport.getBoundingClientRect();
    const delta = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
    set(
      zoomAt(
        get(),
        Math.exp(-delta * WHEEL_RATE),
        event.clientX - rect.left,
        event.clientY - rect.top
      )
    );
  };
  const onDown = (event: PointerEvent) => {
    if (event.button !== 0) {
      return;
    }
    press = { id: event.pointerId, x: event.clientX, y: event.clientY, dragging: false };
  };
  const onMove = (event: PointerEvent) => {
    if (!press || event.pointerId !== press.id) {
      return;
    }
    const dx = event.clientX - press.x;
    const dy = event.clientY - press.y;
    if (!press.dragging && Math.hypot(dx, dy) < DRAG_THRESHOLD) {
      return;
    }
    if (!press.dragging) {
      press.dragging = true;
      viewport.setPointerCapture(event.pointerId);
      viewport.classList.add('jp-mod-panning');
    }
    press.x = event.clientX;
    press.y = event.clientY;
    set(panBy(get(), dx, dy));
  };
  const onUp = (event: PointerEvent) => {
    if (!press || event.pointerId !== press.id) {
      return;
    }
    if (press.dragging) {
      viewport.classList.remove('jp-mod-panning');
      // The click that follows a drag is not a click on a node.
      const swallow = (click: MouseEvent) => {
        click.stopPropagation();
        click.preventDefault();
      };
      viewport.addEventListener('click', swallow, { capture: true, once: true });
      setTimeout(() => viewport.removeEventListener('click', swallow, { capture: true }), 0);
    }
    press = null;
  };
  viewport.addEventListener('wheel', onWheel, { passive: false });
  viewport.addEventListener('pointerdown', onDown);
  viewport.addEventListener('pointermove', onMove);
  viewport.addEventListener('pointerup', onUp);
  viewport.addEventListener('pointercancel', onUp);
  return () => {
    viewport.removeEventListener('wheel', onWheel);
    viewport.removeEventListener('pointerdown', onDown);
    viewport.removeEventListener('pointermove', onMove);
    viewport.removeEventListener('pointerup', onUp);
    viewport.removeEventListener('pointercancel', onUp);
  };
}
