/**
 * jupyterlab-nbpipe: the "Pipelines" sidebar panel and the "Build pipeline" commands, as
 * separate JupyterLab plugins around one controller:
 *
 *   - core (`jupyterlab-nbpipe:plugin`): the controller, its settings; provides IPipelineController;
 *   - panel: the panel in the left sidebar and "Show Pipelines Panel";
 *   - commands: "Build Pipeline", "Force-Build Pipeline", "Cancel Pipeline Build", in the palette;
 *   - file-browser: "Build Pipeline" in the context menu of a `pipeline*.yaml` file;
 *   - notebook-toolbar: a button on notebooks that are a task's source or product.
 */
import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { commandsPlugin } from './plugins/commands';
import { corePlugin } from './plugins/core';
import { fileBrowserPlugin } from './plugins/fileBrowser';
import { notebookToolbarPlugin } from './plugins/notebookToolbar';
import { panelPlugin } from './plugins/panel';

export { IPipelineController, CommandIDs } from './tokens';

const plugins: JupyterFrontEndPlugin<any>[] = [
  corePlugin,
  panelPlugin,
  commandsPlugin,
  fileBrowserPlugin,
  notebookToolbarPlugin
];

export default plugins;
