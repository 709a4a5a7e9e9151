/**
 * Paths: which files are pipelines, which pipeline a file belongs to, and products as the panel
 * shows them. The server sends paths relative to its root when they lie in it, absolute otherwise.
 */
import type { Pipeline, Product } from './types';

/** Whether a path is absolute (so outside the server root, as the server sends paths). */
export function isAbsolutePath(path: string): boolean {
  return path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(path);
}

/** A product as the panel shows it: a build's products are paths; `in_root`: not absolute. */
export function productOf(product: Product | string): Product {
  return typeof product === 'string'
    ? { path: product, in_root: !isAbsolutePath(product) }
    : product;
}

/** Whether a pipeline task's source or product is at `path` (the notebook toolbar button). */
export function pipelineOwns(detail: Pipeline, path: string): boolean {
  return detail.tasks.some(
    t => t.source === path || t.products.some(p => p.in_root && p.path === path)
  );
}

/** The pipelines whose folder holds `path` (at any depth), nearest first. */
export function candidatePipelines(pipelines: string[], path: string): string[] {
  const folder = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
  return pipelines
    .filter(p => {
      const dir = folder(p);
      return dir === '' || path === dir || path.startsWith(dir + '/');
    })
    .sort((a, b) => folder(b).length - folder(a).length);
}

/** Whether a file name is a pipeline spec the server lists (pipeline*.yaml / pipeline*.yml). */
export function isPipelineFile(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return /^pipeline.*\.ya?ml$/.test(name);
}
