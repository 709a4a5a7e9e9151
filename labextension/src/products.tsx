/**
 * A task's products as links: a report opens in a new browser tab, anything else (notebooks,
 * data) in JupyterLab; a product outside the server root is named but cannot be opened. Shown
 * under a task in the list and for the node picked in the graph.
 */
import * as React from 'react';

import type { IPanelActions } from './panel';
import type { Product } from './types';

export function Products(props: {
  task: string;
  products: Product[];
  actions: IPanelActions;
}): JSX.Element | null {
  const { products, actions } = props;
  if (!products.length) {
    return null;
  }
  return (
    <ul className="jp-nbpipe-products" aria-label={`Products of ${props.task}`}>
      {products.map(product => {
        const name = product.path.slice(product.path.lastIndexOf('/') + 1);
        if (!product.in_root) {
          return (
            <li key={product.path} title={product.path}>
              {name}
            </li>
          );
        }
        // A report opens in a browser tab; anything else (notebooks, data) in JupyterLab.
        const report = /\.html?$/i.test(name);
        return (
          <li key={product.path}>
            <button
              type="button"
              className="jp-nbpipe-link"
              data-product={product.path}
              aria-label={
                report
                  ? `Open the report ${product.path} in a new browser tab`
                  : `Open ${product.path}`
              }
              title={report ? `Open ${product.path} in a new browser tab` : `Open ${product.path}`}
              onClick={() =>
                report ? actions.openInBrowserTab(product.path) : actions.open(product.path)
              }
            >
              {report ? `${name} ↗` : name}
            </button>
          </li>
        );
      })}
    </ul>
  );
}
