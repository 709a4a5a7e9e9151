/**
 * Paths: which files are pipelines, and products as the panel shows them. The server sends paths
 * relative to its root when they lie in it, absolute otherwise.
 */
import type { Product } from './types';

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

/** Whether a file name is a pipeline spec the server lists (pipeline*.yaml / pipeline*.yml). */
export function isPipelineFile(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return /^pipeline.*\.ya?ml$/.test(name);
}
